"""Parse verdicts given elsewhere (a CSV of decisions, or JSONL) into rows the importer stores as annotations.

CSV: columns `Unique_ID` (a record id, with or without `.txt`) and `decision` (a label such as Yes/No; blank =
no decision). JSONL: {"record_id", "verdict", "corrected_answer"?, "reason"?, "comment"?} per line. Labels become
verdicts through a label map: by default Yes → accept, No → reject (reason "other": a bare No does not say why).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from review.models import REJECT_REASONS, VERDICTS
from review.record_files import RecordParseError, iter_jsonl

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
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    return {"Unique_ID", "decision"} <= {name.strip() for name in header}


def is_verdict_jsonl(first_object: object) -> bool:
    return isinstance(first_object, dict) and "record_id" in first_object and "verdict" in first_object


def parse_verdict_csv(text: str, label_map: dict[str, tuple[str, str | None]]) -> tuple[list[VerdictRow], list[RecordParseError]]:
    """Rows of a decisions CSV, and the rows that could not be read (a label without a mapping, no id)."""
    rows, errors = [], []
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    for row in reader:
        line = reader.line_num
        record_id = (row.get("Unique_ID") or "").strip()
        label = (row.get("decision") or "").strip()
        if not record_id:
            errors.append(RecordParseError("no Unique_ID", line))
            continue
        if not label:
            rows.append(VerdictRow(line, record_id, None))
            continue
        target = label_map.get(label.lower())
        if target is None:
            errors.append(RecordParseError(f"decision {label!r} has no verdict mapping (see --map)", line))
            continue
        rows.append(VerdictRow(line, record_id, target[0], reason=target[1], label=label))
    return rows, errors


def parse_verdict_jsonl(text: str, label_map: dict[str, tuple[str, str | None]]) -> tuple[list[VerdictRow], list[RecordParseError]]:
    """Rows of a verdicts JSONL file; `verdict` may be accept/correct/reject or a label of the map."""
    rows, errors = [], []
    for line, obj in iter_jsonl(text):
        if isinstance(obj, RecordParseError):
            errors.append(obj)
            continue
        if not isinstance(obj, dict) or not str(obj.get("record_id") or "").strip():
            errors.append(RecordParseError("expected an object with 'record_id'", line))
            continue
        raw = str(obj.get("verdict") or "").strip()
        if not raw:
            rows.append(VerdictRow(line, str(obj["record_id"]).strip(), None))
            continue
        verdict, reason = (raw, None) if raw in VERDICTS else label_map.get(raw.lower(), (None, None))
        if verdict is None:
            errors.append(RecordParseError(f"verdict {raw!r} is neither accept/correct/reject nor a mapped label", line))
            continue
        if verdict == "reject":
            reason = obj.get("reason") or reason or "other"
        rows.append(VerdictRow(
            line, str(obj["record_id"]).strip(), verdict, reason=reason,
            corrected_answer=obj.get("corrected_answer"), comment=obj.get("comment"), label=raw,
        ))
    return rows, errors
