"""Degenerate output of the bundled model is caught, not shown: the detector on the outputs the issue reported and
on the Kommineni study's accepted answers (where it must not fire), the cut to the last complete sentence, and the
fallback to the extractive answer in Ask (the record keeps the model's output and the reason) and in batch runs.

The generator standing in for the bundled model replays recorded outputs of it (`ReplayGenerator`), so that the
rest, retrieval, the extractive answerer, the review database, is the real thing without minutes of decoding.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from haystack import component
from haystack.dataclasses import ChatMessage

from configuration.model_paths import BUNDLED_GENERATOR
from loupe.degeneration import degeneration, finished_answer
from loupe.generators import GeneratorChoice
from loupe.qa import Asker
from review.asking import ask_and_record
from review.batch import run_batch
from review.record_files import Question
from review.records import get_record
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

STUDY = Path(__file__).resolve().parents[2] / "shared" / "data" / "kommineni2024" / "human_decisions"

# What the bundled model answered to demo questions (issue 22), as it answered them.
REPEATED_WORD = ("1. The method is based on a pre-trained system.\n2. It uses a pre-pre-trained pretrained pretrained "
                 "pretrained system for image\nrecognition.")
WORDLESS_ENUMERATION = "1. 1.1.1\n2. 2.1.2\n3. 3.1.3\n4. 4.1.4"
REPEATED_NGRAM = ("1. The proposed method for data augmentation is based on deep learning.\n"
                  "2. The proposed method for image augmentation is based on deep learning.\n"
                  "3. The proposed method uses augmentation and is based on deep learning.\n"
                  "4. The proposed method is based on deep learning.")
REPEATED_SENTENCE = ("The model uses images. The previous work was trained with the previous work. "
                     "The previous work was trained with the previous work.")
INVENTED_TURN = ("Seeds were fixed for every run.\nQuestion 2: Which optimizer was used?\n"
                 "Answer: 1. The method is based to handle")
CLEAN = "The data were split 70/15/15 into training, validation and test sets by site. Sites never overlap."


@pytest.mark.parametrize(("output", "reason"), [
    (REPEATED_WORD, "repeated itself: 'pretrained' 3 times in a row"),
    (WORDLESS_ENUMERATION, "enumerated numbers without words ('1. 1.1.1')"),
    (REPEATED_NGRAM, "repeated itself: 'is based on deep' 3 times"),
    (REPEATED_SENTENCE, "repeated a sentence ('The previous work was trained with the p…')"),
    (INVENTED_TURN, "invented a further turn ('Question 2:')"),
])
def test_the_reported_outputs_are_degenerate(output: str, reason: str):
    assert degeneration(output) == reason


def test_a_plain_answer_and_a_parallel_list_are_not():
    assert degeneration(CLEAN) is None
    assert degeneration("The training set is used to fit, the validation set is used to tune and the test set is "
                        "used to report the model.") is None


@pytest.mark.skipif(not STUDY.is_dir(), reason="the Kommineni study's data (../shared) is not here")
def test_the_study_answers_people_accepted_are_not_degenerate():
    """736 answers of five large models that annotators accepted: 3 (0.4%) have a 4-gram three times within 40
    words with the same words around it ("the model was trained", "used in the study", "the ratio of true"), each
    a restatement a reader also finds heavy; nothing else fires."""
    accepted = [row["CQ_Answer"] for path in sorted(STUDY.glob("*.csv"))
                for row in csv.DictReader(path.open(encoding="utf-8")) if row["decision"] == "Yes"]
    fired = [(reason, answer[:80]) for answer in accepted if (reason := degeneration(answer))]
    assert len(accepted) == 736
    assert len(fired) <= 3, fired
    assert all(reason.startswith("repeated itself") for reason, _ in fired), fired


def test_an_output_cut_at_its_token_limit_ends_at_its_last_sentence():
    cut = finished_answer("It was trained with PyTorch. Seeds were fixed for the", at_limit=True)
    assert cut.text == "It was trained with PyTorch."
    assert cut.cut == "left out an unfinished last sentence ('Seeds were fixed for the')"
    assert finished_answer("It was trained with PyTorch", at_limit=False).cut is None  # ended by the model itself
    listed = finished_answer("1. Flips\n2. Crops\n3. Rotations of", at_limit=True)
    assert listed.text == "1. Flips\n2. Crops"


def test_an_invented_turn_is_cut_with_what_follows():
    cut = finished_answer(INVENTED_TURN, at_limit=False)
    assert cut.text == "Seeds were fixed for every run."
    assert cut.cut == "left out an invented further turn ('Question 2:'…)"
    assert degeneration(cut.text) is None


@component
class ReplayGenerator:
    """Stands in for the bundled model: replies with the next recorded output, streamed in one chunk."""

    def __init__(self, outputs: list[str], finish_reason: str = "stop"):
        self.outputs = list(outputs)
        self.finish_reason = finish_reason

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage], streaming_callback: Any = None) -> dict[str, Any]:
        text = self.outputs.pop(0)
        return {"replies": [ChatMessage.from_assistant(text, meta={"finish_reason": self.finish_reason})]}


def bundled_stand_in(*outputs: str, finish_reason: str = "stop") -> GeneratorChoice:
    return GeneratorChoice(ReplayGenerator(list(outputs), finish_reason), "transformers", BUNDLED_GENERATOR)


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory):
    """The demo corpus ingested (MiniLM embeddings) into an embedded store; the settings and the retrievers."""
    from configuration.settings import Settings
    from loupe.ingest import Ingester
    from loupe.stores import build_document_store, build_retrievers

    settings = Settings(data_dir=tmp_path_factory.mktemp("degeneration"), generator_kind="extractive").validate()
    Ingester(settings, build_document_store(settings)).ingest([Path(__file__).resolve().parents[1] / "demo" / "corpus"])
    return settings, build_retrievers(settings)


def test_ask_shows_the_extractive_answer_and_the_record_keeps_the_output_and_why(demo_bundle, sessions):
    settings, bundle = demo_bundle
    asker = Asker(settings, bundle, generator=bundled_stand_in(WORDLESS_ENUMERATION))
    notices: list[str] = []
    record = ask_and_record(sessions, asker, actor=ADMIN, question="Which deep learning framework was used?",
                            analyse=False, on_fallback=notices.append)
    reason = "the bundled model enumerated numbers without words ('1. 1.1.1'); showing the extractive answer"
    assert notices == [reason]
    with sessions() as session:
        stored = get_record(session, record_id=record.id)
    assert stored.generator_kind == "extractive" and stored.generator_note == reason
    assert stored.meta["raw_output"] == WORDLESS_ENUMERATION
    assert stored.answer and "1.1.1" not in stored.answer


def test_a_cut_answer_is_shown_to_its_last_sentence_and_the_cut_is_said(demo_bundle, sessions):
    settings, bundle = demo_bundle
    output = "The detector was trained with PyTorch. Seeds were fixed for the"
    asker = Asker(settings, bundle, generator=bundled_stand_in(output, finish_reason="length"))
    record = ask_and_record(sessions, asker, actor=ADMIN, question="Which deep learning framework was used?",
                            analyse=False)
    assert record.answer == "The detector was trained with PyTorch."
    assert record.generator_kind == "transformers"
    assert record.meta["raw_output"] == output
    assert record.meta["answer_cut"] == "left out an unfinished last sentence ('Seeds were fixed for the')"


def test_a_batch_run_replaces_and_counts_degenerate_answers(demo_bundle, sessions):
    settings, bundle = demo_bundle
    asker = Asker(settings, bundle, generator=bundled_stand_in(REPEATED_NGRAM, CLEAN))
    questions = [Question("q1", "What data augmentation techniques were applied?"),
                 Question("q2", "How was the data split into training, validation and test sets?")]
    report = run_batch(sessions, asker, settings, actor=ADMIN, run="demo", questions=questions,
                       doc_ids=["coral_reef_segmentation"], mode="hybrid", top_k=3)
    assert (report.answered, report.degenerate) == (2, 1)
    assert report.summary().endswith("; 1 of them by the extractive answerer, the model's output being degenerate")


def test_a_model_is_given_the_best_ranked_passages_and_the_record_says_so(demo_bundle, sessions):
    """The bundled model answers from `generator_passages` (3) of the top-k; the extractive answerer from all."""
    settings, bundle = demo_bundle
    asker = Asker(settings, bundle, generator=bundled_stand_in(CLEAN))
    record = ask_and_record(sessions, asker, actor=ADMIN, question="How was the data split?", top_k=5,
                            analyse=False)
    assert len(record.passages) == 5
    assert "\n[3] " in record.prompt and "\n[4] " not in record.prompt
    assert record.meta["context_cut"] == ("the generator was given the 3 best-ranked of the 5 passages "
                                          "(LOUPE_GENERATOR_PASSAGES)")
    extractive = ask_and_record(sessions, Asker(settings, bundle), actor=ADMIN, question="How was the data split?",
                                top_k=5, analyse=False)
    assert "context_cut" not in extractive.meta
