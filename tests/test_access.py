"""Roles enforced by the data functions themselves, called without the UI, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from configuration.settings import Settings
from review.access import Principal
from review.annotations import record_verdict
from review.errors import PermissionDeniedError
from review.export import export_bytes
from review.importer import Importer
from review.models import Annotation, Assignment
from review.overview import status_counts
from review.queue import QueueFilter, queue_entries, queue_facets
from review.records import open_record, recent_records, record_from_answer
from review.users import add_user, list_users, set_disabled, set_password, set_role
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)
from tests.test_review_db import make_answer

ANA, BEN = Principal("ana", "annotator"), Principal("ben", "annotator")
REVIEWER = Principal("rita", "reviewer")


@pytest.fixture
def run_records(sessions, tmp_path):  # noqa: F811
    """Three records of run "r": r0 assigned to ana and ben, r1 to ben only, r2 to nobody; and one ana asked."""
    with sessions() as session:
        ids = []
        for number in range(3):
            record = record_from_answer(session, answer=make_answer(question=f"Question {number}?"),
                                        settings=Settings(data_dir=tmp_path), run="r", record_id=f"r/{number}")
            ids.append(record.id)
        asked = record_from_answer(session, answer=make_answer(question="Mine?"), settings=Settings(data_dir=tmp_path),
                                   created_by="ana").id
        session.add_all([Assignment(run="r", record_id="r/0", annotator="ana", assigned_by="admin"),
                         Assignment(run="r", record_id="r/0", annotator="ben", assigned_by="admin"),
                         Assignment(run="r", record_id="r/1", annotator="ben", assigned_by="admin")])
        session.commit()
    return ids, asked


def verdict_count(sessions) -> int:  # noqa: F811
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Annotation))


def test_annotators_judge_only_their_records_under_their_own_name(sessions, run_records):  # noqa: F811
    (r0, r1, r2), asked = run_records
    with sessions() as session:
        record_verdict(session, actor=ANA, record_id=r0, annotator="ana", verdict="accept")
        record_verdict(session, actor=ANA, record_id=asked, annotator="ana", verdict="accept")
        for record_id in (r1, r2):
            with pytest.raises(PermissionDeniedError, match="not assigned to them"):
                record_verdict(session, actor=ANA, record_id=record_id, annotator="ana", verdict="accept")
        with pytest.raises(PermissionDeniedError, match="ana may not record verdicts as ben"):
            record_verdict(session, actor=ANA, record_id=r0, annotator="ben", verdict="accept")
        with pytest.raises(PermissionDeniedError, match="as ana"):  # reviewers judge anything, but as themselves
            record_verdict(session, actor=REVIEWER, record_id=r0, annotator="ana", verdict="accept")
        record_verdict(session, actor=REVIEWER, record_id=r2, annotator="rita", verdict="accept")
    assert verdict_count(sessions) == 3


def test_blind_review_hides_others_verdicts_until_one_has_judged(sessions, run_records):  # noqa: F811
    (r0, r1, _), _ = run_records
    with sessions() as session:
        record_verdict(session, actor=BEN, record_id=r0, annotator="ben", verdict="reject", reason="wrong")
        _, seen_by_ana = open_record(session, actor=ANA, record_id=r0)
        assert seen_by_ana == []
        _, seen_by_reviewer = open_record(session, actor=REVIEWER, record_id=r0)
        assert [a.annotator for a in seen_by_reviewer] == ["ben"]
        record_verdict(session, actor=ANA, record_id=r0, annotator="ana", verdict="accept", expected_version=None)
        _, seen_by_ana = open_record(session, actor=ANA, record_id=r0)
        assert sorted(a.annotator for a in seen_by_ana) == ["ana", "ben"]
        with pytest.raises(PermissionDeniedError):
            open_record(session, actor=ANA, record_id=r1)


def test_queues_and_lists_hold_only_what_the_role_may_see(sessions, run_records):  # noqa: F811
    (r0, r1, r2), asked = run_records
    with sessions() as session:
        assert {rid for rid, _ in queue_entries(session, QueueFilter(annotator="ana"), actor=ANA)} == {r0, asked}
        assert {rid for rid, _ in queue_entries(session, QueueFilter(annotator="ben"), actor=BEN)} == {r0, r1}
        every = {rid for rid, _ in queue_entries(session, QueueFilter(annotator="ben"), actor=REVIEWER)}
        assert every == {r0, r1, r2, asked}, "reviewers see everyone's queue"
        with pytest.raises(PermissionDeniedError, match="as judged by ben"):
            queue_entries(session, QueueFilter(annotator="ben"), actor=ANA)
        assert queue_facets(session, actor=ANA).questions == ["Mine?", "Question 0?"]
        assert {r.id for r in recent_records(session, actor=BEN)} == {r0, r1}
        counts = status_counts(session, ["r"], "ana", actor=ANA)
        assert int(counts["records"].sum()) == 1, "an annotator counts only their own records of the run"
        with pytest.raises(PermissionDeniedError):
            status_counts(session, ["r"], "ben", actor=ANA)


def test_admin_only_functions_refuse_other_roles(sessions, tmp_path):  # noqa: F811
    with sessions() as session:
        add_user(session, actor=ADMIN, name="ana", role="annotator", password="correct horse")
        for actor in (ANA, REVIEWER):
            with pytest.raises(PermissionDeniedError, match="needs the admin role"):
                export_bytes(session, "jsonl", actor=actor)
            with pytest.raises(PermissionDeniedError):
                list_users(session, actor=actor)
            with pytest.raises(PermissionDeniedError):
                add_user(session, actor=actor, name="eve", role="admin", password="correct horse")
            with pytest.raises(PermissionDeniedError):
                set_role(session, actor=actor, name="ana", role="admin")
            with pytest.raises(PermissionDeniedError):
                set_disabled(session, actor=actor, name="ana", disabled=True)
            with pytest.raises(PermissionDeniedError):
                set_password(session, actor=actor, name="someone", password="new password")
        set_password(session, actor=ANA, name="ana", password="my own new one")  # one's own password is fine
        assert [u.name for u in list_users(session, actor=ADMIN)] == ["ana"]
    with pytest.raises(PermissionDeniedError, match="may not import records"):
        Importer(sessions, actor=REVIEWER, run="x")
