"""The worker process of tests/test_dirty_imports.py's races: opens (and so migrates) a review database and
imports one records file, started at the same moment as its twin."""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from review.access import Principal
from review.db import make_engine, migrate
from review.importer import Importer


def migrate_and_import(url: str, path: str, run: str, barrier, results) -> None:
    """Worker: wait for the others, migrate, import `path` into `run`; put (outcome, record counts or error)."""
    engine = make_engine(url)
    try:
        barrier.wait(timeout=120)
        migrate(engine)
        report = Importer(sessionmaker(engine, expire_on_commit=False), actor=Principal("worker", "admin"),
                          run=run).import_paths([path])
        results.put(("ok", dict(report.records), [str(f) for f in report.failures]))
    except Exception as error:  # reported to the test, which fails with it
        results.put(("error", f"{type(error).__name__}: {error}", []))
    finally:
        engine.dispose()
