"""The suggester's question priors: how often answers to a question were accepted, looked up for a new answer
(spelling aside), shrunk towards the overall rate, counted without the row's own paper in training, and used."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loupe.suggester_training import PRIOR_ALPHA, fit, grouped_cross_validation, out_of_fold_priors
from loupe.suggestion import QUESTION_PRIOR, QuestionPriors, Suggester, question_key
from tests.test_suggestion import PASSAGES, fixed_table, sentence, support_map

RARE = "Where is the code repository of the deep learning pipeline available (e.g., GitHub, Zenodo)?"
USUAL = "What is the purpose of the deep learning model (e.g., classification, segmentation)?"


def test_a_question_is_found_whatever_its_spacing_case_or_typos():
    priors = QuestionPriors.count([RARE, RARE, USUAL], [0, 1, 1], alpha=2.0)
    assert question_key("  Where is the CODE repository… (e.g.,GitHub,Zenodo)") == \
        "where is the code repository e g github zenodo"
    assert priors.seen(RARE.upper().replace(" ", "  ")) == (1, 2)
    assert priors.seen(RARE.replace("repository", "repositroy")) == (1, 2), "a typo is the same question"
    assert priors.seen("How many owls were counted?") is None and priors.seen(None) is None
    assert priors.seen(RARE.replace("code", "data")) is None, "another word is another question"


def test_the_rate_is_shrunk_towards_the_overall_rate():
    priors = QuestionPriors.count([RARE] * 5 + [USUAL] * 5, [1, 0, 0, 0, 0] + [1] * 5, alpha=10.0)
    assert priors.base_rate == 0.6
    assert priors.rate(RARE) == pytest.approx((1 + 10 * 0.6) / (5 + 10))  # 0.467, not 0.2
    assert priors.rate("an unknown question") == pytest.approx(0.6)
    assert priors.log_odds(USUAL) == pytest.approx(math.log((5 + 6) / 15 / (1 - (5 + 6) / 15)))
    assert QuestionPriors.from_dict(priors.to_dict()) == priors
    one_kind = QuestionPriors.count([RARE] * 3, [0, 0, 0], alpha=10.0)  # a training fold of rejections only
    assert one_kind.log_odds(RARE) == pytest.approx(math.log(1e-6 / (1 - 1e-6))), "finite, not a math error"
    with pytest.raises(ValueError, match="0 <= accepted <= answers"):
        QuestionPriors.from_dict({**priors.to_dict(), "counts": {"q": [3, 2]}})


def test_a_training_rows_prior_is_counted_without_its_own_paper():
    # paper a: question RARE always accepted; papers b, c: always rejected. Counted with its own paper, a's rows
    # would look likely to be accepted; without it they must look as rejected as b's and c's answers were.
    questions, groups = [RARE] * 6 + [USUAL] * 6, ["a", "a", "b", "b", "c", "c"] * 2
    y = np.array([1, 1, 0, 0, 0, 0] + [1] * 6)
    column = out_of_fold_priors(questions, y, groups, folds=3)
    rate_without_a = QuestionPriors.count(questions[2:6] + questions[8:], [0, 0, 0, 0, 1, 1, 1, 1], PRIOR_ALPHA)
    assert column[0] == pytest.approx(rate_without_a.log_odds(RARE))
    assert column[0] < column[6], "RARE without paper a: rejected every time; USUAL: accepted"


def test_a_model_trained_with_questions_uses_their_rates():
    matrix, y, groups = fixed_table(rows=160, groups=16)
    y[:80] = 0  # the first 80 rows (question RARE) rejected whatever their features say
    questions = [RARE] * 80 + [USUAL] * 80
    model_dict = fit(matrix, y, groups, questions=questions)
    assert model_dict["features"][-1] == QUESTION_PRIOR and model_dict["question_priors"]["counts"]
    assert fit(matrix, y, groups, questions=questions) == model_dict, "deterministic"
    model = Suggester.from_dict({**model_dict, "name": "with-priors"})
    answered = support_map(*(sentence(i, f"Dropout of 0.{i + 1} was applied.", score=0.9, passages=(1,))
                             for i in range(2)))
    text = " ".join(s["text"] for s in answered["sentences"])
    rare, usual = (model.suggest(answered, PASSAGES, text, question) for question in (RARE, USUAL))
    assert rare["p_accept"] < usual["p_accept"], "the same answer, to a question whose answers are rarely accepted"
    said = [reason for reason in rare["reasons"] if "of the time in training" in reason]
    assert said == [] or said == ["answers to this question were accepted 0% of the time in training"]
    assert "of the time in training" not in " ".join(model.suggest(answered, PASSAGES, text, "Unseen?")["reasons"])

    with_priors, _ = grouped_cross_validation(matrix, y, groups, questions=questions)
    without, _ = grouped_cross_validation(matrix, y, groups)
    brier = [float(np.mean((p - y) ** 2)) for p in (with_priors, without)]
    assert brier[0] < brier[1], "held-out papers' answers are scored better knowing their questions' rates"


def test_the_shipped_model_knows_the_study_questions_as_its_question_list_spells_them():
    model = Suggester.load()
    corrected = "What are the data augmentation techniques applied in the deep learning pipeline (e.g., Flipping, " \
                "Rotating, Scaling)?"  # the prompt records spell "Fliping, Roating"
    assert model.priors.seen(corrected) is not None
    assert model.values(None, [], "", corrected)[QUESTION_PRIOR] != model.values(None, [], "", "Unseen?")[QUESTION_PRIOR]
