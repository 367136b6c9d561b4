"""Open the review database: SQLite under the data directory by default, any SQLAlchemy URL via DATABASE_URL."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from configuration.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# JSON columns keep non-ASCII text as it is (not \u-escaped), so that the queue's text search finds it.
_JSON_SERIALIZER = partial(json.dumps, ensure_ascii=False)


def database_url(settings: Settings, env: dict[str, str] | None = None) -> str:
    """DATABASE_URL when set, else a SQLite file in the data directory."""
    env = os.environ if env is None else env
    return env.get("DATABASE_URL") or f"sqlite:///{(settings.data_dir / 'review.sqlite3').resolve()}"


def auth_required(settings: Settings) -> bool:
    """LOUPE_AUTH=password|off; unset, logins are required whenever the database is a shared server."""
    if settings.auth:
        return settings.auth == "password"
    return not database_url(settings).startswith("sqlite")


def make_engine(url: str) -> Engine:
    """An engine with SQLite set up for safe concurrent use (foreign keys, WAL, a busy timeout)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               json_serializer=_JSON_SERIALIZER)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=_JSON_SERIALIZER)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates the tables on a new database)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Engine for the configured database, migrated, as a session factory."""
    engine = make_engine(database_url(settings))
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)
