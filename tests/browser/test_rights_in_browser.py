"""Rights changed while a user has the Queue open (LOUPE_AUTH=password, a real browser): the review panel is a
fragment, whose buttons rerun only the fragment, so its next verdict must be refused by the data function itself,
with the reason on the page, and nothing stored."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from configuration.settings import Settings
from review.db import open_database
from review.models import Annotation
from tests.browser.conftest import start_app
from tests.browser.test_login_in_browser import cli, log_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def team_app(tmp_path_factory):
    """Accounts rita (reviewer), ana and ben (annotators); four analysed records, all assigned to ben."""
    data_dir, folder = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("records")
    for name, role in (("rita", "reviewer"), ("ana", "annotator"), ("ben", "annotator")):
        cli(data_dir, "users", "add", name, "--role", role, stdin=f"{name}-password\n{name}-password\n")
    lines = [{"id": f"r{n}", "question": f"Which seed was used in study {n}?", "answer": f"Seed {n}.",
              "contexts": [f"Study {n} fixed the random seed to {n}."], "doc_id": f"study{n}"} for n in range(4)]
    (folder / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    cli(data_dir, "import", str(folder / "records.jsonl"), "--run", "team")
    cli(data_dir, "assign", "--run", "team", "--annotators", "ana", "--overlap", "1")
    # analysed ahead: no record waits for the background worker, whose completion reruns the whole page
    cli(data_dir, "analyze", "--run", "team")
    process, url = start_app(data_dir, {"LOUPE_AUTH": "password"})
    yield url, data_dir
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def page(browser, team_app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(team_app[0])
    page.get_by_label("User name").wait_for(timeout=90_000)
    yield page
    context.close()


def open_queue(page, name: str) -> None:
    log_in(page, name, f"{name}-password")
    page.get_by_text(f"Logged in as {name}").wait_for(timeout=60_000)
    page.get_by_role("link", name="Queue").click()
    page.get_by_text(re.compile(r"^1 of 4")).wait_for(timeout=60_000)


def verdicts_of(data_dir, name: str) -> list[str]:
    with open_database(Settings(data_dir=data_dir))() as session:
        return list(session.scalars(select(Annotation.verdict).where(Annotation.annotator == name)))


def accept(page):
    return page.get_by_role("button", name=re.compile(r"^Accept"))


def test_a_demoted_reviewers_next_verdict_is_refused(page, team_app):
    data_dir = team_app[1]
    open_queue(page, "rita")  # a reviewer: every record of the run, none assigned to her
    cli(data_dir, "users", "set-role", "rita", "annotator")

    accept(page).click()
    page.get_by_text("rita (an annotator) may not open this record: the record is not assigned to them").wait_for(
        timeout=60_000)
    assert verdicts_of(data_dir, "rita") == []
    page.mouse.click(5, 300)  # the focus out of any field, then Next's key
    page.keyboard.press("ArrowRight")  # the queue is read again, for her role as it is now
    page.get_by_text(re.compile(r"rita is an annotator and may not see records as judged by\s+everyone")).wait_for(
        timeout=60_000)
    assert accept(page).count() == 0 and verdicts_of(data_dir, "rita") == []


def test_a_disabled_annotators_next_verdicts_are_refused(page, team_app):
    data_dir = team_app[1]
    open_queue(page, "ana")
    cli(data_dir, "users", "disable", "ana")

    accept(page).click()
    page.get_by_text("the account 'ana' was disabled: nothing was done").wait_for(timeout=60_000)
    page.mouse.click(5, 300)  # the focus out of any field, then Accept's key: a second press
    page.keyboard.press("a")
    page.wait_for_timeout(2_000)
    assert verdicts_of(data_dir, "ana") == []
    page.get_by_role("link", name="Ask").click()  # the next full run logs her out
    page.get_by_text("You are logged out: the account 'ana' was disabled").wait_for(timeout=60_000)
