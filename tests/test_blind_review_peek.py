"""Blind review cannot be peeked at: a throwaway verdict, a look at a colleague's, Undo, then an agreeing verdict
counts the throwaway in agreement, and the record is flagged in the report, on Progress and on Adjudicate. On SQLite
and PostgreSQL (data functions), and in AppTest (the pages)."""

from __future__ import annotations

import pytest

from configuration.settings import Settings
from review.access import Principal
from review.adjudication import disagreements, open_case
from review.agreement import run_report
from review.annotations import record_verdict, undo_verdict
from review.db import open_database
from review.models import Assignment
from review.records import open_record, record_from_answer
from tests.conftest import ADMIN, run_app
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)
from tests.test_review_db import make_answer

ANA, BEN = Principal("ana", "annotator"), Principal("ben", "annotator")
REVIEWER = Principal("rita", "reviewer")


def peeked_run(sessions, data_dir) -> None:  # noqa: F811
    """Run "r": on r/0 ben rejects; ana accepts (a throwaway), sees ben's verdict, undoes and rejects too. On r/1
    both accept, blind."""
    with sessions() as session:
        for number in range(2):
            record_from_answer(session, answer=make_answer(question=f"Question {number}?"),
                               settings=Settings(data_dir=data_dir), run="r", record_id=f"r/{number}")
            session.add_all([Assignment(run="r", record_id=f"r/{number}", annotator=name, assigned_by="admin")
                             for name in ("ana", "ben")])
        session.commit()
        record_verdict(session, actor=BEN, record_id="r/0", annotator="ben", verdict="reject", reason="wrong")
        record_verdict(session, actor=ANA, record_id="r/0", annotator="ana", verdict="accept")
        _record, shown = open_record(session, actor=ANA, record_id="r/0")
        assert [a.verdict for a in shown if a.annotator == "ben"] == ["reject"], "the peek"
        undo_verdict(session, actor=ANA, record_id="r/0", annotator="ana")
        record_verdict(session, actor=ANA, record_id="r/0", annotator="ana", verdict="reject", reason="wrong")
        for actor in (ANA, BEN):
            record_verdict(session, actor=actor, record_id="r/1", annotator=actor.name, verdict="accept")


def test_peek_undo_agree_is_not_independent_agreement(sessions, tmp_path):  # noqa: F811
    peeked_run(sessions, tmp_path)
    with sessions() as session:
        report = run_report(session, "r")
        pending = disagreements(session, actor=REVIEWER, run="r")
        case = open_case(session, actor=REVIEWER, record_id="r/0")
    [pair] = report["agreement"]["pairs"]
    assert (pair["n"], pair["percent_agreement"]) == (2, 0.5), "r/0 counts ana's first verdict, accept"
    assert report["agreement"]["revised"] == [{"record": "r/0", "annotator": "ana", "first": "accept",
                                               "current": "reject"}]
    assert report["annotators"]["ana"]["verdicts"] == {"accept": 1, "correct": 0, "reject": 1}, "current verdicts"
    assert pending == ["r/0"], "the reviewer sees it although the current verdicts agree"
    assert case.revised == report["agreement"]["revised"]


def test_a_changed_verdict_counts_its_first_version_too(sessions, tmp_path):  # noqa: F811
    peeked_run(sessions, tmp_path)
    with sessions() as session:  # on r/1 ben changes his mind after seeing ana's accept
        record_verdict(session, actor=BEN, record_id="r/1", annotator="ben", verdict="reject", reason="other",
                       expected_version=1)
        report = run_report(session, "r")
    assert report["agreement"]["pairs"][0]["percent_agreement"] == 0.5
    assert {(row["record"], row["annotator"]) for row in report["agreement"]["revised"]} == {("r/0", "ana"),
                                                                                             ("r/1", "ben")}


@pytest.mark.slow
def test_progress_and_adjudicate_pages_say_so(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    peeked_run(open_database(Settings(data_dir=data_dir)), data_dir)
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR=ADMIN.name)
    at.switch_page("app_pages/progress.py").run()
    assert not at.exception, at.exception
    assert any("agreement counts each annotator's first verdict" in caption.value for caption in at.caption)
    assert any("1 verdict(s) were changed after saving" in warning.value for warning in at.warning)
    at.switch_page("app_pages/adjudicate.py").run()
    assert not at.exception, at.exception
    assert any("ana changed their verdict after saving it (first accept, now reject)" in warning.value
               for warning in at.warning)
