"""Analysis speed without changing the result: SupportAligner.prepare (several records per encoder call),
the cached passage-sentence split, and the sentence encoder's thread setting, restored after each encode."""

from __future__ import annotations

import threading

import pytest

from components import support_aligner
from components.sentence_model import SentenceEncoderFactory
from components.support_aligner import SupportAligner, passage_sentences
from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings
from tests.test_support_aligner import PASSAGES, CountingModel

RECORDS = [
    ("The network used the Adam optimizer. Two experts drew bounding boxes.", PASSAGES),
    ("Adam was the optimizer. The text does not mention GPUs.", PASSAGES),
    ("Bounding boxes were drawn by two experts.", PASSAGES[1:]),
]


def test_prepared_records_are_analysed_without_embedding_and_give_the_same_maps():
    alone = SupportAligner(model="fake", encoder=CountingModel())
    expected = [alone.run(answer=answer, passages=passages)["support"] for answer, passages in RECORDS]

    fake = CountingModel()
    aligner = SupportAligner(model="fake", encoder=fake)
    embedded = aligner.prepare(RECORDS)
    assert len(fake.calls) == 1 and embedded == len(fake.calls[0]) == len(set(fake.calls[0]))
    assert [aligner.run(answer=answer, passages=passages)["support"] for answer, passages in RECORDS] == expected
    assert len(fake.calls) == 1, "run() found every text in the cache"
    assert aligner.prepare(RECORDS) == 0 and len(fake.calls) == 1, "nothing left to embed"


def test_prepare_embeds_at_most_a_chunk_of_records_per_call(monkeypatch):
    monkeypatch.setattr(support_aligner, "PREPARE_RECORDS", 2)
    fake = CountingModel()
    SupportAligner(model="fake", encoder=fake).prepare(RECORDS)
    assert len(fake.calls) == 2


def test_the_passage_split_is_cached_and_numbered_per_call():
    first = passage_sentences(["A first passage about Adam.", "Seeds were fixed."])
    again = passage_sentences(["Seeds were fixed.", "A first passage about Adam."])
    assert [(s.passage, s.clean) for s in again] == [(0, "Seeds were fixed."), (1, "A first passage about Adam.")]
    assert [s.clean for s in first] == [s.clean for s in again][::-1]


@pytest.mark.slow
def test_the_encoder_restores_the_callers_thread_setting():
    torch = pytest.importorskip("torch")
    encoder = SentenceEncoderFactory.get_encoder(resolve_embedding_model(Settings().embedding_model))
    seen = {}

    def in_thread():
        torch.set_num_threads(2)
        encoder.encode(["Seeds were fixed.", "The optimizer was Adam."])
        seen["after"] = torch.get_num_threads()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen["after"] == 2


@pytest.mark.slow
def test_the_analysis_bench_runs_on_a_few_study_records():
    import json
    import subprocess
    import sys
    from pathlib import Path

    from tests.conftest import shared_path

    shared_path("data", "kommineni2024", "human_decisions")
    repo = Path(__file__).resolve().parents[1]
    completed = subprocess.run([sys.executable, "bench/analyze.py", "--papers", "1", "--records", "6",
                                "--no-baseline", "--json"], cwd=repo, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert set(result) >= {"loupe", "batched", "batched_same_maps", "cache"} and "baseline" not in result
    assert result["loupe"]["records"] == result["batched"]["records"] == 6
    assert result["loupe"]["records_per_s"] > 0 and 0 < result["cache"]["passage_sentences"] <= result["cache"]["size"]
