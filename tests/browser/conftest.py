"""A real Streamlit server and Debian's Chromium, for what only a browser shows."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.app_server import CHROMIUM_ARGS
from bench.app_server import start_app as start_app_with
from tests.conftest import REPO


def start_app(data_dir: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port on `data_dir`, answering with the extractive answerer; returns the
    process and its URL once it answers."""
    env = {**os.environ, "LOUPE_DATA_DIR": str(data_dir), "LOUPE_GENERATOR_KIND": "extractive",
           "LOUPE_ANNOTATOR": "browser-tester", **(extra_env or {})}
    env.pop("DATABASE_URL", None)
    return start_app_with(REPO, env, wait_s=90)


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
