"""Ask says when its context was cut (loupe.qa.bounded_context): the record keeps the note (meta `context_cut`), the
Ask page shows it beside the answer and `cli.py ask` prints it as a NOTE (and keeps it in --json). On the demo corpus
the top-k cap of 50 retrieves about 23 passages of about 19,000 characters, past the 12,000-character budget."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

import cli
from loupe.qa import MAX_CONTEXT_CHARS
from tests.conftest import run_app
from ui.text_safety import escape_markdown

pytestmark = pytest.mark.slow

QUESTION = "Which GPU was used for training?"
CUT_INFO = "The answer was generated from part of the passages: "


def stored_meta(data_dir) -> list[dict]:
    """The meta of every record in the data directory's review database."""
    from configuration.settings import Settings
    from review.db import open_database
    from review.models import Record

    sessions = open_database(Settings(data_dir=data_dir, generator_kind="extractive").validate())
    with sessions() as session:
        return [dict(meta or {}) for meta in session.scalars(select(Record.meta))]


def ask_on_page(app, top_k: int) -> None:
    app.text_input(key="ask_question").input(QUESTION)
    app.number_input(key="ask_top_k").set_value(top_k)
    app.button[0].click().run()
    assert not app.exception, app.exception


def test_the_ask_page_stores_and_shows_what_was_cut(demo_data_dir, monkeypatch):
    app = run_app(monkeypatch, demo_data_dir, LOUPE_GENERATOR_KIND="extractive")
    ask_on_page(app, top_k=3)
    assert not [info for info in app.caption if info.value.startswith(CUT_INFO)], "three passages fit: nothing said"
    assert "context_cut" not in stored_meta(demo_data_dir)[0]

    ask_on_page(app, top_k=50)
    [shown] = [info.value for info in app.caption if info.value.startswith(CUT_INFO)]
    [cut] = [meta["context_cut"] for meta in stored_meta(demo_data_dir) if "context_cut" in meta]
    assert cut.startswith("the generator was given ") and f"{MAX_CONTEXT_CHARS:,} characters" in cut
    assert shown == CUT_INFO + escape_markdown(cut) + ".", "the stored note, as literal text (ui.text_safety)"


def test_cli_ask_notes_the_cut_on_stderr_and_in_json(demo_data_dir, monkeypatch, capsys):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(demo_data_dir))
    monkeypatch.setenv("LOUPE_GENERATOR_KIND", "extractive")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["ask", QUESTION, "--top-k", "3"]) == 0
    assert "NOTE: context cut" not in capsys.readouterr().err, "three passages fit: nothing said"

    assert cli.main(["ask", QUESTION, "--top-k", "50", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    note = data["context_note"]
    assert f"of the {len(data['passages'])} passages" in note, "the JSON keeps every passage and says how many"
    assert err.splitlines() == [f"NOTE: context cut: {note}"]

    assert cli.main(["ask", QUESTION, "--top-k", "50"]) == 0
    out, err = capsys.readouterr()
    assert f"NOTE: context cut: {note}" in err.splitlines() and note not in out
