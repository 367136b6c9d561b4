"""Prompt records' contexts regrouped into the chunks the retriever returned, text and paragraphs kept exactly."""

from __future__ import annotations

import pytest

import cli
from review.context_chunks import MIN_PARAGRAPH_CHARS, ChunkLimits, describe_grouping, group_context
from tests.conftest import shared_path


def paragraphs(passages: list[dict]) -> list[str]:
    return [passage["text"][start:end] for passage in passages for start, end in passage["paragraph_spans"]]


def make_context(lengths: list[int]) -> str:
    return "\n\n".join(chr(ord("a") + i) * length for i, length in enumerate(lengths))


def test_without_limits_fragments_join_the_next_paragraph_and_a_last_one_the_previous():
    long = MIN_PARAGRAPH_CHARS
    context = make_context([5, long, long, 3, 4, long, 2])
    passages, how = group_context(context)
    assert [len(p["paragraph_spans"]) for p in passages] == [2, 1, 4]
    assert paragraphs(passages) == context.split("\n\n")
    assert how == {"rule": "merge_fragments", "min_paragraph_chars": MIN_PARAGRAPH_CHARS, "paragraphs": 7,
                   "passages": 3}


def test_chunk_limits_with_a_count_take_the_fullest_exact_split():
    context = make_context([300, 300, 300, 600, 200, 700, 100])  # joined by 2-character separators
    passages, how = group_context(context, ChunkLimits(1000, 3))
    assert [len(p["text"]) for p in passages] == [904, 802, 802]
    assert how["packing"] == "exact" and how["passages"] == 3
    assert "".join(p["text"] + "\n\n" for p in passages)[:-2] == context
    assert all(len(p["text"]) <= 1000 for p in passages)


def test_chunk_limits_fall_back_to_greedy_packing_and_say_so():
    context = make_context([900, 900, 900])
    passages, how = group_context(context, ChunkLimits(1000, 2))
    assert len(passages) == 3 and how["packing"] == "greedy"
    assert "packed greedily" in describe_grouping(how)
    oversized, _ = group_context(make_context([50, 1500, 50]), ChunkLimits(1000))
    assert [len(p["text"]) for p in oversized] == [50, 1500, 50]


def test_bad_limits_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        ChunkLimits(0)


def test_cli_import_regroups_the_study_records_into_four_chunks(tmp_path, monkeypatch, capsys):
    from sqlalchemy import select

    from configuration.settings import Settings
    from review.db import open_database
    from review.models import Record

    folder = shared_path("data", "kommineni2024", "records", "mixtral_8_22b")
    sample = tmp_path / "sample"
    sample.mkdir()
    for path in sorted(folder.glob("*.txt"))[:28]:
        (sample / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert cli.main(["import", str(sample), "--run", "study", "--chunk-chars", "1000", "--chunks", "4"]) == 0
    assert cli.main(["import", str(sample), "--run", "split"]) == 0
    with open_database(Settings(data_dir=tmp_path / "data"))() as session:
        records = {(r.run, r.external_id): r for r in session.scalars(select(Record))}
    for path in sorted(sample.glob("*.txt")):
        chunked, merged = records[("study", path.stem)], records[("split", path.stem)]
        assert len(chunked.passages) == 4 and all(len(p["text"]) <= 1000 for p in chunked.passages)
        assert paragraphs(chunked.passages) == paragraphs(merged.passages), "the same paragraphs, regrouped"
        assert chunked.meta["context_grouping"]["rule"] == "chunk_limits"
        assert merged.meta["context_grouping"]["rule"] == "merge_fragments"
    assert "--chunks needs --chunk-chars" in _error_of(["import", str(sample), "--chunks", "4"], capsys)


def _error_of(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert cli.main(argv) == 2
    return capsys.readouterr().err
