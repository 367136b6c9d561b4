"""Uploading a zip of records on the Import page in a real browser, then reviewing them in the Queue."""

from __future__ import annotations

import re
import zipfile

import pytest
from sqlalchemy import select

from configuration.settings import Settings
from review.db import open_database
from review.models import Annotation, Record
from tests.browser.conftest import RECORD_FILES, alert_after, start_app, upload

pytestmark = pytest.mark.slow

PROMPT_RECORD = """Use the following pieces of context to answer the question at the end.

The network was trained with a fixed random seed of 42 for every run.

Weights were initialised with <script>window.__pwned = 1</script> He initialisation.

Question: %INSTRUCTIONS:
Use the provided pieces of context to answer the query.

%Query
Query: "{question}"

Helpful Answer:
{answer}
"""


@pytest.fixture
def uploaded(browser, tmp_path):
    archive = tmp_path / "records.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("run/Publication_paperA.pdf_CQ1.txt", PROMPT_RECORD.format(
            question="How was randomness handled?", answer="A fixed random seed of 42 was used."))
        zipped.writestr("run/Publication_paperB.pdf_CQ1.txt", PROMPT_RECORD.format(
            question="How was randomness handled?", answer="The context does not say."))
        zipped.writestr("run/Publication_paperC.pdf_CQ1.txt", "Question: cut off before the answer")
        zipped.writestr("decisions.csv", "CQ,CQ_Answer,Unique_ID,decision\nq,a,Publication_paperA.pdf_CQ1.txt,Yes\n")
    data_dir = tmp_path / "data"
    process, url = start_app(data_dir)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/import_records")
    page.get_by_text("Record and verdict files, or a zip").wait_for(timeout=60_000)
    yield page, url, data_dir, archive
    context.close()
    process.terminate()
    process.wait(timeout=20)


def test_zip_upload_imports_records_and_verdicts(uploaded):
    page, url, data_dir, archive = uploaded
    upload(page, RECORD_FILES, archive)
    page.get_by_role("textbox", name="Run").fill("uploaded")
    page.get_by_role("textbox", name="Verdicts are by").fill("kommineni")
    shown = alert_after(page, page.get_by_role("button", name="Import").click)
    assert "records 2 added" in shown, shown
    page.get_by_text("looks truncated").wait_for(state="attached", timeout=10_000)  # the bad file is listed with its reason

    with open_database(Settings(data_dir=data_dir))() as session:
        records = session.scalars(select(Record).order_by(Record.id)).all()
        verdicts = session.scalars(select(Annotation)).all()
    assert [(r.external_id, r.doc_id, r.question_id, r.run) for r in records] == [
        ("Publication_paperA.pdf_CQ1", "paperA", "Q1", "uploaded"),
        ("Publication_paperB.pdf_CQ1", "paperB", "Q1", "uploaded"),
    ]
    passage = records[0].passages[0]  # the two short paragraphs are one passage; each keeps its boundaries
    start, end = passage["paragraph_spans"][1]
    assert passage["text"][start:end] == "Weights were initialised with <script>window.__pwned = 1</script> He initialisation."
    assert [(v.record_id, v.annotator, v.verdict) for v in verdicts] == [(records[0].id, "kommineni", "accept")]

    page.goto(f"{url}/queue")
    page.get_by_text(re.compile(r"1 of 2")).wait_for(timeout=60_000)
    page.get_by_text("He initialisation").first.wait_for(timeout=60_000)
    assert page.evaluate("window.__pwned === undefined"), "the passage's script tag is shown, not run"
    assert "<script>" in page.locator("body").inner_text()
