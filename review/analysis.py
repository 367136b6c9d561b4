"""Support analysis of stored records, deferred from import and batch runs: computed when a record is first
shown, or for many records at once by `python cli.py analyze`. The suggested verdict (loupe.suggestion) is
computed with it, and again whenever the model in force is another one than the record's suggestion came from."""

from __future__ import annotations

from sqlalchemy import or_, select

from configuration.settings import Settings
from loupe.progress import ProgressCallback
from loupe.suggestion import suggester_in_force, suggestion_or_none
from loupe.support import analyze_support, bounded, prepare_support
from review.models import Record
from review.records import apply_suggestion, apply_support, get_record

# records whose sentences are embedded in one encoder call (bench/analyze.py: about 30 % faster than one by one)
PREPARE_BATCH = 8


def current_model_name(settings: Settings) -> str | None:
    """The name of the suggester model in force (the shipped one when the data directory's cannot be used), or
    None when not even the shipped one can."""
    try:
        return suggester_in_force(settings).suggester.name
    except (OSError, ValueError):
        return None


def needs_suggestion(record: Record, model: str | None) -> bool:
    """Whether the record's suggestion is missing or from another model than `model` (None: no usable model)."""
    if model is None:
        return False
    return record.suggestion is None or (record.suggestion or {}).get("model") != model


def ensure_support(sessions, settings: Settings, record: Record, deadline: float | None = None) -> Record:
    """The record with its support map and suggestion, computed and stored now if it has none yet (or a
    suggestion of another model than the one in force), both from the bounded answer and passages
    (loupe.support.bounded).

    :param deadline: a `time.monotonic()` time by which the support analysis must end (None: no limit).
    :raises TimeLimitExceeded: when it did not; nothing is stored then."""
    model = current_model_name(settings)
    if record.support is not None and not needs_suggestion(record, model):
        return record
    support = record.support
    if support is None:
        support = analyze_support(settings, record.answer, passage_texts(record), deadline=deadline)
    answer, texts, _cut = bounded(record.answer or "", passage_texts(record))
    passages = [{**passage, "text": text} for passage, text in zip(record.passages, texts)]
    suggestion = suggestion_or_none(settings, support, passages, answer, record.question)
    with sessions() as session:
        stored = get_record(session, record_id=record.id)
        if stored.support is None:
            apply_support(stored, support)
        if suggestion is not None:
            apply_suggestion(stored, suggestion)
        session.commit()
        return stored


def analyze_pending(sessions, settings: Settings, run: str | None = None,
                    progress: ProgressCallback | None = None) -> int:
    """Compute the support map and suggestion of every record that lacks one (in `run`, if given), and the
    suggestion again where it came from another model; returns how many records were done.

    Each record is committed as it is done, so an interrupted analysis resumes where it stopped."""
    model = current_model_name(settings)
    with sessions() as session:
        lacking = [Record.support.is_(None)]
        if model is not None:
            lacking += [Record.suggestion.is_(None), Record.suggestion["model"].as_string() != model]
        query = select(Record.id).where(or_(*lacking)).order_by(Record.id)
        if run is not None:
            query = query.where(Record.run == run)
        pending = list(session.scalars(query))
    done = 0
    for start in range(0, len(pending), PREPARE_BATCH):
        with sessions() as session:
            records = [get_record(session, record_id=record_id) for record_id in pending[start : start + PREPARE_BATCH]]
        prepare_support(settings, [(record.answer, passage_texts(record)) for record in records
                                   if record.support is None])
        for record in records:
            ensure_support(sessions, settings, record)
            done += 1
            if progress:
                progress(done, len(pending), record.id)
    return len(pending)


def passage_texts(record: Record) -> list[str]:
    return [passage.get("text") or "" for passage in record.passages]
