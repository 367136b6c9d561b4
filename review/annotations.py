"""Data functions for verdicts. A verdict is committed at once; changing it (or undoing it) keeps the earlier version,
and a first verdict undone is kept as withdrawn."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from review.access import Principal, current_actor, require_acting_as, require_record
from review.errors import ConflictError, InvalidVerdictError, NotFoundError
from review.models import REJECT_REASONS, VERDICTS, Annotation, AnnotationVersion, WithdrawnVerdict
from review.records import get_record
from review.versioned import UNCHECKED, save_version

PASSAGE_MARKS = ("relevant", "not_relevant")


def record_verdict(
    session: Session,
    *,
    actor: Principal,
    record_id: str,
    annotator: str,
    verdict: str,
    corrected_answer: str | None = None,
    reason: str | None = None,
    comment: str | None = None,
    passage_marks: dict[str, str] | None = None,
    evidence: list[dict[str, Any]] | None = None,
    seconds: float | None = None,
    expected_version: int | None = UNCHECKED,
    suggested: bool = False,
) -> Annotation:
    """Store `annotator`'s verdict on a record and commit it.

    :param suggested: the annotator took the record's suggested verdict as their own (one key in the panel).
    :param actor: who is saving: themselves as `annotator` on a record they may judge, or an admin (imports).
    :param expected_version: the annotation version the caller last saw, None when it saw none; if the
        annotation is no longer in that state, someone saved in between and nothing is written.
    :raises NotFoundError: no such record.
    :raises InvalidVerdictError: the verdict lacks what it needs.
    :raises ConflictError: the annotation changed since the caller read it.
    :raises PermissionDeniedError: `actor` may not judge this record, or not under this name, as their account
        stands now (disabled, or a role changed since the page was drawn).
    """
    record = get_record(session, record_id=record_id)
    actor = current_actor(session, actor)
    require_acting_as(actor, (annotator or "").strip(), "record verdicts")
    require_record(session, actor, record_id, "judge this record")
    fields = _validated(record.answer, annotator, verdict, corrected_answer, reason, comment, passage_marks,
                        len(record.passages), evidence, seconds) | {"suggested": bool(suggested)}
    current = session.scalar(
        select(Annotation).where(Annotation.record_id == record_id, Annotation.annotator == fields["annotator"])
    )
    return save_version(session, current=current, fields=fields, expected_version=expected_version,
                        create=lambda **values: Annotation(record_id=record_id, **values),
                        history=AnnotationVersion, parent_key=AnnotationVersion.parent_key,
                        owner=lambda annotation: annotation.annotator, what="verdict")


def _validated(
    answer: str, annotator: str, verdict: str, corrected_answer: str | None, reason: str | None,
    comment: str | None, passage_marks: dict[str, str] | None, passage_count: int,
    evidence: list[dict[str, Any]] | None, seconds: float | None,
) -> dict[str, Any]:
    annotator = (annotator or "").strip()
    if not annotator:
        raise InvalidVerdictError("an annotator name is required")
    if verdict not in VERDICTS:
        raise InvalidVerdictError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if verdict == "correct":
        if not (corrected_answer or "").strip():
            raise InvalidVerdictError("a correction needs the corrected answer")
        if corrected_answer.strip() == answer.strip():
            raise InvalidVerdictError("the corrected answer is the same as the answer; use Accept instead")
    else:
        corrected_answer = None
    if verdict == "reject":
        if reason not in REJECT_REASONS:
            raise InvalidVerdictError(f"a rejection needs a reason: one of {', '.join(REJECT_REASONS)}")
    else:
        reason = None
    marks = {str(key): value for key, value in (passage_marks or {}).items()}
    for key, value in marks.items():
        if value not in PASSAGE_MARKS or not key.isdigit() or int(key) >= passage_count:
            raise InvalidVerdictError(f"passage mark {key}={value!r} is invalid")
    if seconds is not None and seconds < 0:
        raise InvalidVerdictError("seconds spent cannot be negative")
    return {
        "annotator": annotator, "verdict": verdict, "corrected_answer": corrected_answer, "reason": reason,
        "comment": (comment or "").strip() or None, "passage_marks": marks, "evidence": list(evidence or []),
        "seconds": seconds,
    }


VERDICT_FIELDS = ("verdict", "corrected_answer", "reason", "comment", "passage_marks", "evidence", "seconds",
                  "suggested")


def undo_verdict(
    session: Session, *, actor: Principal, record_id: str, annotator: str, expected_version: int | None = UNCHECKED,
) -> Annotation | WithdrawnVerdict:
    """Undo `annotator`'s last verdict on a record, and commit. Nothing is lost either way:

    - a changed verdict: the version before it becomes the current one again, saved as a new version; the undone
      one joins the history, beside the one restored;
    - a first verdict: it is withdrawn, and the record is unreviewed by `annotator` again (in every count, queue
      and agreement figure, since no annotation is left); the verdict is kept whole in `WithdrawnVerdict`.

    :param expected_version: the version the caller saw last (the one it saved); if the annotation changed since,
        nothing is written.
    :returns: the restored annotation, or for a first verdict the WithdrawnVerdict that keeps it.
    :raises NotFoundError: no such record, or no verdict of `annotator` on it.
    :raises ConflictError: the annotation changed since the caller read it.
    :raises PermissionDeniedError: `actor` may not judge this record, or not under this name, as their account
        stands now.
    """
    get_record(session, record_id=record_id)
    actor = current_actor(session, actor)
    annotator = (annotator or "").strip()
    require_acting_as(actor, annotator, "undo verdicts")
    require_record(session, actor, record_id, "judge this record")
    current = session.scalar(
        select(Annotation).where(Annotation.record_id == record_id, Annotation.annotator == annotator)
    )
    if current is None:
        raise NotFoundError(f"{annotator} has no verdict on this record to undo")
    if not current.history:
        return _withdraw(session, current, actor, expected_version)
    previous = max(current.history, key=lambda version: version.version)
    fields = {"annotator": annotator, **{name: getattr(previous, name) for name in VERDICT_FIELDS}}
    return save_version(session, current=current, fields=fields, expected_version=expected_version,
                        create=lambda **values: Annotation(record_id=record_id, **values),
                        history=AnnotationVersion, parent_key=AnnotationVersion.parent_key,
                        owner=lambda annotation: annotation.annotator, what="verdict")


def _withdraw(session: Session, current: Annotation, actor: Principal,
              expected_version: int | None) -> WithdrawnVerdict:
    """Keep a first verdict in WithdrawnVerdict and delete the annotation, in one commit (or neither)."""
    if expected_version not in (UNCHECKED, current.version):
        raise ConflictError(f"{current.annotator} saved a newer verdict on this record (version {current.version}) "
                            f"since you opened it (version {expected_version}); reload to see it before undoing it")
    withdrawn = WithdrawnVerdict(
        record_id=current.record_id, annotator=current.annotator, version=current.version,
        recorded_at=current.updated_at, withdrawn_by=actor.name,
        **{name: getattr(current, name) for name in VERDICT_FIELDS},
    )
    session.add(withdrawn)
    session.delete(current)
    try:
        session.commit()
    except (StaleDataError, IntegrityError):
        session.rollback()
        raise ConflictError("another save of this verdict happened at the same moment; reload and try again") from None
    return withdrawn


def withdrawn_verdicts(session: Session, record_id: str,
                       annotators: Iterable[str] | None = None) -> list[WithdrawnVerdict]:
    """The withdrawn first verdicts on a record (of these annotators; None: everyone's), oldest first."""
    query = select(WithdrawnVerdict).where(WithdrawnVerdict.record_id == record_id)
    if annotators is not None:
        query = query.where(WithdrawnVerdict.annotator.in_(list(annotators)))
    return list(session.scalars(query.order_by(WithdrawnVerdict.withdrawn_at, WithdrawnVerdict.id)))
