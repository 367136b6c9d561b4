"""The scorecard's intervals measured on real verdicts: coverage and width, prediction-powered beside human-only.

    python -m bench.scorecard [--repetitions 200] [--budgets 30 60 100] [--json]

Data: the Kommineni study's human verdicts on five models' answers (bench/suggester_data.py; about 420 answers a
model, 15 papers). Each model's answers are one run; its full human acceptance rate is the truth. The suggestions are
out of fold (GroupKFold by paper, as bench/train_suggester.py measures the suggester): each answer's p_accept comes
from a model trained without its paper, since the shipped model was trained on these papers and its own
predictions would flatter the method.

For every run, budget and design (uniform: a simple random sample; active: loupe.estimates.active_probabilities),
`--repetitions` samples are drawn with loupe.estimates.systematic_sample, exactly as `cli.py sample` draws them, and
each gives the prediction-powered interval (ppi_py, weighted by the inclusion probabilities) and the human-only one
on the same verdicts, as `cli.py scorecard` computes them. Printed: how often each interval covers the truth and its
mean width, and the width ratios the issue asks for (PPI / human-only on the same verdicts; active PPI / human-only
of uniform samples of the same size). Needs the support maps cached by bench/train_suggester.py (the first run
computes them, with a progress line).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from bench.suggester_data import KOMMINENI, attach_support, load_examples
from bench.train_suggester import training_rows
from configuration.settings import load_settings
from loupe.estimates import (
    UNIFORM_SHARE,
    active_probabilities,
    human_only,
    prediction_powered,
    systematic_sample,
    uniform_probabilities,
)
from loupe.suggester_training import DEFAULT_FOLDS, TREES, grouped_cross_validation
from loupe.suggestion import MODEL_FEATURES, feature_vector

DESIGNS = ("uniform", "active")


def out_of_fold_runs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{generating model: (human accept 0/1, out-of-fold p_accept)} over the study's judged answers."""
    examples = load_examples(KOMMINENI)
    attach_support(examples, load_settings())
    rows = training_rows(examples)
    matrix = np.array([feature_vector(row, MODEL_FEATURES) for row in rows])
    accepted = np.array([row["verdict"] == "accept" for row in rows], dtype=int)
    p_accept, _ = grouped_cross_validation(matrix, accepted, [row["paper"] for row in rows], folds=DEFAULT_FOLDS,
                                           trees=TREES, questions=[row["question"] for row in rows])
    models = np.array([row["model"] for row in rows])
    return {model: (accepted[models == model], np.asarray(p_accept)[models == model]) for model in sorted(set(models))}


def measure(labels: np.ndarray, p_accept: np.ndarray, budget: int, design: str, repetitions: int,
            rng: np.random.Generator, uniform_share: float = UNIFORM_SHARE) -> dict[str, float]:
    """Coverage of the full human rate and mean width of both intervals over `repetitions` samples."""
    truth = labels.mean()
    probabilities = (active_probabilities(p_accept, budget, uniform_share) if design == "active"
                     else uniform_probabilities(labels.size, budget))
    covered = {"ppi": 0, "human": 0}
    widths: dict[str, list[float]] = {"ppi": [], "human": []}
    for _ in range(repetitions):
        chosen = systematic_sample(probabilities, rng)
        weights = probabilities[chosen] if design == "active" else None
        for name, estimate in (("ppi", prediction_powered(labels[chosen], p_accept[chosen], p_accept, weights)),
                               ("human", human_only(labels[chosen], weights))):
            covered[name] += estimate.ci[0] <= truth <= estimate.ci[1]
            widths[name].append(estimate.ci[1] - estimate.ci[0])
    return {"truth": round(float(truth), 4),
            **{f"coverage_{name}": round(covered[name] / repetitions, 3) for name in covered},
            **{f"width_{name}": round(float(np.mean(widths[name])), 4) for name in widths},
            "width_p95_ppi": round(float(np.percentile(widths["ppi"], 95)), 4)}


def run(repetitions: int, budgets: list[int], seed: int, uniform_share: float = UNIFORM_SHARE) -> dict[str, Any]:
    runs = out_of_fold_runs()
    rng = np.random.default_rng(seed)
    results: dict[str, Any] = {}
    for model, (labels, p_accept) in runs.items():
        for budget in budgets:
            for design in DESIGNS:
                results[f"{model}|{budget}|{design}"] = measure(labels, p_accept, budget, design, repetitions, rng,
                                                                uniform_share)
    return {"runs": {model: len(labels) for model, (labels, _) in runs.items()}, "repetitions": repetitions,
            "uniform_share": uniform_share, "results": results}


def table(measured: dict[str, Any], budgets: list[int]) -> str:
    lines = ["| run | n | design | coverage PPI | coverage human | width PPI | width human | PPI / human | "
             "PPI / human of uniform |", "|---|---|---|---|---|---|---|---|---|"]
    results = measured["results"]
    for budget in budgets:
        pooled: dict[str, list[float]] = {}
        for model in measured["runs"]:
            uniform_human = results[f"{model}|{budget}|uniform"]["width_human"]
            for design in DESIGNS:
                row = results[f"{model}|{budget}|{design}"]
                ratio, versus_uniform = row["width_ppi"] / row["width_human"], row["width_ppi"] / uniform_human
                for key, value in (("cov_ppi", row["coverage_ppi"]), ("cov_h", row["coverage_human"]),
                                   ("w_ppi", row["width_ppi"]), ("w_h", row["width_human"]), ("ratio", ratio),
                                   ("vs_u", versus_uniform)):
                    pooled.setdefault(f"{design}|{key}", []).append(value)
                lines.append(f"| {model} | {budget} | {design} | {row['coverage_ppi']:.3f} | "
                             f"{row['coverage_human']:.3f} | {row['width_ppi']:.3f} | {row['width_human']:.3f} | "
                             f"{ratio:.2f} | {versus_uniform:.2f} |")
        for design in DESIGNS:
            mean = {key.split("|")[1]: float(np.mean(values)) for key, values in pooled.items()
                    if key.startswith(design + "|")}
            lines.append(f"| **mean of runs** | {budget} | {design} | {mean['cov_ppi']:.3f} | {mean['cov_h']:.3f} | "
                         f"{mean['w_ppi']:.3f} | {mean['w_h']:.3f} | {mean['ratio']:.2f} | {mean['vs_u']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repetitions", type=int, default=200)
    parser.add_argument("--budgets", type=int, nargs="+", default=[30, 60, 100])
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--uniform-share", type=float, default=UNIFORM_SHARE,
                        help="share of an active sample's budget spread evenly (the shipped design's is the default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not KOMMINENI.exists():
        print(f"error: {KOMMINENI} is absent (../shared exists only on the project's build machines)", file=sys.stderr)
        return 2
    measured = run(args.repetitions, args.budgets, args.seed, args.uniform_share)
    print(json.dumps(measured) if args.json else table(measured, args.budgets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
