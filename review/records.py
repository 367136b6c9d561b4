"""Data functions for records: keyword-only, taking the session first; no UI concerns."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from loupe.qa import Answer
from loupe.settings import Settings
from review.errors import NotFoundError
from review.models import Record

# Settings that shape an answer; kept with every record so that its verdict stays meaningful later.
PIPELINE_SETTINGS = (
    "backend", "embedding_model", "generator_kind", "generator_model", "generator_base_url",
    "generator_max_new_tokens", "top_k_bm25", "top_k_dense", "top_k", "rrf_k", "chunk_words",
    "chunk_overlap_words", "prompt_template", "extractive_min_similarity",
)


def settings_snapshot(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The pipeline settings in force, as JSON-ready data."""
    values = {name: getattr(settings, name) for name in PIPELINE_SETTINGS}
    return {**values, **overrides}


def record_from_answer(
    session: Session, *, answer: Answer, settings: Settings, support: dict[str, Any] | None = None,
    run: str | None = None, record_id: str | None = None,
) -> Record:
    """Store an answered question as a record and commit it."""
    record = Record(
        id=record_id or f"ask-{uuid.uuid4().hex[:12]}",
        run=run,
        doc_id=answer.doc_ids[0] if len(answer.doc_ids) == 1 else None,
        question=answer.question,
        scope=list(answer.doc_ids),
        passages=[dict(passage) for passage in answer.passages],
        prompt=answer.prompt,
        answer=answer.answer,
        generator_kind=answer.generator["kind"],
        generator_model=answer.generator["model"],
        generator_note=answer.generator.get("fallback_reason"),
        settings=settings_snapshot(settings, mode=answer.mode, top_k_used=len(answer.passages)),
        support=support,
        meta={"timings": dict(answer.timings)},
    )
    session.add(record)
    session.commit()
    return record


def get_record(session: Session, *, record_id: str) -> Record:
    """The record with its annotations. :raises NotFoundError:"""
    record = session.scalar(
        select(Record).where(Record.id == record_id).options(selectinload(Record.annotations))
    )
    if record is None:
        raise NotFoundError(f"no record {record_id!r}")
    return record


def set_support(session: Session, *, record_id: str, support: dict[str, Any]) -> Record:
    """Cache the support analysis with the record (computed once, then read back)."""
    record = get_record(session, record_id=record_id)
    record.support = support
    session.commit()
    return record


def recent_records(session: Session, *, limit: int = 200) -> list[Record]:
    """The newest records with their annotations, newest first."""
    query = select(Record).options(selectinload(Record.annotations)).order_by(Record.created_at.desc()).limit(limit)
    return list(session.scalars(query))
