"""A degenerate output of the bundled model on the Ask page and in `cli.py ask`: the page shows the extractive
answer with a notice naming why, the CLI says it as a NOTE and keeps the model's output in --json (issue 22).
The bundled model is replaced by tests.test_degeneration's replay of a recorded output of it."""

from __future__ import annotations

import json

import pytest

import cli
from tests.conftest import run_app
from tests.test_degeneration import WORDLESS_ENUMERATION, bundled_stand_in
from ui.text_safety import escape_markdown

pytestmark = pytest.mark.slow

QUESTION = "Which metrics were used to evaluate the model?"
REASON = "the bundled model enumerated numbers without words ('1. 1.1.1'); showing the extractive answer"


CUT_OUTPUT = "The models were scored by F1 on held-out sites. Precision and recall were also"
CUT = "left out an unfinished last sentence ('Precision and recall were also')"


@pytest.fixture
def cut_model(monkeypatch):
    """The configured generator replays an output that stopped at its token limit mid-sentence."""
    monkeypatch.setattr("loupe.qa.choose_generator",
                        lambda settings, *args: bundled_stand_in(CUT_OUTPUT, finish_reason="length"))


@pytest.fixture
def degenerate_model(monkeypatch):
    """The configured generator, as `choose_generator` builds it, replays a degenerate output."""
    monkeypatch.setattr("loupe.qa.choose_generator", lambda settings, *args: bundled_stand_in(WORDLESS_ENUMERATION))


def test_the_ask_page_shows_the_extractive_answer_and_says_why(demo_data_dir, monkeypatch, degenerate_model):
    app = run_app(monkeypatch, demo_data_dir)
    app.text_input(key="ask_question").input(QUESTION)
    app.button[0].click().run()
    assert not app.exception, app.exception
    warnings = [warning.value for warning in app.warning]
    assert "The extractive answerer answered instead: " + escape_markdown(REASON) in warnings  # while it streamed
    assert "Answered by the extractive fallback: " + escape_markdown(REASON) in warnings  # with the stored record
    shown = " ".join(element.value for element in app.get("html") if hasattr(element, "value"))
    assert "loupe-answer" in shown and "1.1.1" not in shown  # the extractive answer is the one shown


def test_cli_ask_notes_the_fallback_and_keeps_the_output(demo_data_dir, monkeypatch, capsys, degenerate_model):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(demo_data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["ask", QUESTION, "--json"]) == 0
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert f"NOTE: using the extractive answerer: {REASON}" in captured.err
    assert answer["generator"]["kind"] == "extractive" and answer["generator"]["fallback_reason"] == REASON
    assert answer["generator"]["raw_output"] == WORDLESS_ENUMERATION
    assert "1.1.1" not in answer["answer"]


def test_a_cut_answer_is_said_on_the_page_and_in_the_cli(demo_data_dir, monkeypatch, capsys, cut_model):
    app = run_app(monkeypatch, demo_data_dir)
    app.text_input(key="ask_question").input(QUESTION)
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert "Cut from the model's output (the record keeps it whole): " + escape_markdown(CUT) + "." in [
        caption.value for caption in app.caption]
    assert cli.main(["ask", QUESTION, "--json"]) == 0
    captured = capsys.readouterr()
    assert f"NOTE: answer cut: {CUT} (the model's whole output: generator.raw_output in --json)" in captured.err
    answer = json.loads(captured.out)
    assert answer["answer"] == "The models were scored by F1 on held-out sites."
    assert answer["generator"]["raw_output"] == CUT_OUTPUT and answer["generator"]["answer_cut"] == CUT
