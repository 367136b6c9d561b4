"""The queue's SQL on SQLite and PostgreSQL: filters, statuses per annotator, orders and text search."""

from __future__ import annotations

import json

from review.annotations import record_verdict
from review.importer import Importer
from review.queue import QueueFilter, next_unreviewed, queue_entries
from review.records import apply_support, get_record
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401

RECORDS = [
    {"id": "a", "question": "Which seed?", "answer": "Seed 1.", "contexts": ["Kästner et al. fixed seed 1."],
     "doc_id": "d1", "question_id": "Q2"},
    {"id": "b", "question": "Which seed?", "answer": "Seed 2.", "contexts": ["A 50% split_ratio was used."],
     "doc_id": "d2", "question_id": "Q2"},
    {"id": "c", "question": "Which optimizer?", "answer": "Adam.", "contexts": ["Adam was used."],
     "doc_id": "d1", "question_id": "Q10"},
]


def imported(sessions, tmp_path):  # noqa: F811
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    assert Importer(sessions, actor=ADMIN, run="r").import_paths([path]).records["added"] == 3
    return sessions


def ids(sessions, **criteria) -> list[str]:  # noqa: F811
    with sessions() as session:
        return [rid.split("/", 1)[1] for rid, _ in queue_entries(session, QueueFilter(annotator="me", **criteria), actor=ADMIN)]


def test_filters_orders_and_search(sessions, tmp_path):  # noqa: F811
    imported(sessions, tmp_path)
    assert ids(sessions, doc_ids=("d1",), sort="question") == ["a", "c"], "Q2 sorts before Q10"
    assert ids(sessions, sort="document") == ["a", "c", "b"]
    assert ids(sessions, questions=("Which optimizer?",)) == ["c"]
    assert ids(sessions, search="Kästner") == ["a"], "non-ASCII passage text is searchable"
    assert ids(sessions, search="50%") == ["b"] and ids(sessions, search="s_l") == [], "% and _ are literal"
    assert ids(sessions, search="ADAM") == ["c"], "case-insensitive"


def test_status_is_per_annotator_and_support_orders_risk(sessions, tmp_path):  # noqa: F811
    imported(sessions, tmp_path)
    with sessions() as session:
        record_verdict(session, actor=ADMIN, record_id="r/a", annotator="me", verdict="accept")
        record_verdict(session, actor=ADMIN, record_id="r/b", annotator="someone else", verdict="reject", reason="wrong")
        for record_id, unsupported in (("r/b", 2), ("r/c", 0)):
            record = get_record(session, record_id=record_id)
            apply_support(record, {"unsupported_count": unsupported, "abstains": False, "sentences": []})
        session.commit()
    assert set(ids(sessions, statuses=("unreviewed",))) == {"b", "c"}
    assert ids(sessions, statuses=("accepted",)) == ["a"]
    assert ids(sessions, sort="riskiest")[:2] == ["b", "c"], "most unsupported first, unanalysed last"
    assert ids(sessions, support="unsupported") == ["b"]
    assert ids(sessions, support="unanalysed") == ["a"]
    with sessions() as session:
        entries = queue_entries(session, QueueFilter(annotator="me", sort="document"), actor=ADMIN)
    assert [e[1] for e in entries] == ["accepted", "unreviewed", "unreviewed"]
    assert next_unreviewed(entries, 0) == 1 and next_unreviewed(entries, 2) == 1, "wraps around"
    assert next_unreviewed([("x", "accepted")], 0) is None


def test_riskiest_first_follows_the_suggestion_and_the_queue_filters_by_it(sessions, tmp_path):  # noqa: F811
    from review.records import apply_suggestion

    imported(sessions, tmp_path)
    with sessions() as session:
        for record_id, p_accept, unsupported in (("r/a", 0.9, 3), ("r/b", 0.2, 0), ("r/c", 0.4, 1)):
            record = get_record(session, record_id=record_id)
            apply_support(record, {"unsupported_count": unsupported, "abstains": False, "sentences": []})
            apply_suggestion(record, {"verdict": "accept" if p_accept >= 0.5 else "reject", "p_accept": p_accept,
                                      "reasons": [], "model": "m"})
        session.commit()
    assert ids(sessions, sort="riskiest") == ["b", "c", "a"], "most likely rejected first"
    assert ids(sessions, support="suggest_reject", sort="document") == ["c", "b"]
    assert ids(sessions, support="suggest_accept") == ["a"]
