"""Logging in to the app (LOUPE_AUTH=password) and single-user mode, in AppTest."""

from __future__ import annotations

from datetime import timedelta

import pytest

import review.users
from configuration.settings import Settings
from review.db import open_database
from review.users import NAME_FREE_FAILURES, add_user, set_disabled
from tests.conftest import ADMIN, run_app

pytestmark = pytest.mark.slow


def add_users(data_dir, *users: tuple[str, str]) -> None:
    with open_database(Settings(data_dir=data_dir))() as session:
        for name, role in users:
            add_user(session, actor=ADMIN, name=name, role=role, password=f"{name}-password")


def log_in(at, name: str, password: str):
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    next(button for button in at.button if button.label == "Log in").click().run()
    assert not at.exception, at.exception
    return at


def titles(at) -> list[str]:
    return [title.value for title in at.title]


def test_without_accounts_the_login_page_says_how_to_create_one(demo_data_dir, monkeypatch):
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="password")
    assert titles(at) == ["Log in to Loupe"]
    assert any("cli.py users add NAME --role admin" in w.value for w in at.warning)


def test_login_roles_and_logout(demo_data_dir, monkeypatch):
    add_users(demo_data_dir, ("ana", "annotator"), ("root", "admin"))
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="password")
    log_in(at, "ana", "wrong password")
    assert titles(at) == ["Log in to Loupe"] and "wrong user name or password" in at.error[0].value

    log_in(at, "ana", "ana-password")
    assert titles(at) == ["Ask"]
    assert any("Logged in as **ana** (annotator)" in caption.value for caption in at.sidebar.caption)
    for page in ("users", "import_records", "batch", "adjudicate", "overview"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):  # not in an annotator's navigation
            at.switch_page(f"app_pages/{page}.py")

    with open_database(Settings(data_dir=demo_data_dir))() as session:  # disabled while logged in
        set_disabled(session, actor=ADMIN, name="ana", disabled=True)
    at.switch_page("app_pages/ask.py").run()
    assert titles(at) == ["Log in to Loupe"] and "was disabled" in at.warning[0].value

    log_in(at, "root", "root-password")
    at.switch_page("app_pages/users.py").run()
    assert titles(at) == ["Users"]
    names = list(at.dataframe[0].value["name"])
    assert names == ["ana", "root"]
    next(button for button in at.sidebar.button if button.label == "Log out").click().run()
    assert titles(at) == ["Log in to Loupe"]


def test_repeated_failures_make_the_name_wait(demo_data_dir, monkeypatch):
    """No longer a 15-minute lock: past the free failures the next attempt waits (here made 10 minutes long, so
    that a slow machine cannot outlast it between two clicks)."""
    monkeypatch.setattr(review.users, "BASE_DELAY", timedelta(minutes=10))
    monkeypatch.setattr(review.users, "MAX_DELAY", timedelta(minutes=10))
    add_users(demo_data_dir, ("ana", "annotator"))
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="password")
    for _ in range(NAME_FREE_FAILURES):
        log_in(at, "ana", "guess")
    log_in(at, "ana", "ana-password")
    assert titles(at) == ["Log in to Loupe"]
    assert "too many failed logins: try again in 600 second" in at.error[0].value


def test_single_user_mode_says_so_and_records_under_the_local_name(demo_data_dir, monkeypatch):
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="off", LOUPE_ANNOTATOR="solo")
    assert titles(at) == ["Ask"]
    assert any("Single-user mode" in caption.value for caption in at.sidebar.caption)
    assert at.sidebar.text_input(key="annotator").value == "solo"
