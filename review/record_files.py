"""Parse RAG outputs made elsewhere into records: prompt records, answer-only records, JSONL and question sets.

Pure functions over text; reading files, storing and reporting are the importer's job (review/importer.py).
A file that cannot be parsed raises RecordParseError with the reason and the line it concerns.

Stray control characters: valid UTF-8 text may hold a few C0 control characters other than tab, line feed,
carriage return and form feed (the page break of extracted PDF text) -- e.g. a NUL where PDF extraction lost a
ligature ("e\x00cient"). Each is replaced by U+FFFD (the replacement character, so a reader sees that something
was there) and counted; PostgreSQL cannot store NUL in text at all. A file in which such characters make up more
than 1 % of the text, and are more than eight or a tenth of it, is binary and refused (as is one not UTF-8). Strings inside JSON (`"\u0000"`) are cleaned
the same way.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from review.context_chunks import ChunkLimits, group_context

# Publication_<doc>.pdf_CQ<n>: the naming of the Kommineni et al. records (document id, question number).
_PUBLICATION_NAME = re.compile(r"^Publication_(?P<doc>.+)\.pdf_CQ(?P<number>\d+)$")
_QUESTION_MARKER = re.compile(r"^Question:", re.MULTILINE)
_ANSWER_MARKER = re.compile(r"^Helpful Answer:", re.MULTILINE)
_QUERY_LINE = re.compile(r'^Query:\s*"(?P<query>.*)"\s*$', re.MULTILINE)
_ANSWER_ONLY_LABEL = re.compile(r"^\s*Answer:+[ \t]*(?:\n\s*)?(?:Answer:[ \t]*)?")
# C0 controls and DEL, except tab, line feed, carriage return and form feed: never meant to be in a record.
STRAY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
REPLACEMENT = "\ufffd"
# A binary file, refused: stray control characters more than 1 % of the text, and more than eight or a tenth of it.
BINARY_SHARE = 0.01
MAX_EXTERNAL_ID = 300  # the columns' lengths (review/models.py): longer ids are refused, not truncated


class RecordParseError(ValueError):
    """A record file (or a line of one) cannot be read as a record; says why and where."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.reason, self.line = reason, line


@dataclass(frozen=True)
class Question:
    """One question of a question set; `id` ties records of the same question across documents."""

    id: str
    text: str


@dataclass
class ParsedRecord:
    """What a file says about one answered question, before it is stored."""

    external_id: str
    question: str
    answer: str
    passages: list[dict[str, Any]]
    context_recorded: bool
    prompt: str | None = None
    doc_id: str | None = None
    question_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    replaced_characters: int = 0  # stray control characters replaced by U+FFFD in the record's JSON strings


def question_id_for(number: int) -> str:
    """The id of the n-th question of a question set (1-based), as record file names number them."""
    return f"Q{number}"


def name_parts(stem: str) -> tuple[str | None, int | None]:
    """(document id, question number) from a `Publication_<doc>.pdf_CQ<n>` name; (None, None) for other names."""
    match = _PUBLICATION_NAME.match(stem)
    return (match["doc"], int(match["number"])) if match else (None, None)


def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped), with Windows line ends normalised and stray control characters replaced
    by U+FFFD. :raises RecordParseError:"""
    return decode_text_counted(data)[0]


def decode_text_counted(data: bytes) -> tuple[str, int]:
    """`decode_text`, and how many stray control characters it replaced. :raises RecordParseError: empty, not
    UTF-8, or binary (see BINARY_SHARE)."""
    if not data.strip():
        raise RecordParseError("the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RecordParseError(f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})", line) from None
    text, replaced = clean_text(text)
    share = replaced / max(1, len(text))
    if share > BINARY_SHARE and (replaced > 8 or share > 10 * BINARY_SHARE):
        first = text.index(REPLACEMENT) if REPLACEMENT in text else 0
        raise RecordParseError(f"binary data, not text ({replaced} control characters such as NUL)",
                               text[:first].count("\n") + 1)
    return text.replace("\r\n", "\n"), replaced


def clean_text(text: str) -> tuple[str, int]:
    """The text with each stray control character replaced by U+FFFD, and how many there were."""
    return STRAY_CONTROL.subn(REPLACEMENT, text)


def clean_json(value: Any) -> tuple[Any, int]:
    """A parsed JSON value with stray control characters replaced in every string (keys included), and how many."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        items = [clean_json(item) for item in value]
        return [item for item, _ in items], sum(count for _, count in items)
    if isinstance(value, dict):
        total, cleaned = 0, {}
        for key, item in value.items():
            key, key_count = clean_text(key)
            cleaned[key], count = clean_json(item)
            total += key_count + count
        return cleaned, total
    return value, 0


def parse_text_record(stem: str, text: str, questions: dict[int, Question] | None = None,
                      chunk_limits: ChunkLimits | None = None) -> ParsedRecord:
    """A `.txt` record: a prompt record (context, question and `Helpful Answer:`) or an answer-only record
    (`Answer:::` then the answer). A prompt record's context becomes passages by review.context_chunks's rules
    (the retriever's `chunk_limits` when known). :raises RecordParseError:"""
    doc_id, number = name_parts(stem)
    if _ANSWER_MARKER.search(text):
        record = _parse_prompt_record(stem, text, chunk_limits)
    elif _ANSWER_ONLY_LABEL.match(text):
        record = _parse_answer_only(stem, text, (questions or {}).get(number) if number else None)
    elif _QUESTION_MARKER.search(text):
        line = text[: _QUESTION_MARKER.search(text).start()].count("\n") + 1
        raise RecordParseError(f"'Question:' (line {line}) is not followed by a 'Helpful Answer:' line: "
                               "the file looks truncated", text.count("\n") + 1)
    else:
        raise RecordParseError("neither a prompt record (no 'Question:' … 'Helpful Answer:') nor an answer-only "
                               "record (no leading 'Answer:')", 1)
    record.doc_id = doc_id
    if number is not None:
        record.question_id = question_id_for(number)
    return record


def _parse_prompt_record(stem: str, text: str, chunk_limits: ChunkLimits | None) -> ParsedRecord:
    answer_marker = _ANSWER_MARKER.search(text)
    questions = [m for m in _QUESTION_MARKER.finditer(text, 0, answer_marker.start())]
    answer_line = text[: answer_marker.start()].count("\n") + 1
    if not questions:
        raise RecordParseError("no 'Question:' line before 'Helpful Answer:'", answer_line)
    question_marker = questions[-1]
    first_line_end = text.find("\n")
    if first_line_end < 0 or first_line_end >= question_marker.start():
        raise RecordParseError("no instruction preamble line before the context", 1)
    block = text[question_marker.end() : answer_marker.start()].strip()
    query = _QUERY_LINE.search(block)
    question = (query["query"] if query else block).strip()
    if not question:
        raise RecordParseError("the question is empty", text[: question_marker.start()].count("\n") + 1)
    answer = text[answer_marker.end() :].strip()  # empty: the model said nothing, which is an answer too
    context = text[first_line_end + 1 : question_marker.start()]
    passages, grouping = group_context(context.strip("\n"), chunk_limits)
    return ParsedRecord(
        external_id=stem, question=question, answer=answer, passages=passages, context_recorded=True,
        prompt=block, meta={"preamble": text[:first_line_end].strip(), "context_grouping": grouping},
    )


def _parse_answer_only(stem: str, text: str, question: Question | None) -> ParsedRecord:
    answer = text[_ANSWER_ONLY_LABEL.match(text).end() :].strip()  # empty: no answer given
    return ParsedRecord(
        external_id=stem, question=question.text if question else "", answer=answer, passages=[],
        context_recorded=False,
    )


def parse_jsonl_record(obj: Any, line: int) -> ParsedRecord:
    """One line of a records JSONL file: {"id", "question", "answer", "contexts", "doc_id", "meta"}.

    An empty answer ("") is an answer (the model said nothing); a missing or non-string one is an error.
    :raises RecordParseError:"""
    if not isinstance(obj, dict):
        raise RecordParseError(f"expected a JSON object, got {type(obj).__name__}", line)
    obj, replaced = clean_json(obj)
    for name in ("id", "question", "answer"):
        value = obj.get(name)
        if name == "id" and isinstance(value, int) and not isinstance(value, bool):
            continue
        if name == "answer" and isinstance(value, str):
            continue
        if not isinstance(value, str) or not value.strip():
            what = "a string (empty for no answer)" if name == "answer" else "a non-empty string"
            raise RecordParseError(f"'{name}' is missing or not {what}", line)
    contexts = obj.get("contexts")
    if contexts is None:
        contexts = []
    if not isinstance(contexts, list):
        raise RecordParseError("'contexts' must be a list", line)
    passages = []
    for index, context in enumerate(contexts):
        if isinstance(context, str):
            passages.append({"text": context})
        elif isinstance(context, dict) and isinstance(context.get("text"), str):
            meta = context.get("meta") or {}
            if not isinstance(meta, dict):
                raise RecordParseError(f"contexts[{index}].meta must be an object", line)
            passages.append({"text": context["text"], "meta": meta, **_passage_fields(meta)})
        else:
            raise RecordParseError(f"contexts[{index}] must be a string or an object with 'text'", line)
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise RecordParseError("'meta' must be an object", line)
    doc_id = obj.get("doc_id")
    question_id = obj.get("question_id")
    for name, value, longest in (("id", str(obj["id"]).strip(), MAX_EXTERNAL_ID), ("doc_id", _scalar_text(doc_id), 300),
                                 ("question_id", _scalar_text(question_id), 200)):
        if value is not None and len(value) > longest:
            raise RecordParseError(f"'{name}' is longer than {longest} characters", line)
    return ParsedRecord(
        external_id=str(obj["id"]).strip(), question=obj["question"].strip(), answer=obj["answer"].strip(),
        passages=passages, context_recorded=bool(passages), doc_id=_scalar_text(doc_id),
        question_id=_scalar_text(question_id), meta=meta,
        prompt=obj.get("prompt") if isinstance(obj.get("prompt"), str) else None, replaced_characters=replaced,
    )


def _scalar_text(value: Any) -> str | None:
    """An id given as a string or number, as text; None when absent, empty or not a scalar."""
    if value in (None, "") or isinstance(value, (dict, list)):
        return None
    return str(value)


def _passage_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The passage fields the review panel shows, when a context's meta carries them, each of the type shown:
    `score` a finite number (a numeric string is converted; anything else is left out, and stays in `meta`),
    `page` a number or text, `doc_id` and `title` text."""
    fields: dict[str, Any] = {}
    for name in ("doc_id", "title", "page"):
        value = meta.get(name)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and value != "":
            fields[name] = value if name == "page" else str(value)
    score = passage_score(meta.get("score"))
    if score is not None:
        fields["score"] = score
    return fields


def passage_score(value: Any) -> float | None:
    """A retrieval score as a finite float, or None when it is not one (text, a list, NaN, a bool…)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class _NonStandardNumber(ValueError):
    pass


def _no_constant(name: str):
    """NaN and Infinity are not JSON (Python's json reads them; PostgreSQL refuses them)."""
    raise _NonStandardNumber(name)


def iter_jsonl(text: str):
    """(line number, parsed object or the RecordParseError) for each non-blank line."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_constant=_no_constant)
        except json.JSONDecodeError as error:
            yield number, RecordParseError(f"invalid JSON: {error.msg} (column {error.colno})", number)
        except _NonStandardNumber as error:
            yield number, RecordParseError(f"invalid JSON: {error} is not a JSON number", number)
        except (ValueError, RecursionError) as error:  # an integer of thousands of digits, nesting too deep
            yield number, RecordParseError(f"invalid JSON: {type(error).__name__}: {str(error)[:100]}", number)


def parse_question_set(text: str) -> list[Question]:
    """A question set: one question per line (line n = question n), or JSONL {"id", "question"}.

    :raises RecordParseError: on a malformed JSONL line or an empty set."""
    lines = text.split("\n")
    if lines and lines[0].lstrip().startswith("{"):
        questions = []
        for number, obj in iter_jsonl(text):
            if isinstance(obj, RecordParseError):
                raise obj
            if not isinstance(obj, dict) or not isinstance(obj.get("question"), str) or not obj["question"].strip():
                raise RecordParseError("expected {\"id\", \"question\"} with a non-empty question", number)
            questions.append(Question(str(obj.get("id") or question_id_for(len(questions) + 1)), obj["question"].strip()))
    else:
        questions = [Question(question_id_for(n), line.strip()) for n, line in enumerate(lines, start=1) if line.strip()]
    if not questions:
        raise RecordParseError("the question set has no questions")
    ids = [q.id for q in questions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RecordParseError(f"question ids repeat: {', '.join(duplicates)}")
    return questions
