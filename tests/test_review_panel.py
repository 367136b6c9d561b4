"""The review panel's state changes (AppTest on the Queue), undo as a data function, the background worker as the
page uses it, and re-flowed passages whose highlights still cover the stored characters."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from configuration.settings import Settings
from review.annotations import record_verdict, undo_verdict, withdrawn_verdicts
from review.db import open_database
from review.errors import ConflictError, NotFoundError
from review.models import Annotation, AnnotationVersion, Record, WithdrawnVerdict
from tests.conftest import ADMIN, run_app
from tests.test_app_queue import data_dir, position, shown_record  # noqa: F401  (fixture and helpers)
from ui.highlight import answer_html, closest_spans, passage_html, reflow_map

pytestmark = pytest.mark.slow


@pytest.fixture
def app(data_dir, monkeypatch):  # noqa: F811
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/queue.py").run()
    at.multiselect(key="queue_runs").select("first").run()  # the records with passages
    assert not at.exception, at.exception
    return at


def stored(data_dir) -> tuple[list[Annotation], list[AnnotationVersion]]:  # noqa: F811
    with open_database(Settings(data_dir=data_dir))() as session:
        return list(session.scalars(select(Annotation))), list(session.scalars(select(AnnotationVersion)))


def button(at, prefix: str):
    return next(b for b in at.button if b.key and b.key.startswith(prefix))


def record_id_shown(at) -> str:
    return button(at, "queue_panel_accept_").key.removeprefix("queue_panel_accept_")


# -- undo, the data function ------------------------------------------------------------------------------------


def test_undo_restores_the_earlier_version_and_keeps_both(data_dir):  # noqa: F811
    sessions = open_database(Settings(data_dir=data_dir))
    with sessions() as session:
        record_id = session.scalars(select(Record.id).order_by(Record.id)).first()
    tester = ADMIN.__class__("tester", "admin")
    with sessions() as session:
        record_verdict(session, actor=tester, record_id=record_id, annotator="tester", verdict="reject",
                       reason="wrong", comment="too short")
    with sessions() as session, pytest.raises(ConflictError):
        undo_verdict(session, actor=tester, record_id=record_id, annotator="tester", expected_version=2)
    with sessions() as session:  # a first verdict: withdrawn, kept whole, the record unreviewed again
        withdrawn = undo_verdict(session, actor=tester, record_id=record_id, annotator="tester", expected_version=1)
        assert isinstance(withdrawn, WithdrawnVerdict)
        assert (withdrawn.verdict, withdrawn.reason, withdrawn.comment, withdrawn.version) == (
            "reject", "wrong", "too short", 1)
    assert stored(data_dir) == ([], [])
    with sessions() as session:
        assert [(w.annotator, w.verdict, w.reason, w.withdrawn_by) for w in withdrawn_verdicts(session, record_id)] == [
            ("tester", "reject", "wrong", "tester")]
        assert withdrawn_verdicts(session, record_id, ["someone else"]) == []
    with sessions() as session, pytest.raises(NotFoundError):
        undo_verdict(session, actor=tester, record_id=record_id, annotator="tester")  # nothing left to undo
    with sessions() as session:
        record_verdict(session, actor=tester, record_id=record_id, annotator="tester", verdict="accept", comment="fine",
                       expected_version=None)
    with sessions() as session:
        record_verdict(session, actor=tester, record_id=record_id, annotator="tester", verdict="reject",
                       reason="wrong", expected_version=1)
    with sessions() as session, pytest.raises(ConflictError):
        undo_verdict(session, actor=tester, record_id=record_id, annotator="tester", expected_version=1)
    with sessions() as session:
        restored = undo_verdict(session, actor=tester, record_id=record_id, annotator="tester", expected_version=2)
        assert (restored.verdict, restored.reason, restored.comment, restored.version) == ("accept", None, "fine", 3)
    annotations, history = stored(data_dir)
    assert [(a.verdict, a.version) for a in annotations] == [("accept", 3)]
    assert [(h.version, h.verdict, h.reason) for h in history] == [(1, "accept", None), (2, "reject", "wrong")]


# -- the panel in the Queue -------------------------------------------------------------------------------------


def test_shortcuts_are_on_their_controls(app):
    shortcuts = {b.key: b.proto.shortcut for b in app.button if b.key}
    record_id = record_id_shown(app)
    assert shortcuts[f"queue_panel_accept_{record_id}"] == "a"
    assert shortcuts[f"queue_panel_correct_{record_id}"] == "e"
    assert shortcuts[f"queue_panel_reject_{record_id}"] == "x"
    assert shortcuts["queue_panel_undo"] == "z" and shortcuts["queue_panel_find_evidence"] == "f"
    assert (shortcuts["queue_next"], shortcuts["queue_previous"], shortcuts["queue_next_unreviewed"]) == (
        "right", "left", "n")
    assert shortcuts[f"queue_panel_mark_{record_id}_1_relevant"] == "1"
    assert shortcuts[f"queue_panel_mark_{record_id}_3_not_relevant"] == "shift+3"
    app.button(key="queue_panel_shortcuts").click().run()  # the overlay lists every shortcut
    assert not app.exception
    table = " ".join(m.value for m in app.markdown).replace("\\", "")
    assert "Ctrl+Enter" in table and "Alt+1" in table and "Undo" in table


def test_reject_with_one_more_key_and_marks_toggle(app, data_dir):  # noqa: F811
    record_id = record_id_shown(app)
    app.button(key=f"queue_panel_mark_{record_id}_1_relevant").click().run()
    app.button(key=f"queue_panel_mark_{record_id}_2_not_relevant").click().run()
    app.button(key=f"queue_panel_mark_{record_id}_2_not_relevant").click().run()  # again: cleared
    app.button(key=f"queue_panel_mark_{record_id}_3_not_relevant").click().run()
    app.button(key=f"queue_panel_reject_{record_id}").click().run()
    app.button(key=f"queue_panel_reason_wrong_{record_id}").click().run()
    assert not app.exception
    annotations, _ = stored(data_dir)
    assert [(a.record_id, a.verdict, a.reason, a.passage_marks) for a in annotations] == [
        (record_id, "reject", "wrong", {"0": "relevant", "2": "not_relevant"})]
    assert record_id_shown(app) != record_id, "the panel moved on to the next unreviewed record"


def test_undo_goes_back_and_restores(app, data_dir):  # noqa: F811
    first = record_id_shown(app)
    button(app, "queue_panel_accept_").click().run()
    assert record_id_shown(app) != first
    app.button(key="queue_panel_undo").click().run()  # a first verdict: withdrawn, the record unreviewed again
    assert record_id_shown(app) == first and stored(data_dir) == ([], [])
    assert any("is withdrawn and the record is unreviewed again" in s.value for s in app.success)
    assert next(c.value for c in app.caption if "record " in c.value).endswith("unreviewed"), "its status again"
    button(app, "queue_panel_accept_").click().run()  # judged again, then changed
    assert record_id_shown(app) != first
    app.button(key="queue_previous").click().run()
    assert record_id_shown(app) == first
    app.button(key=f"queue_panel_reject_{first}").click().run()
    app.button(key=f"queue_panel_reason_unsupported_{first}").click().run()
    app.button(key="queue_panel_undo").click().run()
    assert record_id_shown(app) == first and any("accept again" in s.value for s in app.success)
    annotations, history = stored(data_dir)
    assert [(a.record_id, a.verdict, a.version) for a in annotations] == [(first, "accept", 3)]
    assert [(h.version, h.verdict) for h in history] == [(1, "accept"), (2, "reject")]
    assert any("Your current verdict: accept" in c.value for c in app.caption)


def test_correction_saved_from_the_editor(app, data_dir):  # noqa: F811
    record_id = record_id_shown(app)
    app.button(key=f"queue_panel_correct_{record_id}").click().run()
    app.text_area(key=f"queue_panel_corrected_{record_id}").input("A corrected answer, typed in the editor.")
    app.button(key="queue_panel_save_correction").click().run()
    annotations, _ = stored(data_dir)
    assert [(a.verdict, a.corrected_answer) for a in annotations] == [
        ("correct", "A corrected answer, typed in the editor.")]


def test_raw_text_toggle_and_grouping_caption(app):
    html = " ".join(element.proto.body for element in app.get("html"))
    assert "loupe-passage" in html
    app.button(key="queue_panel_toggle_raw").click().run()
    assert app.button(key="queue_panel_toggle_raw").label == "Re-flowed"


# -- the background worker, as the page uses it ----------------------------------------------------------------


def test_a_record_analysed_ahead_is_shown_without_recomputing(app, data_dir, monkeypatch):  # noqa: F811
    from loupe import support
    from ui.app_state import analysis_worker

    assert analysis_worker().wait_idle(120)
    calls = []
    original = support.analyze_support
    monkeypatch.setattr(support, "analyze_support", lambda *a, **k: calls.append(a) or original(*a, **k))
    import review.analysis

    monkeypatch.setattr(review.analysis, "analyze_support", support.analyze_support)
    app.button(key="queue_next").click().run()
    assert not app.exception
    assert calls == [], "the next record was analysed ahead: the page computes nothing"
    assert "loupe-support-pending" not in " ".join(element.proto.body for element in app.get("html"))


class CrashedWorker:
    """A worker whose thread died: the page says so and analyses on demand."""

    def __init__(self):
        self.asked: list[list[str]] = []

    def ahead(self, record_ids):
        self.asked.append(list(record_ids))

    def status(self):
        return type("Status", (), {"error": "background analysis stopped on record x: RuntimeError: boom"})()

    def over_limit(self, record_id):
        return None


def test_a_crashed_worker_is_reported_and_the_panel_computes_on_demand(data_dir, monkeypatch):  # noqa: F811
    import ui.app_state

    worker = CrashedWorker()
    monkeypatch.setattr(ui.app_state, "analysis_worker", lambda: worker)
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/queue.py").run()
    assert not at.exception, at.exception
    assert any("background analysis stopped" in w.value and "RuntimeError" in w.value for w in at.warning)
    record_id = record_id_shown(at)
    with open_database(Settings(data_dir=data_dir))() as session:
        assert session.get(Record, record_id).support is not None, "analysed on demand"
    assert worker.asked and record_id not in worker.asked[-1], "the page does not wait on the crashed worker"


# -- re-flowed passages --------------------------------------------------------------------------------------------


def test_reflow_joins_pdf_lines_and_undoes_hyphenation_keeping_offsets():
    text = "Deep learn-\ning models were\ntrained on two GPUs.\nResults\n\nA new para-\ngraph  \n  ends here."
    shown = reflow_map(text)
    assert len(shown) == len(text)
    assert "".join(shown) == ("Deep learning models were trained on two GPUs.\nResults\n\nA new paragraph ends here.")
    start = text.index("learn-")
    end = text.index("GPUs.") + len("GPUs.")
    html = passage_html(text, "", [(start, end, [1])], reflow=True)
    highlighted = re.search(r'<span class="loupe-support"[^>]*>(.*?)<sup', html).group(1)
    assert highlighted == "learning models were trained on two GPUs.", "the highlight covers the same characters"
    raw = passage_html(text, "", [(start, end, [1])], reflow=False)
    assert re.search(r'<span class="loupe-support"[^>]*>(.*?)<sup', raw, re.S).group(1) == text[start:end]


def test_an_unsupported_sentence_shows_the_passage_that_came_closest():
    passages = ["Seeds were fixed.", "The images were annotated by two experts."]
    closest = {"passage": 1, "start": 4, "end": 10, "text": "images", "score": 0.2817, "semantic": 0.37,
               "lexical": 0.14}
    support = {"sentences": [{"index": 0, "text": "Volunteers labelled <b>it</b>.", "start": 0, "end": 29,
                              "supported": False, "kind": "claim", "score": 0.2817, "evidence": [],
                              "closest": closest}]}
    answer = answer_html("Volunteers labelled <b>it</b>.", support)
    assert "closest: passage 2, score 0.28" in answer and "<b>" not in answer
    assert closest_spans(support, 0) == [] and closest_spans(support, 1) == [(4, 10, [1])]
    html = passage_html(passages[1], "", [], closest=closest_spans(support, 1))
    assert re.search(r'<span class="loupe-closest" data-closest="1"[^>]*>images</span>', html)


def test_a_withdrawn_verdict_is_listed_on_the_records_page(app, data_dir):  # noqa: F811
    app.switch_page("app_pages/records.py").run()
    record_id = app.selectbox(key="records_selected").value
    app.button(key=f"records_panel_accept_{record_id}").click().run()
    assert app.selectbox(key="records_selected").value == record_id, "a verdict keeps its record shown"
    app.button(key="records_panel_undo").click().run()
    assert not app.exception
    assert stored(data_dir) == ([], [])
    lines = [c.value.replace("\\", "") for c in app.caption if "withdrawn with Undo" in c.value]
    assert len(lines) == 1 and "**tester** · accept · version 1" in lines[0]


def test_the_records_page_analyses_a_record_never_analysed(data_dir, monkeypatch):  # noqa: F811
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/records.py").run()
    sessions = open_database(Settings(data_dir=data_dir))
    with sessions() as session:
        record = next(r for r in session.scalars(select(Record).where(Record.run == "first").order_by(Record.id))
                      if r.support is None and r.passages)
    at.selectbox(key="records_selected").select(record.id).run()
    assert not at.exception, at.exception
    with sessions() as session:
        support = session.get(Record, record.id).support
    assert support is not None and support["sentences"], "the support map is computed and stored"
    summary = [alert.value for alert in (*at.success, *at.error) if "support" in alert.value]
    assert summary, "the page says what the analysis found"
    assert 'class="loupe-support' in "".join(h.proto.body for h in at.get("html")), "the answer is drawn with its marks"
