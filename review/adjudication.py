"""Adjudication: reviewers settle the records on which annotators disagree with a final verdict and answer.

Like verdicts, an adjudication is committed at once and versioned: changing it keeps the earlier state (who
decided what, and when) in the history, and two reviewers saving at once never overwrite each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import distinct, func, or_, select
from sqlalchemy.orm import Session, selectinload

from review.access import Principal, require_role
from review.agreement import blind_verdicts
from review.errors import InvalidVerdictError
from review.models import VERDICTS, Adjudication, AdjudicationVersion, Annotation, Record
from review.records import get_record
from review.versioned import save_version

STATUSES = ("pending", "adjudicated", "all")


def normalised(text: str) -> str:
    """Text with runs of whitespace made one space: corrections differing only in spacing say the same thing."""
    return " ".join(text.split())


def disagreements(session: Session, *, actor: Principal, run: str | None = None, status: str = "pending") -> list[str]:
    """Ids of the records on which annotators disagree, by question id, document and id.

    Disagreement: two or more annotators judged the record and their verdicts differ, or their "correct"
    verdicts carry different corrected answers, or someone's verdict differs from the first they saved (blind
    review: it may follow colleagues' verdicts; see review.agreement). "pending" lists those not adjudicated yet;
    "adjudicated" lists
    every adjudicated record, even one whose annotators have come to agree since, so that it can be revisited.

    :raises PermissionDeniedError: `actor` is below reviewer.
    :raises ValueError: an unknown status.
    """
    require_role(actor, "reviewer", "see the disagreements")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    verdicts = func.count(distinct(Annotation.verdict))
    # Differing raw corrections are a candidate only: whether they differ beyond whitespace is checked below.
    candidates = (
        select(Annotation.record_id, verdicts.label("verdicts"))
        .group_by(Annotation.record_id)
        .having(func.count() >= 2, or_(verdicts > 1, func.count(distinct(Annotation.corrected_answer)) > 1))
        .subquery()
    )
    query = (
        select(Record.id, candidates.c.verdicts, Adjudication.id.label("adjudication"))
        .outerjoin(candidates, candidates.c.record_id == Record.id)
        .outerjoin(Adjudication, Adjudication.record_id == Record.id)
        .order_by(func.length(Record.question_id).nulls_last(), Record.question_id.nulls_last(),
                  Record.doc_id.nulls_last(), Record.id)
    )
    in_run = [Record.run == run] if run is not None else []
    revised = {revision["record"] for revision in blind_verdicts(session, *in_run)[1]}
    listed = or_(candidates.c.record_id.is_not(None), Record.id.in_(revised))
    query = query.where(*in_run)
    if status == "pending":
        query = query.where(listed, Adjudication.id.is_(None))
    elif status == "adjudicated":
        query = query.where(Adjudication.id.is_not(None))
    else:
        query = query.where(or_(listed, Adjudication.id.is_not(None)))
    rows = session.execute(query).all()
    unsure = any(row.verdicts == 1 and row.adjudication is None for row in rows)
    differing = _differing_corrections(session, candidates) if unsure else set()
    return [row.id for row in rows
            if row.adjudication is not None or row.verdicts != 1 or row.id in differing or row.id in revised]


def _differing_corrections(session: Session, candidates) -> set[str]:
    """The candidates with one verdict whose corrected answers still differ once whitespace is normalised."""
    query = (select(Annotation.record_id, Annotation.corrected_answer)
             .join(candidates, candidates.c.record_id == Annotation.record_id)
             .where(candidates.c.verdicts == 1, Annotation.corrected_answer.is_not(None)))
    corrections: dict[str, set[str]] = {}
    for record_id, corrected in session.execute(query):
        corrections.setdefault(record_id, set()).add(normalised(corrected))
    return {record_id for record_id, texts in corrections.items() if len(texts) > 1}


@dataclass(frozen=True)
class Case:
    """What a reviewer needs to adjudicate a record: the record, every annotator's verdict, and the current
    adjudication (None when there is none yet) with its history loaded."""

    record: Record
    annotations: list[Annotation]
    adjudication: Adjudication | None
    revised: list[dict[str, str]]  # verdicts that differ from the first their annotator saved (blind review)


def open_case(session: Session, *, actor: Principal, record_id: str) -> Case:
    """:raises NotFoundError: no such record. :raises PermissionDeniedError: `actor` is below reviewer."""
    require_role(actor, "reviewer", "see everyone's verdicts to adjudicate")
    record = get_record(session, record_id=record_id)
    adjudication = session.scalar(
        select(Adjudication).where(Adjudication.record_id == record_id).options(selectinload(Adjudication.history))
    )
    revised = blind_verdicts(session, Record.id == record_id)[1]
    return Case(record=record, annotations=list(record.annotations), adjudication=adjudication, revised=revised)


def adjudicate(
    session: Session,
    *,
    actor: Principal,
    record_id: str,
    verdict: str,
    final_answer: str | None = None,
    comment: str | None = None,
    expected_version: int | None,
) -> Adjudication:
    """Store `actor`'s final verdict and answer on a record, set the record's final verdict, and commit.

    :param final_answer: required for "correct" (and different from the answer); for "accept" it is the answer;
        optional for "reject".
    :param expected_version: the adjudication version the caller last saw, None when it saw none; if the
        adjudication is no longer in that state, someone saved in between and nothing is written.
    :raises PermissionDeniedError: `actor` is below reviewer.
    :raises NotFoundError: no such record.
    :raises InvalidVerdictError: the verdict lacks what it needs.
    :raises ConflictError: the adjudication changed since the caller read it.
    """
    require_role(actor, "reviewer", "adjudicate")
    record = get_record(session, record_id=record_id)
    fields = _validated(record.answer, actor.name, verdict, final_answer, comment)
    current = session.scalar(select(Adjudication).where(Adjudication.record_id == record_id))
    record.final_verdict = fields["verdict"]  # committed with the adjudication, or rolled back with it
    return save_version(session, current=current, fields=fields, expected_version=expected_version,
                        create=lambda **values: Adjudication(record_id=record_id, **values),
                        history=AdjudicationVersion, parent_key=AdjudicationVersion.parent_key,
                        owner=lambda adjudication: adjudication.adjudicator, what="adjudication")


def _validated(answer: str, adjudicator: str, verdict: str, final_answer: str | None,
               comment: str | None) -> dict[str, str | None]:
    if verdict not in VERDICTS:
        raise InvalidVerdictError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if verdict == "correct":
        if not (final_answer or "").strip():
            raise InvalidVerdictError("a correction needs the final answer")
        if normalised(final_answer) == normalised(answer):
            raise InvalidVerdictError("the final answer is the same as the answer; use accept instead")
    elif verdict == "accept":
        final_answer = answer
    else:
        final_answer = (final_answer or "").strip() or None
    return {"adjudicator": adjudicator, "verdict": verdict, "final_answer": final_answer,
            "comment": (comment or "").strip() or None}
