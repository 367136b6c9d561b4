"""The suggested verdict in the review panel: its badge before the verdict, and one key that takes it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from configuration.settings import Settings
from review.analysis import current_model_name
from review.db import open_database
from review.models import Annotation
from review.records import apply_suggestion, get_record
from tests.conftest import run_app
from tests.test_app_queue import data_dir  # noqa: F401  (fixture)
from tests.test_assignment import judged_run  # noqa: F401  (fixture)
from tests.test_review_panel import button, record_id_shown
from ui.review_panel import suggestion_badge

pytestmark = pytest.mark.slow
SUGGESTION = {"verdict": "reject", "p_accept": 0.14, "model": "kommineni2024-lr-test",
              "reasons": ["opens by saying the context lacks the answer", "2 of 3 sentences unsupported"]}


def test_the_badge_names_the_verdict_its_probability_and_first_reason():
    assert suggestion_badge(SUGGESTION) == "suggest: reject · 86% · opens by saying the context lacks the answer"
    assert suggestion_badge({**SUGGESTION, "verdict": "accept", "p_accept": 0.9, "reasons": []}) == "suggest: accept · 90%"
    assert suggestion_badge(None) is None


def test_one_key_takes_the_suggestion_as_the_annotators_own_verdict(data_dir, monkeypatch):  # noqa: F811
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/queue.py").run()
    at.multiselect(key="queue_runs").select("first").run()
    shown = record_id_shown(at)
    sessions = open_database(Settings(data_dir=data_dir))
    in_force = current_model_name(Settings(data_dir=data_dir))  # else the analysis would suggest anew
    with sessions() as session:
        apply_suggestion(get_record(session, record_id=shown), {**SUGGESTION, "model": in_force})
        session.commit()
    at.run()
    assert record_id_shown(at) == shown
    assert any("suggest: reject" in caption.value for caption in at.caption)
    take = button(at, f"queue_panel_take_{shown}")
    assert take.proto.shortcut.upper() == "T"
    take.click().run()
    assert not at.exception, at.exception
    with sessions() as session:
        saved = session.scalars(select(Annotation).where(Annotation.record_id == shown)).one()
    assert (saved.annotator, saved.verdict, saved.reason, saved.suggested) == ("tester", "reject", "unsupported", True)
    assert "2 of 3 sentences unsupported" in saved.comment


def test_progress_page_measures_the_suggestion_against_each_annotator(judged_run, monkeypatch):  # noqa: F811
    sessions = open_database(Settings(data_dir=judged_run))
    with sessions() as session:
        ids = sorted(session.scalars(select(Annotation.record_id).distinct()))
        for record_id, verdict in zip(ids, ("accept", "reject", "reject", "accept")):
            apply_suggestion(get_record(session, record_id=record_id),
                             {"verdict": verdict, "p_accept": 0.8 if verdict == "accept" else 0.2, "reasons": [],
                              "model": "m1"})
        session.commit()
    at = run_app(monkeypatch, judged_run, LOUPE_GENERATOR_KIND="extractive", LOUPE_AUTH="off", LOUPE_ANNOTATOR="boss")
    at.switch_page("app_pages/progress.py").run()
    assert not at.exception, at.exception
    table = next(frame.value for frame in at.dataframe if "models" in frame.value.columns)
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    # ann: people accept, accept, reject against accept, reject, reject: p_o 2/3, p_e 4/9, kappa (2/9)/(5/9) = 0.4
    assert rows == [{"annotator": "ann", "n": 3, "agreement": 0.6667, "Cohen's kappa": 0.4, "models": "m1"},
                    {"annotator": "bob", "n": 1, "agreement": 1.0, "Cohen's kappa": None, "models": "m1"}]
