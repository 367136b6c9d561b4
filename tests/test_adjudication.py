"""Adjudication on SQLite and PostgreSQL: finding disagreements, final verdicts with history, conflicts, export."""

from __future__ import annotations

import io
import json
import threading

import pandas as pd
import pytest
from sqlalchemy import func, select

from configuration.settings import Settings
from review.access import Principal
from review.adjudication import adjudicate, disagreements, open_case
from review.annotations import record_verdict
from review.errors import ConflictError, InvalidVerdictError, PermissionDeniedError
from review.export import export_bytes
from review.models import Adjudication, AdjudicationVersion, Record
from review.records import record_from_answer
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)
from tests.test_review_db import make_answer
from ui.text_safety import escape_markdown

ADMIN = Principal("admin", "admin")
RITA = Principal("rita", "reviewer")
ANA = Principal("ana", "annotator")
ANSWER = make_answer().answer  # "Seeds were fixed to 42. [1]"


def add_record(session, tmp_path, record_id: str, question_id: str, run: str = "r1") -> str:
    record_from_answer(session, answer=make_answer(), settings=Settings(data_dir=tmp_path), run=run,
                       record_id=record_id, question_id=question_id)
    return record_id


def judge(session, record_id: str, annotator: str, verdict: str, **fields) -> None:
    record_verdict(session, actor=ADMIN, record_id=record_id, annotator=annotator, verdict=verdict, **fields)


@pytest.fixture
def records(sessions, tmp_path):  # noqa: F811
    """Two runs of records judged by ana and ben: three disagreements among agreements and single verdicts."""
    with sessions() as session:
        add_record(session, tmp_path, "r1/differ", "CQ10")
        judge(session, "r1/differ", "ana", "accept")
        judge(session, "r1/differ", "ben", "reject", reason="wrong")
        add_record(session, tmp_path, "r1/corrections", "CQ2")
        judge(session, "r1/corrections", "ana", "correct", corrected_answer="Seeds were fixed to 7.")
        judge(session, "r1/corrections", "ben", "correct", corrected_answer="Seeds were fixed to 42 in every run.")
        add_record(session, tmp_path, "r1/spacing", "CQ3")  # the same correction, spaced differently: agreement
        judge(session, "r1/spacing", "ana", "correct", corrected_answer="Seeds were fixed to 7.")
        judge(session, "r1/spacing", "ben", "correct", corrected_answer="  Seeds were\nfixed  to 7.")
        add_record(session, tmp_path, "r1/agree", "CQ4")
        judge(session, "r1/agree", "ana", "reject", reason="wrong")
        judge(session, "r1/agree", "ben", "reject", reason="unsupported")  # same verdict, other reason: agreement
        add_record(session, tmp_path, "r1/single", "CQ5")
        judge(session, "r1/single", "ana", "reject", reason="wrong")
        add_record(session, tmp_path, "r1/unjudged", "CQ6")
        add_record(session, tmp_path, "r2/differ", "CQ1", run="r2")
        judge(session, "r2/differ", "ana", "accept")
        judge(session, "r2/differ", "ben", "correct", corrected_answer="Seeds were fixed.")
    return sessions


def test_disagreements_by_verdict_or_correction_in_question_order(records):
    with records() as session:
        assert disagreements(session, actor=RITA) == ["r2/differ", "r1/corrections", "r1/differ"]  # CQ1, CQ2, CQ10
        assert disagreements(session, actor=RITA, run="r1") == ["r1/corrections", "r1/differ"]
        assert disagreements(session, actor=RITA, run="r2", status="all") == ["r2/differ"]
        assert disagreements(session, actor=RITA, run="nope") == []
        with pytest.raises(ValueError, match="status must be one of"):
            disagreements(session, actor=RITA, status="done")


def test_status_filter_and_adjudicated_records_stay_listed(records):
    with records() as session:
        adjudicate(session, actor=RITA, record_id="r1/differ", verdict="accept", expected_version=None)
        assert disagreements(session, actor=RITA, run="r1") == ["r1/corrections"]
        assert disagreements(session, actor=RITA, run="r1", status="adjudicated") == ["r1/differ"]
        assert disagreements(session, actor=RITA, run="r1", status="all") == ["r1/corrections", "r1/differ"]
        judge(session, "r1/differ", "ben", "accept")  # the annotators agree now: the adjudication can be revisited
        assert disagreements(session, actor=RITA, run="r1", status="adjudicated") == ["r1/differ"]
        assert disagreements(session, actor=RITA, run="r1", status="pending") == ["r1/corrections"]
        judge(session, "r1/corrections", "ben", "correct", corrected_answer="Seeds were fixed\tto 7.")
        assert disagreements(session, actor=RITA, run="r1", status="pending") == []


def test_adjudication_sets_the_final_verdict_and_the_export(records):
    with records() as session:
        saved = adjudicate(session, actor=RITA, record_id="r1/corrections", verdict="correct",
                           final_answer="Seeds were fixed to 7.", comment=" ana is right ", expected_version=None)
        assert (saved.version, saved.adjudicator, saved.comment) == (1, "rita", "ana is right")
        adjudicate(session, actor=RITA, record_id="r1/differ", verdict="accept", final_answer="ignored",
                   expected_version=None)
        adjudicate(session, actor=RITA, record_id="r2/differ", verdict="reject", final_answer="  ",
                   expected_version=None)
    with records() as session:
        finals = {record.id: record.final_verdict for record in session.scalars(select(Record))}
        assert finals["r1/corrections"] == "correct" and finals["r1/differ"] == "accept"
        assert finals["r2/differ"] == "reject" and finals["r1/agree"] is None
        data, _count = export_bytes(session, "jsonl", actor=ADMIN)
        rows = {row["record_id"]: row for row in map(json.loads, data.decode().splitlines())}
        csv = pd.read_csv(io.BytesIO(export_bytes(session, "csv", actor=ADMIN)[0]))
    finals = {rid: (row["final_verdict"], row["final_answer"], row["final_source"]) for rid, row in rows.items()}
    assert finals["r1/corrections"] == ("correct", "Seeds were fixed to 7.", "adjudication")
    assert finals["r1/differ"] == ("accept", ANSWER, "adjudication")  # accepting keeps the answer as it is
    assert finals["r2/differ"] == ("reject", None, "adjudication")
    assert finals["r1/agree"] == (None, None, None)
    assert [a["annotator"] for a in rows["r1/corrections"]["annotations"]] == ["ana", "ben"]  # existing keys kept
    corrected = csv[csv["record_id"] == "r1/corrections"]
    assert list(corrected["final_answer"]) == ["Seeds were fixed to 7."] * 2
    assert list(corrected["final_source"]) == ["adjudication"] * 2
    assert csv[csv["record_id"] == "r1/agree"]["final_source"].isna().all()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"verdict": "maybe"}, "verdict must be one of accept, correct, reject"),
        ({"verdict": None}, "verdict must be one of"),
        ({"verdict": "correct"}, "needs the final answer"),
        ({"verdict": "correct", "final_answer": " Seeds were  fixed to\n42. [1]"}, "same as the answer"),
    ],
)
def test_invalid_adjudications_store_nothing(records, fields, message):
    with records() as session:
        with pytest.raises(InvalidVerdictError, match=message):
            adjudicate(session, actor=RITA, record_id="r1/differ", expected_version=None, **fields)
    with records() as session:
        assert session.scalar(select(func.count()).select_from(Adjudication)) == 0
        assert session.get(Record, "r1/differ").final_verdict is None


def test_changing_an_adjudication_keeps_its_history(records):
    with records() as session:
        adjudicate(session, actor=RITA, record_id="r1/differ", verdict="accept", expected_version=None)
        adjudicate(session, actor=ADMIN, record_id="r1/differ", verdict="correct", final_answer="Seeds: 42.",
                   comment="both partly right", expected_version=1)
        third = adjudicate(session, actor=RITA, record_id="r1/differ", verdict="reject", expected_version=2)
        assert third.version == 3
    with records() as session:
        case = open_case(session, actor=RITA, record_id="r1/differ")
        assert session.get(Record, "r1/differ").final_verdict == "reject"
    current = case.adjudication
    assert (current.verdict, current.adjudicator, current.final_answer, current.version) == ("reject", "rita", None, 3)
    assert [(v.version, v.verdict, v.adjudicator, v.final_answer, v.comment) for v in current.history] == [
        (1, "accept", "rita", ANSWER, None), (2, "correct", "admin", "Seeds: 42.", "both partly right")]
    assert all(v.recorded_at is not None for v in current.history)
    assert current.history[0].recorded_at <= current.history[1].recorded_at
    assert [(a.annotator, a.verdict) for a in case.annotations] == [("ana", "accept"), ("ben", "reject")]
    assert case.record.question == "How was randomness handled?"


def test_stale_version_is_a_conflict_naming_who_and_writes_nothing(records):
    with records() as session:
        adjudicate(session, actor=RITA, record_id="r1/differ", verdict="accept", expected_version=None)
        adjudicate(session, actor=ADMIN, record_id="r1/differ", verdict="reject", expected_version=1)
        with pytest.raises(ConflictError, match=r"admin saved a newer adjudication .*\(version 2\).*\(version 1\)"):
            adjudicate(session, actor=RITA, record_id="r1/differ", verdict="accept", expected_version=1)
        with pytest.raises(ConflictError, match="admin already saved this record's adjudication"):  # opened before any adjudication
            adjudicate(session, actor=RITA, record_id="r1/differ", verdict="accept", expected_version=None)
        with pytest.raises(ConflictError, match="deleted since you opened it"):
            adjudicate(session, actor=RITA, record_id="r1/corrections", verdict="accept", expected_version=1)
    with records() as session:
        assert [(a.record_id, a.verdict, a.adjudicator, a.version) for a in session.scalars(select(Adjudication))] == [
            ("r1/differ", "reject", "admin", 2)]
        assert session.scalar(select(func.count()).select_from(AdjudicationVersion)) == 1
        assert session.get(Record, "r1/differ").final_verdict == "reject"
        assert session.get(Record, "r1/corrections").final_verdict is None


def test_a_save_racing_past_the_version_check_is_a_conflict(records):
    """A session still holding version 1 passes the check; the versioned UPDATE then finds version 2."""
    with records() as stale:
        # Holding the object keeps version 1 in this session's identity map (it is weakly referenced there).
        held = adjudicate(stale, actor=RITA, record_id="r1/differ", verdict="accept", expected_version=None)  # noqa: F841
        with records() as other:
            adjudicate(other, actor=ADMIN, record_id="r1/differ", verdict="reject", expected_version=1)
        with pytest.raises(ConflictError, match="at the same moment"):
            adjudicate(stale, actor=RITA, record_id="r1/differ", verdict="correct", final_answer="Seeds: 7.",
                       expected_version=1)
    with records() as session:
        assert session.scalar(select(Adjudication.verdict)) == "reject"
        assert [(v.version, v.verdict) for v in session.scalars(select(AdjudicationVersion))] == [(1, "accept")]
        assert session.get(Record, "r1/differ").final_verdict == "reject"


def race(sessions, record_id: str, expected_version: int | None) -> tuple[list[str], list[Exception]]:
    """rita and admin adjudicate the same record at once, both having read `expected_version`."""
    barrier, winners, errors = threading.Barrier(2), [], []

    def save(actor: Principal, verdict: str) -> None:
        with sessions() as session:
            barrier.wait()
            try:
                adjudicate(session, actor=actor, record_id=record_id, verdict=verdict, final_answer="Seeds: 1.",
                           expected_version=expected_version)
                winners.append(verdict)
            except ConflictError as error:
                errors.append(error)

    threads = [threading.Thread(target=save, args=args) for args in ((RITA, "correct"), (ADMIN, "reject"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return winners, errors


def test_two_reviewers_at_once_one_wins_nothing_lost(records):
    winners, errors = race(records, "r1/differ", None)  # both saw no adjudication
    assert len(winners) == 1 and len(errors) == 1, (winners, errors)
    with records() as session:
        assert session.scalar(select(func.count()).select_from(Adjudication)) == 1
        assert session.scalar(select(Adjudication.verdict)) == winners[0]
        assert session.get(Record, "r1/differ").final_verdict == winners[0]
        first = winners[0]

    winners, errors = race(records, "r1/differ", 1)  # both saw version 1
    assert len(winners) == 1 and len(errors) == 1, (winners, errors)
    with records() as session:
        current = session.scalar(select(Adjudication))
        assert (current.version, current.verdict) == (2, winners[0])
        assert [(v.version, v.verdict) for v in session.scalars(select(AdjudicationVersion))] == [(1, first)]
        assert session.get(Record, "r1/differ").final_verdict == winners[0]


def test_annotators_may_not_adjudicate_or_see_disagreements(records):
    with records() as session:
        with pytest.raises(PermissionDeniedError, match="ana is an annotator and may not adjudicate"):
            adjudicate(session, actor=ANA, record_id="r1/differ", verdict="accept", expected_version=None)
        with pytest.raises(PermissionDeniedError, match="reviewer role"):
            disagreements(session, actor=ANA)
        with pytest.raises(PermissionDeniedError, match="reviewer role"):
            open_case(session, actor=ANA, record_id="r1/differ")
    with records() as session:
        assert session.scalar(select(func.count()).select_from(Adjudication)) == 0
        assert session.get(Record, "r1/differ").final_verdict is None


@pytest.mark.slow
def test_adjudicate_page(monkeypatch, tmp_path):
    from review.db import open_database
    from tests.conftest import run_app

    data_dir = tmp_path / "data"
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="rita")
    sessions = open_database(Settings(data_dir=data_dir))
    with sessions() as session:
        add_record(session, tmp_path, "r1/corrections", "CQ1")
        judge(session, "r1/corrections", "ana", "correct", corrected_answer="Seeds were fixed to 7. [1]")
        judge(session, "r1/corrections", "ben <b>x</b>", "correct", corrected_answer="Seeds were fixed to 9. [1]")
        add_record(session, tmp_path, "r1/differ", "CQ2")
        judge(session, "r1/differ", "ana", "accept")
        judge(session, "r1/differ", "ben", "reject", reason="unsupported")

    at.switch_page("app_pages/adjudicate.py").run()
    assert not at.exception, at.exception
    markdown = [m.value for m in at.markdown]
    assert "**1 of 2** · pending" in markdown
    assert "**ana** · correct" in markdown and r"**ben \<b\>x\</b\>** · correct" in markdown  # names escaped
    html = " ".join(element.proto.body for element in at.get("html"))
    assert '<ins style="background:#d3f9d8">7.</ins>' in html  # ana's correction against the answer
    assert "<del style=\"background:#ffe3e3\">7.</del> <ins style=\"background:#d3f9d8\">9.</ins>" in html  # ana → ben
    assert "ben &lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert at.text_area(key="adjudicate_answer_r1/corrections").value == "Seeds were fixed to 7. [1]"

    at.radio(key="adjudicate_verdict_r1/corrections").set_value("correct")
    at.text_area(key="adjudicate_answer_r1/corrections").input("Seeds were fixed to 7 and 9. [1]")
    at.text_area(key="adjudicate_comment_r1/corrections").input("both runs")
    at.button(key="adjudicate_save").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    with sessions() as session:
        saved = session.scalar(select(Adjudication))
        assert (saved.record_id, saved.adjudicator, saved.verdict, saved.final_answer, saved.comment, saved.version) == (
            "r1/corrections", "rita", "correct", "Seeds were fixed to 7 and 9. [1]", "both runs", 1)
        assert session.get(Record, "r1/corrections").final_verdict == "correct"
    assert any("Saved: correct" in s.value for s in at.success)
    markdown = [m.value for m in at.markdown]
    assert "**1 of 1** · pending" in markdown and "**ana** · accept" in markdown  # on to the next pending record


def page_alone(monkeypatch, data_dir, principal: Principal):
    """The Adjudicate page run by itself as `principal` (app.py would show it to reviewers and admins only)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import REPO

    monkeypatch.setenv("LOUPE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app_pages" / "adjudicate.py"), default_timeout=60)
    at.session_state["principal"] = principal
    return at.run()


@pytest.mark.slow
def test_adjudicate_page_refuses_annotators_and_reports_conflicts(monkeypatch, tmp_path):
    from review.db import open_database

    data_dir = tmp_path / "data"
    sessions = open_database(Settings(data_dir=data_dir))
    with sessions() as session:
        add_record(session, tmp_path, "r1/differ", "CQ1")
        judge(session, "r1/differ", "ana", "accept")
        judge(session, "r1/differ", "ben", "reject", reason="wrong")

    at = page_alone(monkeypatch, data_dir, ANA)
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["ana is an annotator and may not adjudicate: that needs the reviewer role"]
    assert not at.radio and "ben" not in " ".join(m.value for m in at.markdown)

    at = page_alone(monkeypatch, data_dir, RITA)
    assert "**ben** · reject" in [m.value for m in at.markdown]
    with sessions() as session:  # someone else settles the record while rita looks at it
        adjudicate(session, actor=ADMIN, record_id="r1/differ", verdict="reject", expected_version=None)
    at.radio(key="adjudicate_verdict_r1/differ").set_value("accept")
    at.button(key="adjudicate_save").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        escape_markdown("Record r1/differ was not saved: admin already saved this record's adjudication (in another "
                        "tab?) since you opened it; reload to see it before changing it")]
    assert any("left this list" in c.value for c in at.caption)
    with sessions() as session:
        assert [(a.verdict, a.adjudicator, a.version) for a in session.scalars(select(Adjudication))] == [
            ("reject", "admin", 1)]
        assert session.get(Record, "r1/differ").final_verdict == "reject"

    at.radio(key="adjudicate_status").set_value("adjudicated").run()
    assert any("Adjudicated by admin: reject (version 1" in i.value for i in at.info)
    at.radio(key="adjudicate_verdict_r1/differ").set_value("accept")  # having seen admin's decision, rita changes it
    at.button(key="adjudicate_save").click().run()
    assert not at.error, [e.value for e in at.error]
    with sessions() as session:
        assert [(a.verdict, a.adjudicator, a.version) for a in session.scalars(select(Adjudication))] == [
            ("accept", "rita", 2)]
