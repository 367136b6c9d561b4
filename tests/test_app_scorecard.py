"""The Scorecard page in AppTest: estimates with intervals per run, drawing a sample, reviewing it in the Queue,
and two runs compared."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from sqlalchemy import select, update

from configuration.settings import Settings
from review.annotations import record_verdict
from review.db import open_database
from review.importer import Importer
from review.models import Record, SampleUnit
from tests.conftest import ADMIN, run_app

pytestmark = pytest.mark.slow


def import_runs(data_dir, tmp_path) -> None:
    """Two runs over the same 8 questions of 5 documents, with suggestions, and verdicts on half the records."""
    sessions = open_database(Settings(data_dir=data_dir))
    rng = np.random.default_rng(1)
    for run, rate in (("llama", 0.7), ("mixtral", 0.4)):
        lines = [json.dumps({"id": f"d{n // 8}-q{n % 8}", "question": f"Question {n % 8}?", "answer": f"Answer {n}.",
                             "contexts": ["A passage."], "doc_id": f"d{n // 8}", "question_id": f"Q{n % 8}"})
                 for n in range(40)]
        (tmp_path / f"{run}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        Importer(sessions, actor=ADMIN, run=run).import_paths([tmp_path / f"{run}.jsonl"])
        with sessions() as session:
            ids = session.scalars(select(Record.id).where(Record.run == run).order_by(Record.id)).all()
            for index, record_id in enumerate(ids):
                p = float(np.clip(rate + rng.normal(0, 0.2), 0.02, 0.98))
                session.execute(update(Record).where(Record.id == record_id).values(
                    p_reject=1 - p, suggestion={"verdict": "accept" if p >= 0.5 else "reject", "p_accept": p,
                                                "reasons": [], "model": "test-model"}))
                if index % 2 == 0:
                    accepted = rng.uniform() < rate
                    record_verdict(session, actor=ADMIN, record_id=record_id, annotator="study",
                                   verdict="accept" if accepted else "reject", reason=None if accepted else "wrong")
            session.commit()


@pytest.fixture
def app(demo_data_dir, tmp_path, monkeypatch):
    import_runs(demo_data_dir, tmp_path)
    at = run_app(monkeypatch, demo_data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/scorecard.py").run()
    assert not at.exception, at.exception
    return at


def table_rows(at) -> dict[str, dict]:
    frame = at.dataframe[0].value
    return {row["run"]: row for row in frame.to_dict("records")}


def test_each_run_has_its_estimate_interval_and_human_only_figure(app):
    rows = table_rows(app)
    assert set(rows) == {"llama", "mixtral"}
    for row in rows.values():
        assert row["records"] == 40 and row["human n"] == 20 and row["method"] == "ppi"
        estimate, low, high = map(float, re.match(r"([\d.]+)% \(([\d.]+)%–([\d.]+)%\)",
                                                  row["acceptance (95% CI)"]).groups())
        assert low < estimate < high
        assert row["human only (95% CI)"].endswith("%)")
        assert row["verdicts more for ±5 points"] > 100  # 20 verdicts give about ±20 points
        assert row["suggestions only (uncalibrated)"].endswith("%")
    assert any("as if it were a uniform random sample" in caption.value for caption in app.caption)
    assert any("points" in markdown.value and "llama is accepted" in markdown.value for markdown in app.markdown)


def test_a_sample_drawn_on_the_page_is_reviewed_in_the_queue(app, demo_data_dir):
    app.text_input[0].input("first-batch")
    app.number_input[0].set_value(6)
    app.button[0].click().run()  # the form's submit button
    assert not app.exception, app.exception
    assert any("sample first-batch: 6 of 40 records of run llama" in s.value.replace("\\", "") for s in app.success)
    with open_database(Settings(data_dir=demo_data_dir))() as session:
        chosen = {unit.record_id for unit in session.scalars(select(SampleUnit).where(SampleUnit.selected.is_(True)))}
    assert len(chosen) == 6
    next(button for button in app.button if button.label == "Review this sample in the Queue").click().run()
    assert not app.exception, app.exception
    assert app.session_state["queue_sort"] == "sample:first-batch"
    header = next(m.value for m in app.markdown if m.value.startswith("**") and " of " in m.value)
    assert re.match(r"\*\*\d of 6\*\*", header), header  # only the sample's records, at its first unreviewed one


def test_a_bad_sample_name_is_refused_with_its_reason(app):
    app.text_input[0].input("x" * 300)
    app.button[0].click().run()
    assert not app.exception
    assert any("printable name of 1 to 200 characters" in error.value for error in app.error)


def test_the_overview_per_question_table_has_intervals(app):
    app.switch_page("app_pages/overview.py").run()
    assert not app.exception, app.exception
    table = next(frame.value for frame in app.dataframe if "estimate (95% CI)" in frame.value.columns)
    assert len(table) == 8
    values = list(table["estimate (95% CI)"])
    # every other record is judged: Q0, Q2, Q4 and Q6 have five verdicts each (flagged small), the others none
    assert sum("(" in value and value.endswith("⚠ small") for value in values) == 4
    assert values.count("–") == 4


def test_records_without_suggestions_are_offered_an_analysis_with_progress(demo_data_dir, tmp_path, monkeypatch):
    line = json.dumps({"id": "a1", "question": "Which optimizer was used?", "answer": "Adam was used.",
                       "contexts": ["The network was trained with the Adam optimizer."], "doc_id": "d"})
    (tmp_path / "plain.jsonl").write_text(line + "\n", encoding="utf-8")
    sessions = open_database(Settings(data_dir=demo_data_dir))
    Importer(sessions, actor=ADMIN, run="plain").import_paths([tmp_path / "plain.jsonl"])
    at = run_app(monkeypatch, demo_data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/scorecard.py").run()
    assert any("1 records have no suggestion yet" in w.value for w in at.warning)
    next(button for button in at.button if button.key == "scorecard_analyse_plain").click().run()
    assert not at.exception, at.exception
    with sessions() as session:
        record = session.scalars(select(Record).where(Record.run == "plain")).one()
    assert record.support is not None and record.suggestion["p_accept"] > 0
    assert not any("no suggestion yet" in w.value for w in at.warning)
