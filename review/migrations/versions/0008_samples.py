"""samples and sample_units: designs for reviewing part of a run, with every record's inclusion probability

New tables only; nothing existing changes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:50:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('samples',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('run', sa.String(length=200), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('budget', sa.Integer(), nullable=False),
    sa.Column('population', sa.Integer(), nullable=False),
    sa.Column('suggester_model', sa.String(length=300), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_index(op.f('ix_samples_run'), 'samples', ['run'], unique=False)
    op.create_table('sample_units',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sample', sa.String(length=200), nullable=False),
    sa.Column('record_id', sa.String(length=300), nullable=False),
    sa.Column('external_id', sa.String(length=300), nullable=True),
    sa.Column('source_hash', sa.String(length=64), nullable=True),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('selected', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['sample'], ['samples.name'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sample', 'record_id', name='uq_sample_unit_record')
    )
    op.create_index(op.f('ix_sample_units_sample'), 'sample_units', ['sample'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_sample_units_sample'), table_name='sample_units')
    op.drop_table('sample_units')
    op.drop_index(op.f('ix_samples_run'), table_name='samples')
    op.drop_table('samples')
