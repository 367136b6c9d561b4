"""Shared fixtures: settings on a temporary data directory, the shared data folder, offline mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loupe.settings import Settings

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
