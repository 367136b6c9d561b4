"""An annotator in a real browser: ask, see highlighted passages, correct, reject, and find it in the export;
hostile documents run nothing and load nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from configuration.settings import Settings
from loupe.ingest import Ingester
from loupe.stores import build_document_store
from tests.browser.conftest import start_app
from tests.conftest import DEMO_CORPUS, REPO

pytestmark = pytest.mark.slow

HOSTILE = """# Hostile Field Notes

The owls were counted with thermal cameras at dusk. <script>window.__pwned = 'script'; alert('xss')</script>
Owl counts used a random seed of 7 for the sampling order. <img src="http://evil.example/pixel.png" onerror="window.__pwned='img'">
See [the owl data](javascript:window.__pwned='link') and ![tracker](http://evil.example/tracker.png).
<a href="javascript:alert(1)" onclick="window.__pwned='click'">click me</a> <iframe src="http://evil.example/frame"></iframe>
<style>body{display:none}</style> **bold owls** and <b onmouseover="window.__pwned='hover'">owl markup</b>.
"""


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    corpus = tmp_path_factory.mktemp("corpus")
    (corpus / "hostile_owls.md").write_text(HOSTILE, encoding="utf-8")
    settings = Settings(data_dir=data_dir, generator_kind="extractive").validate()
    report = Ingester(settings, build_document_store(settings)).ingest([DEMO_CORPUS, corpus])
    assert report.exit_code == 0
    process, url = start_app(data_dir)
    yield url, data_dir
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.outside_requests, page.dialogs = [], []
    url = app_url[0]

    def guard(route):
        if route.request.url.startswith(url):
            route.continue_()
        else:
            page.outside_requests.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.get_by_label("Question").wait_for(timeout=90_000)
    yield page
    context.close()


def ask(page, question: str, document: str | None = None) -> None:
    page.get_by_label("Question").fill(question)
    if document:
        page.get_by_text("Scope and retrieval").click()
        page.get_by_label("Documents").click()
        page.keyboard.type(document)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.get_by_text("Passages (").wait_for(timeout=90_000)


def export_rows(data_dir) -> list[dict]:
    result = subprocess.run([sys.executable, "cli.py", "export", "--format", "jsonl"], cwd=REPO, capture_output=True,
                            text=True, env={**__import__("os").environ, "LOUPE_DATA_DIR": str(data_dir)}, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_ask_highlight_correct_and_export(page, app_url):
    ask(page, "Which random seed was used and how were results repeated?", "camera_trap_mammals")
    page.locator(".loupe-support").first.wait_for(timeout=30_000)  # supporting passage sentences are highlighted
    assert page.locator(".loupe-term").count() >= 1, "question terms are highlighted"
    assert page.locator(".loupe-answer .loupe-label").count() >= 1, "answer sentences are numbered"

    page.get_by_role("button", name=re.compile(r"^Correct")).click()
    box = page.get_by_label("Corrected answer")
    box.wait_for()
    box.fill("Seeds were fixed and training was repeated five times (browser correction).")
    page.get_by_role("button", name=re.compile(r"^Save correction")).click()
    page.get_by_text("Saved: correct").wait_for(timeout=30_000)
    page.locator("ins").first.wait_for(timeout=30_000)  # the correction is shown as a diff
    assert page.get_by_label("Question").input_value() == "", "the page is ready for the next question"

    rows = export_rows(app_url[1])
    corrected = [a for row in rows for a in row["annotations"] if a["verdict"] == "correct"]
    assert any("browser correction" in (a["corrected_answer"] or "") for a in corrected)
    assert all(a["annotator"] == "browser-tester" for a in corrected)


def test_accept_from_the_keyboard_shortcut_button(page, app_url):
    ask(page, "Which deep learning framework was used?", "land_cover_transformer")
    accept = page.get_by_role("button", name=re.compile(r"^Accept"))
    assert accept.inner_text().split()[-1] == "A", "the shortcut (A) is shown on the button"
    accept.click()
    page.get_by_text("Saved: accept").wait_for(timeout=30_000)
    rows = export_rows(app_url[1])
    accepted = [row for row in rows if any(a["verdict"] == "accept" for a in row["annotations"])]
    assert [row["question"] for row in accepted] == ["Which deep learning framework was used?"]


def test_reject_with_reason(page, app_url):
    ask(page, "What hardware was used for training?", "bird_song_detection")
    page.get_by_role("button", name=re.compile(r"^Reject")).click()
    page.get_by_label("Reason").click()
    page.get_by_role("option", name="retrieval missed the evidence").click()
    page.get_by_role("button", name=re.compile(r"^Save rejection")).click()
    page.get_by_text("Saved: reject").wait_for(timeout=30_000)
    rows = export_rows(app_url[1])
    assert any(a["reason"] == "retrieval_missed" for row in rows for a in row["annotations"])


def test_hostile_document_runs_and_loads_nothing(page):
    ask(page, "How were the owls counted and which random seed was used?", "hostile_owls")
    page.locator(".loupe-passage").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert page.outside_requests == [], page.outside_requests
    text = page.locator("[data-testid=stMain]").inner_text()
    assert "<script>" in text and "javascript:" in text and "![tracker]" in text, "markup shows as literal text"
    assert page.locator("[data-testid=stMain] iframe[src*='evil']").count() == 0
    assert page.locator("[data-testid=stMain] img[src*='evil']").count() == 0
    assert page.locator("[data-testid=stMain] a[href^='javascript']").count() == 0
    assert page.locator("[data-testid=stMain] [onerror], [data-testid=stMain] [onclick], [data-testid=stMain] [onmouseover]").count() == 0
    assert page.locator("[data-testid=stMain]").is_visible(), "a <style> in the document must not restyle the page"
