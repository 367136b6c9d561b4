"""Asking, as the Ask page, the CLI and batch runs do it: retrieve, answer, analyse, and keep the answer as a
record committed before anyone sees it. Also: passages retrieved later for a record imported without them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loupe.generators import GeneratorChoice
from loupe.qa import Answer, Asker, passage_record
from review.access import Principal, require_record
from review.errors import ReviewError
from review.models import Record
from review.records import attach_passages, get_record, record_from_answer


def ask_and_record(
    sessions, asker: Asker, *, actor: Principal, question: str, doc_ids: list[str] | None = None,
    mode: str = "hybrid", top_k: int | None = None, analyse: bool = True,
    streaming_callback: Callable[[Any], None] | None = None, on_fallback: Callable[[str], None] | None = None,
    **record_fields: Any,
) -> Record:
    """Answer `question` and store it as a record created by `actor` (so that they may review it), with meta
    `context_cut` when the generator was given only part of the passages (`loupe.qa.bounded_context`).

    :param analyse: compute the support map now (the Ask page); batch runs leave it to the analysis job.
    :param record_fields: run, record_id, external_id, question_id of a batch record; created_by to override.
    :raises loupe.qa.QuestionError: the question or its options cannot be asked.
    """
    answer = asker.ask(question, doc_ids=doc_ids, mode=mode, top_k=top_k, streaming_callback=streaming_callback,
                       on_fallback=on_fallback, with_support=analyse)
    record_fields.setdefault("created_by", actor.name)
    with sessions() as session:
        record = record_from_answer(session, answer=answer, settings=asker.settings, **record_fields)
        return _add_meta(session, record, context_meta(answer))


def context_meta(answer: Answer) -> dict[str, str]:
    """The record meta saying what of the passages the generator was not given (`context_cut`), if anything: the
    record keeps every passage, so a reviewer must be told which ones the answer could not have used. Also the
    model's own output when the answer is not exactly it (`raw_output`: cut, or replaced as degenerate; see
    loupe.degeneration) and what was cut (`answer_cut`)."""
    kept = {"context_cut": answer.context_note} if answer.context_note else {}
    return kept | {name: answer.generator[name] for name in ("raw_output", "answer_cut") if answer.generator.get(name)}


def _add_meta(session, record: Record, meta: dict[str, Any]) -> Record:
    """The record with `meta` added to its meta, committed (nothing to do when `meta` is empty)."""
    if meta:
        record.meta = {**(record.meta or {}), **meta}
        session.commit()
    return record


def can_retrieve_passages(record: Record, known_doc_ids: list[str]) -> bool:
    """Whether passages can be retrieved for a record that was imported without them."""
    return bool(not record.passages and record.doc_id and record.doc_id in known_doc_ids and record.question)


def retrieve_passages(sessions, asker: Asker, *, actor: Principal, record_id: str) -> Record:
    """Retrieve passages from the record's document for its question (hybrid, the configured top-k) and attach
    them to the record, which says so in its meta. :raises ReviewError: it has passages or no document."""
    with sessions() as session:
        require_record(session, actor, record_id, "retrieve passages for this record")
        record = get_record(session, record_id=record_id)
    if not record.doc_id or not record.question:
        raise ReviewError("this record names no document or no question to retrieve passages for")
    top_k = asker.settings.top_k
    found = asker.retrieve(record.question, doc_ids=[record.doc_id], mode="hybrid", top_k=top_k)
    with sessions() as session:
        return attach_passages(session, record_id=record_id, passages=[passage_record(doc) for doc in found],
                               how={"mode": "hybrid", "top_k": top_k})


def answer_again(
    sessions, asker: Asker, *, actor: Principal, record_id: str, generator: GeneratorChoice | None = None,
    streaming_callback: Callable[[Any], None] | None = None, on_fallback: Callable[[str], None] | None = None,
) -> Record:
    """Answer the record's question again from its stored passages with `generator` (default: the one configured
    now, the asker's), and store the answer as a new record created by `actor`, linked to the first by
    `meta.answer_of` (the export's `answer_of`). :raises ReviewError: the record has no question or passages."""
    from loupe.answer_again import answer_from_passages

    with sessions() as session:
        require_record(session, actor, record_id, "answer this record again")
        first = get_record(session, record_id=record_id)
        question, passages, scope = first.question, [dict(p) for p in first.passages or []], list(first.scope or [])
        mode = (first.settings or {}).get("mode", "stored")
    choice = generator or asker.generator
    try:
        answer = answer_from_passages(
            asker.settings, choice, question or "", passages, mode=mode, doc_ids=scope,
            streaming_callback=streaming_callback, on_fallback=on_fallback,
            pipeline=getattr(asker, "_answer_pipeline", None) if choice is asker.generator else None,
        )
    except ValueError as error:
        raise ReviewError(str(error)) from None
    with sessions() as session:
        record = record_from_answer(session, answer=answer, settings=asker.settings, created_by=actor.name)
        _add_meta(session, record, {"answer_of": record_id, **context_meta(answer)})
        return get_record(session, record_id=record.id)
