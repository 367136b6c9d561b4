"""Accounts and logins: hashed passwords, rate-limited and logged failures, disabled users, `cli.py users`."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

import cli
from configuration.settings import Settings
from review.access import Principal
from review.db import open_database
from review.errors import AuthenticationError, ReviewError
from review.models import LoginAttempt, User
from review.users import (
    BASE_DELAY,
    FAILURE_WINDOW,
    NAME_FREE_FAILURES,
    add_user,
    authenticate,
    login_wait,
    set_disabled,
    set_role,
)
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)


def test_password_is_stored_as_an_argon2_hash(sessions):  # noqa: F811
    with sessions() as session:
        add_user(session, actor=ADMIN, name="ana", role="annotator", password="correct horse")
        stored = session.get(User, "ana").password_hash
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    with sessions() as session:
        assert authenticate(session, name="ana", password="correct horse").role == "annotator"
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            authenticate(session, name="ana", password="wrong horse")
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            authenticate(session, name="nobody", password="correct horse")


@pytest.mark.parametrize(("fields", "message"), [
    ({"name": "ana", "role": "annotator", "password": "short"}, "at least 8 characters"),
    ({"name": " ana", "role": "annotator", "password": "long enough"}, "without surrounding spaces"),
    ({"name": "ana", "role": "boss", "password": "long enough"}, "role must be one of"),
])
def test_bad_accounts_are_refused(sessions, fields, message):  # noqa: F811
    with sessions() as session, pytest.raises(ReviewError, match=message):
        add_user(session, actor=ADMIN, **fields)


def test_failed_logins_are_throttled_and_logged(sessions, caplog):  # noqa: F811
    """Past NAME_FREE_FAILURES failures the next attempt waits (BASE_DELAY, then doubling), instead of the former
    hard 15-minute lock; an attempt refused during the wait is logged but not counted."""
    with sessions() as session:
        add_user(session, actor=ADMIN, name="ana", role="annotator", password="correct horse")
    caplog.set_level(logging.INFO, logger="loupe.auth")
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    with sessions() as session:
        for n in range(NAME_FREE_FAILURES):
            with pytest.raises(AuthenticationError, match="wrong"):
                authenticate(session, name="ana", password="guess", client="10.0.0.9", now=start + timedelta(seconds=n))
        last = start + timedelta(seconds=NAME_FREE_FAILURES - 1)
        with pytest.raises(AuthenticationError, match=r"too many failed logins: try again in 1 second\(s\)"):
            authenticate(session, name="ana", password="correct horse", client="10.0.0.9", now=last)
        attempts = session.scalars(select(LoginAttempt).where(LoginAttempt.name == "ana")).all()
        assert [a.succeeded for a in attempts] == [False] * (NAME_FREE_FAILURES + 1)
        assert {a.client for a in attempts} == {"10.0.0.9"}
        # once the wait has passed, the right password works again
        assert authenticate(session, name="ana", password="correct horse", now=last + BASE_DELAY).name == "ana"
    assert sum("failed login for 'ana' from 10.0.0.9" in r.getMessage() for r in caplog.records) == NAME_FREE_FAILURES
    assert any("login refused unchecked for 'ana'" in r.getMessage() for r in caplog.records)

    with sessions() as session:  # and failures older than the window are forgotten
        session.execute(update(LoginAttempt).values(at=LoginAttempt.at - FAILURE_WINDOW - timedelta(seconds=1)))
        session.commit()
        assert login_wait(session, "ana", "10.0.0.9", now=last) == timedelta(0)


def test_disabled_users_cannot_log_in_and_the_last_admin_stays(sessions):  # noqa: F811
    with sessions() as session:
        add_user(session, actor=ADMIN, name="root", role="admin", password="correct horse")
        add_user(session, actor=ADMIN, name="ana", role="annotator", password="correct horse")
        set_disabled(session, actor=ADMIN, name="ana", disabled=True)
        with pytest.raises(AuthenticationError, match="disabled"):
            authenticate(session, name="ana", password="correct horse")
        with pytest.raises(ReviewError, match="last enabled admin"):
            set_disabled(session, actor=ADMIN, name="root", disabled=True)
        with pytest.raises(ReviewError, match="last enabled admin"):
            set_role(session, actor=ADMIN, name="root", role="reviewer")
        set_disabled(session, actor=ADMIN, name="ana", disabled=False)
        set_role(session, actor=ADMIN, name="ana", role="admin")
        set_role(session, actor=ADMIN, name="root", role="reviewer")  # another admin exists now
        assert authenticate(session, name="root", password="correct horse").role == "reviewer"


def run_cli(monkeypatch, capsys, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_users(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert run_cli(monkeypatch, capsys, ["users", "add", "root", "--role", "admin"], "s3cret-pw\ns3cret-pw\n")[0] == 0
    code, _, err = run_cli(monkeypatch, capsys, ["users", "add", "ana", "--role", "annotator"], "s3cret-pw\nother-pw\n")
    assert code == 2 and "the two passwords differ" in err
    assert run_cli(monkeypatch, capsys, ["users", "add", "ana", "--role", "annotator", "--email", "Ana@Example.org"],
                   "ana-password\n")[0] == 0
    code, _, err = run_cli(monkeypatch, capsys, ["users", "add", "ana", "--role", "admin"], "whatever-pw\n")
    assert code == 2 and "exists already" in err
    assert run_cli(monkeypatch, capsys, ["users", "set-role", "ana", "reviewer"])[0] == 0
    assert run_cli(monkeypatch, capsys, ["users", "disable", "ana"])[0] == 0
    code, out, _ = run_cli(monkeypatch, capsys, ["users", "list"])
    assert out.splitlines() == ["ana\treviewer\tdisabled\tana@example.org", "root\tadmin\tenabled\t"]
    code, _, err = run_cli(monkeypatch, capsys, ["users", "disable", "root"])
    assert code == 2 and "last enabled admin" in err
    assert run_cli(monkeypatch, capsys, ["users", "enable", "ana"])[0] == 0
    assert run_cli(monkeypatch, capsys, ["users", "set-password", "ana"], "brand-new-pw\nbrand-new-pw\n")[0] == 0
    with open_database(Settings(data_dir=tmp_path / "data"))() as session:
        assert authenticate(session, name="ana", password="brand-new-pw").role == "reviewer"
    code, _, err = run_cli(monkeypatch, capsys, ["users", "set-role", "nobody", "admin"])
    assert code == 2 and "no user 'nobody'" in err


def test_single_sign_on_maps_a_verified_address_to_an_enabled_user(sessions):  # noqa: F811
    from review.users import principal_for_email

    with sessions() as session:
        add_user(session, actor=ADMIN, name="ana", role="reviewer", password="correct horse", email="Ana@Example.org")
        assert principal_for_email(session, " ana@example.ORG ") == Principal("ana", "reviewer")
        with pytest.raises(AuthenticationError, match="no enabled Loupe account has the e-mail address 'bob@x.org'"):
            principal_for_email(session, "bob@x.org")
        set_disabled(session, actor=ADMIN, name="ana", disabled=True)
        with pytest.raises(AuthenticationError, match="no enabled Loupe account"):
            principal_for_email(session, "ana@example.org")
