"""One record cannot hold the analysis (issue 24, items 2 and 5): what one analysis looks at is bounded and the
support map says what was cut, and the background worker gives up on a record past its time limit, goes on
with the others, and leaves that record to an analysis on demand, which the Queue page offers.

The real aligner, splitter and suggester run; only the sentence model is a stand-in (a hashed bag of words) that
takes a fixed time per text, so that "slow" is a number of texts rather than a machine's speed.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from components.support_aligner import SupportAligner, TimeLimitExceeded
from configuration.settings import Settings, SettingsError, load_settings
from loupe import support
from review import analysis
from review.analysis_worker import AnalysisWorker, WorkerStatus
from review.db import open_database
from review.importer import Importer
from review.models import Record
from review.records import get_record
from tests.conftest import ADMIN, run_app
from tests.db_fixtures import db_url, sessions  # noqa: F401
from tests.test_app_queue import data_dir  # noqa: F401  (the fixture)

TIMEOUT = 120  # seconds; a busy machine is slow, a healthy run takes a few


class SlowModel:
    """A stand-in sentence encoder taking `seconds_per_text` per text; keeps every text it embedded."""

    def __init__(self, seconds_per_text: float = 0.0) -> None:
        self.seconds_per_text = seconds_per_text
        self.texts: list[str] = []

    def encode(self, texts, **_kwargs):
        time.sleep(self.seconds_per_text * len(texts))
        self.texts += texts
        vectors = np.zeros((len(texts), 32), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                vectors[row, hash(word) % 32] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def model(monkeypatch) -> SlowModel:
    fake = SlowModel()
    aligner = SupportAligner(model="stand-in", encoder=fake)
    monkeypatch.setattr(support, "_aligner", lambda _model: aligner)
    return fake


def imported(sessions, tmp_path, records: dict[str, tuple[str, list[str]]]) -> list[str]:  # noqa: F811
    lines = [json.dumps({"id": name, "question": "Which seed?", "answer": answer, "contexts": contexts,
                         "doc_id": "d1"}) for name, (answer, contexts) in records.items()]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert Importer(sessions, actor=ADMIN, run="r").import_paths([path]).records["added"] == len(records)
    return [f"r/{name}" for name in records]


def record_of(sessions, record_id):  # noqa: F811
    with sessions() as session:
        return get_record(session, record_id=record_id)


# -- the bounds of one analysis ----------------------------------------------------------------------------------


def test_an_analysis_looks_at_the_first_passages_only_and_says_so(model):
    passages = [f"Seed {number} was fixed at noon." for number in range(10_000)]
    started = time.perf_counter()
    stored = support.analyze_support(Settings(), "The seed was fixed at noon.", passages)
    assert time.perf_counter() - started < 30  # generous; 10,000 passages took 50 s before (on MiniLM)
    assert stored["cut"] == {"passages": support.MAX_PASSAGES, "passages_total": 10_000}
    assert not any(f"Seed {support.MAX_PASSAGES} " in text for text in model.texts), "later passages not embedded"
    assert all(item["passage"] < support.MAX_PASSAGES for item in stored["sentences"][0]["evidence"])
    assert "the first 50 of its 10,000 passages" in support.describe_cut(stored["cut"])


def test_the_answer_and_the_passages_text_are_bounded(model):
    answer = "The seed was fixed. " * 5_000  # 100,000 characters
    passages = ["Seeds were fixed. " * 300] * 40  # 216,000 characters together
    stored = support.analyze_support(Settings(), answer, passages)
    assert stored["cut"] == {"answer_chars": support.MAX_ANSWER_CHARS, "answer_chars_total": 100_000,
                             "passage_chars": support.MAX_PASSAGE_CHARS, "passage_chars_total": 216_000}
    assert max(sentence["end"] for sentence in stored["sentences"]) <= support.MAX_ANSWER_CHARS
    said = support.describe_cut(stored["cut"])
    assert "50,000 of the answer's 100,000 characters" in said and "100,000 of those passages' 216,000" in said


def test_an_ordinary_record_is_not_cut(model):
    stored = support.analyze_support(Settings(), "The seed was fixed.", ["Seeds were fixed at noon."])
    assert "cut" not in stored and support.describe_cut(None) is None


def test_an_analysis_past_its_deadline_stops(model):
    model.seconds_per_text = 0.01
    passages = [" ".join(f"Seed {number} was fixed at noon." for number in range(300))]
    with pytest.raises(TimeLimitExceeded):
        support.analyze_support(Settings(), "The seed was fixed at noon.", passages, deadline=time.monotonic() + 0.3)
    assert len(model.texts) < 300, "it stopped embedding"


# -- the worker's time limit -------------------------------------------------------------------------------------


def test_the_time_limit_is_a_setting(tmp_path):
    loaded = load_settings({"LOUPE_ANALYSIS_TIME_LIMIT_S": "2.5"}, toml_path=tmp_path / "none.toml")
    assert loaded.analysis_time_limit_s == 2.5
    with pytest.raises(SettingsError, match="analysis_time_limit_s"):
        Settings(analysis_time_limit_s=0).validate()


def test_a_record_over_the_time_limit_does_not_stall_the_others(sessions, tmp_path, model):  # noqa: F811
    model.seconds_per_text = 0.01  # the hostile record needs about 3 s, its limit is 0.5 s
    hostile_passage = " ".join(f"Seed {number} was fixed at noon." for number in range(300))
    hostile, normal = imported(sessions, tmp_path, {
        "hostile": ("The seed was fixed at noon.", [hostile_passage]),
        "normal": ("Seed 7 was fixed.", ["Seed 7 was fixed before training."]),
    })
    worker = AnalysisWorker(sessions, Settings(data_dir=tmp_path / "data", analysis_time_limit_s=0.5), quiet_s=0)
    try:
        worker.ahead([hostile, normal])
        assert worker.wait_idle(TIMEOUT)
        assert record_of(sessions, normal).support is not None, "the next record was analysed"
        assert record_of(sessions, hostile).support is None, "nothing is stored for the record over the limit"
        assert worker.over_limit(hostile) == 0.5 and worker.over_limit(normal) is None
        assert worker.status().error is None, "a record over the limit is no crash"
        embedded = len(model.texts)
        worker.ahead([hostile])  # the page asks again: it is not tried again in the background
        assert worker.wait_idle(TIMEOUT) and len(model.texts) == embedded
    finally:
        worker.stop()
    done = analysis.ensure_support(sessions, worker.settings, record_of(sessions, hostile))  # on demand: no limit
    assert done.support is not None and done.support["sentences"]


# -- the Queue page ------------------------------------------------------------------------------------------------


class OverLimitWorker:
    """A worker that gave up on every record at its time limit of 20 s."""

    def ahead(self, record_ids) -> None:
        pass

    def status(self) -> WorkerStatus:
        return WorkerStatus(running=True, pending=0, done=0, skipped=0, current=None, error=None)

    def over_limit(self, record_id: str) -> float:
        return 20.0


@pytest.mark.slow
def test_the_queue_says_a_record_was_over_the_limit_and_analyses_it_when_asked(data_dir, monkeypatch):  # noqa: F811
    import ui.app_state

    monkeypatch.setattr(ui.app_state, "analysis_worker", lambda: OverLimitWorker())
    monkeypatch.setattr(support, "MAX_PASSAGES", 1)  # the demo records have 3 passages: the analysis cuts two
    at = run_app(monkeypatch, data_dir, LOUPE_GENERATOR_KIND="extractive", LOUPE_ANNOTATOR="tester")
    at.switch_page("app_pages/queue.py").run()
    at.multiselect(key="queue_runs").select("first").run()
    assert not at.exception, at.exception
    assert any("stopped on this record after 20 s" in warning.value for warning in at.warning)
    record_id = next(b.key for b in at.button if b.key and b.key.startswith("queue_panel_accept_")).removeprefix(
        "queue_panel_accept_")
    sessions = open_database(Settings(data_dir=data_dir))
    with sessions() as session:
        assert session.get(Record, record_id).support is None, "not analysed until asked"
    at.button(key="queue_analyse_now").click().run()
    assert not at.exception, at.exception
    with sessions() as session:
        assert session.get(Record, record_id).support["cut"] == {"passages": 1, "passages_total": 3}
    assert any("the first 1 of its 3 passages" in warning.value for warning in at.warning), "the cut is said"
