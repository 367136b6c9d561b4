"""`import --chunk-chars N --chunks K` (issue 24, item 7): K is bounded with a clear CLI error, the exact split
gives the same passages as before and no longer takes O(K·n²) Python steps, and a split too large to search is
packed greedily and says so.

`old_exactly` is the split as it was before the fix, the oracle. Timings (bench in the report): 1,000 short
paragraphs, --chunk-chars 1000 --chunks 100: 3.3 s before, 0.3 s after; with --chunk-chars 2000 and --chunks 200
(the test below) tens of seconds before; the bound of 10 s is generous for a busy machine.
"""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

import cli
from review.context_chunks import MAX_CHUNKS, ChunkLimits, _exactly, describe_grouping, group_context, paragraph_spans

SHORT_PARAGRAPHS = "\n\n".join(f"Paragraph {number} is short." for number in range(1_000))


def old_exactly(spans: list[tuple[int, int]], limit: int, count: int) -> list[list[int]] | None:
    n = len(spans)
    if count > n:
        return None
    best: dict[tuple[int, int], tuple[float, int]] = {(0, 0): (0.0, -1)}
    for groups in range(1, count + 1):
        for used in range(groups, n + 1):
            options = []
            for first in range(used - 1, groups - 2, -1):
                length = spans[used - 1][1] - spans[first][0]
                if length > limit:
                    break
                previous = best.get((first, groups - 1))
                if previous is not None:
                    options.append((previous[0] + length * length, first))
            if options:
                best[(used, groups)] = max(options)
    if (n, count) not in best:
        return None
    partition, used = [], n
    for groups in range(count, 0, -1):
        first = best[(used, groups)][1]
        partition.append(list(range(first, used)))
        used = first
    return partition[::-1]


@settings(max_examples=300, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=1, max_size=24), limit=st.integers(1, 200),
       count=st.integers(1, 12))
def test_the_exact_split_is_as_before(lengths, limit, count):
    spans = paragraph_spans("\n\n".join("x" * length for length in lengths))
    assert _exactly(spans, limit, count) == old_exactly(spans, limit, count)


def test_a_thousand_short_paragraphs_split_fast_and_exactly():
    started = time.perf_counter()
    passages, how = group_context(SHORT_PARAGRAPHS, ChunkLimits(2_000, 200))
    assert time.perf_counter() - started < 10
    assert how["packing"] == "exact" and len(passages) == 200
    assert all(len(passage["text"]) <= 2_000 for passage in passages)


def test_a_split_too_large_to_search_is_packed_greedily_and_says_so():
    started = time.perf_counter()
    passages, how = group_context(SHORT_PARAGRAPHS, ChunkLimits(100_000, MAX_CHUNKS))
    assert time.perf_counter() - started < 10
    assert how["packing"] == "greedy" and how["exact_skipped"] == "too_large" and len(passages) == 1
    assert "too many paragraphs to search for an exact split" in describe_grouping(how)


def test_the_cli_refuses_more_chunks_than_the_bound(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    record = tmp_path / "Publication_paper.pdf_CQ1.txt"
    record.write_text(f"Use the context.\n\n{SHORT_PARAGRAPHS}\n\nQuestion: Which?\nHelpful Answer: None.\n",
                      encoding="utf-8")
    capsys.readouterr()
    chunks = str(MAX_CHUNKS + 1)
    assert cli.main(["import", str(record), "--chunk-chars", "1000", "--chunks", chunks]) == 2
    assert f"--chunks must be at most {MAX_CHUNKS}" in capsys.readouterr().err
