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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test reports what its page showed: on a CI log that is all there is to go on."""
    report = yield
    if not (report.failed and call.when == "call"):
        return report
    values = [v for value in item.funcargs.values() for v in (value if isinstance(value, tuple) else (value,))]
    for page in (value for value in values if type(value).__name__ == "Page"):
        try:
            shown = page.locator("[data-testid=stMain]").inner_text(timeout=5_000)
        except Exception as error:  # the page itself may be what broke
            shown = f"(the page could not be read: {error})"
        report.sections.append(("what the page showed", f"{page.url}\n{shown[-4000:]}"))
    return report


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


# the Import page's two uploaders, by their labels
RECORD_FILES = "Record and verdict files, or a zip"
QUESTION_SET = "Question set for answer-only records"


def upload(page, label: str, path: Path) -> None:
    """Choose `path` in the file uploader whose label holds `label` and wait until the upload has finished: the chip's
    button reads "Remove <name>" only then ("Cancel upload of <name>" before). A failed upload fails here, with
    the uploader's own message, instead of later as a form that submitted without the file. By label, not by
    position: while a page is still being drawn the first file input may be another uploader."""
    uploader = page.get_by_test_id("stFileUploader").filter(has_text=label)
    uploader.wait_for(timeout=60_000)
    uploader.locator("input[type=file]").set_input_files(str(path))
    chip = uploader.get_by_test_id("stFileChip").filter(has=page.get_by_title(path.name, exact=True))
    chip.wait_for(timeout=60_000)
    done = chip.get_by_role("button", name=f"Remove {path.name}", exact=True).or_(chip.get_by_role("alert"))
    done.first.wait_for(timeout=60_000)
    assert chip.get_attribute("aria-invalid") is None, f"the upload of {path.name} failed: {chip.inner_text()}"


def alert_after(page, action) -> str:
    """Run `action` (a click that submits) and return the text of the first message the rerun shows: when the
    expected message does not come, the assertion then says what came instead."""
    alerts = page.get_by_test_id("stAlert")
    before = alerts.count()
    action()
    page.wait_for_function(f"() => document.querySelectorAll('[data-testid=stAlert]').length > {before}",
                           timeout=120_000)
    return alerts.nth(before).inner_text()
