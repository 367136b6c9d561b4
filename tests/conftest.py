"""Shared fixtures: settings on a temporary data directory, the shared data folder, offline mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from configuration.settings import Settings
from review.access import Principal
from tests.db_fixtures import postgres_server  # noqa: F401  (one PostgreSQL server per test session)

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in the test suite may download anything
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO_CORPUS = REPO / "demo" / "corpus"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test (with the reason) when it is absent, as on a user's machine."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared exists only on the project's build machines)")
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Offline settings on an empty data directory, answering with the extractive answerer."""
    return Settings(data_dir=tmp_path / "data", generator_kind="extractive").validate()


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory) -> Path:
    """A data directory with the demo corpus ingested once per test session; copy it before writing to it."""
    from loupe.ingest import Ingester
    from loupe.stores import build_document_store

    data_dir = tmp_path_factory.mktemp("demo-index")
    settings = Settings(data_dir=data_dir, generator_kind="extractive").validate()
    assert Ingester(settings, build_document_store(settings)).ingest([DEMO_CORPUS]).exit_code == 0
    return data_dir


@pytest.fixture
def demo_data_dir(demo_index: Path, tmp_path: Path) -> Path:
    """A private copy of the demo index, so that each test has its own review database."""
    import shutil

    return Path(shutil.copytree(demo_index, tmp_path / "demo-data"))


def run_app(monkeypatch, data_dir: Path, **env: str):
    """The app under AppTest on `data_dir`, with these environment variables, after its first run."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LOUPE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    st.cache_resource.clear()  # resources are per process; each test has its own data directory
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at

ADMIN = Principal("admin", "admin")  # the acting user of tests that call data functions with full rights
