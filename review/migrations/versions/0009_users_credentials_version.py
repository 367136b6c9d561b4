"""users.credentials_version: bumped when a password is set or an account disabled, ending the sessions logged in
under an earlier one

One column with a default; existing accounts start at 0 and their open sessions stay logged in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('credentials_version', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch_op:
        batch_op.drop_column('credentials_version')
