"""withdrawn_verdicts: first verdicts taken back with Undo, kept whole (the record is unreviewed again)

A new table only; nothing existing changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('withdrawn_verdicts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.String(length=300), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_by', sa.String(length=200), nullable=False),
    sa.Column('annotator', sa.String(length=200), nullable=False),
    sa.Column('verdict', sa.String(length=20), nullable=False),
    sa.Column('corrected_answer', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=50), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('passage_marks', sa.JSON(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=True),
    sa.Column('suggested', sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_withdrawn_verdicts_record_id'), 'withdrawn_verdicts', ['record_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_withdrawn_verdicts_record_id'), table_name='withdrawn_verdicts')
    op.drop_table('withdrawn_verdicts')
