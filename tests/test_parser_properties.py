"""Property tests (hypothesis) of the record and verdict parsers: arbitrary bytes and text never raise anything but
the parsers' own RecordParseError, and what parses round-trips through the import and the JSONL export, on SQLite
and PostgreSQL."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from review.export import export_bytes
from review.importer import Importer
from review.record_files import (
    RecordParseError,
    clean_text,
    decode_text_counted,
    iter_jsonl,
    parse_jsonl_record,
    parse_question_set,
    parse_text_record,
)
from review.verdict_files import DEFAULT_LABEL_MAP, is_verdict_csv, parse_verdict_csv, parse_verdict_jsonl
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
RECORD_KEYS = st.sampled_from(["id", "question", "answer", "contexts", "doc_id", "question_id", "meta", "prompt",
                               "text", "score", "record_id", "verdict", "comment", "reason", "corrected_answer"])
RECORD_LIKE = st.dictionaries(RECORD_KEYS, JSON_VALUES, max_size=8)
# text made of the pieces record files are made of, so that parsing gets past the first checks
PIECES = st.sampled_from(["Question:", "Helpful Answer:", "Answer:::", "Answer:", 'Query: "', '"', "\n", "\n\n", " ",
                          "\x00", "\r\n", "\f", ",", "Unique_ID,decision", "Yes", "No", "{", "}", "é", "\ufeff"])
RECORDISH = st.lists(PIECES | st.text(max_size=6), max_size=30).map("".join)


def parses_or_refuses(function, *args):
    """The call's result, or None when it refused with RecordParseError (anything else propagates)."""
    try:
        return function(*args)
    except RecordParseError:
        return None


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400) | RECORDISH.map(lambda t: t.encode("utf-8")), stem=st.text(max_size=40))
def test_any_bytes_decode_and_parse_as_a_record_or_raise_recordparseerror(data, stem):
    decoded = parses_or_refuses(decode_text_counted, data)
    if decoded is None:
        return
    text, _ = decoded
    assert "\x00" not in text
    parses_or_refuses(parse_text_record, stem or "x", text, None)
    parses_or_refuses(parse_text_record, "Publication_d.pdf_CQ1", text, None)
    parses_or_refuses(parse_question_set, text)
    for line, obj in iter_jsonl(text):
        if not isinstance(obj, RecordParseError):
            parses_or_refuses(parse_jsonl_record, obj, line)
    if is_verdict_csv(text):
        parse_verdict_csv(text, DEFAULT_LABEL_MAP)
    parse_verdict_jsonl(text, DEFAULT_LABEL_MAP)


@settings(max_examples=300, deadline=None)
@given(obj=RECORD_LIKE | JSON_VALUES)
def test_any_json_value_is_a_record_or_a_recordparseerror(obj):
    record = parses_or_refuses(parse_jsonl_record, obj, 1)
    if record is not None:
        assert isinstance(record.answer, str) and record.external_id
        assert all(isinstance(p.get("score", 0.0), float) for p in record.passages), "a shown score is numeric"
        json.dumps(record.passages, allow_nan=False)
    line = json.dumps(obj)
    rows, errors = parse_verdict_jsonl(line, DEFAULT_LABEL_MAP)
    assert len(rows) + len(errors) == 1
    for row in rows:
        assert all(isinstance(v, (str, type(None))) for v in (row.comment, row.reason, row.corrected_answer))


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.lists(st.text(max_size=12) | st.sampled_from(['"', 'Yes', 'No', '"x', 'a,b', '\n']),
                               min_size=0, max_size=3), max_size=8))
def test_any_csv_is_rows_or_errors_never_an_exception(cells):
    text = "Unique_ID,decision,note\n" + "\n".join(",".join(row) for row in cells)
    rows, errors = parse_verdict_csv(text, DEFAULT_LABEL_MAP)
    assert all(row.record_id.strip() for row in rows)
    assert all(error.line for error in errors)


# -- what parses round-trips through the export ----------------------------------------------------------------

TEXT = st.text(max_size=40)
NON_BLANK = TEXT.filter(lambda t: clean_text(t)[0].strip())
CONTEXT = TEXT | st.fixed_dictionaries({"text": TEXT}, optional={"meta": st.fixed_dictionaries(
    {}, optional={"score": st.floats(allow_nan=False, allow_infinity=False) | TEXT, "page": st.integers(1, 999),
                  "title": TEXT})})
RECORD = st.fixed_dictionaries({"question": NON_BLANK, "answer": TEXT},
                               optional={"contexts": st.lists(CONTEXT, max_size=3), "doc_id": NON_BLANK,
                                         "question_id": NON_BLANK})
RUNS = itertools.count()


@pytest.mark.slow
def test_what_parses_round_trips_through_the_export(sessions, tmp_path):  # noqa: F811
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records=st.lists(RECORD, min_size=1, max_size=4), ids=st.lists(NON_BLANK, min_size=4, max_size=4,
                                                                             unique_by=lambda t: clean_text(t)[0].strip()))
    def round_trip(records, ids):
        run = f"run/{next(RUNS)}"  # a run with a slash: the key by (run, external id) holds it apart
        lines = [{**record, "id": ids[n]} for n, record in enumerate(records)]
        path = tmp_path / f"{abs(hash(run))}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        parsed = [parse_jsonl_record(obj, n) for n, obj in iter_jsonl(path.read_text(encoding="utf-8"))]
        report = Importer(sessions, actor=ADMIN, run=run).import_paths([path])
        assert not report.failures and report.records["added"] == len(parsed)
        with sessions() as session:
            data, count = export_bytes(session, "jsonl", run, actor=ADMIN)
        exported = {row["record_id"]: row for row in map(json.loads, data.decode("utf-8").split("\n")[:-1])}
        assert count == len(parsed) == len(exported)
        for record in parsed:
            row = exported[record.external_id]
            assert (row["run"], row["question"], row["answer"]) == (run, record.question, record.answer)
            assert (row["doc_id"], row["question_id"]) == (record.doc_id, record.question_id)
            assert [p["text"] for p in row["passages"]] == [p["text"] for p in record.passages]
            assert [p["score"] for p in row["passages"]] == [p.get("score") for p in record.passages]
            assert "\x00" not in json.dumps(row)
        assert Importer(sessions, actor=ADMIN, run=run).import_paths([path]).records["unchanged"] == len(parsed)

    round_trip()
