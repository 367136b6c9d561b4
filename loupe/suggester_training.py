"""Training and measuring the verdict suggester (loupe.suggestion): scikit-learn fits, a JSON model file comes out.

The model is a standard scaler and an L2 logistic regression, whose decision value is calibrated by
`CalibratedClassifierCV(method="sigmoid", ensemble=False)` on cross-validated decision values. Folds hold whole
groups (papers, documents): answers about one paper share passages and phrasing, and a model must be judged on
papers it has not seen. `grouped_cross_validation` refits the whole thing (calibration included) inside every
outer fold and scores the held-out papers; `figures` gives Cohen's kappa, accuracy, AUC, Brier score and
calibration of such predictions.

Everything is deterministic: no shuffling, lbfgs, folds assigned by `GroupKFold` from the sorted groups.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from loupe.suggestion import MODEL_FEATURES, MODEL_FORMAT, Suggester

DEFAULT_C = 0.1  # picked from 0.1, 0.3 and 1 by the grouped cross-validation of bench/train_suggester.py
DEFAULT_FOLDS = 5
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
    from sklearn.model_selection import GroupKFold

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


def fit(matrix: np.ndarray, accepted: np.ndarray, groups: Sequence[Any], *, c: float = DEFAULT_C,
        folds: int = DEFAULT_FOLDS, feature_names: Sequence[str] = MODEL_FEATURES,
        tune_threshold: bool = True) -> dict[str, Any]:
    """Fit the scaler, the logistic regression (on all rows) and its sigmoid calibration (on grouped
    cross-validated decision values); the model as the JSON-ready dict `Suggester.from_dict` reads, without name
    or training metadata. :raises TrainingError:"""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(accepted, dtype=int)
    _check(y)
    splits = [(train, test) for train, test in group_folds(groups, folds)
              if len(set(y[train].tolist())) == 2]  # a fold needs both kinds to fit on
    if len(splits) < 2:
        raise TrainingError("too few documents with both kinds of verdict to calibrate the model")
    base = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    calibrated = CalibratedClassifierCV(base, method="sigmoid", cv=splits, ensemble=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        calibrated.fit(np.asarray(matrix, dtype=np.float64), y)
    pipeline = calibrated.calibrated_classifiers_[0].estimator
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    scaler, regression = pipeline[0], pipeline[1]
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    threshold = 0.5
    if tune_threshold:
        threshold = _kappa_threshold(calibrated, base, matrix, y, splits)
    return {
        "format": MODEL_FORMAT,
        "features": list(feature_names),
        "mean": [round(float(v), 10) for v in scaler.mean_],
        "scale": [round(float(v), 10) for v in scale],
        "coefficients": [round(float(v), 10) for v in regression.coef_[0]],
        "intercept": round(float(regression.intercept_[0]), 10),
        "calibration": {"method": "sigmoid", "a": round(float(calibrator.a_), 10),
                        "b": round(float(calibrator.b_), 10)},
        "threshold": threshold,
        "regularisation_c": c,
    }


THRESHOLDS = np.round(np.arange(0.30, 0.701, 0.01), 2)


def _kappa_threshold(calibrated, base, matrix: np.ndarray, y: np.ndarray, splits) -> float:
    """The threshold on p_accept (0.30 to 0.70) with the highest Cohen's kappa on the training rows' grouped
    out-of-fold probabilities (the base model refitted without each fold, then the fitted calibration); ties go
    to the threshold nearest 0.5."""
    from sklearn.base import clone
    from sklearn.metrics import cohen_kappa_score

    decision = np.zeros(len(y))
    for train, test in splits:
        decision[test] = clone(base).fit(matrix[train], y[train]).decision_function(matrix[test])
    calibrator = calibrated.calibrated_classifiers_[0].calibrators[0]
    p_accept = calibrator.predict(decision)
    scores = [cohen_kappa_score(y, (p_accept >= threshold).astype(int)) for threshold in THRESHOLDS]
    best = max(range(len(THRESHOLDS)), key=lambda i: (round(scores[i], 6), -abs(THRESHOLDS[i] - 0.5)))
    return float(THRESHOLDS[best])


def grouped_cross_validation(matrix: np.ndarray, accepted: np.ndarray, groups: Sequence[Any], *,
                             c: float = DEFAULT_C, folds: int = DEFAULT_FOLDS,
                             feature_names: Sequence[str] = MODEL_FEATURES, tune_threshold: bool = True,
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of "accept" and thresholds: the model (calibration and threshold too) refitted
    without each fold's groups; per row, its probability and the threshold of its fold's model.
    :raises TrainingError:"""
    matrix = np.asarray(matrix, dtype=np.float64)
    y = np.asarray(accepted, dtype=int)
    _check(y)
    groups = np.asarray([str(group) for group in groups])
    probabilities = np.full(len(y), np.nan)
    thresholds = np.full(len(y), 0.5)
    for fold, (train, test) in enumerate(group_folds(groups, folds)):
        model = Suggester.from_dict({**fit(matrix[train], y[train], groups[train], c=c, folds=folds,
                                           feature_names=feature_names, tune_threshold=tune_threshold),
                                     "name": f"fold-{fold}"})
        probabilities[test] = model.probability(matrix[test])
        thresholds[test] = model.threshold
    return probabilities, thresholds


def figures(accepted: Sequence[int], p_accept: Sequence[float], threshold: float | Sequence[float] = 0.5,
            bins: int = 10) -> dict[str, Any]:
    """Agreement of thresholded probabilities (accept at p_accept >= threshold, one for all or one per row) with
    the verdicts: n, Cohen's kappa, accuracy, AUC, Brier score,
    expected calibration error and the reliability table ({"bin", "n", "mean_p", "accepted"} per non-empty bin
    of width 1/bins). Undefined figures (one kind of verdict only) are None."""
    from sklearn.metrics import accuracy_score, brier_score_loss, cohen_kappa_score, roc_auc_score

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


def model_name(prefix: str, digest: str) -> str:
    """The model's version name: what it was trained on and the first 8 hex digits of its table's hash."""
    return f"{prefix}-lr-{digest[:8]}"
