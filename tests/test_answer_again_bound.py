"""Answer again gives the generator the same bounded context as Ask (loupe.qa.bounded_context), says what was cut,
and can be cancelled between two tokens, storing nothing. A record of 120 imported passages through the real import,
database and extractive answerer; the cancellation with the bundled model."""

from __future__ import annotations

import json
import threading

import pytest
from haystack import Document
from sqlalchemy import func, select

from loupe.generators import GenerationCancelled, cancellable
from loupe.qa import MAX_CONTEXT_CHARS, MAX_CONTEXT_PASSAGES, bounded_context
from tests.conftest import ADMIN
from tests.test_bundled_model import bundled_choice, bundled_folder  # noqa: F401  (fixtures)

PASSAGES = 120


@pytest.fixture
def many_passages(tmp_path, monkeypatch):
    """A data directory holding one imported record of 120 passages of about 300 characters (36,000 in all)."""
    import cli
    from configuration.settings import Settings
    from review.db import open_database
    from review.models import Record

    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    contexts = [f"Passage {n}: the detector was trained with PyTorch on {n} GPUs for twelve hours, and its recordings "
                f"were collected at dawn in forest {n} over two summers by volunteers of the survey. " * 2
                for n in range(PASSAGES)]
    line = {"id": "big", "question": "Which framework trained the detector?", "answer": "PyTorch.",
            "contexts": contexts}
    (tmp_path / "big.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert cli.main(["import", str(tmp_path / "big.jsonl"), "--run", "big"]) == 0
    settings = Settings(data_dir=tmp_path / "data", generator_kind="extractive").validate()
    sessions = open_database(settings)
    with sessions() as session:
        record_id = session.scalar(select(Record.id).where(Record.run == "big"))
    return settings, sessions, record_id, contexts


def record_count(sessions) -> int:
    from review.models import Record

    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Record))


def test_answer_again_gives_the_generator_asks_budget_and_says_what_was_cut(many_passages):
    from loupe.qa import Asker
    from review.asking import answer_again

    settings, sessions, record_id, contexts = many_passages
    asker = Asker(settings)
    again = answer_again(sessions, asker, actor=ADMIN, record_id=record_id)

    passage_text = sum(len(text) for text in contexts)
    assert passage_text > 3 * MAX_CONTEXT_CHARS
    assert len(again.prompt) < MAX_CONTEXT_CHARS + 3_000, "the prompt holds the budget, not all 120 passages"
    given = [text for text in contexts if text in again.prompt]
    assert given == contexts[: len(given)] and 0 < len(given) < PASSAGES, "the leading passages, in their order"
    assert again.meta["context_cut"] == (
        f"the generator was given {len(given)} of the {PASSAGES} passages (at most {MAX_CONTEXT_PASSAGES} passages "
        f"and {MAX_CONTEXT_CHARS:,} characters of their text, in their order)")
    assert len(again.passages) == PASSAGES, "the record keeps every passage, for the comparison"


def test_the_budget_cuts_passage_count_and_a_single_long_passage():
    short = [Document(content=f"passage {n}") for n in range(MAX_CONTEXT_PASSAGES + 30)]
    context = bounded_context(short)
    assert len(context.documents) == MAX_CONTEXT_PASSAGES and "50 of the 80 passages" in context.note
    [long] = bounded_context([Document(content="x" * (2 * MAX_CONTEXT_CHARS))]).documents
    assert len(long.content) == MAX_CONTEXT_CHARS
    assert "passage 1 was cut" in bounded_context([Document(content="x" * (2 * MAX_CONTEXT_CHARS))]).note
    assert bounded_context(short[:5]).note is None and bounded_context(short[:5]).documents == short[:5]


@pytest.mark.slow
def test_cancelling_stops_the_bundled_model_between_tokens_and_stores_nothing(many_passages, bundled_choice):
    from loupe.qa import Asker
    from review.asking import answer_again

    settings, sessions, record_id, _ = many_passages
    _, choice = bundled_choice
    cancel, chunks = threading.Event(), []

    def receive(chunk) -> None:
        chunks.append(chunk.content)
        if len(chunks) == 3:
            cancel.set()  # what the Cancel button does (ui.streaming sets it when the script stops)

    before = record_count(sessions)
    with pytest.raises(GenerationCancelled):
        answer_again(sessions, Asker(settings), actor=ADMIN, record_id=record_id, generator=choice,
                     streaming_callback=cancellable(receive, cancel))
    assert len(chunks) == 3, "no token after the cancel, and no fallback answered instead"
    assert record_count(sessions) == before, "nothing stored"
