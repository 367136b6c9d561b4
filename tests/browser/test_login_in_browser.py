"""Team review in a real browser: users created with `cli.py users add` log in with the rights of their role
and no more (LOUPE_AUTH=password)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.browser.conftest import start_app
from tests.conftest import REPO

pytestmark = pytest.mark.slow

USERS = {"ana": "annotator", "ben": "annotator", "rita": "reviewer", "root": "admin"}
ALL_ROLES = {"Ask", "Queue", "Records", "Progress"}
PAGES = {"annotator": ALL_ROLES, "reviewer": ALL_ROLES | {"Adjudicate", "Overview", "Scorecard"},
         "admin": ALL_ROLES | {"Adjudicate", "Overview", "Scorecard", "Import", "Batch", "Users"}}


def cli(data_dir, *args: str, stdin: str = "") -> str:
    result = subprocess.run([sys.executable, "cli.py", *args], cwd=REPO, input=stdin, capture_output=True, text=True,
                            env={**os.environ, "LOUPE_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def team_app(tmp_path_factory):
    """Four users made with the CLI, a run of four records, each assigned to one of the two annotators."""
    data_dir, folder = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("records")
    for name, role in USERS.items():
        cli(data_dir, "users", "add", name, "--role", role, stdin=f"{name}-password\n{name}-password\n")
    lines = [{"id": f"r{n}", "question": f"Which seed was used in study {n}?", "answer": f"Seed {n}.",
              "contexts": [f"Study {n} fixed the random seed to {n}."], "doc_id": f"study{n}"} for n in range(4)]
    (folder / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    cli(data_dir, "import", str(folder / "records.jsonl"), "--run", "team")
    cli(data_dir, "assign", "--run", "team", "--annotators", "ana", "ben", "--overlap", "1")
    process, url = start_app(data_dir, {"LOUPE_AUTH": "password"})
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def page(browser, team_app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(team_app)
    page.get_by_label("User name").wait_for(timeout=90_000)
    yield page
    context.close()


def log_in(page, name: str, password: str) -> None:
    page.get_by_label("User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def dismiss_page_not_found(page) -> None:
    notice = page.get_by_text("Page not found")
    notice.wait_for(timeout=60_000)
    page.keyboard.press("Escape")
    notice.wait_for(state="detached", timeout=30_000)


def navigation(page) -> set[str]:
    links = page.locator("[data-testid=stSidebarNav] a")
    links.first.wait_for(timeout=60_000)
    return {text.strip() for text in links.all_inner_texts()}


def test_wrong_password_is_refused(page):
    log_in(page, "ana", "not her password")
    page.get_by_text("wrong user name or password").wait_for(timeout=30_000)
    assert page.locator("[data-testid=stSidebarNav]").count() == 0, "nothing but the login page is reachable"


@pytest.mark.parametrize("name", list(USERS))
def test_each_role_sees_its_pages_and_no_more(page, team_app, name):
    log_in(page, name, f"{name}-password")
    page.get_by_text(f"Logged in as {name} ({USERS[name]})").wait_for(timeout=60_000)
    assert navigation(page) == PAGES[USERS[name]]
    if USERS[name] == "annotator":
        page.get_by_role("link", name="Queue").click()
        page.get_by_text(re.compile(r"1 of 2 · 2 unreviewed by " + name)).wait_for(timeout=60_000)
        page.get_by_text("Filters and order").click()  # collapsed: the review panel gets the screen
        viewer = page.get_by_role("combobox", name=re.compile("Status as judged by"))
        viewer.wait_for()
        assert viewer.is_disabled(), "annotators see only their own statuses"
        page.goto(f"{team_app}/users")  # a page outside the role's navigation is not served, even by its URL
        dismiss_page_not_found(page)
        log_in(page, name, f"{name}-password")
        page.get_by_text(f"Logged in as {name}").wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert page.get_by_role("heading", name="Users").count() == 0
    if USERS[name] == "admin":
        page.get_by_role("link", name="Users").click()
        page.get_by_role("heading", name="Users").wait_for(timeout=60_000)
        page.get_by_role("button", name="Add user").wait_for(timeout=30_000)
