"""Answer again's Cancel in a real browser: pressed while the bundled model streams, the generator stops, the page says
that nothing was stored, and no record was added. The app answers Ask with the extractive answerer (quick), and
Answer again with the bundled SmolLM2 (tests/bundled.py). The default prompt asks for one or two sentences, which the
model writes in a second or two, sooner than a click lands; so this app's prompt asks for a long count and allows 400
new tokens: many seconds of streaming, long enough to press Cancel after the first visible token. The test waits only
for what the page shows."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from configuration.model_paths import BUNDLED_GENERATOR
from configuration.settings import Settings
from tests.browser.conftest import start_app
from tests.bundled import prepare_bundled

pytestmark = pytest.mark.slow

CANCELLED = "Answer again was cancelled: the generator stopped and nothing was stored."


LONG_ANSWER = {"LOUPE_GENERATOR_MAX_NEW_TOKENS": "400",
               "LOUPE_PROMPT_TEMPLATE": "{% for passage in documents %}{{ passage.content }}\n{% endfor %}"
                                        "Count from 1 to 200, one number a line, in words. {{ question }}"}


@pytest.fixture
def app(demo_data_dir):
    prepare_bundled()  # once per machine; the app then loads the folder from the model cache
    process, url = start_app(demo_data_dir, LONG_ANSWER)
    yield url, demo_data_dir
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture
def page(browser, app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)  # a busy machine: each rerun waits its turn
    page.goto(app[0])
    page.get_by_label("Question").wait_for(timeout=90_000)
    yield page
    context.close()


def record_count(data_dir) -> int:
    from review.db import open_database
    from review.models import Record

    sessions = open_database(Settings(data_dir=data_dir, generator_kind="extractive").validate())
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Record))


def test_cancel_stops_a_streaming_answer_again_and_stores_nothing(page, app):
    page.get_by_label("Question").fill("Which GPU was used for training?")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.get_by_text("Passages (").wait_for(timeout=90_000)
    assert record_count(app[1]) == 1

    page.get_by_text("Answer again (same passages, compare generators)").click()
    page.get_by_label("Generator").click()
    page.get_by_role("option", name=f"Bundled: transformers · {BUNDLED_GENERATOR}").click()
    page.get_by_role("button", name="Answer again", exact=True).click()
    cancel = page.get_by_role("button", name="Cancel", exact=True)
    cancel.wait_for(timeout=120_000)  # drawn once the bundled model has loaded, before it streams
    page.get_by_text(re.compile("▌")).first.wait_for(timeout=120_000)  # streaming: the first tokens and the cursor
    cancel.click()

    page.get_by_text(CANCELLED).wait_for(timeout=60_000)
    assert not page.get_by_text("Answered again", exact=True).count(), "no comparison: nothing was answered"
    assert record_count(app[1]) == 1, "the cancelled answer was not stored"
