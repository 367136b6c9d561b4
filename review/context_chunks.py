"""Regroup a prompt record's context into the passages its retriever returned.

A prompt record holds its context as one text; the retrieved chunks were joined into it and each chunk keeps the
blank-line paragraphs of its source, so a split at blank lines gives paragraph fragments ("PConv networks"), not
the chunks (the Kommineni study: 4 chunks of at most 1,000 characters gave 19 paragraphs at the median, up to
109). Two rules, both keeping the text exactly (a passage is the context's text from its first paragraph to its
last, separators included) and the original paragraph boundaries (`paragraph_spans`: [start, end] of each
paragraph in the passage's text):

- chunk limits known (`import --chunk-chars N [--chunks K]`): consecutive paragraphs are packed into passages of
  at most N characters. With K, the partition into exactly K passages that fills them most evenly towards N
  (the largest sum of squared lengths: a splitter fills each chunk up to its limit) is taken when one exists;
  otherwise, and without K, paragraphs are packed greedily. A paragraph longer than N is a passage of its own.
  K is at most MAX_CHUNKS. The exact split takes K·w array operations over the n paragraphs (w: the most
  paragraphs one chunk holds; it was K·n·w Python steps, 15 s for 1,000 short paragraphs and K = 100); where
  K·n·w is beyond EXACT_SPLIT_WORK it is not tried, and the paragraphs are packed greedily, which the record's
  meta says (`exact_skipped`).
- no limits given: a fragment (a paragraph under MIN_PARAGRAPH_CHARS characters) is merged into the paragraph
  after it; a fragment at the end into the one before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_PARAGRAPH_CHARS = 120
MAX_CHUNKS = 200  # retrievers return a few chunks (the study: 4; the Ask page: at most 50)
# Beyond this much work (`_exact_work`: about a second) the exact split is not tried: packed greedily, and said.
EXACT_SPLIT_WORK = 20_000_000
_SEPARATOR = re.compile(r"\n(?:[ \t\r\f\v]*\n)+")  # blank lines: a paragraph keeps its leading page break


@dataclass(frozen=True)
class ChunkLimits:
    """How the retriever chunked the context: at most `chars` characters a chunk, `chunks` of them if known."""

    chars: int
    chunks: int | None = None

    def __post_init__(self) -> None:
        if self.chars < 1 or (self.chunks is not None and self.chunks < 1):
            raise ValueError(f"chunk limits must be at least 1, got {self.chars} characters, {self.chunks} chunks")
        if self.chunks is not None and self.chunks > MAX_CHUNKS:
            raise ValueError(f"--chunks must be at most {MAX_CHUNKS} (the chunks one retriever returned), "
                             f"got {self.chunks}")


def paragraph_spans(context: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank paragraph of the context."""
    spans, start = [], 0
    for separator in _SEPARATOR.finditer(context):
        spans.append((start, separator.start()))
        start = separator.end()
    spans.append((start, len(context)))
    return [(s, e) for s, e in spans if context[s:e].strip()]


def _greedy(spans: list[tuple[int, int]], limit: int) -> list[list[int]]:
    groups: list[list[int]] = []
    for index, (_, end) in enumerate(spans):
        if groups and end - spans[groups[-1][0]][0] <= limit:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def _exactly(spans: list[tuple[int, int]], limit: int, count: int) -> list[list[int]] | None:
    """The partition into `count` groups of at most `limit` characters with the largest sum of squared lengths,
    or None when there is none (fewer paragraphs than `count`, or more than `count` groups needed even when
    packed greedily). Dynamic programming over (groups made, paragraphs used), each step an array operation over
    all paragraphs for one group size; of equal sums, the one whose last group starts latest, as before."""
    n = len(spans)
    if count > n or count < len(_greedy(spans, limit)):
        return None
    starts, ends = _bounds(spans)
    widest = _widest(starts, ends, limit)
    best = np.full(n + 1, -np.inf)  # best[used]: the largest sum over the first `used` paragraphs
    best[0] = 0.0
    firsts = np.zeros((count + 1, n + 1), dtype=np.int64)  # firsts[groups, used]: where the last group starts
    for groups in range(1, count + 1):
        best = _add_group(best, starts, ends, limit, widest, firsts[groups])
    if best[n] == -np.inf:  # a paragraph longer than the limit fits no group
        return None
    partition, used = [], n
    for groups in range(count, 0, -1):
        first = int(firsts[groups, used])
        partition.append(list(range(first, used)))
        used = first
    return partition[::-1]


def _add_group(best: np.ndarray, starts: np.ndarray, ends: np.ndarray, limit: int, widest: int,
               firsts: np.ndarray) -> np.ndarray:
    """One more group (of at most `widest` paragraphs) after each `best` state: the new best sums, and (into
    `firsts`) where that group starts."""
    n = len(starts)
    new = np.full(n + 1, -np.inf)
    for size in range(1, widest + 1):  # small sizes first: a tie keeps the latest start
        lengths = ends[size - 1 :] - starts[: n - size + 1]  # group of paragraphs first .. first + size - 1
        candidates = np.where(lengths <= limit, best[: n - size + 1] + lengths * lengths, -np.inf)
        better = candidates > new[size:]
        new[size:][better] = candidates[better]
        firsts[size:][better] = np.flatnonzero(better)
    return new


def _bounds(spans: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The paragraphs' starts and ends as arrays (float64: the sums of squares stay exact integers)."""
    return (np.array([start for start, _ in spans], dtype=np.float64),
            np.array([end for _, end in spans], dtype=np.float64))


def _widest(starts: np.ndarray, ends: np.ndarray, limit: int) -> int:
    """The most consecutive paragraphs that one group of at most `limit` characters holds (at least 1)."""
    last_fitting = np.searchsorted(ends, starts + limit, side="right")  # groups from each paragraph on
    return max(1, int((last_fitting - np.arange(len(starts))).max()))


def _exact_work(spans: list[tuple[int, int]], limit: int, count: int) -> int:
    """The array steps an exact split takes: groups x paragraphs x the most paragraphs one group holds."""
    return count * len(spans) * _widest(*_bounds(spans), limit)


def _merge_fragments(context: str, spans: list[tuple[int, int]]) -> list[list[int]]:
    groups: list[list[int]] = []
    pending: list[int] = []
    for index, (start, end) in enumerate(spans):
        pending.append(index)
        if len(context[start:end].strip()) >= MIN_PARAGRAPH_CHARS:
            groups.append(pending)
            pending = []
    if pending:
        if groups:
            groups[-1].extend(pending)
        else:
            groups.append(pending)
    return groups


def group_context(context: str, limits: ChunkLimits | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The context's passages (`text`, `paragraph_spans`) and how they were grouped, for the record's meta."""
    spans = paragraph_spans(context)
    if not spans:
        return [], {"rule": "none", "paragraphs": 0, "passages": 0}
    if limits is None:
        groups = _merge_fragments(context, spans)
        how: dict[str, Any] = {"rule": "merge_fragments", "min_paragraph_chars": MIN_PARAGRAPH_CHARS}
    else:
        too_large = bool(limits.chunks) and _exact_work(spans, limits.chars, limits.chunks) > EXACT_SPLIT_WORK
        exact = _exactly(spans, limits.chars, limits.chunks) if limits.chunks and not too_large else None
        groups = exact or _greedy(spans, limits.chars)
        how = {"rule": "chunk_limits", "chunk_chars": limits.chars, "chunks": limits.chunks,
               "packing": "exact" if exact else "greedy", **({"exact_skipped": "too_large"} if too_large else {})}
    passages = []
    for group in groups:
        start, end = spans[group[0]][0], spans[group[-1]][1]
        passages.append({"text": context[start:end],
                         "paragraph_spans": [[spans[i][0] - start, spans[i][1] - start] for i in group]})
    return passages, {**how, "paragraphs": len(spans), "passages": len(passages)}


def describe_grouping(how: dict[str, Any] | None) -> str | None:
    """One line for the review panel: how the context became these passages."""
    if not how or how.get("rule") in (None, "none"):
        return None
    if how["rule"] == "merge_fragments":
        return (f"Context of {how['paragraphs']} paragraphs shown as {how['passages']} passages: paragraphs under "
                f"{how['min_paragraph_chars']} characters joined to the next one.")
    limit = f"at most {how['chunk_chars']:,} characters"
    wanted = f", {how['chunks']} chunks" if how.get("chunks") else ""
    fell_back = " (no exact split into that many chunks: packed greedily)" if how.get("chunks") and how.get(
        "packing") == "greedy" else ""
    if how.get("exact_skipped"):
        fell_back = " (too many paragraphs to search for an exact split into that many chunks: packed greedily)"
    return (f"Context of {how['paragraphs']} paragraphs regrouped into {how['passages']} retrieved chunks "
            f"({limit}{wanted}){fell_back}.")
