"""The Queue, Overview and Batch pages in AppTest, over records imported into the demo data directory."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from configuration.settings import Settings
from review.db import open_database
from review.importer import Importer
from review.models import Annotation, Record
from review.record_files import Question
from tests.conftest import ADMIN, DEMO_CORPUS, run_app

pytestmark = pytest.mark.slow

QUESTIONS = ["Which optimizer was used?", "Which GPU was used for training?"]
DOCS = ["camera_trap_mammals", "coral_reef_segmentation", "sonar_fish_counting"]


def paragraphs(doc_id: str) -> list[str]:
    text = (DEMO_CORPUS / f"{doc_id}.md").read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if p.strip() and not p.startswith("#")]


def write_records(folder, run_docs=DOCS, unsupported_doc="coral_reef_segmentation"):
    """2 questions × 3 documents; on one document the answer claims something no passage says."""
    lines = []
    for doc_id in run_docs:
        context = paragraphs(doc_id)
        for number, question in enumerate(QUESTIONS, start=1):
            answer = context[1].split(". ")[0] + "."
            if doc_id == unsupported_doc:
                answer += " The model was trained on a quantum computer in Antarctica during 1975."
            lines.append({"id": f"{doc_id}-q{number}", "question": question, "answer": answer, "contexts": context[:3],
                          "doc_id": doc_id, "question_id": f"Q{number}", "meta": {"model": "fake-llm"}})
    path = folder / "records.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def data_dir(demo_data_dir, tmp_path):
    sessions = open_database(Settings(data_dir=demo_data_dir))
    report = Importer(sessions, actor=ADMIN, run="first").import_paths([write_records(tmp_path)])
    assert report.records["added"] == 6
    (tmp_path / "answers").mkdir()
    (tmp_path / "answers" / "Publication_sonar_fish_counting.pdf_CQ2.txt").write_text(
        "Answer:::\nAnswer: An NVIDIA GPU.\n", encoding="utf-8")
    report = Importer(sessions, actor=ADMIN, run="answers", questions=[Question("Q1", QUESTIONS[0]), Question("Q2", QUESTIONS[1])]
                      ).import_paths([tmp_path / "answers"])
    assert report.records["added"] == 1
    return demo_data_dir


@pytest.fixture
def app(data_dir, monkeypatch):
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/queue.py").run()
    assert not at.exception, at.exception
    return at


def position(at) -> tuple[int, int]:
    text = next(m.value for m in at.markdown if " of " in m.value and m.value.startswith("**"))
    first, total = re.match(r"\*\*(\d+) of (\d+)\*\*", text).groups()
    return int(first), int(total)


def shown_record(at) -> str:
    caption = next(c.value for c in at.caption if "record " in c.value)
    return re.search(r"record (\S+)", caption.replace("\\", "")).group(1)


def accept(at) -> None:
    """The Accept button of the record shown (verdict buttons are keyed by their record)."""
    next(b for b in at.button if b.key and b.key.startswith("queue_panel_accept_")).click().run()


def annotations(data_dir) -> list[Annotation]:
    with open_database(Settings(data_dir=data_dir))() as session:
        return list(session.scalars(select(Annotation)))


def test_navigation_and_verdict_moves_to_the_next_unreviewed(app, data_dir):
    assert position(app) == (1, 7)
    first = shown_record(app)
    app.button(key="queue_next").click().run()
    assert position(app) == (2, 7) and shown_record(app) != first
    app.button(key="queue_previous").click().run()
    assert position(app) == (1, 7) and shown_record(app) == first
    app.button(key="queue_previous").click().run()
    assert position(app) == (7, 7), "previous from the first wraps to the last"

    app.button(key="queue_next").click().run()  # back to the first
    accept(app)
    assert not app.exception
    stored = annotations(data_dir)
    assert [(a.record_id.split("/", 1)[1], a.verdict, a.annotator) for a in stored] == [(first, "accept", "tester")]
    assert position(app) == (2, 7), "the verdict moves on to the next unreviewed record"
    assert any("✓ Saved: accept on " in caption.value for caption in app.caption), "said on the next record's line"

    app.button(key="queue_previous").click().run()
    app.button(key="queue_next_unreviewed").click().run()
    assert position(app) == (2, 7), "next unreviewed skips the reviewed record"


def test_filters_narrow_the_queue(app):
    app.multiselect(key="queue_runs").select("first").run()
    assert position(app)[1] == 6
    app.multiselect(key="queue_docs").select("sonar_fish_counting").run()
    assert position(app)[1] == 2
    app.multiselect(key="queue_questions").select(QUESTIONS[1]).run()
    assert position(app)[1] == 1
    assert shown_record(app) == "sonar_fish_counting-q2"

    app.multiselect(key="queue_questions").unselect(QUESTIONS[1]).run()
    app.multiselect(key="queue_docs").unselect("sonar_fish_counting").run()
    app.multiselect(key="queue_generators").select("fake-llm").run()
    assert position(app)[1] == 6
    app.text_input(key="queue_search").input("Antarctica").run()
    assert position(app)[1] == 2, "full-text search finds the two answers that mention it"
    app.text_input(key="queue_search").input("no such words anywhere").run()
    assert any("No record matches" in i.value for i in app.info)


def test_status_filter_follows_verdicts(app):
    accept(app)
    app.multiselect(key="queue_statuses").select("accepted").run()
    assert position(app)[1] == 1
    app.multiselect(key="queue_statuses").unselect("accepted").select("unreviewed").run()
    assert position(app)[1] == 6


def test_riskiest_first_and_support_filter(app, data_dir):
    from review.analysis import analyze_pending

    settings = Settings(data_dir=data_dir)
    from ui.app_state import analysis_worker

    assert analysis_worker().wait_idle(120), "the worker analyses the records after the shown one"
    assert analyze_pending(open_database(settings), settings) == 1, \
        "the shown record was analysed when shown, the 5 after it ahead, in the background"
    assert analyze_pending(open_database(settings), settings) == 0
    app.multiselect(key="queue_runs").select("first").run()
    app.selectbox(key="queue_sort").select("riskiest").run()
    assert shown_record(app).startswith("coral_reef_segmentation"), "the made-up claim makes it the riskiest"
    app.selectbox(key="queue_support").select("unsupported").run()
    with open_database(settings)() as session:
        risky = session.scalars(select(Record.external_id).where(Record.unsupported_count > 0)).all()
    assert position(app)[1] == len(risky) >= 2
    assert all(r.startswith("coral_reef_segmentation") for r in risky)


def test_answer_only_record_offers_to_retrieve_passages(app, data_dir):
    app.multiselect(key="queue_runs").select("answers").run()
    assert any("No context recorded" in w.value for w in app.warning)
    app.button(key="queue_retrieve").click().run()
    assert not app.exception
    with open_database(Settings(data_dir=data_dir))() as session:
        record = session.scalar(select(Record).where(Record.run == "answers"))
    assert record.passages and all(p["doc_id"] == "sonar_fish_counting" for p in record.passages)
    assert record.meta["passages_retrieved_later"]["mode"] == "hybrid"
    html = " ".join(element.proto.body for element in app.get("html"))
    assert "RTX A6000" in html, "the retrieved passages are shown"


def test_overview_counts_and_comparison(app, data_dir, tmp_path):
    app.multiselect(key="queue_runs").select("first").run()
    accept(app)
    second = tmp_path / "second"
    second.mkdir()
    Importer(open_database(Settings(data_dir=data_dir)), actor=ADMIN, run="second").import_paths([write_records(second)])
    app.switch_page("app_pages/overview.py").run()
    assert not app.exception
    app.selectbox(key="overview_run").select("first").run()
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Records"] == "6" and metrics["Reviewed"] == "1" and metrics["Accepted"] == "100%"
    tables = [frame.value for frame in app.dataframe]
    per_question = tables[0]
    assert int(per_question["unreviewed"].sum()) == 5 and int(per_question["accepted"].sum()) == 1
    app.selectbox(key="overview_second").select("second").run()
    assert not app.exception
    comparison = app.dataframe[-1].value
    assert sorted(comparison["question"]) == sorted(QUESTIONS)
    assert "acceptance (second)" in comparison.columns


def test_batch_page_runs_and_resumes(data_dir, monkeypatch):
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/batch.py").run()
    at.text_area(key="batch_questions").input("\n".join(QUESTIONS))
    at.multiselect(key="batch_docs").select("sonar_fish_counting").select("camera_trap_mammals")
    at.text_input(key="batch_run").input("page-run")
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert any("4 answered now" in s.value for s in at.success)
    at.button[0].click().run()
    assert any("0 answered now, 4 already done" in s.value for s in at.success), "a second start redoes nothing"
    with open_database(Settings(data_dir=data_dir))() as session:
        records = session.scalars(select(Record).where(Record.run == "page-run")).all()
    assert sorted(r.external_id for r in records) == sorted(
        f"{doc}:Q{n}" for doc in ("sonar_fish_counting", "camera_trap_mammals") for n in (1, 2))
    assert all(r.settings["mode"] == "hybrid" and r.scope == [r.doc_id] for r in records)
