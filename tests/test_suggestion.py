"""The verdict suggester: features of hand-made support maps, the shipped model, deterministic training, grouped
folds, figures and the suggestion's agreement against hand-computed tables, storage with the support map, and
`cli.py train-suggester` / `report` on a small review database."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from loupe.suggester_training import DEFAULT_C, TrainingError, figures, fit, group_folds, grouped_cross_validation
from loupe.suggestion import (
    FEATURES,
    MODEL_FEATURES,
    QUESTION_PRIOR,
    SHIPPED_MODEL,
    ModelFileError,
    Suggester,
    feature_vector,
    features,
    support_facts,
)
from review.agreement import suggestion_agreement


def sentence(index, text, kind="claim", supported=True, score=0.6, passages=()):
    evidence = [{"passage": p, "start": 0, "end": 10, "text": f"Evidence about dropout in passage {p}.",
                 "score": score, "semantic": score, "lexical": score} for p in passages]
    return {"index": index, "text": text, "start": 0, "end": len(text), "supported": supported, "kind": kind,
            "score": score, "evidence": evidence}


def support_map(*sentences):
    sentences = list(sentences)
    abstentions = [s["index"] for s in sentences if s["kind"] == "abstention"]
    return {"abstains": bool(abstentions), "abstention_sentences": abstentions, "sentences": sentences,
            "supported_count": sum(1 for s in sentences if s["supported"] and s["kind"] != "abstention"),
            "unsupported_count": sum(1 for s in sentences if not s["supported"]),
            "thresholds": {"min_score": 0.39, "semantic_weight": 0.6, "max_evidence": 3, "lexical_prefilter": True},
            "model": "minilm"}


QUESTION = "What regularization methods are used to prevent overfitting (e.g., dropout)?"
PASSAGES = [{"text": "We trained a CNN."}, {"text": "Dropout of 0.5 was applied to prevent overfitting."}]
ABSTAINING = support_map(
    sentence(0, "The context does not explicitly mention the regularization methods.", kind="abstention",
             score=0.2),
    sentence(1, "However, dropout of 0.5 was applied.", score=0.8, passages=(1,)),
    sentence(2, "Weight decay is typically used too.", kind="generic", supported=False, score=0.3),
)
ABSTAINING_ANSWER = " ".join(s["text"] for s in ABSTAINING["sentences"])


def test_features_of_an_answer_that_opens_with_an_abstention():
    values = features(ABSTAINING, PASSAGES, ABSTAINING_ANSWER, QUESTION)
    assert set(values) == set(FEATURES)
    assert values["opens_with_abstention"] == values["abstains"] == 1.0
    assert values["only_abstention"] == values["ends_with_abstention"] == values["empty_answer"] == 0.0
    assert values["abstention_share"] == pytest.approx(1 / 3)
    assert values["log_sentences"] == pytest.approx(math.log1p(3))
    assert values["log_words"] == pytest.approx(math.log1p(len(ABSTAINING_ANSWER.split())))
    # two claims (the abstention is not one): one supported, one unsupported from outside knowledge
    assert values["supported_share"] == values["unsupported_share"] == values["generic_share"] == 0.5
    assert values["log_supported"] == values["supported_after_abstention"] == pytest.approx(math.log1p(1))
    assert values["best_score"] == 0.8 and values["mean_score"] == pytest.approx(0.55)
    assert values["passages_cited"] == 1.0 and values["cites_top_passage"] == 0.0
    assert values["hedge_share"] == 0.5, "'typically' hedges one claim of two"
    assert values["numbers_in_supported"] == 1.0 and values["url_in_answer"] == values["apology"] == 0.0
    # question words without the filler: regularization, prevent, overfitting, dropout (content words, stemmed)
    assert values["question_in_supported"] == pytest.approx(1 / 4), "the supported sentence says 'dropout'"
    assert values["question_in_passages"] == pytest.approx(3 / 4), "passages lack 'regularization'"

    facts = support_facts(ABSTAINING)
    assert (facts.sentences, facts.abstentions, facts.claims, facts.supported, facts.unsupported, facts.generic) == (
        3, 1, 2, 1, 1, 1)
    assert facts.cited == [1] and facts.opens_with_abstention and facts.min_score == 0.39


def test_features_of_empty_and_missing_support_maps():
    for support in (None, {}, support_map()):
        values = features(support, [], "", "Which GPU?")
        assert values["empty_answer"] == 1.0
        assert all(values[name] == 0.0 for name in FEATURES if name != "empty_answer"), support
    supported = support_map(sentence(0, "A GPU was used.", passages=(0, 2)), sentence(1, "It was an A100.",
                                                                                     passages=(0,)))
    values = features(supported, PASSAGES, "A GPU was used. It was an A100.", "Which GPU?")
    assert values["supported_share"] == 1.0 and values["unsupported_share"] == 0.0
    assert values["passages_cited"] == 2.0 and values["cites_top_passage"] == 1.0
    assert support_facts(supported).cited == [0, 2], "the most cited passage first"


def test_the_shipped_model_loads_and_scores_a_record():
    model = Suggester.load()
    data = json.loads(SHIPPED_MODEL.read_text(encoding="utf-8"))
    assert model.name == data["name"] and set(model.feature_names) <= {*FEATURES, QUESTION_PRIOR}
    assert model.priors is not None and len(model.priors.counts) == 28, "the study's 28 questions and their rates"
    assert len(data["training"]["sha256"]) == 64 and data["training"]["rows"] > 2000
    assert data["cross_validation"]["pooled"]["cohen_kappa"] > 0.5
    suggestion = model.suggest(ABSTAINING, PASSAGES, ABSTAINING_ANSWER, QUESTION)
    assert set(suggestion) == {"verdict", "p_accept", "reasons", "model"}
    assert suggestion["model"] == model.name and 0.0 <= suggestion["p_accept"] <= 1.0
    assert suggestion["verdict"] == ("accept" if suggestion["p_accept"] >= model.threshold else "reject")
    assert suggestion["reasons"] and all(isinstance(reason, str) for reason in suggestion["reasons"])

    abstains = support_map(sentence(0, "The provided context does not mention the GPU.", kind="abstention"))
    verdict = model.suggest(abstains, PASSAGES, "The provided context does not mention the GPU.", "Which GPU?")
    assert verdict["verdict"] == "reject" and verdict["p_accept"] < 0.2
    assert "only says that the context lacks the answer" in verdict["reasons"]
    answered = support_map(*(sentence(i, f"Dropout of 0.{i + 1} was applied to the CNN layers.", score=0.9,
                                      passages=(1,)) for i in range(3)))
    text = " ".join(s["text"] for s in answered["sentences"])
    verdict = model.suggest(answered, PASSAGES, text, QUESTION)
    assert verdict["verdict"] == "accept"
    assert "supported sentences cite passage 2 only" in verdict["reasons"]


def test_a_model_file_that_cannot_be_used(tmp_path):
    data = json.loads(SHIPPED_MODEL.read_text(encoding="utf-8"))
    for broken, message in (({**data, "format": "pickle"}, "not a suggester model"),
                            ({**data, "features": [*data["features"][:-1], "secret"]}, "does not compute"),
                            ({**data, "coefficients": data["coefficients"][:-1]}, "one value per feature"),
                            ({k: v for k, v in data.items() if k != "calibration"}, "incomplete")):
        with pytest.raises(ModelFileError, match=message):
            Suggester.from_dict(broken)
    path = tmp_path / "model.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFileError, match="not JSON"):
        Suggester.load(path)


def fixed_table(rows=120, groups=12, seed=7):
    """A small seeded table: the label follows two of the features, noisily; groups of ten rows."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(rows, len(MODEL_FEATURES)))
    logit = 2.0 * matrix[:, 0] - 1.5 * matrix[:, 3] + rng.normal(scale=1.0, size=rows)
    return matrix, (logit > 0).astype(int), [f"paper-{i % groups}" for i in range(rows)]


def test_training_on_a_fixed_table_is_deterministic_and_the_json_matches_sklearn():
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    matrix, y, groups = fixed_table()
    first, second = fit(matrix, y, groups), fit(matrix, y, groups)
    assert first == second
    assert json.loads(json.dumps(first)) == first, "the model is plain JSON"
    p1, folds1 = grouped_cross_validation(matrix, y, groups)
    p2, folds2 = grouped_cross_validation(matrix, y, groups)
    assert np.array_equal(p1, p2) and np.array_equal(folds1, folds2)

    reference = CalibratedClassifierCV(make_pipeline(StandardScaler(), LogisticRegression(C=DEFAULT_C, max_iter=5000)),
                                       method="sigmoid", cv=group_folds(groups), ensemble=False).fit(matrix, y)
    model = Suggester.from_dict({**first, "name": "fixed"})
    assert model.probability(matrix) == pytest.approx(reference.predict_proba(matrix)[:, 1], abs=1e-6)
    assert figures(y, p1)["auc"] > 0.8, "the signal is learnt on held-out groups"


def test_grouped_folds_never_split_a_paper():
    _, y, groups = fixed_table(rows=130, groups=13)
    seen = []
    for train, test in group_folds(groups, folds=5):
        train_papers, test_papers = {groups[i] for i in train}, {groups[i] for i in test}
        assert not train_papers & test_papers
        assert len(train) + len(test) == len(groups)
        seen += sorted(test_papers)
    assert sorted(seen) == sorted(set(groups)), "each paper is held out exactly once"
    assert len(group_folds(["a", "a", "b", "b"], folds=5)) == 2, "no more folds than papers"
    with pytest.raises(TrainingError, match="one document"):
        group_folds(["a"] * 30)
    with pytest.raises(TrainingError, match="at least 20"):
        fit(np.zeros((10, len(MODEL_FEATURES))), np.array([0, 1] * 5), [str(i) for i in range(10)])


def test_figures_against_a_hand_computed_table():
    # predicted accept at p >= .5: 1 1 0 1 0 0 0 0 against 1 1 1 0 0 0 0 0: po = 6/8; both say accept 3/8, so
    # pe = (3/8)^2 + (5/8)^2 = 34/64 and kappa = (.75 - 34/64) / (1 - 34/64) = 7/15. AUC: 14 of the 15
    # (accepted, rejected) pairs are ordered (.3 < .6 is not). Brier = (.01+.04+.49+.36+.04+.01+.01+.04) / 8.
    # ECE: bins .9, .8, .3, .6 (one each, off by .1, .2, .7, .6), .2 (two, .2), .1 (two, .1): 2.2 / 8.
    y = [1, 1, 1, 0, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.1, 0.2]
    result = figures(y, p)
    assert result["n"] == 8 and result["accepted"] == 3
    assert result["cohen_kappa"] == pytest.approx(7 / 15, abs=1e-4)
    assert result["accuracy"] == 0.75 and result["auc"] == pytest.approx(14 / 15, abs=1e-4)
    assert result["brier"] == pytest.approx(0.125) and result["ece"] == pytest.approx(0.275)
    assert {"bin": "0.1-0.2", "n": 2, "mean_p": 0.1, "accepted": 0.0} in result["reliability"]
    assert figures([1, 1], [0.9, 0.8])["auc"] is None, "undefined with one kind of verdict"


def test_suggestion_agreement_against_a_hand_computed_table():
    # ann: accept accept correct reject -> as accept/reject A A R R; the suggestion: A R R R (r4 has none).
    # po = 3/4, pe = (2/4)(1/4) + (2/4)(3/4) = 1/2, kappa = 1/2. bob judged r1 and r4: only r1 counts.
    table = pd.DataFrame(
        [("r0", "q", "ann", "accept", 1.0), ("r1", "q", "ann", "accept", 1.0), ("r2", "q", "ann", "correct", 1.0),
         ("r3", "q", "ann", "reject", 1.0), ("r1", "q", "bob", "reject", 1.0), ("r4", "q", "bob", "accept", 1.0)],
        columns=["record", "question", "annotator", "verdict", "seconds"])
    suggestions = pd.DataFrame([("r0", "accept", "m1"), ("r1", "reject", "m1"), ("r2", "reject", "m1"),
                                ("r3", "reject", "m2")], columns=["record", "suggestion", "model"])
    ann, bob = suggestion_agreement(table, suggestions)
    assert ann == {"annotator": "ann", "n": 4, "percent_agreement": 0.75, "cohen_kappa": 0.5,
                   "models": ["m1", "m2"]}
    assert bob == {"annotator": "bob", "n": 1, "percent_agreement": 1.0, "cohen_kappa": None, "models": ["m1"]}


def fake_support(settings, answer, passage_texts, deadline=None):
    """A support map without the sentence model: "I don't know" abstains, other sentences are supported by the
    first passage when they share a word with it."""
    words = set(passage_texts[0].lower().split()) if passage_texts else set()
    sentences = []
    for index, text in enumerate(part.strip() + "." for part in answer.split(".") if part.strip()):
        if "don't know" in text:
            sentences.append(sentence(index, text, kind="abstention", score=0.1))
        else:
            hit = bool(words & set(text.lower().rstrip(".").split()))
            sentences.append(sentence(index, text, supported=hit, score=0.7 if hit else 0.2,
                                      passages=(0,) if hit else ()))
    return support_map(*sentences)


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A run of 40 records on 8 documents with one annotator's verdicts: abstentions rejected, others accepted
    (but for four)."""
    import cli

    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr("review.analysis.analyze_support", fake_support)
    lines, decisions = [], ["Unique_ID,decision"]
    for i in range(40):
        abstains = i % 3 == 0
        answer = "I don't know." if abstains else f"The model was trained with dropout {i}. It used a GPU."
        lines.append(json.dumps({"id": f"r{i}", "question": "Which regularization?", "answer": answer,
                                 "doc_id": f"doc{i % 8}", "contexts": ["The model used dropout on a GPU."]}))
        decisions.append(f"r{i},{'No' if abstains or i in (4, 10, 20, 25) else 'Yes'}")
    (tmp_path / "run.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "ann.csv").write_text("\n".join(decisions) + "\n", encoding="utf-8")
    assert cli.main(["import", str(tmp_path / "run.jsonl"), "--run", "study"]) == 0
    assert cli.main(["import", str(tmp_path / "ann.csv"), "--run", "study", "--annotator", "ann"]) == 0
    return tmp_path / "data"


def stored_records(data_dir):
    from sqlalchemy import select

    from configuration.settings import Settings
    from review.db import open_database
    from review.models import Record

    with open_database(Settings(data_dir=data_dir))() as session:
        return {r.external_id: r for r in session.scalars(select(Record).where(Record.run == "study"))}


def test_analysis_stores_the_suggestion_and_retraining_replaces_the_model(study, capsys):
    import cli
    from configuration.settings import Settings
    from loupe.suggestion import model_path

    shipped = Suggester.load().name
    assert cli.main(["analyze", "--run", "study"]) == 0
    records = stored_records(study)
    for record in records.values():
        assert record.support is not None and record.suggestion["model"] == shipped
        assert record.p_reject == pytest.approx(1 - record.suggestion["p_accept"], abs=1e-4)
    assert records["r0"].suggestion["verdict"] == "reject", "an abstention"
    assert cli.main(["analyze", "--run", "study"]) == 0
    assert "computed for 0 records" in capsys.readouterr().out, "nothing left to do"

    assert cli.main(["report", "--run", "study", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["agreement"]["suggestion"]
    assert row["annotator"] == "ann" and row["n"] == 40 and row["models"] == [shipped]

    assert cli.main(["train-suggester", "--run", "study", "--annotator", "ann", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert model_path(Settings(data_dir=study)) == study / "models" / "suggester.json"
    assert trained["name"].startswith("study-ann-lr-") and trained["training"]["rows"] == 40
    assert trained["cross_validation"]["pooled"]["n"] == 40
    assert cli.main(["analyze", "--run", "study"]) == 0
    assert "computed for 40 records" in capsys.readouterr().out, "suggestions are versioned by the model"
    assert {r.suggestion["model"] for r in stored_records(study).values()} == {trained["name"]}

    assert cli.main(["train-suggester", "--run", "study", "--annotator", "nobody"]) == 2
    assert "has judged no record" in capsys.readouterr().err


def test_feature_vector_follows_the_models_order():
    values = dict(zip(FEATURES, range(len(FEATURES)), strict=True))
    assert feature_vector(values, ["log_words", "empty_answer"]).tolist() == [1.0, 0.0]


def test_the_export_object():
    from loupe.suggestion import export_suggestion

    stored = Suggester.load().suggest(ABSTAINING, PASSAGES, ABSTAINING_ANSWER, QUESTION)
    assert export_suggestion(stored) == stored
    assert export_suggestion({**stored, "extra": 1}) == stored, "only the four documented keys"
    for missing in (None, {}, {"verdict": "maybe", "p_accept": 0.5}, {"verdict": "accept"}):
        assert export_suggestion(missing) is None
