"""Data functions for records: keyword-only, taking the session first; no UI concerns."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from configuration.settings import Settings
from review.access import Principal, current_actor, readable_records, require_record, visible_annotations
from review.errors import NotFoundError, ReviewError
from review.models import Annotation, Record, utcnow

if TYPE_CHECKING:  # the pipelines are heavy to import; importing and exporting records does not need them
    from loupe.qa import Answer

MAX_ID = 300  # the length of records.id
# Settings that shape an answer; kept with every record so that its verdict stays meaningful later.
PIPELINE_SETTINGS = (
    "backend", "embedding_model", "generator_kind", "generator_model", "generator_base_url",
    "generator_max_new_tokens", "top_k_bm25", "top_k_dense", "top_k", "rrf_k", "chunk_words",
    "chunk_overlap_words", "prompt_template", "extractive_min_similarity",
)


def record_key(run: str, external_id: str) -> str:
    """The record's primary key, made from the pair that identifies it (run, external id) without ambiguity:
    `run/external id` with `%` and `/` in the run percent-escaped, so run `a` id `b/c` is `a/b/c` and run
    `a/b` id `c` is `a%2Fb/c`; when that is too long, the escaped run's start and a hash of the pair. Records
    are looked up by the pair (unique together in the database), not by this key."""
    escaped = run.replace("%", "%25").replace("/", "%2F")
    key = f"{escaped}/{external_id}"
    if len(key) <= MAX_ID:
        return key
    pair = json.dumps([run, external_id], ensure_ascii=False)
    return f"{escaped[:100]}/{hashlib.sha256(pair.encode()).hexdigest()}"


def fallback_record_key(run: str, external_id: str) -> str:
    """A key for (run, external id) when `record_key`'s is taken by a record stored under the old scheme
    (`run/external id` unescaped, before migration 0004): a hash of the pair, under a prefix no run escapes to."""
    pair = json.dumps([run, external_id], ensure_ascii=False)
    return f"%/{hashlib.sha256(pair.encode()).hexdigest()}"


def settings_snapshot(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The pipeline settings in force, as JSON-ready data."""
    values = {name: getattr(settings, name) for name in PIPELINE_SETTINGS}
    return {**values, **overrides}


def record_from_answer(
    session: Session, *, answer: Answer, settings: Settings, support: dict[str, Any] | None = None,
    run: str | None = None, record_id: str | None = None, external_id: str | None = None,
    question_id: str | None = None, created_by: str | None = None,
) -> Record:
    """Store an answered question as a record and commit it; `created_by` (who asked) may review it. The support
    map is `support` or else the answer's own; the answer's suggestion is kept with the answer's own map."""
    suggestion = answer.suggestion if support is None else None
    support = support if support is not None else answer.support
    record_id = record_id or f"ask-{uuid.uuid4().hex[:12]}"
    record = Record(
        id=record_id,
        external_id=external_id or record_id,
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
        settings=settings_snapshot(settings, mode=answer.mode, top_k_used=len(answer.passages),
                                   generator_path=answer.generator.get("path"),  # the folder the model came from
                                   generation=answer.generator.get("generation")),  # its decoding settings
        meta={"timings": dict(answer.timings)},
        question_id=question_id,
        created_by=created_by,
    )
    if support is not None:
        apply_support(record, support)
    if suggestion is not None:
        apply_suggestion(record, suggestion)
    session.add(record)
    session.commit()
    return record


def get_record(session: Session, *, record_id: str) -> Record:
    """The record with its annotations. :raises NotFoundError:"""
    record = session.scalar(
        select(Record).where(Record.id == record_id).options(selectinload(Record.annotations))
        .execution_options(populate_existing=True)  # verdicts saved in this session since it was last read
    )
    if record is None:
        raise NotFoundError(f"no record {record_id!r}")
    return record


def set_support(session: Session, *, record_id: str, support: dict[str, Any]) -> Record:
    """Cache the support analysis with the record (computed once, then read back)."""
    record = get_record(session, record_id=record_id)
    apply_support(record, support)
    session.commit()
    return record


def attach_passages(session: Session, *, record_id: str, passages: list[dict[str, Any]], how: dict[str, Any]) -> Record:
    """Give a record imported without context the passages retrieved for it now; says so in its meta.

    :raises ReviewError: the record already has passages (a snapshot's passages are never replaced)."""
    record = get_record(session, record_id=record_id)
    if record.passages:
        raise ReviewError("this record already has its passages; they are part of its snapshot and stay as they are")
    record.passages = passages
    record.scope = record.scope or sorted({p["doc_id"] for p in passages if p.get("doc_id")})
    record.meta = {**(record.meta or {}), "passages_retrieved_later": {**how, "at": utcnow().isoformat()}}
    record.support = record.unsupported_count = record.abstains = None
    record.suggestion = record.p_reject = None  # it was suggested from the support map without passages
    session.commit()
    return record


def apply_support(record: Record, support: dict[str, Any]) -> None:
    """Set the support map and the summary columns the queue filters and sorts on. Without recorded passages
    nothing can be supported, so such a record gets no unsupported count (it is not "risky", just unchecked)."""
    record.support = support
    record.unsupported_count = int(support.get("unsupported_count") or 0) if record.passages else None
    record.abstains = bool(support.get("abstains"))


def apply_suggestion(record: Record, suggestion: dict[str, Any]) -> None:
    """Set the suggested verdict (loupe.suggestion's dict, with its model's name) and the probability of
    rejection that the queue sorts and filters on."""
    record.suggestion = suggestion
    record.p_reject = round(1.0 - float(suggestion["p_accept"]), 4)


def recent_records(session: Session, *, actor: Principal, limit: int = 200) -> list[Record]:
    """The newest records `actor` may open, with their annotations, newest first."""
    query = (select(Record).where(*readable_records(actor)).options(selectinload(Record.annotations))
             .order_by(Record.created_at.desc()).limit(limit))
    return list(session.scalars(query))


def open_record(session: Session, *, actor: Principal, record_id: str) -> tuple[Record, list[Annotation]]:
    """A record for `actor` to look at, with the annotations they may see (blind review).

    :raises NotFoundError: no such record. :raises PermissionDeniedError: an annotator's record it is not, or the
        account was disabled (checked as it is now: the role `actor` was read with may be stale)."""
    record = get_record(session, record_id=record_id)
    actor = current_actor(session, actor)
    require_record(session, actor, record_id, "open this record")
    return record, visible_annotations(actor, record.annotations)
