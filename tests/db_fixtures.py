"""Review databases to test against: SQLite always, PostgreSQL when LOUPE_TEST_POSTGRES_URL names a server."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from review.db import make_engine, migrate

POSTGRES_URL = os.environ.get("LOUPE_TEST_POSTGRES_URL")  # e.g. postgresql+psycopg://loupe:loupe@127.0.0.1/postgres
DATABASES = ["sqlite", "postgresql"]


def database_url(kind: str, tmp_path) -> tuple[str, callable]:
    """A fresh, empty database of this kind and a function that drops it afterwards."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'review.sqlite3'}", lambda: None
    if not POSTGRES_URL:
        pytest.skip("LOUPE_TEST_POSTGRES_URL is not set: no PostgreSQL server to test against (.ci/run starts one)")
    name = f"loupe_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(params=DATABASES)
def db_url(request, tmp_path):
    url, drop = database_url(request.param, tmp_path)
    yield url
    drop()


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()
