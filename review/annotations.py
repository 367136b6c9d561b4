"""Data functions for verdicts. A verdict is committed at once; changing it (or undoing it) keeps the earlier version."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from review.access import Principal, require_acting_as, require_record
from review.errors import InvalidVerdictError, NotFoundError
from review.models import REJECT_REASONS, VERDICTS, Annotation, AnnotationVersion
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
    :raises PermissionDeniedError: `actor` may not judge this record, or not under this name.
    """
    record = get_record(session, record_id=record_id)
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
) -> Annotation:
    """Undo `annotator`'s last verdict on a record: the version before it becomes the current one again, saved as
    a new version, and commit. Nothing is lost: the undone verdict joins the history, beside the one restored.

    A first verdict has no earlier version to restore and is refused (restore-only): the record stays reviewed
    with it, and the annotator changes it with another verdict. (A withdrawn state would need every reader of
    annotations, counts and agreement included, to treat it as unreviewed.)

    :param expected_version: the version the caller saw last (the one it saved); if the annotation changed since,
        nothing is written.
    :raises NotFoundError: no such record, or no verdict of `annotator` on it.
    :raises InvalidVerdictError: the verdict is a first one: there is nothing to restore.
    :raises ConflictError: the annotation changed since the caller read it.
    :raises PermissionDeniedError: `actor` may not judge this record, or not under this name.
    """
    get_record(session, record_id=record_id)
    annotator = (annotator or "").strip()
    require_acting_as(actor, annotator, "undo verdicts")
    require_record(session, actor, record_id, "judge this record")
    current = session.scalar(
        select(Annotation).where(Annotation.record_id == record_id, Annotation.annotator == annotator)
    )
    if current is None:
        raise NotFoundError(f"{annotator} has no verdict on this record to undo")
    if not current.history:
        raise InvalidVerdictError(
            f"nothing to undo: this was {annotator}'s first verdict on this record ({current.verdict}); change it "
            "with Accept, Correct or Reject (the history keeps it)")
    previous = max(current.history, key=lambda version: version.version)
    fields = {"annotator": annotator, **{name: getattr(previous, name) for name in VERDICT_FIELDS}}
    return save_version(session, current=current, fields=fields, expected_version=expected_version,
                        create=lambda **values: Annotation(record_id=record_id, **values),
                        history=AnnotationVersion, parent_key=AnnotationVersion.parent_key,
                        owner=lambda annotation: annotation.annotator, what="verdict")
