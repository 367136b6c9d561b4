"""Background analysis (review.analysis_worker): records analysed ahead are then shown without recomputing; a
crash of the worker is reported, on-demand analysis still works, and the next request restarts the thread."""

from __future__ import annotations

import json
import threading
import time

import pytest

from configuration.settings import Settings
from loupe import support
from review import analysis
from review.analysis_worker import AnalysisWorker
from review.importer import Importer
from review.records import get_record
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401

TIMEOUT = 120  # seconds; a busy machine is slow, a healthy run takes well under one


def support_of(answer: str) -> dict:
    """A support map without the sentence model: every sentence supported by passage 0."""
    sentences = [{"index": i, "text": text, "start": 0, "end": len(text), "supported": True, "kind": "claim",
                  "score": 0.8, "evidence": []} for i, text in enumerate(answer.split(". "))]
    return {"abstains": False, "abstention_sentences": [], "sentences": sentences,
            "supported_count": len(sentences), "unsupported_count": 0,
            "thresholds": {"min_score": 0.39, "semantic_weight": 0.6, "max_evidence": 3, "lexical_prefilter": True},
            "model": "stand-in"}


class Spy:
    """Stands in for loupe.support.analyze_support as review.analysis calls it: records which answers it analysed
    and from which thread; raises while `failing` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.failing: str | None = None

    def __call__(self, settings, answer, passage_texts, deadline=None):
        self.calls.append((answer, threading.current_thread().name))
        if self.failing:
            raise RuntimeError(self.failing)
        return support_of(answer)

    def answers(self) -> list[str]:
        return [answer for answer, _ in self.calls]


@pytest.fixture
def spy(monkeypatch) -> Spy:
    spy = Spy()
    spy.prepared = []
    monkeypatch.setattr(analysis, "analyze_support", spy)
    monkeypatch.setattr(support, "prepare_support", lambda settings, items, deadline=None: spy.prepared.append(
        sorted(answer for answer, _ in items)) or 0)
    return spy


def imported(sessions, tmp_path, count: int = 4) -> list[str]:  # noqa: F811
    lines = [json.dumps({"id": f"q{i}", "question": "Which seed?", "answer": f"Answer {i}. Seed {i} was fixed.",
                         "contexts": [f"Seed {i} was fixed."], "doc_id": "d1", "question_id": f"Q{i}"})
             for i in range(count)]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert Importer(sessions, actor=ADMIN, run="r").import_paths([path]).records["added"] == count
    return [f"r/q{i}" for i in range(count)]


def shown(sessions, settings, record_id):  # noqa: F811
    """What the panel does when it shows a record: read it, then ensure its support map."""
    with sessions() as session:
        record = get_record(session, record_id=record_id)
    return analysis.ensure_support(sessions, settings, record)


@pytest.fixture
def worker(sessions, tmp_path):  # noqa: F811
    worker = AnalysisWorker(sessions, Settings(data_dir=tmp_path / "data"))
    yield worker
    worker.stop()


def test_a_record_analysed_ahead_is_shown_without_recomputing(sessions, tmp_path, spy, worker):  # noqa: F811
    ids = imported(sessions, tmp_path)
    worker.ahead(ids[1:3])
    assert worker.wait_idle(TIMEOUT)
    status = worker.status()
    assert (status.done, status.skipped, status.pending, status.error) == (2, 0, 0, None)
    assert spy.answers() == ["Answer 1. Seed 1 was fixed.", "Answer 2. Seed 2 was fixed."], "most urgent first"
    assert {thread for _, thread in spy.calls} == {"loupe-analysis-ahead"}, "in the worker's thread"
    assert spy.prepared == [["Answer 1. Seed 1 was fixed.", "Answer 2. Seed 2 was fixed."]], "embedded together"

    for record_id in ids[1:3]:
        record = shown(sessions, worker.settings, record_id)
        assert record.support["model"] == "stand-in"
    assert len(spy.calls) == 2, "the records analysed ahead were shown without analysing them again"

    worker.ahead(ids[1:4])  # the next step of the queue: two of these are done already
    assert worker.wait_idle(TIMEOUT)
    assert len(spy.calls) == 3 and spy.answers()[-1] == "Answer 3. Seed 3 was fixed."
    assert (worker.status().done, worker.status().skipped) == (3, 2)


def test_newer_requests_go_first_and_unknown_records_are_skipped(sessions, tmp_path, spy, worker):  # noqa: F811
    ids = imported(sessions, tmp_path)
    gate = threading.Event()
    original = spy.__call__

    def slow(settings, answer, passage_texts, deadline=None):
        gate.wait(TIMEOUT)
        return original(settings, answer, passage_texts)

    analysis.analyze_support = slow  # restored by the spy fixture's monkeypatch
    worker.ahead([ids[0]])
    deadline = time.monotonic() + TIMEOUT
    while worker.status().current != ids[0] and time.monotonic() < deadline:  # the thread holds the first one
        time.sleep(0.01)
    worker.ahead([ids[1], ids[2]])
    worker.ahead([ids[3], "r/missing", ids[2], ids[3]])  # newest first, duplicates once
    gate.set()
    assert worker.wait_idle(TIMEOUT)
    assert spy.answers()[1:] == ["Answer 3. Seed 3 was fixed.", "Answer 2. Seed 2 was fixed.",
                                 "Answer 1. Seed 1 was fixed."]
    assert worker.status().error is None and worker.status().done == 4
    assert spy.prepared[-1] == ["Answer 1. Seed 1 was fixed.", "Answer 2. Seed 2 was fixed.",
                                "Answer 3. Seed 3 was fixed."], "the waiting three in one batch"


def test_a_batch_yields_to_a_newer_request(sessions, tmp_path, spy, worker, monkeypatch):  # noqa: F811
    import review.analysis_worker as module

    ids = imported(sessions, tmp_path, count=6)
    monkeypatch.setattr(module, "BATCH", 3)
    gate, started = threading.Event(), threading.Event()
    original = spy.__call__

    def slow(settings, answer, passage_texts, deadline=None):
        started.set()
        gate.wait(TIMEOUT)
        return original(settings, answer, passage_texts)

    analysis.analyze_support = slow
    worker.ahead(ids[:3])  # one batch: q0 q1 q2
    assert started.wait(TIMEOUT)
    worker.ahead([ids[4], ids[5]])  # while q0 is analysed: q4 q5 go before q1 q2, then q3 is not asked for
    gate.set()
    assert worker.wait_idle(TIMEOUT)
    assert [answer.split(".")[0] for answer in spy.answers()] == ["Answer 0", "Answer 4", "Answer 5", "Answer 1",
                                                                  "Answer 2"]


def test_a_crash_is_reported_and_the_panel_still_computes_on_demand(sessions, tmp_path, spy, worker):  # noqa: F811
    ids = imported(sessions, tmp_path)
    spy.failing = "the model file is unreadable"
    worker.ahead(ids[:2])
    assert worker.wait_idle(TIMEOUT)
    status = worker.status()
    assert not status.running and status.done == 0
    assert status.error is not None and "r/q0" in status.error and "the model file is unreadable" in status.error

    spy.failing = None  # on demand, the page's own thread analyses the records the worker did not
    record = shown(sessions, worker.settings, ids[0])
    assert record.support is not None and spy.calls[-1][1] != "loupe-analysis-ahead"

    worker.ahead(ids[:3])  # restarted; the record it crashed on is left to on-demand analysis
    assert worker.wait_idle(TIMEOUT)
    status = worker.status()
    assert status.error is None, "a record went through after the restart"
    assert (status.done, status.skipped) == (2, 0)
    assert spy.answers().count("Answer 0. Seed 0 was fixed.") == 2, "the crash, then on demand; not a third time"
    assert all(shown(sessions, worker.settings, record_id).support for record_id in ids[:3])
    assert len(spy.calls) == 4


def test_a_stopped_worker_takes_no_more_requests(sessions, tmp_path, spy, worker):  # noqa: F811
    ids = imported(sessions, tmp_path, count=1)
    worker.stop()
    worker.ahead(ids)
    assert not worker.status().running and spy.calls == []


def test_cli_analyze_does_a_whole_run_with_a_progress_line(tmp_path, monkeypatch, spy, capsys):
    import cli

    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    lines = [json.dumps({"id": f"q{i}", "question": "Which seed?", "answer": f"Seed {i}.", "contexts": ["Seeds."]})
             for i in range(3)]
    (tmp_path / "run.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli.main(["import", str(tmp_path / "run.jsonl"), "--run", "r"]) == 0
    capsys.readouterr()
    assert cli.main(["analyze", "--run", "r"]) == 0
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if "analysing" in line] == [
        "[1/3] analysing r/q0", "[2/3] analysing r/q1", "[3/3] analysing r/q2"]
    assert "computed for 3 records of run r" in out and len(spy.calls) == 3
    assert cli.main(["analyze", "--run", "r"]) == 0
    assert "computed for 0 records" in capsys.readouterr().out and len(spy.calls) == 3


def test_the_worker_waits_until_the_page_that_asked_is_drawn(sessions, tmp_path, spy):  # noqa: F811
    """Nothing is analysed within quiet_s of an ahead() call (the page that called is being drawn), and each
    newer call pushes the start back again."""
    ids = imported(sessions, tmp_path)
    worker = AnalysisWorker(sessions, Settings(data_dir=tmp_path / "data"), quiet_s=0.6)
    try:
        started = time.monotonic()
        worker.ahead([ids[0]])
        time.sleep(0.3)
        worker.ahead([ids[1]])  # the next record drawn: the quiet period starts again
        asked = time.monotonic()
        assert worker.wait_idle(TIMEOUT)
        assert spy.answers() == ["Answer 1. Seed 1 was fixed.", "Answer 0. Seed 0 was fixed."]
        assert time.monotonic() - asked >= 0.6 and time.monotonic() - started >= 0.9
    finally:
        worker.stop()

