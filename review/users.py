"""Accounts: create, list, disable, change role or password; log in with failures throttled and logged.

Passwords are hashed with argon2id by argon2-cffi (the reference implementation's binding) with its default
parameters; a hash made under older parameters is upgraded at the next successful login. An unknown name is
checked against a dummy hash, so that a login takes as long whether or not the name exists.

Throttling: every attempt is a row of `login_attempts`. Failed logins are counted per name (since its last
successful login) and per client address, within FAILURE_WINDOW. Past a number of free failures
(NAME_FREE_FAILURES, CLIENT_FREE_FAILURES) each further one doubles the wait before the next attempt is checked,
from BASE_DELAY up to MAX_DELAY; there is no hard lock. An attempt made while a wait runs is refused unchecked,
logged, and not counted, so that nobody can keep someone else's account locked by trying it.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from review.access import ROLES, Principal, account_refusal, require_role
from review.errors import AuthenticationError, NotFoundError, ReviewError
from review.models import LoginAttempt, User, utcnow

MIN_PASSWORD_LENGTH = 8
NAME_FREE_FAILURES = 5  # failed logins of one name before each further one makes the next attempt wait
CLIENT_FREE_FAILURES = 20  # the same for one client address (offices share one behind NAT)
BASE_DELAY = timedelta(seconds=1)  # the wait after the first failure beyond the free ones; it doubles with each
MAX_DELAY = timedelta(minutes=5)
FAILURE_WINDOW = timedelta(hours=1)  # failures older than this are forgotten

log = logging.getLogger("loupe.auth")
_hasher = PasswordHasher()
_dummy_hash: str | None = None  # made on first use, with the current parameters, so that it costs what a real one does


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("no user has this password: it only makes unknown names take as long")
    return _dummy_hash


def _checked_name(name: str) -> str:
    if not name or name != name.strip() or len(name) > 200 or not name.isprintable():
        raise ReviewError(f"a user name must be 1-200 printable characters without surrounding spaces, got {name!r}")
    return name


def _checked_role(role: str) -> str:
    if role not in ROLES:
        raise ReviewError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def _hashed(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ReviewError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def get_user(session: Session, name: str) -> User:
    """:raises NotFoundError:"""
    user = session.get(User, name)
    if user is None:
        raise NotFoundError(f"no user {name!r}")
    return user


def add_user(session: Session, *, actor: Principal, name: str, role: str, password: str,
             email: str | None = None) -> User:
    """Create an account and commit it. :raises ReviewError: bad name, role or password, or the name is taken."""
    require_role(actor, "admin", "add users")
    user = User(name=_checked_name(name), role=_checked_role(role), password_hash=_hashed(password),
                email=(email or "").strip().lower() or None, disabled=False)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ReviewError(f"user {name!r} (or the e-mail address {email!r}) exists already") from None
    log.info("user %s added with role %s by %s", name, role, actor.name)
    return user


def list_users(session: Session, *, actor: Principal) -> list[User]:
    require_role(actor, "admin", "list users")
    return list(session.scalars(select(User).order_by(User.name)))


def set_disabled(session: Session, *, actor: Principal, name: str, disabled: bool) -> User:
    """Disable (or enable again) an account; a disabled user cannot log in, and their open sessions end (at their
    next step), also if the account is enabled again."""
    require_role(actor, "admin", "disable users")
    user = get_user(session, name)
    if disabled:
        _keep_an_admin(session, user)
        _end_sessions(user)
    user.disabled, user.updated_at = disabled, utcnow()
    session.commit()
    log.info("user %s %s by %s", name, "disabled" if disabled else "enabled", actor.name)
    return user


def set_role(session: Session, *, actor: Principal, name: str, role: str) -> User:
    require_role(actor, "admin", "change roles")
    user = get_user(session, name)
    if _checked_role(role) != "admin":
        _keep_an_admin(session, user)
    user.role, user.updated_at = role, utcnow()
    session.commit()
    log.info("user %s now has role %s (by %s)", name, role, actor.name)
    return user


def set_password(session: Session, *, actor: Principal, name: str, password: str) -> User:
    """Admins set anyone's password; everyone else only their own. The user's open sessions end (at their next
    step): whoever knew the old password is logged out."""
    if actor.name != name:
        require_role(actor, "admin", "set other users' passwords")
    user = get_user(session, name)
    user.password_hash, user.updated_at = _hashed(password), utcnow()
    _end_sessions(user)
    session.commit()
    log.info("password of %s set by %s", name, actor.name)
    return user


def _end_sessions(user: User) -> None:
    """Sessions keep the credentials version they logged in under (review.access.current_actor compares it)."""
    user.credentials_version = (user.credentials_version or 0) + 1


def _keep_an_admin(session: Session, user: User) -> None:
    """Refuse to disable or demote the last enabled admin: nobody could manage users any more."""
    if user.role != "admin" or user.disabled:
        return
    admins = session.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.disabled.is_(False)))
    if admins <= 1:
        raise ReviewError(f"{user.name} is the last enabled admin; make someone else an admin first")


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def load_principal(session: Session, name: str, credentials_version: int) -> Principal:
    """The logged-in user as of now, for a session that logged in under `credentials_version`: roles are re-read
    on every step.

    :raises AuthenticationError: the session has ended: the account was disabled or removed, or its password set.
    """
    user = session.get(User, name)
    refusal = account_refusal(user, name, credentials_version)
    if refusal:
        raise AuthenticationError(refusal)
    return Principal(user.name, user.role, user.credentials_version)


def principal_for_email(session: Session, email: str) -> Principal:
    """Single sign-on (OIDC): the enabled user whose e-mail address the identity provider vouched for.

    :raises AuthenticationError: no user has this address, or that user is disabled.
    """
    address = (email or "").strip().lower()
    user = session.scalar(select(User).where(User.email == address)) if address else None
    if user is None or user.disabled:
        log.warning("single sign-on of %r refused: %s", address, "disabled" if user else "no such user")
        raise AuthenticationError(f"no enabled Loupe account has the e-mail address {address!r}; ask an admin to "
                                  "add one (cli.py users add NAME --role ROLE --email ADDRESS)")
    _record_attempt(session, user.name, True, "oidc")
    log.info("single sign-on of %s (%s) as %s", user.name, user.role, address)
    return Principal(user.name, user.role, user.credentials_version)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives naive UTC


def throttle_delay(failures: int, free: int) -> timedelta:
    """The wait after the last counted failure: none within the free failures, then doubling up to MAX_DELAY."""
    if failures < free:
        return timedelta(0)
    return min(BASE_DELAY * 2 ** min(failures - free, 30), MAX_DELAY)


@dataclass
class _Counter:
    """Counted failures of one name or one client address, and when the last of them happened."""

    free: int
    failures: int = 0
    last: datetime | None = None

    def wait_until(self) -> datetime | None:
        delay = throttle_delay(self.failures, self.free)
        return self.last + delay if self.last is not None and delay else None

    def throttled_at(self, moment: datetime) -> bool:
        until = self.wait_until()
        return until is not None and moment < until


def _counters(session: Session, name: str, client: str | None, now: datetime) -> tuple[_Counter, _Counter]:
    """Replay the window's attempts on this name and from the client addresses involved: a failure counts unless
    it was refused unchecked because a wait was running (its name's, or its own address's); a successful login of
    the name starts the name's count afresh (an address's count goes on: one's own account would reset it)."""
    since = now - FAILURE_WINDOW
    clients_of_name = (select(LoginAttempt.client)
                       .where(LoginAttempt.name == name, LoginAttempt.at >= since, LoginAttempt.client.is_not(None))
                       .distinct().scalar_subquery())
    matches = or_(LoginAttempt.name == name, LoginAttempt.client.in_(clients_of_name))
    if client:
        matches = or_(matches, LoginAttempt.client == client)
    query = (select(LoginAttempt.name, LoginAttempt.client, LoginAttempt.succeeded, LoginAttempt.at)
             .where(matches, LoginAttempt.at >= since).order_by(LoginAttempt.at, LoginAttempt.id))
    by_name, by_client = _Counter(NAME_FREE_FAILURES), defaultdict(lambda: _Counter(CLIENT_FREE_FAILURES))
    for attempt_name, attempt_client, succeeded, at in session.execute(query):
        at, mine = _aware(at), attempt_name == name
        if succeeded:
            if mine:
                by_name.failures, by_name.last = 0, None
            continue
        address = by_client[attempt_client] if attempt_client else None
        if (mine and by_name.throttled_at(at)) or (address is not None and address.throttled_at(at)):
            continue  # refused unchecked: not counted
        for counter in ([by_name] if mine else []) + ([address] if address is not None else []):
            counter.failures, counter.last = counter.failures + 1, at
    return by_name, by_client[client] if client else _Counter(CLIENT_FREE_FAILURES)


def login_wait(session: Session, name: str, client: str | None = None, now: datetime | None = None) -> timedelta:
    """How long a login of `name` from `client` must wait before it is checked (zero: it is checked now)."""
    now = now or utcnow()
    client = (client or None) and client[:100]
    waits = [counter.wait_until() for counter in _counters(session, (name or "").strip()[:200], client, now)]
    return max([until - now for until in waits if until is not None and until > now], default=timedelta(0))


def authenticate(session: Session, *, name: str, password: str, client: str | None = None,
                 now: datetime | None = None) -> Principal:
    """Check a login and record the attempt.

    :raises AuthenticationError: unknown name or wrong password (one message and the same work for both, so that
        names cannot be probed), a disabled account, or a wait running for this name or this client address
        (see the module docstring).
    """
    name, client = (name or "").strip(), (client or None) and client[:100]
    key = name[:200]  # as the attempt is stored; a longer name belongs to nobody
    now = now or utcnow()
    wait = login_wait(session, key, client, now)
    if wait > timedelta(0):
        _record_attempt(session, name, False, client, now)
        seconds = math.ceil(wait.total_seconds())
        log.warning("login refused unchecked for %r from %s: throttled for %d more second(s)", name, client or "?",
                    seconds)
        raise AuthenticationError(f"too many failed logins: try again in {seconds} second(s)")
    user = session.get(User, name) if name else None
    if not _verified(user.password_hash if user is not None else _dummy(), password) or user is None:
        _record_attempt(session, name, False, client, now)
        log.warning("failed login for %r from %s", name, client or "?")
        raise AuthenticationError("wrong user name or password")
    if user.disabled:
        _record_attempt(session, name, False, client, now)
        log.warning("login of disabled user %r from %s", name, client or "?")
        raise AuthenticationError(f"the account {name!r} is disabled; ask an admin")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    _record_attempt(session, name, True, client, now)
    log.info("login of %s (%s) from %s", name, user.role, client or "?")
    return Principal(user.name, user.role, user.credentials_version)


def _verified(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _record_attempt(session: Session, name: str, succeeded: bool, client: str | None,
                    at: datetime | None = None) -> None:
    session.add(LoginAttempt(name=name[:200], succeeded=succeeded, client=(client or None) and client[:100],
                             at=at or utcnow()))
    session.commit()
