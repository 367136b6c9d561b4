"""runs, question ids, support columns and import provenance

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:07:08.029490
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('runs',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('doc_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.create_index('ix_annotations_annotator_verdict', ['annotator', 'verdict'], unique=False)

    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('question_id', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('unsupported_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('abstains', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('source', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_hash', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_records_external_id'), ['external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_question_id'), ['question_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_unsupported_count'), ['unsupported_count'], unique=False)

    op.execute("UPDATE records SET external_id = id")
    _fill_support_columns()


def _fill_support_columns() -> None:
    """Records stored before this revision carry their support map only as JSON: copy its summary out."""
    records = sa.table("records", sa.column("id", sa.String), sa.column("support", sa.JSON),
                       sa.column("unsupported_count", sa.Integer), sa.column("abstains", sa.Boolean))
    connection = op.get_bind()
    rows = connection.execute(sa.select(records.c.id, records.c.support).where(records.c.support.is_not(None)))
    for record_id, support in rows.all():
        if not isinstance(support, dict):
            continue
        connection.execute(records.update().where(records.c.id == record_id).values(
            unsupported_count=int(support.get("unsupported_count") or 0), abstains=bool(support.get("abstains"))))



def downgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_records_unsupported_count'))
        batch_op.drop_index(batch_op.f('ix_records_question_id'))
        batch_op.drop_index(batch_op.f('ix_records_external_id'))
        batch_op.drop_column('source_hash')
        batch_op.drop_column('source')
        batch_op.drop_column('abstains')
        batch_op.drop_column('unsupported_count')
        batch_op.drop_column('question_id')
        batch_op.drop_column('external_id')

    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.drop_index('ix_annotations_annotator_verdict')

    op.drop_table('runs')
