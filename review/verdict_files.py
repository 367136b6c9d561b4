"""Parse verdicts given elsewhere (a CSV of decisions, or JSONL) into rows the importer stores as annotations.

CSV: columns `Unique_ID` (a record id, with or without `.txt`) and `decision` (a label such as Yes/No; blank =
no decision). JSONL: {"record_id", "verdict", "corrected_answer"?, "reason"?, "comment"?} per line. Labels become
verdicts through a label map: by default Yes → accept, No → reject (reason "other": a bare No does not say why).

Each line (JSONL) or row (CSV) is checked on its own: a wrongly typed field (`"comment": 5`), an unknown reason
or an unknown label is reported with its line number and the rest continue. A CSV field whose quote never
closes would swallow every row after it into one field: that is detected (a field running over a line end
where a row should end, or the file ending inside quotes) and reported as the line where the quote opens;
the rows before it are kept, and nothing after it is guessed at.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from review.models import REJECT_REASONS, VERDICTS
from review.record_files import RecordParseError, clean_json, clean_text, iter_jsonl

DEFAULT_LABEL_MAP = {"yes": ("accept", None), "no": ("reject", "other")}


@dataclass(frozen=True)
class VerdictRow:
    """One imported decision; `verdict` is None for a blank decision (counted, then skipped)."""

    line: int
    record_id: str
    verdict: str | None
    reason: str | None = None
    corrected_answer: str | None = None
    comment: str | None = None
    label: str | None = None


def parse_label_map(spec: str | None) -> dict[str, tuple[str, str | None]]:
    """`--map "Yes=accept,No=reject:wrong,Partly=correct"` on top of the defaults; labels match case-insensitively.

    :raises ValueError: on a malformed entry, an unknown verdict or reason."""
    mapping = dict(DEFAULT_LABEL_MAP)
    for entry in (spec or "").split(","):
        if not entry.strip():
            continue
        label, sep, target = entry.partition("=")
        verdict, _, reason = target.strip().partition(":")
        if not sep or not label.strip() or verdict not in VERDICTS:
            raise ValueError(f"--map entry {entry.strip()!r}: expected LABEL=accept|correct|reject[:REASON]")
        if verdict == "reject":
            reason = reason or "other"
            if reason not in REJECT_REASONS:
                raise ValueError(f"--map entry {entry.strip()!r}: reason must be one of {', '.join(REJECT_REASONS)}")
        elif reason:
            raise ValueError(f"--map entry {entry.strip()!r}: only a rejection takes a reason")
        mapping[label.strip().lower()] = (verdict, reason or None)
    return mapping


def is_verdict_csv(text: str) -> bool:
    try:
        header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    except csv.Error:  # e.g. a bare carriage return in the first line: not a CSV of verdicts
        return False
    return {"Unique_ID", "decision"} <= {name.strip() for name in header}


def is_verdict_jsonl(first_object: object) -> bool:
    return isinstance(first_object, dict) and "record_id" in first_object and "verdict" in first_object


def parse_verdict_csv(text: str, label_map: dict[str, tuple[str, str | None]]) -> tuple[list[VerdictRow], list[RecordParseError]]:
    """Rows of a decisions CSV, and the rows that could not be read (a label without a mapping, no id, too many
    fields, an unbalanced quote: reported at the line where it opens, and reading resumes on the next line)."""
    text, _ = clean_text(text)
    lines = text.splitlines(keepends=True)
    rows: list[VerdictRow] = []
    errors: list[RecordParseError] = []
    try:
        header = [name.strip() for name in next(csv.reader(lines[:1], strict=True), [])]
    except csv.Error as error:
        return [], [RecordParseError(f"malformed CSV header: {error}", 1)]
    position = 1  # index into `lines` where the reader starts
    while position < len(lines):
        reader = csv.reader(io.StringIO("".join(lines[position:])), strict=True)
        resume = None
        while True:
            first = position + reader.line_num + 1  # the 1-based line the next row starts on
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as error:
                errors.append(RecordParseError(f"unbalanced quote or malformed CSV ({error}): this row was not "
                                               "read; reading resumes on the next line", first))
                resume = first
                break
            if not fields:
                continue
            if position + reader.line_num > first and _swallows_rows(fields, header, label_map):
                errors.append(RecordParseError(
                    f"a quote opened here closes only on line {position + reader.line_num}, swallowing the rows "
                    "between: this row was not read; reading resumes on the next line", first))
                resume = first
                break
            _csv_row(header, fields, first, label_map, rows, errors)
        if resume is None:
            break
        position = resume
    return rows, errors


def _csv_row(header: list[str], fields: list[str], line: int, label_map: dict, rows: list, errors: list) -> None:
    if len(fields) > len(header):
        errors.append(RecordParseError(f"{len(fields)} fields, but the header names {len(header)}", line))
        return
    row = dict(zip(header, fields))
    record_id = (row.get("Unique_ID") or "").strip()
    label = (row.get("decision") or "").strip()
    if not record_id:
        errors.append(RecordParseError("no Unique_ID", line))
        return
    if not label:
        rows.append(VerdictRow(line, record_id, None))
        return
    target = label_map.get(label.lower())
    if target is None:
        errors.append(RecordParseError(f"decision {label!r} has no verdict mapping (see --map)", line))
        return
    rows.append(VerdictRow(line, record_id, target[0], reason=target[1], label=label))


def _swallows_rows(fields: list[str], header: list[str], label_map: dict) -> bool:
    """Whether a row spanning several lines does so because a stray quote swallowed rows: one of its fields
    holds, after a line end, a line that reads as a whole row of this file (as many fields as the header, an
    id, and a decision that is blank or a known label). Legitimate multi-line fields (an answer's paragraphs)
    do not."""
    id_at, decision_at = header.index("Unique_ID"), header.index("decision")
    for value in fields:
        for piece in value.split("\n")[1:]:
            try:
                parts = next(csv.reader([piece]), [])
            except csv.Error:
                continue
            if (len(parts) == len(header) and parts[id_at].strip()
                    and (not parts[decision_at].strip() or parts[decision_at].strip().lower() in label_map)):
                return True
    return False


def _optional_text(obj: dict, name: str, line: int) -> str | None:
    """A JSONL field that, when present, must be a string. :raises RecordParseError:"""
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise RecordParseError(f"'{name}' must be a string, got {type(value).__name__} ({json_preview(value)})", line)


def json_preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_verdict_jsonl(text: str, label_map: dict[str, tuple[str, str | None]]) -> tuple[list[VerdictRow], list[RecordParseError]]:
    """Rows of a verdicts JSONL file; `verdict` may be accept/correct/reject or a label of the map. A line with
    a field of the wrong type is an error of that line; the other lines continue."""
    rows, errors = [], []
    for line, obj in iter_jsonl(text):
        if isinstance(obj, RecordParseError):
            errors.append(obj)
            continue
        try:
            row = _verdict_line(clean_json(obj)[0], line, label_map)
        except RecordParseError as error:
            errors.append(error)
            continue
        rows.append(row)
    return rows, errors


def _verdict_line(obj: object, line: int, label_map: dict[str, tuple[str, str | None]]) -> VerdictRow:
    if not isinstance(obj, dict):
        raise RecordParseError(f"expected an object with 'record_id', got {type(obj).__name__}", line)
    record_id = obj.get("record_id")
    if isinstance(record_id, bool) or not isinstance(record_id, (str, int)) or not str(record_id).strip():
        raise RecordParseError("expected an object with 'record_id' (a non-empty string)", line)
    record_id = str(record_id).strip()
    raw = obj.get("verdict")
    if raw is not None and not isinstance(raw, str):
        raise RecordParseError(f"'verdict' must be a string, got {type(raw).__name__} ({json_preview(raw)})", line)
    raw = (raw or "").strip()
    corrected, reason, comment = (_optional_text(obj, name, line) for name in ("corrected_answer", "reason", "comment"))
    if not raw:
        return VerdictRow(line, record_id, None)
    verdict, mapped_reason = (raw, None) if raw in VERDICTS else label_map.get(raw.lower(), (None, None))
    if verdict is None:
        raise RecordParseError(f"verdict {raw!r} is neither accept/correct/reject nor a mapped label", line)
    if verdict == "reject":
        reason = (reason or "").strip() or mapped_reason or "other"
        if reason not in REJECT_REASONS:
            raise RecordParseError(f"reason {reason!r} is not one of {', '.join(REJECT_REASONS)}", line)
    return VerdictRow(line, record_id, verdict, reason=reason, corrected_answer=corrected, comment=comment, label=raw)
