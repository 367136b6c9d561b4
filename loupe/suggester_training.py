"""Training and measuring the verdict suggester (loupe.suggestion): scikit-learn fits, a JSON model file comes out.

The model is a standard scaler and an L2 logistic regression, with `trees` also gradient-boosted trees beside it
(`LinearAndTrees`: the decision value is the mean of the two log-odds), calibrated by
`CalibratedClassifierCV(method="sigmoid", ensemble=False)` on cross-validated decision values; it says accept at
p_accept >= `THRESHOLD`. The trees' settings (`TREES`) were fixed before they were measured, not tuned on the
folds. Folds hold whole groups (papers, documents): answers about one paper share passages and phrasing, and a
model must be judged on papers it has not seen. `grouped_cross_validation` refits the whole thing (calibration
included) inside every outer fold and scores the held-out papers; `figures` gives Cohen's kappa, accuracy, AUC,
Brier score and calibration of such predictions.

Everything is deterministic: no shuffling, lbfgs, trees without subsampling and with a fixed seed, folds assigned
by `GroupKFold` from the sorted groups.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, brier_score_loss, cohen_kappa_score, roc_auc_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from loupe.suggestion import LINEAR_FORMAT, MODEL_FEATURES, MODEL_FORMAT, QUESTION_PRIOR, QuestionPriors, Suggester

DEFAULT_C = 0.1  # picked from 0.1, 0.3 and 1 by the grouped cross-validation of bench/train_suggester.py
# scikit-learn GradientBoostingClassifier settings, fixed in advance (shallow trees, slow learning, leaves of 20 or
# more answers) rather than searched: 15 papers are too few to tune them on without fitting the folds.
TREES = {"n_estimators": 150, "learning_rate": 0.05, "max_depth": 3, "min_samples_leaf": 20}
DEFAULT_FOLDS = 5
# Accept at p_accept >= 0.5. A threshold maximising Cohen's kappa on grouped inner folds was measured too and did
# no better on held-out papers (the kappa curve is flat from 0.35 to 0.65), so it is not tuned.
THRESHOLD = 0.5
# The question's acceptance rate is shrunk towards the overall rate by this many answers' worth of it (fixed, not
# searched): a question seen 5 times moves a third of the way from the overall rate to its own.
PRIOR_ALPHA = 10.0
MIN_EXAMPLES = 20  # fewer verdicts than this, or fewer than 5 of either kind, cannot train a useful model
MIN_PER_CLASS = 5


class TrainingError(ValueError):
    """The verdicts cannot train a model (too few, one kind only); the message says what is missing."""


def table_hash(rows: Iterable[dict[str, Any]]) -> str:
    """sha256 of the training table as canonical JSON lines (one row per example, in the given order)."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def group_folds(groups: Sequence[Any], folds: int = DEFAULT_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index arrays of `folds` folds, each group wholly on one side (sklearn's GroupKFold on the
    groups as given; fewer folds when there are fewer groups). :raises TrainingError: fewer than two groups."""
    labels = np.asarray([str(group) for group in groups])
    distinct = len(set(labels.tolist()))
    if distinct < 2:
        raise TrainingError("the verdicts come from one document only; grouped cross-validation needs two or more")
    splitter = GroupKFold(n_splits=min(folds, distinct))
    return [(train, test) for train, test in splitter.split(np.zeros(len(labels)), groups=labels)]


def _check(y: np.ndarray) -> None:
    accepted = int(y.sum())
    if len(y) < MIN_EXAMPLES or min(accepted, len(y) - accepted) < MIN_PER_CLASS:
        raise TrainingError(f"{len(y)} verdicts ({accepted} accept, {len(y) - accepted} reject): training needs "
                            f"at least {MIN_EXAMPLES}, with {MIN_PER_CLASS} or more of each")


def _linear(c: float) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


class LinearAndTrees(ClassifierMixin, BaseEstimator):
    """The logistic regression and gradient-boosted trees (`trees`: GradientBoostingClassifier settings) fitted
    side by side; the decision value is the mean of theirs (both log-odds of accept), so that one calibration
    and one threshold serve the pair, as `Suggester.decision` evaluates it."""

    def __init__(self, c: float = DEFAULT_C, trees: dict[str, Any] | None = None):
        self.c, self.trees = c, trees

    def fit(self, matrix: np.ndarray, y: np.ndarray) -> LinearAndTrees:
        self.linear_ = _linear(self.c).fit(matrix, y)
        self.trees_ = GradientBoostingClassifier(**self.trees, subsample=1.0, random_state=0).fit(matrix, y)
        self.classes_ = self.linear_.classes_
        return self

    def decision_function(self, matrix: np.ndarray) -> np.ndarray:
        return (self.linear_.decision_function(matrix) + self.trees_.decision_function(matrix)) / 2

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.classes_[(self.decision_function(matrix) > 0).astype(int)]


def trees_dict(model: GradientBoostingClassifier, settings: dict[str, Any]) -> dict[str, Any]:
    """A fitted GradientBoostingClassifier as `loupe.suggestion.BoostedTrees` reads it: the prior log-odds, the
    learning rate and per tree its node arrays (left = right = -1 at leaves; inner nodes valued at the
    sample-weighted mean of their children). Thresholds and values are exact (JSON keeps every float64)."""
    prior = float(model.init_.class_prior_[1])
    trees = []
    for estimator in model.estimators_[:, 0]:
        tree = estimator.tree_
        value = tree.value[:, 0, 0].astype(np.float64)
        weight = tree.weighted_n_node_samples
        for node in reversed(range(tree.node_count)):  # children come after their node: fill from the leaves up
            left, right = tree.children_left[node], tree.children_right[node]
            if left >= 0:
                value[node] = (weight[left] * value[left] + weight[right] * value[right]) / (weight[left] + weight[right])
        trees.append({"feature": tree.feature.tolist(), "threshold": tree.threshold.tolist(),
                      "left": tree.children_left.tolist(), "right": tree.children_right.tolist(),
                      "value": value.tolist()})
    return {"method": "scikit-learn GradientBoostingClassifier (log loss)", "settings": settings,
            "init": math.log(prior / (1.0 - prior)), "learning_rate": float(model.learning_rate), "trees": trees}


def out_of_fold_priors(questions: Sequence[str | None], accepted: np.ndarray, groups: Sequence[Any],
                       folds: int = DEFAULT_FOLDS) -> np.ndarray:
    """Each row's `question_prior` counted without its own group (paper, document), as a model meets a new
    paper's answers: counted with it, the prior would know the row's own verdict and be trusted too much."""
    questions, y = list(questions), np.asarray(accepted, dtype=int)
    column = np.zeros(len(y))
    for train, test in group_folds(groups, folds):
        priors = QuestionPriors.count([questions[i] for i in train], y[train].tolist(), PRIOR_ALPHA)
        column[test] = [priors.log_odds(questions[i]) for i in test]
    return column


def fit(matrix: np.ndarray, accepted: np.ndarray, groups: Sequence[Any], *, c: float = DEFAULT_C,
        folds: int = DEFAULT_FOLDS, feature_names: Sequence[str] = MODEL_FEATURES,
        trees: dict[str, Any] | None = None, questions: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Fit the scaler and the logistic regression (with `trees`, GradientBoostingClassifier settings such as
    `TREES`, also the boosted trees: `LinearAndTrees`) on all rows and the sigmoid calibration on grouped
    cross-validated decision values; the model as the JSON-ready dict `Suggester.from_dict` reads (format 1
    without trees, 2 with), without name or training metadata. With `questions` (one per row) the model also
    learns from each question's acceptance rate (`QuestionPriors`, feature `question_prior`, counted out of fold
    for the rows themselves) and the file carries the rates of all rows. :raises TrainingError:"""
    y = np.asarray(accepted, dtype=int)
    _check(y)
    if questions is not None:
        matrix = np.column_stack([matrix, out_of_fold_priors(questions, y, groups, folds)])
        feature_names = (*feature_names, QUESTION_PRIOR)
    splits = [(train, test) for train, test in group_folds(groups, folds)
              if len(set(y[train].tolist())) == 2]  # a fold needs both kinds to fit on
    if len(splits) < 2:
        raise TrainingError("too few documents with both kinds of verdict to calibrate the model")
    base = _linear(c) if trees is None else LinearAndTrees(c, trees)
    calibrated = CalibratedClassifierCV(base, method="sigmoid", cv=splits, ensemble=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        calibrated.fit(np.asarray(matrix, dtype=np.float64), y)
    fitted = calibrated.calibrated_classifiers_[0].estimator
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    scaler, regression = (fitted if trees is None else fitted.linear_)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    model = {
        "format": LINEAR_FORMAT if trees is None else MODEL_FORMAT,
        "kind": "lr" if trees is None else "lr-gbt",
        "features": list(feature_names),
        "mean": [round(float(v), 10) for v in scaler.mean_],
        "scale": [round(float(v), 10) for v in scale],
        "coefficients": [round(float(v), 10) for v in regression.coef_[0]],
        "intercept": round(float(regression.intercept_[0]), 10),
        "calibration": {"method": "sigmoid", "a": round(float(calibrator.a_), 10),
                        "b": round(float(calibrator.b_), 10)},
        "threshold": THRESHOLD,
        "regularisation_c": c,
        "chosen": {"regularisation_c": "picked from 0.1, 0.3 and 1 by grouped cross-validation of the regression",
                   "threshold": "fixed at 0.5: tuning it on inner folds did no better on held-out papers"},
    }
    if trees is not None:
        model["trees"] = trees_dict(fitted.trees_, trees)
        model["chosen"]["trees"] = "settings fixed in advance, not searched"
    if questions is not None:
        model["question_priors"] = QuestionPriors.count(list(questions), y.tolist(), PRIOR_ALPHA).to_dict()
        model["chosen"]["question_priors"] = (f"acceptance rate per question, shrunk by {PRIOR_ALPHA:g} answers' "
                                              "worth of the overall rate (fixed, not searched)")
    return model


def grouped_cross_validation(matrix: np.ndarray, accepted: np.ndarray, groups: Sequence[Any], *,
                             c: float = DEFAULT_C, folds: int = DEFAULT_FOLDS,
                             feature_names: Sequence[str] = MODEL_FEATURES, trees: dict[str, Any] | None = None,
                             questions: Sequence[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of "accept" and thresholds: the model (calibration and question priors too)
    refitted without each fold's groups; per row, its probability and the threshold of its fold's model.
    :raises TrainingError:"""
    matrix = np.asarray(matrix, dtype=np.float64)
    y = np.asarray(accepted, dtype=int)
    _check(y)
    groups = np.asarray([str(group) for group in groups])
    probabilities = np.full(len(y), np.nan)
    thresholds = np.full(len(y), 0.5)
    for fold, (train, test) in enumerate(group_folds(groups, folds)):
        held_out = matrix[test]
        asked = None if questions is None else [questions[i] for i in train]
        model = Suggester.from_dict({**fit(matrix[train], y[train], groups[train], c=c, folds=folds,
                                           feature_names=feature_names, trees=trees, questions=asked),
                                     "name": f"fold-{fold}"})
        if model.priors is not None:  # the held-out papers' questions, as the fold's model knows them
            held_out = np.column_stack([held_out, [model.priors.log_odds(questions[i]) for i in test]])
        probabilities[test] = model.probability(held_out)
        thresholds[test] = model.threshold
    return probabilities, thresholds


def figures(accepted: Sequence[int], p_accept: Sequence[float], threshold: float | Sequence[float] = 0.5,
            bins: int = 10) -> dict[str, Any]:
    """Agreement of thresholded probabilities (accept at p_accept >= threshold, one for all or one per row) with
    the verdicts: n, Cohen's kappa, accuracy, AUC, Brier score,
    expected calibration error and the reliability table ({"bin", "n", "mean_p", "accepted"} per non-empty bin
    of width 1/bins). Undefined figures (one kind of verdict only) are None."""
    y = np.asarray(accepted, dtype=int)
    p = np.asarray(p_accept, dtype=np.float64)
    predicted = (p >= np.asarray(threshold, dtype=np.float64)).astype(int)
    both = len(set(y.tolist())) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one label only: undefined, reported as None below
        kappa = float(cohen_kappa_score(y, predicted, labels=[0, 1])) if len(y) else float("nan")
    table, ece = [], 0.0
    edges = np.minimum((p * bins).astype(int), bins - 1)
    for index in range(bins):
        inside = edges == index
        if inside.any():
            mean_p, rate = float(p[inside].mean()), float(y[inside].mean())
            ece += inside.sum() / len(y) * abs(mean_p - rate)
            table.append({"bin": f"{index / bins:.1f}-{(index + 1) / bins:.1f}", "n": int(inside.sum()),
                          "mean_p": round(mean_p, 4), "accepted": round(rate, 4)})
    return {
        "n": int(len(y)),
        "accepted": int(y.sum()),
        "cohen_kappa": None if np.isnan(kappa) else round(kappa, 4),
        "accuracy": round(float(accuracy_score(y, predicted)), 4) if len(y) else None,
        "auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "brier": round(float(brier_score_loss(y, p, pos_label=1)), 4) if len(y) else None,
        "ece": round(float(ece), 4) if len(y) else None,
        "reliability": table,
    }


def model_name(prefix: str, digest: str, kind: str = "lr") -> str:
    """The model's version name: what it was trained on, its kind (`fit`'s "kind") and the first 8 hex digits of
    its table's hash."""
    return f"{prefix}-{kind}-{digest[:8]}"


_NUMBERS = re.compile(r"\[\s+(-?[0-9][-+.eE0-9]*(?:,\s+-?[0-9][-+.eE0-9]*)*)\s+\]")


def model_json(model: dict[str, Any]) -> str:
    """The model file's text: indented JSON with every list of numbers on one line, so that the trees stay
    readable and the file small."""
    text = json.dumps(model, indent=1, ensure_ascii=False)
    return _NUMBERS.sub(lambda match: "[" + re.sub(r"\s+", "", match.group(1)) + "]", text) + "\n"
