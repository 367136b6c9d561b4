"""Degenerate generator output, found before it is shown as an answer: a small model that loops or invents further
turns must not be vouched for by the support map.

`finished_answer` ends the raw output where an answer ends (before an invented turn, after its last complete
sentence) and says what it left out; `degeneration` names what makes the rest unusable, or None.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

# A turn the model invents after its answer: "Question 2: …", "Question:", "Answer:" at the start of a line or
# after a sentence.
_TURN = re.compile(r"(?:^|(?<=[.!?:]\s)|(?<=\n))\s*(?:Question\b[^:\n]{0,20}:|Answer\s*:)", re.MULTILINE)
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_LETTERS = re.compile(r"[^\W\d_]")
# A numbered line (1. / 2) / 3.1.2) that holds no word, only numbers and punctuation.
_WORDLESS_NUMBERED_LINE = re.compile(r"^[ \t]*\d+(?:[.)]\d*)+[ \t\d.)-]*$", re.MULTILINE)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_LIST_NUMBER = re.compile(r"\s*\d+(?:\.\d+)*\.")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")

REPEATED_WORD_RUN = 3  # one word this many times in a row
REPEATED_NGRAM = 4  # a sequence of this many words …
REPEATED_NGRAM_COUNT = 3  # … this many times
REPEATED_NGRAM_SPAN = 40  # … within this many words
MIN_REPEATED_SENTENCE_WORDS = 4  # shorter sentences ("Yes.") may well recur in a real answer


@dataclass(frozen=True)
class FinishedAnswer:
    """The answer as shown, and `cut`: what of the raw output was left out and why (None when nothing was)."""

    text: str
    cut: str | None = None


def finished_answer(raw: str, at_limit: bool) -> FinishedAnswer:
    """`raw` up to an invented further turn and, when the output stopped at its token limit (`at_limit`), without
    its unfinished last sentence or list line; with a note of each cut."""
    text, cuts = raw.strip(), []
    turn = _TURN.search(text)
    if turn and text[: turn.start()].strip():
        text, cuts = text[: turn.start()].rstrip(), [f"an invented further turn ({turn.group().strip()!r}…)"]
    end = _last_end(text)
    if (at_limit or turn) and 0 < end < len(text):
        cuts.append(f"an unfinished last sentence ({_preview(text[end:].strip())})")
        text = text[:end].rstrip()
    return FinishedAnswer(text, f"left out {' and '.join(cuts)}" if cuts else None)


def _last_end(text: str) -> int:
    """Where the last complete sentence or list line of `text` ends (0: none); a list number ("2.") ends nothing."""
    ends = [match.end() for match in _SENTENCE_END.finditer(text) if not _LIST_NUMBER.fullmatch(
        text[text.rfind("\n", 0, match.start()) + 1: match.end()])]
    line_end = text.rfind("\n")
    return max([*ends, line_end if line_end > 0 else 0])


def degeneration(text: str) -> str | None:
    """What makes `text` degenerate, in words ("repeated itself: 'pretrained' three times in a row"), or None."""
    for check in (_invented_turn, _word_run, _repeated_ngram, _repeated_sentence, _wordless_numbered_line):
        reason = check(text)
        if reason:
            return reason
    return None


def _invented_turn(text: str) -> str | None:
    turn = _TURN.search(text)
    return f"invented a further turn ({turn.group().strip()!r})" if turn else None


def _words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _word_run(text: str) -> str | None:
    words = _words(text)
    for start in range(len(words) - REPEATED_WORD_RUN + 1):
        run = words[start: start + REPEATED_WORD_RUN]
        if len(set(run)) == 1 and len(run[0]) > 1 and _LETTERS.search(run[0]):  # not "e. e. e." of formulas
            return f"repeated itself: {run[0]!r} {REPEATED_WORD_RUN} times in a row"
    return None


def _repeated_ngram(text: str) -> str | None:
    """A 4-gram three times within `REPEATED_NGRAM_SPAN` words, the same words around it each time: a parallel
    list ("the training set is used to…, the test set is used to…") differs around it and is left alone."""
    words = _words(text)
    starts: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for start in range(len(words) - REPEATED_NGRAM + 1):
        starts[tuple(words[start: start + REPEATED_NGRAM])].append(start)
    for ngram, found in starts.items():
        for first in range(len(found) - REPEATED_NGRAM_COUNT + 1):
            window = found[first: first + REPEATED_NGRAM_COUNT]
            if window[-1] - window[0] < REPEATED_NGRAM_SPAN and _same_surroundings(words, window):
                return f"repeated itself: {' '.join(ngram)!r} {REPEATED_NGRAM_COUNT} times"
    return None


def _same_surroundings(words: list[str], starts: list[int]) -> bool:
    """Whether some occurrences share the word before and some share the word after (not all differ on both)."""
    before = {words[start - 1] if start else "" for start in starts}
    after = {words[start + REPEATED_NGRAM] if start + REPEATED_NGRAM < len(words) else "" for start in starts}
    return len(before) < len(starts) and len(after) < len(starts)


def _repeated_sentence(text: str) -> str | None:
    """A sentence said again right after itself (the same words, list numbers aside); a long answer may well
    restate a sentence further on."""
    previous: tuple[str, ...] = ()
    for sentence in _SENTENCE.findall(text):
        words = tuple(word for word in _words(sentence) if _LETTERS.search(word))
        if len(words) >= MIN_REPEATED_SENTENCE_WORDS and words == previous:
            return f"repeated a sentence ({_preview(sentence.strip())})"
        previous = words or previous
    return None


def _wordless_numbered_line(text: str) -> str | None:
    line = _WORDLESS_NUMBERED_LINE.search(text)
    return f"enumerated numbers without words ({line.group().strip()!r})" if line else None


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
