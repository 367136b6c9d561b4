"""Sentence boundaries as character spans, without downloading a tokenizer model.

Haystack's sentence splitting relies on NLTK's punkt data, which is fetched from the network on first use;
Loupe must work air-gapped, so it uses this rule-based splitter instead. It keeps exact character offsets,
which the chunker and the highlighting need.
"""

from __future__ import annotations

import re

# Words after which a period does not end a sentence.
_ABBREVIATIONS = {
    "al", "approx", "ca", "cf", "dr", "e.g", "eg", "eq", "eqs", "etc", "fig", "figs", "i.e", "ie", "inc", "jr",
    "mr", "mrs", "ms", "no", "nos", "prof", "ref", "refs", "resp", "sec", "sect", "sp", "spp", "st", "tab",
    "viz", "vol", "vs", "wt",
}
# A sentence end: punctuation, closing quotes/brackets and any citation markers that follow ("… seeds. [1][2]"),
# before a capital, digit or opening bracket (or the end of the text); or a blank line; or a page break.
# A run of punctuation is tried from its first character only ("(?<![.!?])"): a match takes the whole run or
# fails, and the same suffix would fail again, so retrying inside the run ("." * n + "a") cost O(n²).
_CANDIDATE = re.compile(
    r"(?<![.!?])[.!?]+[\"')\]]*(?:\s*\[\d+(?:\s*[,;\-–]\s*\d+)*\])*(?=\s+[\"'(\[]?[A-Z0-9]|\s*$)|\n\s*\n|\f"
)
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the period at text[end - 1] closes an abbreviation or an initial such as 'J.'."""
    match = _WORD_BEFORE.search(text[max(0, end - 12) : end])
    if not match:
        return False
    word = match.group(1).lower()
    return word in _ABBREVIATIONS or len(word) == 1


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Split text into sentences; each is a (start, end) span with surrounding whitespace trimmed.

    Paragraph breaks (blank lines) and page breaks (form feeds) always end a sentence.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        end = match.end() if match.group(0).strip() else match.start()
        if match.group(0).startswith(".") and _is_abbreviation(text, match.start() + 1):
            continue
        _append_trimmed(text, start, end, spans)
        start = match.end()
    _append_trimmed(text, start, len(text), spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def split_sentences(text: str) -> list[str]:
    """The sentences of text as strings."""
    return [text[start:end] for start, end in sentence_spans(text)]


_WORD = re.compile(r"\w+", re.UNICODE)


def word_count(text: str) -> int:
    """Number of words, the unit chunk lengths are measured in."""
    return len(_WORD.findall(text))
