"""Open the review database: SQLite under the data directory by default, any SQLAlchemy URL via DATABASE_URL.

Every process that opens the database migrates it first; migrations are serialised so that two processes starting
at once on a new database (two imports, an import and the app) do not both create the tables: a file lock beside
the SQLite file (`review.sqlite3.migrate-lock`), a transaction-level advisory lock on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Iterator
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


# The key of PostgreSQL's advisory lock held while migrating (any fixed 64-bit number; this one names Loupe).
MIGRATION_LOCK_KEY = zlib.crc32(b"loupe review database migrations")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates the tables on a new database), one process at a time:
    a second process waits for the first, then finds the schema current and does nothing."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migration_file_lock(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # released when this transaction ends, i.e. once the migrations are committed (PostgreSQL's DDL is
            # transactional, so the waiting process then reads the new alembic_version)
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextlib.contextmanager
def _migration_file_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on a file beside a SQLite database while it is migrated; nothing for other databases
    or an in-memory one."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(f"{database}.migrate-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+b") as handle:
        _lock_file(handle)
        try:
            yield
        finally:
            _unlock_file(handle)


def _lock_file(handle) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        handle.seek(0)
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                return
            except OSError:  # LK_LOCK gives up after 10 s: keep waiting
                continue
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _unlock_file(handle) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Engine for the configured database, migrated, as a session factory."""
    engine = make_engine(database_url(settings))
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)
