"""records: the suggested verdict (suggestion JSON) and its probability of rejection (p_reject, indexed)

Both are filled by the support analysis (`cli.py analyze`, the review loop's background analysis, the Ask page);
records analysed before this revision get theirs from the next `cli.py analyze`. Plain ADD COLUMN and CREATE
INDEX: SQLite adds them without rebuilding `records`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('records', sa.Column('suggestion', sa.JSON(none_as_null=True), nullable=True))
    op.add_column('records', sa.Column('p_reject', sa.Float(), nullable=True))
    op.create_index(op.f('ix_records_p_reject'), 'records', ['p_reject'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_records_p_reject'), table_name='records')
    op.drop_column('records', 'p_reject')  # SQLite 3.35+ drops a column in place
    op.drop_column('records', 'suggestion')
