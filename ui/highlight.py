"""HTML for answers and passages with their highlights. All document text and model output is escaped here:
the only markup in the output is the markup this module writes. Bidi overrides and zero-width characters show
as ⟨U+…⟩ badges (ui.text_safety.visible_html); highlight offsets are applied to the stored text before that,
so they keep pointing at the stored characters. Long tokens (URLs, hashes) wrap inside their box.

Passages can be re-flowed for reading (`reflow_map`): a PDF line break inside a paragraph shows as a space and a
word hyphenated across lines is joined. The map gives, for each stored character, what shows in its place, so a
highlight over stored offsets [start, end) covers exactly the re-flowed text of those characters. Answers are
always re-flowed (`answer_reflow_map`: a model's line breaks inside a sentence joined, list items kept on their
lines), over the stored answer's offsets."""

from __future__ import annotations

import re
from typing import Any

from ui.text_safety import visible_html

STOPWORDS = frozenset(
    "a an and are as at be by for from has have how in is it its of on or that the this to was were what when "
    "where which who why with does do did used use using employed there their these those into any all can".split()
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{2,}")
# A line break inside a paragraph (not a blank line), with the spaces around it; and a word hyphenated across one.
_LINE_BREAK = re.compile(r"(?<![\n \t\r])[ \t\r]*\n[ \t\r]*(?![ \t\r]*\n)")
_HYPHENATED = re.compile(r"(?<=[a-z])-[ \t]*\n[ \t]*(?=[a-z])")
_SENTENCE_END = ".!?:;"
# The start of a list item on the next line ("2. ", "3) ", "- "), whose line break an answer keeps.
_LIST_ITEM = re.compile(r"[ \t]*(?:\d+[.)]|[-*•])[ \t]")

STYLE = """<style>
.loupe-passage{white-space:pre-wrap;overflow-wrap:anywhere;word-break:normal;line-height:1.55;font-size:0.95rem}
.loupe-control{font-size:0.68rem;font-family:monospace;color:#862e9c;background:#f3d9fa;border:1px solid #da77f2;
  border-radius:3px;padding:0 2px;margin:0 1px;unicode-bidi:isolate}
.loupe-term{background:#fff3bf;border-radius:2px}
.loupe-support{background:#b2f2bb;border-bottom:2px solid #2b8a3e;border-radius:2px;scroll-margin:48px}
.loupe-closest{border-radius:2px;scroll-margin:48px}
.loupe-focus{outline:3px solid #1c7ed6;background:#d0ebff}
.loupe-closest.loupe-focus{outline:3px dashed #e8590c;background:#fff4e6}
.loupe-answer span.loupe-sentence{cursor:pointer}
.loupe-label{font-size:0.7rem;font-weight:700;color:#2b8a3e;vertical-align:super;margin-left:1px}
.loupe-answer span.loupe-sentence{border-radius:3px;padding:0 2px}
.loupe-ok{background:#ebfbee}
.loupe-bad{background:#ffe3e3;border-bottom:2px dashed #c92a2a}
.loupe-abstain{background:#f1f3f5;font-style:italic}
.loupe-tag{font-size:0.72rem;font-weight:600;padding:0 4px;border-radius:3px;margin-left:3px}
.loupe-tag-ok{color:#2b8a3e}
.loupe-tag-bad{color:#c92a2a}
.loupe-tag-abstain{color:#495057}
</style>"""


def reflow_map(text: str) -> list[str]:
    """What shows in place of each stored character when the passage is re-flowed: a line break inside a
    paragraph (and the spaces around it) becomes one space, except after the end of a sentence followed by a
    capital (a heading, a list); a hyphen at a line end between lower-case letters disappears with the break.
    Blank lines (paragraph boundaries, `paragraph_spans`) stay. len(result) == len(text)."""
    shown = list(text)
    for match in _HYPHENATED.finditer(text):
        shown[match.start() : match.end()] = [""] * (match.end() - match.start())
    for match in _LINE_BREAK.finditer(text):
        start, end = match.start(), match.end()
        if shown[start : end] == [""] * (end - start):
            continue  # joined as a hyphenation
        before = text[:start].rstrip()[-1:]
        after = text[end : end + 1]
        if before in _SENTENCE_END and after[:1].isupper():
            continue  # probably a real line: a heading, a list item, a new sentence on its own line
        shown[start:end] = [" "] + [""] * (end - start - 1)
    return shown


def answer_reflow_map(text: str) -> list[str]:
    """`reflow_map` for a model's answer: its line breaks inside a sentence ("system for image / recognition.")
    join as in a passage, but a line break before a list item stays, so that a numbered answer keeps its lines."""
    shown = reflow_map(text)
    for match in _LINE_BREAK.finditer(text):
        if _LIST_ITEM.match(text, match.end()):
            shown[match.start() : match.end()] = list(text[match.start() : match.end()])
    return shown


def question_terms(question: str) -> set[str]:
    """Content words of the question, lower case, for light highlighting."""
    return {word.lower() for word in _WORD.findall(question) if word.lower() not in STOPWORDS}


def _terms_html(text: str, terms: set[str]) -> str:
    """Escape text, wrapping question terms (whole words, any case) in a light highlight."""
    if not terms:
        return visible_html(text)
    pattern = re.compile(r"\b(" + "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True)) + r")\b",
                         re.IGNORECASE)
    parts, last = [], 0
    for match in pattern.finditer(text):
        parts.append(visible_html(text[last : match.start()]))
        parts.append(f'<mark class="loupe-term">{visible_html(match.group(0))}</mark>')
        last = match.end()
    parts.append(visible_html(text[last:]))
    return "".join(parts)


def evidence_spans(support: dict[str, Any] | None, passage_index: int) -> list[tuple[int, int, list[int]]]:
    """Supporting spans in one passage, each with the (1-based) numbers of the answer sentences it supports."""
    spans: dict[tuple[int, int], list[int]] = {}
    for sentence in (support or {}).get("sentences", []):
        for evidence in sentence.get("evidence", []):
            if evidence["passage"] == passage_index:
                spans.setdefault((evidence["start"], evidence["end"]), []).append(sentence["index"] + 1)
    return sorted((start, end, sorted(set(numbers))) for (start, end), numbers in spans.items())


def closest_spans(support: dict[str, Any] | None, passage_index: int) -> list[tuple[int, int, list[int]]]:
    """Where an unsupported answer sentence came closest in this passage (the support map's `closest`, when it
    records one), with the (1-based) numbers of those sentences."""
    spans: dict[tuple[int, int], list[int]] = {}
    for sentence in (support or {}).get("sentences", []):
        closest = sentence.get("closest")
        if not sentence.get("supported") and closest and closest.get("passage") == passage_index:
            spans.setdefault((closest["start"], closest["end"]), []).append(sentence["index"] + 1)
    return sorted((start, end, sorted(set(numbers))) for (start, end), numbers in spans.items())


def passage_html(text: str, question: str, spans: list[tuple[int, int, list[int]]], reflow: bool = False,
                 closest: list[tuple[int, int, list[int]]] | None = None) -> str:
    """A passage: supporting sentences strongly highlighted and labelled, question terms lightly highlighted.
    `reflow` shows it re-flowed (see `reflow_map`); `closest` marks where unsupported sentences came closest
    (outlined only while that sentence is focused: a passage with many such spans stays readable).
    Each highlight names its answer sentences in `data-supports` / `data-closest`, for the jump to the support."""
    terms = question_terms(question)
    shown = reflow_map(text) if reflow else None

    def piece(start: int, end: int) -> str:
        return _terms_html(text[start:end] if shown is None else "".join(shown[start:end]), terms)

    marked = sorted([(start, end, numbers, "support") for start, end, numbers in spans]
                    + [(start, end, numbers, "closest") for start, end, numbers in closest or []])
    parts, position = [], 0
    for start, end, numbers, kind in marked:
        if start < position or end > len(text):
            continue  # overlapping or stale span: skip rather than garble the text
        parts.append(piece(position, start))
        label = ",".join(str(number) for number in numbers)
        names = " ".join(str(number) for number in numbers)
        if kind == "support":
            parts.append(f'<span class="loupe-support" data-supports="{names}" title="supports answer sentence '
                         f'{label}">{piece(start, end)}<sup class="loupe-label">{label}</sup></span>')
        else:
            parts.append(f'<span class="loupe-closest" data-closest="{names}" title="closest to unsupported answer '
                         f'sentence {label}">{piece(start, end)}</span>')
        position = end
    parts.append(piece(position, len(text)))
    return f'<div class="loupe-passage">{"".join(parts)}</div>'


def answer_html(answer: str, support: dict[str, Any] | None) -> str:
    """The answer, sentence by sentence, each marked supported (with its passages), unsupported or abstaining;
    re-flowed for reading (`answer_reflow_map`), the sentences' offsets still those of the stored text."""
    shown = answer_reflow_map(answer)

    def piece(start: int, end: int) -> str:
        return visible_html("".join(shown[start:end]))

    sentences = (support or {}).get("sentences") or []
    if not sentences:
        return f'<div class="loupe-answer loupe-passage">{piece(0, len(answer))}</div>'
    parts, position = [], 0
    for sentence in sentences:
        start, end = sentence["start"], sentence["end"]
        parts.append(piece(position, start))
        number = sentence["index"] + 1
        kind = sentence.get("kind", "claim")
        if kind == "abstention":
            css, tag = "loupe-abstain", '<span class="loupe-tag loupe-tag-abstain">abstains</span>'
        elif sentence.get("supported"):
            sources = sorted({evidence["passage"] + 1 for evidence in sentence.get("evidence", [])})
            css = "loupe-ok"
            tag = f'<span class="loupe-tag loupe-tag-ok">✓ passage {", ".join(map(str, sources))}</span>'
        else:
            what = "generic, not in the passages" if kind == "generic" else "unsupported"
            css, tag = "loupe-bad", f'<span class="loupe-tag loupe-tag-bad">⚠ {what}{_closest_note(sentence)}</span>'
        hint = f"Alt+{number}: show its support" if number <= 9 else "click: show its support"
        parts.append(
            f'<span class="loupe-sentence {css}" data-sentence="{number}" title="{hint}">'
            f'<sup class="loupe-label">{number}</sup>'
            f"{piece(start, end)}</span>{tag}"
        )
        position = end
    parts.append(piece(position, len(answer)))
    return f'<div class="loupe-answer loupe-passage">{"".join(parts)}</div>'


def _closest_note(sentence: dict[str, Any]) -> str:
    """For an unsupported sentence: which passage came closest and its score (or the best score alone, from a
    support map that does not record where)."""
    closest = sentence.get("closest")
    if closest and closest.get("passage") is not None:
        return f" · closest: passage {int(closest['passage']) + 1}, score {float(closest['score']):.2f}"
    if sentence.get("score") is not None:
        return f" · best score {float(sentence['score']):.2f}"
    return ""
