"""Review databases to test against: SQLite always; PostgreSQL on the server LOUPE_TEST_POSTGRES_URL names, or else
on a throwaway server started for the test session from Debian's binaries (tests/postgres_server.py)."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from review.db import make_engine, migrate
from tests.postgres_server import HOW_TO_GET_IT, postgres_bin, start_server

DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A PostgreSQL server's URL (e.g. postgresql+psycopg://loupe:loupe@127.0.0.1/postgres) for the session."""
    given = os.environ.get("LOUPE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if postgres_bin() is None:
        pytest.skip(f"no PostgreSQL server to test against: {HOW_TO_GET_IT}")
    url, stop = start_server()
    yield url
    stop()


def database_url(kind: str, tmp_path, request) -> tuple[str, callable]:
    """A fresh, empty database of this kind and a function that drops it afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'review.sqlite3'}", lambda: None
    server = request.getfixturevalue("postgres_server")
    name = f"loupe_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(params=DATABASES)
def db_url(request, tmp_path):
    url, drop = database_url(request.param, tmp_path, request)
    yield url
    drop()


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()
