"""One hostile corpus — Markdown images, HTML images, scripts, javascript: links, bare URLs, bidi overrides and
zero-width characters, in document text, answers, ids, run and annotator names and file names — ingested and
imported, then every page visited in Chromium: no request leaves for another host and no script runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.browser.conftest import QUESTION_SET, RECORD_FILES, alert_after, start_app, upload
from tests.conftest import REPO

pytestmark = pytest.mark.slow

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
MARKUP = ("![md](https://evil.example/md.png) <img src=\"https://evil.example/html.png\" onerror=\"window.__pwned='img'\"> "
          "<script>window.__pwned='script'</script> [click](javascript:window.__pwned='link') "
          "https://evil.example/bare www.evil.example/www")
BIDI = "\u202egnp.exe\u202c zero\u200bwidth\u2066isolate\u2069\ufeff"
LONG = "A" * 300
DOC_TEXT = (f"# Hostile notes\n\nThe owls were counted with thermal cameras at dusk. {MARKUP}\n\n"
            f"Owl counts used a random seed of 7 for the sampling order. {BIDI} {LONG}\n")
DOC_ID = "![d](https:evil.example) <img src=https:evil.example>"  # a file name: "https:host" is "https://host" to a browser
RECORD_ID = "![i](https:evil.example)"
RUN = "![r](https:evil.example)"
ANNOTATOR = "![a](https:evil.example)"
ANSWER = f"The seed was 7. {MARKUP} {BIDI} {LONG}"
PAGES = {"Ask": "", "Queue": "queue", "Records": "records", "Progress": "progress", "Adjudicate": "adjudicate",
         "Overview": "overview", "Import": "import_records", "Batch": "batch", "Users": "users"}


def cli(data_dir: Path, *args: str) -> None:
    result = subprocess.run([sys.executable, "cli.py", *args], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "LOUPE_DATA_DIR": str(data_dir), "LOUPE_GENERATOR_KIND": "extractive"})
    assert result.returncode in (0, 1), result.stderr


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    data_dir, folder = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("hostile")
    (folder / f"{DOC_ID}.md").write_text(DOC_TEXT, encoding="utf-8")
    cli(data_dir, "ingest", str(folder / f"{DOC_ID}.md"))
    records = [
        {"id": RECORD_ID, "question": f"Which seed was used? {MARKUP}", "answer": ANSWER, "doc_id": DOC_ID,
         "contexts": [DOC_TEXT, {"text": f"{MARKUP} {BIDI}", "meta": {"title": MARKUP, "page": 1}}]},
        {"id": "<img src=https:evil.example/id>", "question": "How were the owls counted?", "answer": ANSWER,
         "doc_id": DOC_ID, "contexts": []},  # no context: offers "Retrieve passages from <doc id>"
    ]
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cli(data_dir, "import", str(folder / "records.jsonl"), "--run", RUN, "--model", MARKUP)
    for annotator, verdict in ((ANNOTATOR, {"verdict": "reject", "reason": "other"}),
                               ("bob", {"verdict": "correct", "corrected_answer": f"Seven. {MARKUP} {BIDI}"})):
        verdicts = folder / f"verdicts-{len(annotator)}.jsonl"
        verdicts.write_text(json.dumps({"record_id": RECORD_ID, "comment": MARKUP, **verdict}) + "\n", encoding="utf-8")
        cli(data_dir, "import", str(verdicts), "--run", RUN, "--annotator", annotator)
    archive = folder / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("![z](https:evil.example) <img src=https:evil.example>.jsonl",
                        json.dumps({"id": "zipped", "question": MARKUP, "answer": ANSWER, "contexts": [MARKUP]}) + "\n")
        zipped.writestr("broken ![b](https:evil.example).txt", "Question: cut off " + MARKUP)
    (folder / "questions.jsonl").write_text('{"id": "q1", "question": ' + json.dumps(MARKUP) + "\n", encoding="utf-8")
    process, url = start_app(data_dir, {"LOUPE_AUTH": "off"})
    yield url, folder, data_dir
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def page(browser, hostile_app):
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    page.outside_requests, page.dialogs = [], []

    def watch(request):
        host = urlparse(request.url).hostname
        if request.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOOPBACK_HOSTS:
            page.outside_requests.append(request.url)

    page.on("request", watch)
    page.on("websocket", lambda socket: watch(type("R", (), {"url": socket.url})()))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.route(re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*"), lambda route: route.abort())
    yield page
    context.close()


def nothing_escaped(page, where: str) -> None:
    page.wait_for_timeout(1200)  # images and scripts would have started by now
    assert page.outside_requests == [], f"{where}: {page.outside_requests}"
    assert page.evaluate("window.__pwned === undefined"), f"{where}: a script ran ({page.evaluate('window.__pwned')})"
    assert page.dialogs == [], where
    live = page.locator("a[href*='evil']:not([href^='#']), img[src*='evil'], a[href^='javascript'], iframe[src*='evil']")
    assert live.count() == 0, f"{where}: a live link or image: {live.first.evaluate('e => e.outerHTML')}"


def visit(page, url: str, title: str) -> None:
    page.goto(f"{url}/{PAGES[title]}")
    page.get_by_role("heading", name=title, exact=True).first.wait_for(timeout=90_000)


def test_every_page_shows_the_hostile_corpus_without_loading_or_running_anything(page, hostile_app):
    url, folder, _ = hostile_app
    visit(page, url, "Ask")
    page.get_by_label("Question").fill(f"Which random seed was used for the owl counts? {MARKUP}")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.get_by_text("Passages (").wait_for(timeout=120_000)
    page.locator(".loupe-passage").first.wait_for(timeout=30_000)
    nothing_escaped(page, "Ask")
    assert page.locator(".loupe-control").count() >= 1, "bidi and zero-width characters are shown as badges"

    visit(page, url, "Queue")
    page.locator(".loupe-answer").first.wait_for(timeout=90_000)
    nothing_escaped(page, "Queue")
    for _ in range(2):  # the other records, among them the one without context and its retrieve button
        page.get_by_role("button", name=re.compile(r"^Next(?! unreviewed)")).click()
        page.wait_for_timeout(2500)
        nothing_escaped(page, "Queue, next record")
    retrieve = page.get_by_role("button", name=re.compile("Retrieve passages from"))
    if retrieve.count():
        assert "![d]" in retrieve.inner_text(), "the document id shows literally"
        retrieve.click()
        page.get_by_text("Passages (").first.wait_for(timeout=90_000)
        nothing_escaped(page, "Queue, retrieved passages")

    visit(page, url, "Records")
    page.get_by_text("Export").first.click()
    page.get_by_text("csv", exact=True).click()
    # the rerun that the format choice started draws the button anew, its label naming the format: click that one
    download_button = page.get_by_role("button", name="Download all records (csv)")
    download_button.wait_for(timeout=60_000)
    with page.expect_download(timeout=180_000) as download:
        download_button.click()
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert exported.startswith("record_id,") and RECORD_ID in exported, "the export is generated on the click"
    nothing_escaped(page, "Records")

    for title in ("Progress", "Adjudicate", "Overview", "Users"):
        visit(page, url, title)
        page.wait_for_timeout(2000)
        nothing_escaped(page, title)

    visit(page, url, "Import")
    upload(page, RECORD_FILES, folder / "hostile.zip")
    upload(page, QUESTION_SET, folder / "questions.jsonl")
    shown = alert_after(page, page.get_by_role("button", name="Import").click)
    assert shown.startswith("Cannot import"), f"the broken question set is refused, and its error quotes it: {shown!r}"
    nothing_escaped(page, "Import, question-set error")
    visit(page, url, "Import")  # a fresh form, without the question set
    upload(page, RECORD_FILES, folder / "hostile.zip")
    shown = alert_after(page, page.get_by_role("button", name="Import").click)
    assert "records 1 added" in shown, shown
    nothing_escaped(page, "Import, zip members")

    visit(page, url, "Batch")
    page.get_by_label(re.compile("Questions, one per line")).fill(f"Which seed was used? {MARKUP}")
    page.get_by_role("textbox", name="Run").fill(f"batch {MARKUP}")
    page.get_by_role("button", name="Start or resume").click()
    page.get_by_text("Batch runs").wait_for(timeout=120_000)
    nothing_escaped(page, "Batch")
