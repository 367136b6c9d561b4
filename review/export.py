"""Export records with their annotations: JSONL (one record a line), CSV and Parquet (one annotation a row).

CSV is opened in spreadsheets, which run a cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return
before one) as a formula: every such text cell is prefixed with a single quote, as OWASP advises against CSV
injection. JSONL and Parquet are read by programs and keep the exact text.

JSON has no NaN or infinite numbers and strict parsers refuse a file holding them, so no export writes one: such
a number (an imported passage's score, say) is exported as null, and a stored suggestion whose probability is not
finite as no suggestion (`finite`; every `json.dumps` here refuses them as a guard).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from loupe.suggestion import export_suggestion
from review.access import Principal, require_role
from review.models import Adjudication, Annotation, Record, WithdrawnVerdict

FORMATS = ("jsonl", "csv", "parquet")
PASSAGE_FIELDS = ("text", "doc_id", "title", "page", "score", "ranks")
VERDICT_FIELDS = ("annotator", "verdict", "corrected_answer", "reason", "comment", "passage_marks", "evidence",
                  "seconds", "suggested")
ANNOTATION_FIELDS = (*VERDICT_FIELDS, "created_at", "updated_at", "history")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text: a string starting like a formula gets a leading single quote
    (OWASP, CSV injection); anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def finite(value: Any) -> Any:
    """The value with every NaN or infinite number, at any depth, replaced by None (null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def verdict_row(verdict: Any, *times: str) -> dict[str, Any]:
    """What was decided, and when (`times`: the datetime attributes to add, as ISO text)."""
    return {**{name: getattr(verdict, name) for name in VERDICT_FIELDS},
            **{name: _iso(getattr(verdict, name)) for name in times}}


def annotation_row(annotation: Annotation) -> dict[str, Any]:
    """A current verdict with its earlier versions, oldest first: a changed verdict is exported with what it was."""
    return {**verdict_row(annotation, "created_at", "updated_at"),
            "history": [{"version": old.version, **verdict_row(old, "recorded_at")} for old in annotation.history]}


def withdrawn_row(withdrawn: WithdrawnVerdict) -> dict[str, Any]:
    return {"version": withdrawn.version, **verdict_row(withdrawn, "recorded_at", "withdrawn_at"),
            "withdrawn_by": withdrawn.withdrawn_by}


def record_row(record: Record, adjudication: Adjudication | None) -> dict[str, Any]:
    """The JSONL object of a record; its final verdict and answer are those of its adjudication, if any."""
    return {
        "record_id": record.external_id or record.id,
        "run": record.run,
        "doc_id": record.doc_id,
        "question_id": record.question_id,
        "question": record.question,
        "answer": record.answer,
        "generator": {"kind": record.generator_kind, "model": record.generator_model, "note": record.generator_note},
        "passages": [{name: passage.get(name) for name in PASSAGE_FIELDS} for passage in record.passages],
        "support": (record.support or {}).get("sentences"),
        "suggestion": export_suggestion(record.suggestion),
        "annotations": [annotation_row(annotation) for annotation in record.annotations],
        "withdrawn": [withdrawn_row(withdrawn) for withdrawn in record.withdrawn],  # first verdicts undone
        "final_verdict": adjudication.verdict if adjudication else None,
        "final_answer": adjudication.final_answer if adjudication else None,
        "final_source": "adjudication" if adjudication else None,
        "prompt": record.prompt,
        "settings": record.settings,
        "answer_of": (record.meta or {}).get("answer_of"),  # answered again from that record's passages
        "created_at": _iso(record.created_at),
    }


def iter_records(session: Session, run: str | None = None, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Records as JSONL rows in creation order, read in batches so that large databases stream."""
    query = (select(Record, Adjudication).outerjoin(Adjudication, Adjudication.record_id == Record.id)
             .options(selectinload(Record.annotations).selectinload(Annotation.history),
                      selectinload(Record.withdrawn)).order_by(Record.created_at, Record.id))
    if run is not None:
        query = query.where(Record.run == run)
    for record, adjudication in session.execute(query.execution_options(yield_per=batch)):
        yield finite(record_row(record, adjudication))


def suggestion_columns(suggestion: dict[str, Any] | None) -> dict[str, Any]:
    """The suggestion as flat columns (CSV, Parquet): empty where the record was not analysed."""
    suggestion = suggestion or {}
    return {"suggestion_verdict": suggestion.get("verdict"), "suggestion_p_accept": suggestion.get("p_accept"),
            "suggestion_reasons": "; ".join(suggestion.get("reasons") or []) or None,
            "suggestion_model": suggestion.get("model")}


def flat_rows(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """One row per annotation (one with empty annotation fields for an unannotated record); nested values as JSON."""
    for row in rows:
        base = {
            "record_id": row["record_id"], "run": row["run"], "doc_id": row["doc_id"],
            "question_id": row["question_id"], "question": row["question"],
            "answer": row["answer"], "generator_kind": row["generator"]["kind"],
            "generator_model": row["generator"]["model"], "final_verdict": row["final_verdict"],
            "final_answer": row["final_answer"], "final_source": row["final_source"],
            "passages": _json(row["passages"]),
            "support": _json(row["support"]),
            "withdrawn": _json(row["withdrawn"]) if row["withdrawn"] else None,
            **suggestion_columns(row["suggestion"]),
        }
        for annotation in row["annotations"] or [dict.fromkeys(ANNOTATION_FIELDS)]:
            flat = dict(base)
            for name in ANNOTATION_FIELDS:
                value = annotation[name]
                flat[name] = _json(value) if isinstance(value, (dict, list)) else value
            yield flat


def export(session: Session, fmt: str, out: Path, run: str | None = None, *, actor: Principal) -> int:
    """Write the export to a file; returns the number of records. :raises ValueError: on an unknown format."""
    data, count = export_bytes(session, fmt, run, actor=actor)
    out.write_bytes(data)
    return count


def export_bytes(session: Session, fmt: str, run: str | None = None, *, actor: Principal) -> tuple[bytes, int]:
    """The export as bytes (for a download button or stdout) and the number of records in it. Admins only:
    it holds everyone's verdicts."""
    require_role(actor, "admin", "export records")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    rows = list(iter_records(session, run))
    if fmt == "jsonl":
        return "".join(_json(row) + "\n" for row in rows).encode("utf-8"), len(rows)
    import pandas as pd

    frame = pd.DataFrame(list(flat_rows(iter(rows))), columns=FLAT_COLUMNS)
    if fmt == "csv":
        # RFC 4180 line ends: a field holding a carriage return is then quoted, not split into two rows
        return frame.map(csv_safe).to_csv(index=False, lineterminator="\r\n").encode("utf-8"), len(rows)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue(), len(rows)


def export_producer(sessions: Callable[[], Session], fmt: str, run: str | None = None, *,
                    actor: Principal) -> Callable[[], bytes]:
    """A function that builds the export when called, in a session of its own: for a download that generates
    on click (the Records page) instead of on every rerun. The role is checked now and again when it runs."""
    require_role(actor, "admin", "export records")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")

    def produce() -> bytes:
        with sessions() as session:
            return export_bytes(session, fmt, run, actor=actor)[0]

    return produce


FLAT_COLUMNS = ["record_id", "run", "doc_id", "question_id", "question", "answer", "generator_kind", "generator_model",
                "final_verdict", "final_answer", "final_source", "passages", "support", "withdrawn",
                *suggestion_columns(None),
                *ANNOTATION_FIELDS]
