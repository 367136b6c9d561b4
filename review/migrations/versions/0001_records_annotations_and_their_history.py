"""records, annotations and their history

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 01:00:14.500031
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('records',
    sa.Column('id', sa.String(length=300), nullable=False),
    sa.Column('run', sa.String(length=200), nullable=True),
    sa.Column('doc_id', sa.String(length=300), nullable=True),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('passages', sa.JSON(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('generator_kind', sa.String(length=50), nullable=False),
    sa.Column('generator_model', sa.String(length=300), nullable=False),
    sa.Column('generator_note', sa.Text(), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('support', sa.JSON(), nullable=True),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('final_verdict', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index('ix_records_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_doc_id'), ['doc_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_records_run'), ['run'], unique=False)

    op.create_table('annotations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.String(length=300), nullable=False),
    sa.Column('annotator', sa.String(length=200), nullable=False),
    sa.Column('verdict', sa.String(length=20), nullable=False),
    sa.Column('corrected_answer', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=50), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('passage_marks', sa.JSON(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_id', 'annotator', name='uq_annotation_record_annotator')
    )
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotations_record_id'), ['record_id'], unique=False)

    op.create_table('annotation_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('annotation_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('annotator', sa.String(length=200), nullable=False),
    sa.Column('verdict', sa.String(length=20), nullable=False),
    sa.Column('corrected_answer', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=50), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('passage_marks', sa.JSON(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('seconds', sa.Double(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['annotation_id'], ['annotations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('annotation_id', 'version', name='uq_annotation_version')
    )
    with op.batch_alter_table('annotation_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_annotation_versions_annotation_id'), ['annotation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('annotation_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotation_versions_annotation_id'))

    op.drop_table('annotation_versions')
    with op.batch_alter_table('annotations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_annotations_record_id'))

    op.drop_table('annotations')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_records_run'))
        batch_op.drop_index(batch_op.f('ix_records_doc_id'))
        batch_op.drop_index('ix_records_created_at')

    op.drop_table('records')
