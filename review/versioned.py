"""Saving a new state of a versioned row (an annotation, an adjudication).

The earlier state goes to the history, and a save made from a state that is no longer the stored one is
refused: nobody overwrites what they have not seen. Two saves racing past the version check are caught by the
database (the row's version column and unique constraints) and refused the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from review.errors import ConflictError
from review.models import utcnow

UNCHECKED = -1  # expected_version for writers that overwrite knowingly (imports); history is kept all the same
Row = TypeVar("Row")


def save_version(
    session: Session, *, current: Row | None, fields: dict[str, Any], expected_version: int | None,
    create: Callable[..., Row], history: type, parent_key: str, owner: Callable[[Row], str], what: str,
) -> Row:
    """Write `fields` as the new state of `current` (or as a new row from `create`) and commit.

    :param expected_version: the version the caller last saw, None when it saw no row, UNCHECKED to skip the
        check; anything else in the session (e.g. a record's final verdict) is committed or rolled back with it.
    :param history: the model of the history rows, linked to the row by `parent_key`; a replaced state is kept
        there with its version and the time it was saved.
    :param owner: who saved a row, for the conflict message; `what` names the row ("verdict").
    :raises ConflictError: the row changed since the caller read it; nothing is written.
    """
    try:
        if current is None:
            if expected_version not in (None, UNCHECKED):
                raise ConflictError(f"this {what} was deleted since you opened it; reload the record")
            current = create(**fields)
            session.add(current)
        else:
            if expected_version is None:
                raise ConflictError(f"{owner(current)} already saved this record's {what} (in another tab?) since "
                                    "you opened it; reload to see it before changing it")
            if expected_version not in (UNCHECKED, current.version):
                raise ConflictError(
                    f"{owner(current)} saved a newer {what} on this record (version {current.version}) since you "
                    f"opened it (version {expected_version}); reload to see it before changing it"
                )
            session.add(history(**{parent_key: current.id}, version=current.version, recorded_at=current.updated_at,
                                **{name: getattr(current, name) for name in fields}))
            for name, value in fields.items():
                setattr(current, name, value)
            current.updated_at = utcnow()
        session.commit()
    except (StaleDataError, IntegrityError):
        session.rollback()
        raise ConflictError(f"another save of this {what} happened at the same moment; reload and try again") from None
    except ConflictError:
        session.rollback()
        raise
    return current
