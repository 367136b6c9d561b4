"""The suggester's boosted trees: their JSON form evaluated in numpy against scikit-learn, deterministic training,
format 1 files still read, malformed trees refused, and the features of the claims on hand-made support maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV

from loupe.suggester_training import TREES, LinearAndTrees, fit, group_folds, model_json
from loupe.suggestion import LINEAR_FORMAT, MODEL_FORMAT, ModelFileError, Suggester, features, question_examples
from tests.test_suggestion import fixed_table, sentence, support_map


@pytest.fixture(scope="module")
def trained():
    """The fixed table, the model fitted with trees (as its file's text) and scikit-learn's own fit of it."""
    matrix, y, groups = fixed_table()
    model = {**fit(matrix, y, groups, trees=TREES), "name": "fixed"}
    reference = CalibratedClassifierCV(LinearAndTrees(trees=TREES), method="sigmoid", cv=group_folds(groups),
                                       ensemble=False).fit(matrix, y)
    return matrix, y, groups, model_json(model), reference


def test_the_trees_json_round_trips_and_numpy_equals_sklearn(trained):
    matrix, _, _, text, reference = trained
    model = Suggester.from_dict(json.loads(text))
    assert model.data["format"] == MODEL_FORMAT and model.name == "fixed"
    assert json.loads(model_json(model.data)) == model.data, "the file's text reads back as written"
    assert model.probability(matrix) == pytest.approx(reference.predict_proba(matrix)[:, 1], abs=1e-9)

    fitted = reference.calibrated_classifiers_[0].estimator.trees_
    unseen = np.random.default_rng(3).normal(size=(300, matrix.shape[1]))
    # values exactly on a split: scikit-learn sends them left, comparing them as float32
    on_splits = np.repeat(unseen[:1], len(model.data["trees"]["trees"]), axis=0)
    for row, tree in enumerate(model.data["trees"]["trees"]):
        on_splits[row, tree["feature"][0]] = tree["threshold"][0]
    for rows in (matrix, unseen, on_splits):
        assert model.trees.raw(rows) == pytest.approx(fitted.decision_function(rows), abs=1e-9)


def test_tree_contributions_add_up_to_the_raw_score(trained):
    matrix, _, _, text, _ = trained
    trees = Suggester.from_dict(json.loads(text)).trees
    expected = trees.init + trees.learning_rate * trees.value[:, 0].sum()  # every tree's root: its mean leaf
    for vector in matrix[:5]:
        assert expected + trees.contributions(vector).sum() == pytest.approx(trees.raw(vector[None, :])[0])


def test_training_with_trees_is_deterministic(trained):
    matrix, y, groups, text, _ = trained
    assert model_json({**fit(matrix, y, groups, trees=TREES), "name": "fixed"}) == text


def test_a_format_1_model_still_loads_and_malformed_trees_are_refused(trained):
    matrix, y, groups, text, _ = trained
    linear = {**fit(matrix, y, groups), "name": "linear"}
    assert linear["format"] == LINEAR_FORMAT and "trees" not in linear
    model = Suggester.from_dict(linear)
    assert model.trees is None and np.array_equal(model.decision(matrix), model.linear_decision(matrix))

    data = json.loads(text)
    tree = data["trees"]["trees"][0]
    for broken, message in (({**tree, "value": tree["value"][:-1]}, "differ in length"),
                            ({**tree, "left": [0] * len(tree["left"])}, "malformed"),
                            ({**tree, "feature": [99] * len(tree["feature"])}, "malformed")):
        with pytest.raises(ModelFileError, match=message):
            Suggester.from_dict({**data, "trees": {**data["trees"], "trees": [broken]}})
    with pytest.raises(ModelFileError, match="incomplete"):
        Suggester.from_dict({key: value for key, value in data.items() if key != "trees"})


QUESTION = "Which frameworks are used to build the deep learning model (e.g., TensorFlow, PyTorch)?"
PASSAGES = [{"text": "We implemented the CNN in TensorFlow 2.4 on one GPU."}, {"text": "Training took 3 days."}]


def test_features_of_the_claims():
    assert question_examples(QUESTION) == [frozenset({"tensorflow"}), frozenset({"pytorch"})]
    assert question_examples("Which GPU?") == []
    abstaining = support_map(
        sentence(0, "The context does not explicitly name the framework.", kind="abstention", score=0.2),
        sentence(1, "The CNN was implemented in TensorFlow 2.4 and Keras.", score=0.8, passages=(0,)),
        sentence(2, "This suggests that Keras 3 was used as well.", supported=False, score=0.3),
    )
    answer = " ".join(s["text"] for s in abstaining["sentences"])
    values = features(abstaining, PASSAGES, answer, QUESTION)
    assert values["supported_word_share"] == pytest.approx(9 / (8 + 9 + 9)), "9 of the 26 words are supported"
    # names and numbers of the claims: CNN, TensorFlow, 2.4 found; 3 (in "3 days") found too; Keras is no term
    assert values["terms_in_passages"] == 1.0
    assert values["examples_in_claims"] == values["examples_in_passages"] == values["inference"] == 1.0
    # question words without the filler: frameworks, build, tensorflow, pytorch; the claims say only tensorflow
    assert values["question_in_claims"] == pytest.approx(1 / 4)

    unfounded = support_map(sentence(0, "It used PyTorch 1.9 on a V100.", supported=False, score=0.2))
    values = features(unfounded, PASSAGES, "It used PyTorch 1.9 on a V100.", QUESTION)
    assert values["terms_in_passages"] == 0.0 and values["supported_word_share"] == 0.0
    assert values["examples_in_claims"] == 1.0 and values["inference"] == 0.0
    assert features(unfounded, PASSAGES, "It used PyTorch 1.9 on a V100.", "Which GPU?")["examples_in_claims"] == 0.0
