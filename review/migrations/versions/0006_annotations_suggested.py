"""annotations and their versions: `suggested`, the verdict was the suggested one, taken with one key

Plain ADD COLUMN with a server default (false): existing verdicts were all the annotators' own.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('annotations', 'annotation_versions'):
        op.add_column(table, sa.Column('suggested', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    for table in ('annotation_versions', 'annotations'):
        op.drop_column(table, 'suggested')
