"""Statuses as judged by everyone (the latest verdict of anyone) in the queue and the Overview's counts, on SQLite
and PostgreSQL; the annotators offered as a choice; question ids in natural order (Q1, Q2, … Q10)."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import pytest

from review.access import Principal
from review.annotations import record_verdict
from review.errors import PermissionDeniedError
from review.importer import Importer
from review.models import Annotation
from review.overview import by, compare_runs, question_chart, status_counts
from review.queue import (
    EVERYONE,
    QueueFilter,
    annotator_choices,
    annotator_label,
    natural_key,
    queue_entries,
    queue_facets,
)
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401

REVIEWER = Principal("rita", "reviewer")


def imported(sessions, tmp_path, run="r", ids=(1, 2, 10, 11, 28, 3)):  # noqa: F811
    lines = [json.dumps({"id": f"x{n}", "question": f"Question number {n}?", "answer": f"Answer {n}.",
                         "contexts": ["Some passage."], "doc_id": f"doc{n % 2 + 1}", "question_id": f"Q{n}"})
             for n in ids]
    path = tmp_path / f"{run}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert Importer(sessions, actor=ADMIN, run=run).import_paths([path]).records["added"] == len(ids)


def judge(session, record, annotator, verdict, minutes_ago=0):
    annotation = record_verdict(session, actor=ADMIN, record_id=f"r/{record}", annotator=annotator, verdict=verdict,
                                reason="wrong" if verdict == "reject" else None,
                                corrected_answer="Fixed." if verdict == "correct" else None)
    annotation.updated_at = annotation.updated_at - timedelta(minutes=minutes_ago)
    session.commit()


def statuses(sessions, annotator, **criteria):  # noqa: F811
    with sessions() as session:
        return {rid.split("/", 1)[1]: status for rid, status in
                queue_entries(session, QueueFilter(annotator=annotator, **criteria), actor=ADMIN)}


def test_everyone_counts_a_record_reviewed_by_anyone_with_its_latest_verdict(sessions, tmp_path):  # noqa: F811
    imported(sessions, tmp_path)
    with sessions() as session:
        judge(session, "x1", "expert", "accept", minutes_ago=10)
        judge(session, "x1", "ana", "reject", minutes_ago=5)  # later: x1 is rejected as judged by everyone
        judge(session, "x2", "expert", "correct", minutes_ago=1)
        judge(session, "x2", "ana", "accept", minutes_ago=30)
        judge(session, "x10", "expert", "accept")
        # a tie in time: the annotation created last wins
        first = session.query(Annotation).filter_by(record_id="r/x10").one()
        judge(session, "x11", "ana", "accept")
        judge(session, "x11", "expert", "reject")
        stamp = first.updated_at
        for annotation in session.query(Annotation).filter_by(record_id="r/x11"):
            annotation.updated_at = stamp
        session.commit()

    assert statuses(sessions, EVERYONE) == {"x1": "rejected", "x2": "corrected", "x10": "accepted",
                                            "x11": "rejected", "x28": "unreviewed", "x3": "unreviewed"}
    assert statuses(sessions, "expert")["x1"] == "accepted" and statuses(sessions, "ana")["x10"] == "unreviewed"
    assert set(statuses(sessions, EVERYONE, statuses=("unreviewed",))) == {"x28", "x3"}
    assert set(statuses(sessions, EVERYONE, statuses=("accepted", "corrected"))) == {"x2", "x10"}
    assert set(statuses(sessions, "nobody", statuses=("unreviewed",))) == {"x1", "x2", "x10", "x11", "x28", "x3"}

    with sessions() as session:
        counts = status_counts(session, ["r"], EVERYONE, actor=REVIEWER)
        assert int(counts["records"].sum()) == 6
        reviewed = counts[counts["status"] != "unreviewed"]
        assert int(reviewed["records"].sum()) == 4, "each record once, however many judged it"
        assert dict(counts.groupby("status")["records"].sum()) == {
            "accepted": 1, "corrected": 1, "rejected": 2, "unreviewed": 2}
        assert int(status_counts(session, ["r"], "rita", actor=REVIEWER)["records"].sum()) == 6

        assert annotator_choices(session, ["r"], actor=REVIEWER) == [EVERYONE, "ana", "expert", "rita"]
        assert annotator_choices(session, ["elsewhere"], actor=REVIEWER) == [EVERYONE, "rita"]
        annotator = Principal("ana", "annotator")
        assert annotator_choices(session, ["r"], actor=annotator) == ["ana"], "blind review: only themselves"
        assert queue_facets(session, ("r",), actor=REVIEWER).annotators[0] == EVERYONE
        with pytest.raises(PermissionDeniedError):
            status_counts(session, ["r"], EVERYONE, actor=annotator)
        with pytest.raises(PermissionDeniedError):
            queue_entries(session, QueueFilter(annotator=EVERYONE), actor=annotator)
    assert annotator_label(EVERYONE) == "everyone" and annotator_label("ana") == "ana"
    assert EVERYONE != EVERYONE.strip(), "no stored annotator name (always stripped) can be EVERYONE"


def test_question_ids_sort_naturally(sessions, tmp_path):  # noqa: F811
    imported(sessions, tmp_path)
    natural = ["Q1", "Q2", "Q3", "Q10", "Q11", "Q28"]
    assert sorted(["Q10", "Q2", "Q1", "Q28", "Q11", "Q3"], key=natural_key) == natural
    assert sorted(["b", None, "a10", "A9"], key=natural_key) == ["A9", "a10", "b", None]
    with sessions() as session:
        facets = queue_facets(session, actor=ADMIN)
        assert facets.questions == [f"Question number {q[1:]}?" for q in natural]
        assert facets.doc_ids == ["doc1", "doc2"]
        counts = status_counts(session, ["r"], EVERYONE, actor=ADMIN)
    per_question = by(counts, "question")
    assert list(per_question["question"]) == [f"Question number {q[1:]}?" for q in natural]
    chart, labels = question_chart(counts)
    assert labels == natural and set(chart["label"]) == set(natural)
    assert list(by(pd.DataFrame({"doc_id": ["d10", "d9"], "question": ["q", "q"], "question_id": [None, None],
                                 "status": ["accepted", "accepted"], "records": [1, 1]}), "doc_id")["doc_id"]) == [
        "d9", "d10"]

    imported(sessions, tmp_path, run="s", ids=(10, 2, 1))
    with sessions() as session:
        comparison = compare_runs(session, "r", "s", EVERYONE, actor=ADMIN)
    assert list(comparison["question"]) == ["Question number 1?", "Question number 2?", "Question number 10?"]


@pytest.mark.slow
def test_overview_offers_everyone_and_the_annotators_with_verdicts(demo_data_dir, tmp_path, monkeypatch):
    from configuration.settings import Settings
    from review.db import open_database
    from tests.conftest import run_app

    sessions = open_database(Settings(data_dir=demo_data_dir))  # noqa: F811
    imported(sessions, tmp_path)
    (tmp_path / "expert.csv").write_text("Unique_ID,decision\nx1,Yes\nx2,No\nx10,Yes\n", encoding="utf-8")
    report = Importer(sessions, actor=ADMIN, run="r", annotator="expert").import_paths([tmp_path / "expert.csv"])
    assert not report.failures, report.failures
    app = run_app(monkeypatch, demo_data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    app.switch_page("app_pages/overview.py").run()
    assert not app.exception, app.exception
    viewer = app.selectbox(key="overview_viewer")
    assert viewer.options == ["everyone", "expert", "tester"] and viewer.value == EVERYONE
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Records"], metrics["Reviewed"], metrics["Accepted"]) == ("6", "3", "67%")
    per_question = app.dataframe[0].value
    assert list(per_question["question"])[:3] == ["Question number 1?", "Question number 2?", "Question number 3?"]
    viewer.set_value("tester").run()
    assert {m.label: m.value for m in app.metric}["Reviewed"] == "0"
