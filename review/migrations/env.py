"""Alembic environment: runs on the connection handed over by review.db.migrate (or a URL from alembic.ini)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from review.models import Base

config = context.config


def run_migrations(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool)
    with engine.connect() as fresh:
        run_migrations(fresh)
