"""Who may read and write what.

The data functions that serve the app take the acting user (a `Principal`) and check here, so that the rules
hold whoever calls them, not only behind buttons the UI hides:

- an annotator judges the records assigned to them and the ones they asked themselves, and sees other
  people's verdicts on a record only once they have submitted their own (blind review);
- a reviewer also sees everyone's verdicts, progress and agreement, and adjudicates disagreements;
- an admin also manages users, imports, batch runs, assignments and exports.

With authentication off (single-user mode) and on the command line, the person at the keyboard already holds
the database, so they act as an admin.

A logged-in user's Principal is built once per page run, but a fragment's buttons rerun only the fragment: every
data function such a button calls therefore re-reads the account (`current_actor`), so that a disabled account or
a changed role takes effect at the user's next click.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from review.errors import PermissionDeniedError
from review.models import Annotation, Assignment, Record, User

ROLES = ("annotator", "reviewer", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class Principal:
    """The acting user: a name (the one verdicts are recorded under) and a role.

    `credentials_version`: for a user logged in to an account (LOUPE_AUTH=password), the account's credentials
    version at login, which `current_actor` compares with the account's now; None in single-user mode and on the
    command line, where there is no account to re-read. Not part of equality: it is the login's, not the user's.
    """

    name: str
    role: str
    credentials_version: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.role not in _RANK:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")

    def has(self, role: str) -> bool:
        """True when this user's role is `role` or above it."""
        return _RANK[self.role] >= _RANK[role]

    @property
    def sees_everyone(self) -> bool:
        return self.has("reviewer")


def local_user_name() -> str:
    """The name of the person at this machine: LOUPE_ANNOTATOR, else the login name."""
    try:
        return os.environ.get("LOUPE_ANNOTATOR") or getpass.getuser()
    except OSError:
        return "annotator"


def current_actor(session: Session, actor: Principal) -> Principal:
    """`actor` as the database has them now: their current role, or a refusal once the account is disabled or gone,
    or its password was changed since they logged in.

    :raises PermissionDeniedError: why the account no longer acts (see `account_refusal`).
    """
    if actor.credentials_version is None:
        return actor
    user = session.get(User, actor.name)
    refusal = account_refusal(user, actor.name, actor.credentials_version)
    if refusal:
        raise PermissionDeniedError(f"{refusal}: nothing was done; ask an admin, or log in again")
    return Principal(user.name, user.role, user.credentials_version)


def account_refusal(user: User | None, name: str, credentials_version: int) -> str | None:
    """Why a session that logged in to account `name` under `credentials_version` may no longer act, or None."""
    if user is None:
        return f"the account {name!r} was removed"
    if user.disabled:
        return f"the account {name!r} was disabled"
    if user.credentials_version != credentials_version:
        return f"the password of {name!r} was changed, or the account disabled, since this session logged in"
    return None


def require_role(actor: Principal, role: str, action: str) -> None:
    """:raises PermissionDeniedError: `actor` is below `role`."""
    if not actor.has(role):
        raise PermissionDeniedError(f"{actor.name} is {_article(actor.role)} and may not {action}: that needs the "
                                    f"{role} role")


def require_acting_as(actor: Principal, annotator: str, action: str) -> None:
    """Only admins act under someone else's name (imported verdicts); everyone else acts as themselves."""
    if annotator != actor.name and not actor.has("admin"):
        raise PermissionDeniedError(f"{actor.name} may not {action} as {annotator}")


def require_viewing_as(actor: Principal, annotator: str) -> None:
    """Statuses through someone else's verdicts (a queue "as judged by", counts) are for reviewers and admins."""
    if annotator != actor.name:
        require_role(actor, "reviewer", f"see records as judged by {annotator}")


def own_records(actor: Principal):
    """SQL condition: the records an annotator works on (assigned to them, or asked by them)."""
    assigned = exists(select(Assignment.id).where(Assignment.record_id == Record.id,
                                                  Assignment.annotator == actor.name))
    return or_(assigned, Record.created_by == actor.name)


def readable_records(actor: Principal) -> list:
    """SQL conditions restricting a query over records to what `actor` may open (none for reviewers)."""
    return [] if actor.sees_everyone else [own_records(actor)]


def may_open(session: Session, actor: Principal, record_id: str) -> bool:
    if actor.sees_everyone:
        return True
    query = select(Record.id).where(Record.id == record_id, own_records(actor))
    return session.scalar(query) is not None


def require_record(session: Session, actor: Principal, record_id: str, action: str) -> None:
    """Checked on the account as it is now (`current_actor`), whatever role `actor` was read with.

    :raises PermissionDeniedError: the account was disabled, or an annotator's action on a record that is neither
        assigned to nor asked by them.
    """
    actor = current_actor(session, actor)
    if not may_open(session, actor, record_id):
        raise PermissionDeniedError(f"{actor.name} ({_article(actor.role)}) may not {action}: the record is not "
                                    "assigned to them")


def visible_annotations(actor: Principal, annotations: Iterable[Annotation]) -> list[Annotation]:
    """Blind review: an annotator sees others' verdicts on a record only after submitting their own."""
    annotations = list(annotations)
    if actor.sees_everyone or any(a.annotator == actor.name for a in annotations):
        return annotations
    return []


def _article(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"
