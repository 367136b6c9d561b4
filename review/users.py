"""Accounts: create, list, disable, change role or password; log in with failures rate-limited and logged.

Passwords are hashed with argon2id by argon2-cffi (the reference implementation's binding) with its default
parameters; a hash made under older parameters is upgraded at the next successful login.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from review.access import ROLES, Principal, require_role
from review.errors import AuthenticationError, NotFoundError, ReviewError
from review.models import LoginAttempt, User, utcnow

MIN_PASSWORD_LENGTH = 8
MAX_FAILURES = 5  # failed logins of one name within FAILURE_WINDOW lock that name until the window has passed
FAILURE_WINDOW = timedelta(minutes=15)

log = logging.getLogger("loupe.auth")
_hasher = PasswordHasher()


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
    """Disable (or enable again) an account; a disabled user cannot log in and is logged out at their next step."""
    require_role(actor, "admin", "disable users")
    user = get_user(session, name)
    if disabled:
        _keep_an_admin(session, user)
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
    """Admins set anyone's password; everyone else only their own."""
    if actor.name != name:
        require_role(actor, "admin", "set other users' passwords")
    user = get_user(session, name)
    user.password_hash, user.updated_at = _hashed(password), utcnow()
    session.commit()
    log.info("password of %s set by %s", name, actor.name)
    return user


def _keep_an_admin(session: Session, user: User) -> None:
    """Refuse to disable or demote the last enabled admin: nobody could manage users any more."""
    if user.role != "admin" or user.disabled:
        return
    admins = session.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.disabled.is_(False)))
    if admins <= 1:
        raise ReviewError(f"{user.name} is the last enabled admin; make someone else an admin first")


def user_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def load_principal(session: Session, name: str) -> Principal | None:
    """The logged-in user as of now (None once disabled or deleted): roles are re-read on every step."""
    user = session.get(User, name)
    if user is None or user.disabled:
        return None
    return Principal(user.name, user.role)


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
    return Principal(user.name, user.role)


def recent_failures(session: Session, name: str, now: datetime | None = None) -> list[datetime]:
    """Times of the failed logins of `name` within the failure window, oldest first."""
    since = (now or utcnow()) - FAILURE_WINDOW
    query = (select(LoginAttempt.at).where(LoginAttempt.name == name, LoginAttempt.succeeded.is_(False),
                                           LoginAttempt.at >= since).order_by(LoginAttempt.at))
    return list(session.scalars(query))


def authenticate(session: Session, *, name: str, password: str, client: str | None = None) -> Principal:
    """Check a login and record the attempt.

    :raises AuthenticationError: unknown name or wrong password (one message for both, so that names cannot be
        probed), a disabled account, or MAX_FAILURES failures of this name within FAILURE_WINDOW.
    """
    name = (name or "").strip()
    now = utcnow()
    failures = recent_failures(session, name, now)
    if len(failures) >= MAX_FAILURES:
        oldest = failures[0] if failures[0].tzinfo else failures[0].replace(tzinfo=now.tzinfo)  # SQLite: naive UTC
        wait = int(((oldest + FAILURE_WINDOW) - now).total_seconds() // 60) + 1
        _record_attempt(session, name, False, client)
        log.warning("login refused for %r from %s: %d failures in %s", name, client or "?", len(failures), FAILURE_WINDOW)
        raise AuthenticationError(f"too many failed logins for {name!r}: try again in {wait} minute(s)")
    user = session.get(User, name) if name else None
    if user is None or not _verified(user, password):
        _record_attempt(session, name, False, client)
        log.warning("failed login for %r from %s", name, client or "?")
        raise AuthenticationError("wrong user name or password")
    if user.disabled:
        _record_attempt(session, name, False, client)
        log.warning("login of disabled user %r from %s", name, client or "?")
        raise AuthenticationError(f"the account {name!r} is disabled; ask an admin")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    _record_attempt(session, name, True, client)
    log.info("login of %s (%s) from %s", name, user.role, client or "?")
    return Principal(user.name, user.role)


def _verified(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _record_attempt(session: Session, name: str, succeeded: bool, client: str | None) -> None:
    session.add(LoginAttempt(name=name[:200], succeeded=succeeded, client=(client or None) and client[:100]))
    session.commit()
