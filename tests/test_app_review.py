"""Reviewing in the app (AppTest): ask, then accept / correct / reject; rows land in the database with history."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from configuration.settings import Settings
from review.db import open_database
from review.models import Annotation, AnnotationVersion, Record
from tests.conftest import run_app

pytestmark = pytest.mark.slow


@pytest.fixture
def app(demo_data_dir, monkeypatch):
    at = run_app(monkeypatch, demo_data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.data_dir = demo_data_dir
    return at


def ask(at, question: str, doc: str) -> Record:
    at.text_input(key="ask_question").input(question)
    at.multiselect(key="ask_scope").select(doc)
    at.button[0].click().run()
    assert not at.exception, at.exception
    with open_database(Settings(data_dir=at.data_dir))() as session:
        records = session.scalars(select(Record)).all()
    assert records, "asking stores a record before it is shown"
    return records[-1]


def rows(at):
    with open_database(Settings(data_dir=at.data_dir))() as session:
        return session.scalars(select(Annotation)).all(), session.scalars(select(AnnotationVersion)).all()


def test_ask_stores_a_snapshot_with_support(app):
    record = ask(app, "Which GPU was used for training?", "sonar_fish_counting")
    assert record.question == "Which GPU was used for training?"
    assert record.scope == ["sonar_fish_counting"] and record.passages
    assert "RTX A6000" in record.answer
    assert record.prompt and "Which GPU was used for training?" in record.prompt
    assert record.generator_kind == "extractive" and record.settings["mode"] == "hybrid"
    assert record.support["sentences"] and record.support["supported_count"] >= 1
    html = " ".join(element.proto.body for element in app.get("html"))
    assert "loupe-support" in html and "loupe-term" in html


def test_accept(app):
    record = ask(app, "Which deep learning framework was used?", "land_cover_transformer")
    app.button(key=f"ask_panel_accept_{record.id}").click().run()
    assert not app.exception
    annotations, _ = rows(app)
    assert [(a.record_id, a.annotator, a.verdict) for a in annotations] == [(record.id, "tester", "accept")]
    assert annotations[0].seconds is not None and annotations[0].seconds >= 0
    assert any("Saved: accept" in s.value for s in app.success)
    assert app.text_input(key="ask_question").value == "", "ready for the next question"


def test_correct_then_reject_keeps_history(app):
    record = ask(app, "Which optimizer was used?", "coral_reef_segmentation")
    app.button(key=f"ask_panel_correct_{record.id}").click().run()
    app.text_area(key=f"ask_panel_corrected_{record.id}").input("The optimizer was AdamW (corrected).")
    app.button(key="ask_panel_save_correction").click().run()
    assert not app.exception
    annotations, history = rows(app)
    assert annotations[0].verdict == "correct"
    assert annotations[0].corrected_answer == "The optimizer was AdamW (corrected)."
    html = " ".join(element.proto.body for element in app.get("html"))
    assert "<ins" in html, "the correction is shown as a diff"

    # change the verdict on the Records page: the correction stays in the history
    app.switch_page("app_pages/records.py").run()
    assert not app.exception
    app.button(key=f"records_panel_reject_{record.id}").click().run()
    app.selectbox(key="records_panel_reason").select("should_abstain").run()
    app.button(key="records_panel_save_rejection").click().run()
    assert not app.exception
    annotations, history = rows(app)
    assert [(a.verdict, a.reason, a.version) for a in annotations] == [("reject", "should_abstain", 2)]
    assert [(h.version, h.verdict, h.corrected_answer) for h in history] == [
        (1, "correct", "The optimizer was AdamW (corrected).")
    ]


def test_rejection_without_reason_is_refused(app):
    record = ask(app, "Which hardware was used?", "bird_song_detection")
    app.button(key=f"ask_panel_reject_{record.id}").click().run()
    app.button(key="ask_panel_save_rejection").click().run()
    assert not app.exception
    assert any("needs a reason" in e.value for e in app.error)
    assert rows(app)[0] == []


def test_passage_marks_and_comment_are_stored(app):
    record = ask(app, "Which metrics were used to evaluate the model?", "herbarium_phenology")
    app.button(key=f"ask_panel_mark_{record.id}_1_relevant").click().run()
    app.text_area(key="ask_panel_comment").input("metrics listed in passage 1")
    app.button(key=f"ask_panel_accept_{record.id}").click().run()
    annotations, _ = rows(app)
    assert annotations[0].passage_marks == {"0": "relevant"} and annotations[0].comment == "metrics listed in passage 1"
    assert annotations[0].record_id == record.id


def test_missing_evidence_is_attached_and_stored(app):
    record = ask(app, "Which GPU was used for training?", "sonar_fish_counting")
    app.button(key="ask_panel_find_evidence").click().run()  # F: Find missing evidence
    app.text_input(key="ask_panel_evidence_query").input("Kalman tracker").run()
    attach = [b for b in app.button if b.key and b.key.startswith("ask_panel_attach_")]
    assert attach, "BM25 search within the record's document offers passages to attach"
    attach[0].click().run()
    app.button(key=f"ask_panel_accept_{record.id}").click().run()
    assert not app.exception
    annotations, _ = rows(app)
    evidence = annotations[0].evidence
    assert len(evidence) == 1 and evidence[0]["doc_id"] == "sonar_fish_counting"
    assert "Kalman" in evidence[0]["text"] and annotations[0].record_id == record.id


def test_a_stale_tab_gets_a_conflict_not_an_overwrite(app):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    record = ask(app, "Which optimizer was used?", "coral_reef_segmentation")
    app.switch_page("app_pages/records.py").run()
    other_tab = AppTest.from_file(str(REPO / "app.py"), default_timeout=180)
    other_tab.switch_page("app_pages/records.py").run()  # the same person opens the record in a second tab
    assert not other_tab.exception, other_tab.exception

    app.button(key=f"records_panel_accept_{record.id}").click().run()
    other_tab.button(key=f"records_panel_reject_{record.id}").click().run()
    other_tab.selectbox(key="records_panel_reason").select("wrong").run()
    other_tab.button(key="records_panel_save_rejection").click().run()
    assert any("already saved this record's verdict" in error.value for error in other_tab.error)
    annotations, history = rows(app)
    assert [(a.record_id, a.verdict, a.version) for a in annotations] == [(record.id, "accept", 1)] and history == []

    other_tab.button(key="records_panel_save_rejection").click().run()  # saving again, knowingly, after the warning
    annotations, history = rows(app)
    assert [(a.verdict, a.version) for a in annotations] == [("reject", 2)]
    assert [(h.version, h.verdict) for h in history] == [(1, "accept")]
