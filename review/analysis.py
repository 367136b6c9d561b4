"""Support analysis of stored records, deferred from import and batch runs: computed when a record is first
shown, or for many records at once by `python cli.py analyze`."""

from __future__ import annotations

from sqlalchemy import select

from configuration.settings import Settings
from loupe.progress import ProgressCallback
from loupe.support import analyze_support
from review.models import Record
from review.records import apply_support, get_record


def ensure_support(sessions, settings: Settings, record: Record) -> Record:
    """The record with its support map, computed and stored now if it has none yet."""
    if record.support is not None:
        return record
    support = analyze_support(settings, record.answer, [passage.get("text") or "" for passage in record.passages])
    with sessions() as session:
        stored = get_record(session, record_id=record.id)
        apply_support(stored, support)
        session.commit()
        return stored


def analyze_pending(sessions, settings: Settings, run: str | None = None,
                    progress: ProgressCallback | None = None) -> int:
    """Compute the support map of every record that lacks one (in `run`, if given); returns how many.

    Each record is committed as it is done, so an interrupted analysis resumes where it stopped."""
    with sessions() as session:
        query = select(Record.id).where(Record.support.is_(None)).order_by(Record.id)
        if run is not None:
            query = query.where(Record.run == run)
        pending = list(session.scalars(query))
    for done, record_id in enumerate(pending, start=1):
        with sessions() as session:
            record = get_record(session, record_id=record_id)
        ensure_support(sessions, settings, record)
        if progress:
            progress(done, len(pending), record_id)
    return len(pending)
