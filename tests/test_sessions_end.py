"""Setting a password or disabling an account ends that user's open sessions (LOUPE_AUTH=password): in AppTest
across full runs (the data functions a fragment's buttons call: tests/test_rights_recheck.py)."""

from __future__ import annotations

import pytest

from configuration.settings import Settings
from review.db import open_database
from review.users import set_disabled, set_password
from tests.conftest import ADMIN, run_app
from tests.test_app_auth import add_users, log_in, titles

pytestmark = pytest.mark.slow


def admin_does(data_dir, change) -> None:
    with open_database(Settings(data_dir=data_dir))() as session:
        change(session)


@pytest.mark.parametrize("change", [
    lambda session: set_password(session, actor=ADMIN, name="ben", password="a new password"),
    lambda session: (set_disabled(session, actor=ADMIN, name="ben", disabled=True),
                     set_disabled(session, actor=ADMIN, name="ben", disabled=False)),
], ids=["password set", "disabled and enabled again"])
def test_an_open_session_ends_at_the_next_full_run(demo_data_dir, monkeypatch, change):
    add_users(demo_data_dir, ("ben", "annotator"))
    at = log_in(run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="password"), "ben", "ben-password")
    at.switch_page("app_pages/queue.py").run()
    assert titles(at) != ["Log in to Loupe"]
    admin_does(demo_data_dir, change)

    at.switch_page("app_pages/ask.py").run()
    assert not at.exception, at.exception
    assert titles(at) == ["Log in to Loupe"]
    assert "You are logged out: the password of 'ben' was changed, or the account disabled" in at.warning[0].value


def test_a_new_login_with_the_new_password_works(demo_data_dir, monkeypatch):
    add_users(demo_data_dir, ("ben", "annotator"))
    admin_does(demo_data_dir, lambda session: set_password(session, actor=ADMIN, name="ben", password="a new password"))
    at = log_in(run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="password"), "ben", "a new password")
    at.switch_page("app_pages/ask.py").run()
    assert titles(at) == ["Ask"]

