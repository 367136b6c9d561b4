"""Logins: unknown names cost as much as known ones; failures throttled per name and per client address with a
growing wait (no hard lock), and attempts refused during a wait do not count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

import review.users as users
from review.errors import AuthenticationError
from review.models import LoginAttempt
from review.users import (
    BASE_DELAY,
    CLIENT_FREE_FAILURES,
    MAX_DELAY,
    NAME_FREE_FAILURES,
    add_user,
    authenticate,
    login_wait,
    throttle_delay,
)
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fail(session, name: str, when: datetime, client: str | None = "10.0.0.9", expect: str = "wrong") -> None:
    with pytest.raises(AuthenticationError, match=expect):
        authenticate(session, name=name, password="guess", client=client, now=when)


@pytest.fixture
def ana(sessions):  # noqa: F811
    with sessions() as session:
        add_user(session, actor=ADMIN, name="ana", role="annotator", password="correct horse")
    return sessions


class Spy:
    """Stands in for the module's PasswordHasher and records what verify() was asked."""

    def __init__(self, real):
        self.real, self.verified = real, []

    def verify(self, password_hash, password):
        self.verified.append(password_hash)
        return self.real.verify(password_hash, password)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_an_unknown_name_is_checked_against_a_dummy_hash(ana, monkeypatch):
    spy = Spy(users._hasher)
    monkeypatch.setattr(users, "_hasher", spy)
    with ana() as session:
        for name in ("nobody", "", "x" * 300):
            with pytest.raises(AuthenticationError, match="wrong user name or password"):
                authenticate(session, name=name, password="correct horse", now=at(0))
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            authenticate(session, name="ana", password="wrong horse", now=at(1))
    assert len(spy.verified) == 4, "every attempt that is checked costs one argon2 verification"
    dummy, real = spy.verified[0], spy.verified[3]
    assert spy.verified[:3] == [dummy] * 3 and dummy != real
    assert dummy.startswith("$argon2id$") and dummy.split("$")[3] == real.split("$")[3], "same parameters"


def test_the_wait_grows_and_is_capped():
    free = NAME_FREE_FAILURES
    assert [throttle_delay(n, free) for n in range(free)] == [timedelta(0)] * free
    assert [throttle_delay(free + k, free) for k in range(4)] == [BASE_DELAY * 2**k for k in range(4)]
    assert throttle_delay(free + 1000, free) == MAX_DELAY


def test_a_name_waits_longer_after_each_failure_and_never_locks(ana):
    with ana() as session:
        for n in range(NAME_FREE_FAILURES):
            fail(session, "ana", at(n))
        clock = NAME_FREE_FAILURES - 1
        for k in range(4):  # each checked failure past the free ones doubles the wait
            assert login_wait(session, "ana", "10.0.0.9", at(clock)) == BASE_DELAY * 2**k
            clock += (BASE_DELAY * 2**k).total_seconds()
            fail(session, "ana", at(clock))
        assert login_wait(session, "ana", "10.0.0.9", at(clock)) == BASE_DELAY * 2**4
        # the right password, once the wait has run out, logs in
        assert authenticate(session, name="ana", password="correct horse", now=at(clock) + BASE_DELAY * 2**4).name == "ana"
        assert login_wait(session, "ana", "10.0.0.10", at(clock + 100)) == timedelta(0), "a success starts afresh"


def test_attempts_refused_during_a_wait_are_logged_and_not_counted(ana):
    with ana() as session:
        for n in range(NAME_FREE_FAILURES):
            fail(session, "ana", at(n), client="203.0.113.7")
        last = at(NAME_FREE_FAILURES - 1)
        for k in range(200):  # an attacker hammering the name during its wait
            fail(session, "ana", last + timedelta(milliseconds=k * 4), client=f"198.51.100.{k % 50}",
                 expect="too many failed logins")
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == NAME_FREE_FAILURES + 200
        assert login_wait(session, "ana", "192.0.2.1", last) == BASE_DELAY, "the wait did not grow"
        assert authenticate(session, name="ana", password="correct horse", client="192.0.2.1",
                            now=last + BASE_DELAY).name == "ana"


def test_one_client_address_is_throttled_across_names(ana):
    with ana() as session:
        for n in range(CLIENT_FREE_FAILURES):  # one guess at each of many names: no name reaches its limit
            fail(session, f"user{n}", at(n), client="203.0.113.7")
        last = at(CLIENT_FREE_FAILURES - 1)
        assert login_wait(session, "ana", "203.0.113.7", last) == BASE_DELAY
        with pytest.raises(AuthenticationError, match="too many failed logins"):
            authenticate(session, name="ana", password="correct horse", client="203.0.113.7", now=last)
        # ana herself, from her own address, is not held up by the other address's failures
        assert authenticate(session, name="ana", password="correct horse", client="192.0.2.1", now=last).name == "ana"


def test_a_throttled_address_cannot_push_other_names_over_their_limit(ana):
    with ana() as session:
        for n in range(CLIENT_FREE_FAILURES):
            fail(session, f"user{n}", at(n), client="203.0.113.7")
        last = at(CLIENT_FREE_FAILURES - 1)
        for k in range(NAME_FREE_FAILURES * 3):  # refused by the address's wait: none of them counts for ana
            fail(session, "ana", last + timedelta(milliseconds=k), client="203.0.113.7", expect="too many failed logins")
        assert login_wait(session, "ana", "192.0.2.1", last + timedelta(seconds=0.5)) == timedelta(0)
