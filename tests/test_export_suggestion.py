"""Every exported record carries its suggested verdict, or null where it was not analysed."""

from __future__ import annotations

import csv
import io
import json

from review.access import Principal
from review.export import export_bytes
from review.records import apply_suggestion, get_record, record_from_answer
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)
from tests.test_review_db import make_answer

ADMIN = Principal("admin", "admin")
SUGGESTION = {"verdict": "reject", "p_accept": 0.14, "reasons": ["opens with an abstention", "1 of 2 unsupported"],
              "model": "kommineni2024-lr-test"}


def test_export_carries_the_suggestion_or_null(sessions, tmp_path):
    from configuration.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", generator_kind="extractive")
    with sessions() as session:
        record_from_answer(session, answer=make_answer(), settings=settings, run="r", record_id="r/1", external_id="1")
        record_from_answer(session, answer=make_answer(), settings=settings, run="r", record_id="r/2", external_id="2")
        apply_suggestion(get_record(session, record_id="r/1"), SUGGESTION)
        session.commit()
        jsonl, _ = export_bytes(session, "jsonl", actor=ADMIN)
        table, _ = export_bytes(session, "csv", actor=ADMIN)
    rows = {row["record_id"]: row for row in map(json.loads, jsonl.decode().splitlines())}
    assert rows["1"]["suggestion"] == SUGGESTION
    assert rows["2"]["suggestion"] is None
    flat = {row["record_id"]: row for row in csv.DictReader(io.StringIO(table.decode()))}
    assert (flat["1"]["suggestion_verdict"], flat["1"]["suggestion_p_accept"]) == ("reject", "0.14")
    assert flat["1"]["suggestion_reasons"] == "opens with an abstention; 1 of 2 unsupported"
    assert flat["2"]["suggestion_verdict"] == ""


def test_taking_the_suggestion_is_recorded_as_the_annotators_own_verdict(sessions, tmp_path):
    from configuration.settings import Settings
    from review.annotations import record_verdict
    from review.models import AnnotationVersion

    settings = Settings(data_dir=tmp_path / "data", generator_kind="extractive")
    ana = Principal("ana", "reviewer")
    with sessions() as session:
        record_from_answer(session, answer=make_answer(), settings=settings, run="r", record_id="r/1", external_id="1")
        taken = record_verdict(session, actor=ana, record_id="r/1", annotator="ana", verdict="reject",
                               reason="unsupported", suggested=True)
        assert (taken.annotator, taken.verdict, taken.suggested) == ("ana", "reject", True)
        changed = record_verdict(session, actor=ana, record_id="r/1", annotator="ana", verdict="accept")
        assert changed.suggested is False
        assert [v.suggested for v in session.query(AnnotationVersion)] == [True], "history keeps how it was made"
        jsonl, _ = export_bytes(session, "jsonl", actor=ADMIN)
    assert json.loads(jsonl.decode().splitlines()[0])["annotations"][0]["suggested"] is False
