"""Verdicts saved at once from several processes (as several app servers or browser tabs would), on SQLite and
PostgreSQL: different annotators never overwrite each other; the same annotator's second, stale save is a
conflict; nothing is lost from the history."""

from __future__ import annotations

import multiprocessing
import sys

import pytest
from sqlalchemy import func, select

from configuration.settings import Settings
from review.models import Annotation, AnnotationVersion
from review.records import record_from_answer
from tests import concurrent_worker
from tests.concurrent_worker import save_verdicts
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)
from tests.test_review_db import make_answer

pytestmark = pytest.mark.slow
CONTEXT = multiprocessing.get_context("spawn")  # a fresh interpreter per worker, like a separate server


@pytest.fixture(autouse=True)
def worker_main(monkeypatch):
    """Spawned workers re-import the parent's __main__; after an AppTest that is the app's script. Make it the
    worker's light module."""
    monkeypatch.setitem(sys.modules, "__main__", concurrent_worker)


def run_workers(url: str, record_id: str, plans: list[tuple[str, list[str], list]]) -> list[tuple[str, list[str]]]:
    barrier, results = CONTEXT.Barrier(len(plans)), CONTEXT.Queue()
    workers = [CONTEXT.Process(target=save_verdicts, args=(url, record_id, name, verdicts, expected, barrier, results))
               for name, verdicts, expected in plans]
    for worker in workers:
        worker.start()
    collected = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    return collected


@pytest.fixture
def shared_record(sessions, tmp_path):  # noqa: F811
    with sessions() as session:
        return record_from_answer(session, answer=make_answer(), settings=Settings(data_dir=tmp_path),
                                  created_by="ana").id


def test_annotators_in_separate_processes_never_overwrite_each_other(db_url, sessions, shared_record):  # noqa: F811
    from review.models import Assignment

    names = ["ana", "ben", "cy", "dee"]
    with sessions() as session:
        session.add_all(Assignment(run="r", record_id=shared_record, annotator=n, assigned_by="admin") for n in names)
        session.commit()
    verdicts = ["accept", "reject", "accept"]
    results = run_workers(db_url, shared_record, [(name, verdicts, ["read"] * 3) for name in names])
    assert sorted(results) == [(name, ["saved"] * 3) for name in names]
    with sessions() as session:
        rows = session.execute(select(Annotation.annotator, Annotation.verdict, Annotation.version)).all()
        assert sorted(rows) == [(name, "accept", 3) for name in names]
        assert session.scalar(select(func.count()).select_from(AnnotationVersion)) == len(names) * 2


def test_the_same_annotator_in_two_processes_gets_a_conflict_not_an_overwrite(db_url, sessions,  # noqa: F811
                                                                             shared_record):
    # Two tabs of ana open the record before any verdict (expected None), then both save; later both have seen
    # version 1 and both save again. Each time exactly one save wins.
    plans = [("ana", ["accept", "reject"], [None, 1]), ("ana", ["reject", "accept"], [None, 1])]
    results = run_workers(db_url, shared_record, plans)
    first_round = sorted(outcomes[0] for _, outcomes in results)
    second_round = sorted(outcomes[1] for _, outcomes in results)
    assert first_round == ["conflict", "saved"] and second_round == ["conflict", "saved"]
    with sessions() as session:
        annotation = session.scalar(select(Annotation))
        assert annotation.version == 2
        history = session.scalars(select(AnnotationVersion)).all()
        assert [(h.version, h.annotator) for h in history] == [(1, "ana")], "the overwritten state is in the history"
