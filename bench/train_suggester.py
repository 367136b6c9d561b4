"""Train the verdict suggester (loupe.suggestion) on the human verdicts of Kommineni et al. (2024) and measure it
with whole papers held out.

    python -m bench.train_suggester [--out loupe/models/suggester.json] [--folds 5] [--c 1.0] [--compare]
                                    [--cache data/cache/suggester-support] [--no-write] [--json]

Data: ../shared/data/kommineni2024 (bench/suggester_data.py): 2098 decided answers of five models to 28 questions
about 15 papers, each with the passages of the mixtral_8_22b prompt record of its paper and question. Support maps
come from `loupe.support.analyze_support` with the configured MiniLM model; they are cached under --cache (the
first run computes them: about half an hour on 2 busy cores; a progress line goes to stderr).

The model: the logistic regression and gradient-boosted trees side by side (loupe.suggester_training.TREES, settings
fixed in advance) over the support-map features and each question's acceptance rate (question priors, counted
without the row's own paper), their mean decision value calibrated by a sigmoid; a JSON file, trees as arrays, no
pickle.

Evaluation: GroupKFold by paper (--folds, default 5: three papers held out per fold). In every outer fold the whole
model (scaler, regression, trees and their sigmoid calibration, itself fitted on grouped inner folds) is refitted
on the other papers and scores the held-out ones; it says accept at p_accept >= 0.5. The out-of-fold
probabilities give Cohen's kappa, accuracy, AUC, Brier score and expected calibration error per generating model
and pooled. `--compare` adds the same figures for the model without question priors, for the logistic
regression alone and for the issue's handful of support-map numbers alone (a logistic regression too). With the
support maps cached: about 40 s on 2 cores, 100 s with --compare.

The final model is fitted on all examples and written to --out with the training table's sha256, the per-model
counts and the cross-validated figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.suggester_data import DEFAULT_CACHE, KOMMINENI, REPO, Example, attach_support, load_examples
from configuration.settings import load_settings
from loupe.suggester_training import (
    DEFAULT_C,
    DEFAULT_FOLDS,
    TREES,
    figures,
    fit,
    grouped_cross_validation,
    model_json,
    model_name,
    table_hash,
)
from loupe.suggestion import FEATURES, MODEL_FEATURES, SHIPPED_MODEL, feature_vector, features

# The issue's "handful of the support map's own numbers", as a baseline.
BASELINE = ("log_sentences", "log_supported", "abstention_share", "opens_with_abstention", "best_score",
            "mean_score", "log_words")


def training_rows(examples: list[Example]) -> list[dict[str, Any]]:
    """The training table, one row per example: its id, group, generating model, verdict and features."""
    rows = []
    for example in examples:
        values = features(example.support, example.passages, example.answer, example.question)
        rows.append({"id": example.id, "paper": example.paper, "model": example.model, "verdict": example.verdict,
                     "question": example.question, **{name: round(values[name], 6) for name in FEATURES}})
    return rows


def summarise(rows: list[dict[str, Any]], p_accept: np.ndarray, thresholds: np.ndarray | float = 0.5,
              ) -> dict[str, Any]:
    y = np.array([row["verdict"] == "accept" for row in rows], dtype=int)
    models = np.array([row["model"] for row in rows])
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), p_accept.shape)
    result = {"pooled": figures(y, p_accept, thresholds)}
    for model in sorted(set(models.tolist())):
        chosen = models == model
        result[model] = figures(y[chosen], p_accept[chosen], thresholds[chosen])
    return result


def table(name: str, result: dict[str, Any]) -> str:
    lines = [f"{name}", f"  {'answers of':<22} {'n':>5} {'accept':>6} {'kappa':>6} {'acc':>6} {'AUC':>6} "
             f"{'Brier':>6} {'ECE':>6}"]
    for key, value in result.items():
        cells = [str(value[name]) for name in ("n", "accepted", "cohen_kappa", "accuracy", "auc", "brier", "ece")]
        lines.append(f"  {key:<22} {cells[0]:>5} {cells[1]:>6} " + " ".join(f"{cell:>6}" for cell in cells[2:]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=KOMMINENI)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS)
    parser.add_argument("--c", type=float, default=DEFAULT_C, help="inverse L2 regularisation strength")
    parser.add_argument("--compare", action="store_true",
                        help="also the logistic regression alone and the baseline features")
    parser.add_argument("--no-write", action="store_true", help="measure only; leave the model file as it is")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)

    if not args.data.exists():
        print(f"error: {args.data} is absent (../shared exists only on the project's build machines)",
              file=sys.stderr)
        return 2
    settings = load_settings()
    examples = load_examples(args.data)
    attach_support(examples, settings, cache=args.cache)
    rows = training_rows(examples)
    matrix = np.array([feature_vector(row, MODEL_FEATURES) for row in rows])
    y = np.array([row["verdict"] == "accept" for row in rows], dtype=int)
    groups = [row["paper"] for row in rows]
    questions = [row["question"] for row in rows]

    print(f"{len(rows)} answers, {int(y.sum())} accepted, {len(set(groups))} papers; "
          f"GroupKFold({args.folds}) by paper", file=sys.stderr)
    p_accept, thresholds = grouped_cross_validation(matrix, y, groups, c=args.c, folds=args.folds, trees=TREES,
                                                    questions=questions)
    results: dict[str, Any] = {"suggester": summarise(rows, p_accept, thresholds)}
    if args.compare:
        results["without_question_priors"] = summarise(rows, *grouped_cross_validation(
            matrix, y, groups, c=args.c, folds=args.folds, trees=TREES))
        results["logistic_regression"] = summarise(rows, *grouped_cross_validation(matrix, y, groups, c=args.c,
                                                                                   folds=args.folds))
        columns = [MODEL_FEATURES.index(name) for name in BASELINE]
        results["baseline_features"] = summarise(rows, *grouped_cross_validation(
            matrix[:, columns], y, groups, c=args.c, folds=args.folds, feature_names=BASELINE))

    digest = table_hash(rows)
    model = fit(matrix, y, groups, c=args.c, folds=args.folds, trees=TREES, questions=questions)
    model = {
        "name": model_name("kommineni2024", digest, model["kind"]),
        **model,
        "training": {
            "data": "Kommineni et al. (2024) human_decisions, all five models; passages of the mixtral_8_22b "
                    "prompt records (../shared/data/kommineni2024)",
            "sha256": digest,
            "rows": len(rows),
            "accepted": int(y.sum()),
            "papers": len(set(groups)),
            "documents": sorted(set(groups)),  # the scorecard says when a run holds any of them
            "by_model": {m: sum(1 for row in rows if row["model"] == m) for m in sorted({r["model"] for r in rows})},
            "support_model": settings.embedding_model,
            "trained_at": datetime.now(UTC).date().isoformat(),
            "script": "bench/train_suggester.py",
        },
        "cross_validation": {"method": f"GroupKFold({args.folds}) by paper; scaler, regression, trees, "
                                       "question priors and calibration refitted on the other papers for each fold",
                             "thresholds": sorted(set(np.round(thresholds, 2).tolist())), **results["suggester"]},
    }
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(model_json(model), encoding="utf-8")
        print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out} "
              f"({model['name']})", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": model["name"], "sha256": digest, **results}))
    else:
        for name, result in results.items():
            print(table(name, result))
        weights = sorted(zip(model["features"], model["coefficients"]), key=lambda item: -abs(item[1]))
        print("coefficients (scaled features, + = towards accept): "
              + ", ".join(f"{name} {value:+.2f}" for name, value in weights))
    return 0


if __name__ == "__main__":
    sys.exit(main())
