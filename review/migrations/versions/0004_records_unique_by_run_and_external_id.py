"""records are identified by (run, external_id): a unique index on the pair

Until now a record's key was `run + "/" + external id`, so run `a` id `b/c` and run `a/b` id `c` were one
record. Existing records keep their ids (annotations, assignments and adjudications point at them); from now
on the importer finds records by the pair, which this index keeps unique. A unique index rather than a
constraint: SQLite adds it without rebuilding the table (a rebuild would drop and recreate `records`, and with
foreign keys on, dropping it would cascade to the annotations).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    duplicates = op.get_bind().execute(sa.text(
        "SELECT run, external_id, COUNT(*) FROM records WHERE run IS NOT NULL AND external_id IS NOT NULL "
        "GROUP BY run, external_id HAVING COUNT(*) > 1 LIMIT 5")).all()
    if duplicates:  # no version of Loupe writes these; refuse rather than guess which record is the right one
        shown = ", ".join(f"run {run!r} id {external_id!r} ({count} records)" for run, external_id, count in duplicates)
        raise RuntimeError(f"records repeat a (run, external id) pair: {shown}; give each its own external_id first")
    op.create_index('uq_records_run_external_id', 'records', ['run', 'external_id'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_records_run_external_id', table_name='records')
