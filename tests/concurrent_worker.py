"""The worker process of tests/test_concurrency.py: imports only the review database code, so that spawning
it is quick."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from review.access import Principal
from review.annotations import record_verdict
from review.db import make_engine
from review.errors import ConflictError
from review.models import Annotation


def save_verdicts(url: str, record_id: str, name: str, verdicts: list[str], expected: list, barrier, results) -> None:
    """Worker: save `verdicts` in turn as `name`, each after the barrier (so that the processes collide)."""
    engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    outcomes = []
    for verdict, expected_version in zip(verdicts, expected):
        with sessions() as session:
            if expected_version == "read":
                current = session.scalar(select(Annotation).where(Annotation.record_id == record_id,
                                                                  Annotation.annotator == name))
                expected_version = current.version if current else None
            barrier.wait(timeout=60)
            try:
                record_verdict(session, actor=Principal(name, "annotator"), record_id=record_id, annotator=name,
                               verdict=verdict, reason="other", expected_version=expected_version)
                outcomes.append("saved")
            except ConflictError:
                outcomes.append("conflict")
    engine.dispose()
    results.put((name, outcomes))
