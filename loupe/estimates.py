"""Acceptance rates with 95% intervals from a partial human review, and which records to review.

The estimators are prediction-powered inference (Angelopoulos et al., Science 2023; PPI++ power tuning) from the
method authors' package `ppi_py`: the suggester's calibrated `p_accept` of every record, corrected by the
difference between verdict and prediction on the records people judged. Whatever the predictions' quality, the
interval stays valid; good predictions make it narrower. Records chosen with unequal probabilities (an active
sample, Zrnic & Candès 2024) enter with weights 1/probability, which ppi_py takes as sample weights, so the
estimate stays unbiased whatever the design favoured.

Samples are drawn by randomised systematic sampling with probabilities proportional to size: exactly the budget,
no record twice, and each record chosen with exactly its probability. The selected records come in a random order,
so the first k of them are themselves a sample (each with probability π·k/n): an unfinished review still gives a
valid estimate.

Intervals use the normal approximation over independent draws, which ignores the finite-population correction:
on a sample of a tenth of a run they are slightly conservative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
# A record whose suggestion is missing counts as a coin flip: PPI stays valid for any fixed prediction.
UNKNOWN_P_ACCEPT = 0.5
# An active sample gives this share of its budget uniformly, so no record's probability is near zero (a record the
# suggester is sure of may still be wrong, and a tiny probability makes a huge weight).
UNIFORM_SHARE = 0.2
SMALL_CELL = 10  # fewer human verdicts than this: the interval is flagged as unreliable


@dataclass(frozen=True)
class Estimate:
    """An estimated rate with its 95% interval, and the number of human verdicts behind it."""

    estimate: float
    ci: tuple[float, float]
    n: int

    @property
    def half_width(self) -> float:
        return (self.ci[1] - self.ci[0]) / 2

    def as_dict(self) -> dict[str, object]:
        return {"estimate": round(self.estimate, 4), "ci": [round(self.ci[0], 4), round(self.ci[1], 4)], "n": self.n}


def _clipped(low: float, high: float, lower: float = 0.0, upper: float = 1.0) -> tuple[float, float]:
    return max(lower, float(low)), min(upper, float(high))


def _weights(probabilities: np.ndarray | None) -> np.ndarray | None:
    return None if probabilities is None else 1.0 / np.asarray(probabilities, dtype=float)


def prediction_powered(labels, predicted_labelled, predicted_all, probabilities=None, *, lower: float = 0.0,
                       upper: float = 1.0) -> Estimate | None:
    """PPI++ estimate of the mean label over all records: `labels` (1 accept, 0 not; a difference of two such
    labels with `lower` -1) and the predictions of the judged records, the predictions of every record, and the
    judged records' inclusion probabilities (None: a uniform sample). None with fewer than two verdicts (no
    variance to measure)."""
    from ppi_py import ppi_mean_ci, ppi_mean_pointestimate

    labels = np.asarray(labels, dtype=float)
    if labels.size < 2:
        return None
    predicted_labelled = np.asarray(predicted_labelled, dtype=float)
    predicted_all = np.asarray(predicted_all, dtype=float)
    weights = _weights(probabilities)
    # predictions that do not vary carry no information, and ppi_py's power tuning would divide 0 by 0: the
    # classical estimate (lam 0) is then what PPI++ would choose
    lam = 0.0 if np.ptp(predicted_all) == 0 and np.ptp(predicted_labelled) == 0 else None
    point = ppi_mean_pointestimate(labels, predicted_labelled, predicted_all, lam=lam, w=weights)
    low, high = ppi_mean_ci(labels, predicted_labelled, predicted_all, alpha=1 - LEVEL, lam=lam, w=weights)
    centre = float(np.clip(np.ravel(point)[0], lower, upper))
    return Estimate(centre, _clipped(np.ravel(low)[0], np.ravel(high)[0], lower, upper), int(labels.size))


def human_only(labels, probabilities=None) -> Estimate | None:
    """The classical estimate from the verdicts alone (weighted by 1/probability for an unequal-probability
    sample), with its normal-approximation interval; None with fewer than two verdicts."""
    from ppi_py import classical_mean_ci

    labels = np.asarray(labels, dtype=float)
    if labels.size < 2:
        return None
    weights = _weights(probabilities)
    point = float(np.average(labels, weights=weights))
    low, high = classical_mean_ci(labels, w=weights, alpha=1 - LEVEL)
    return Estimate(point, _clipped(low, high), int(labels.size))


def verdicts_for_half_width(estimate: Estimate | None, target: float = 0.05) -> int | None:
    """How many more verdicts (drawn as these were) would bring the interval's half-width to `target`, assuming
    its width shrinks as 1/sqrt(n) from the current variance: 0 when it is there already, None when unknown."""
    if estimate is None or estimate.n < 2:
        return None
    if estimate.half_width <= target:
        return 0
    needed = estimate.n * (estimate.half_width / target) ** 2
    return max(0, math.ceil(needed) - estimate.n)


def active_probabilities(p_accept, budget: int, uniform_share: float = UNIFORM_SHARE) -> np.ndarray:
    """Inclusion probabilities summing to `budget`: a `uniform_share` of it spread evenly, the rest in proportion
    to sqrt(p(1-p)), the standard deviation of a verdict the suggester predicts with probability p (the optimal
    allocation for a mean; Zrnic & Candès 2024). Probabilities above 1 are capped and their excess spread over
    the others."""
    p = np.clip(np.asarray(p_accept, dtype=float), 0.0, 1.0)
    count = p.size
    _check_budget(budget, count)
    uncertainty = np.sqrt(p * (1 - p))
    if uncertainty.sum() == 0:
        uncertainty = np.ones(count)
    size = uniform_share / count + (1 - uniform_share) * uncertainty / uncertainty.sum()
    return _capped(size, budget)


def uniform_probabilities(count: int, budget: int) -> np.ndarray:
    _check_budget(budget, count)
    return np.full(count, budget / count)


def _check_budget(budget: int, count: int) -> None:
    if count == 0:
        raise ValueError("the run has no records to sample")
    if not 1 <= budget <= count:
        raise ValueError(f"the budget must be between 1 and the run's {count} records, got {budget}")


def _capped(size: np.ndarray, budget: int) -> np.ndarray:
    """`budget * size / size.sum()`, with every value above 1 set to 1 and the rest rescaled to keep the sum."""
    probabilities = np.zeros_like(size)
    capped = np.zeros(size.size, dtype=bool)
    while True:
        free = ~capped
        left = budget - capped.sum()
        probabilities[free] = left * size[free] / size[free].sum()
        probabilities[capped] = 1.0
        over = free & (probabilities > 1.0)
        if not over.any():
            return probabilities
        capped |= over


def systematic_sample(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of exactly round(sum(probabilities)) records, each chosen with its probability, in a random order:
    randomised systematic sampling (the records shuffled, one random start, then steps of 1 along the cumulated
    probabilities)."""
    probabilities = np.asarray(probabilities, dtype=float)
    order = rng.permutation(probabilities.size)
    cumulated = np.cumsum(probabilities[order])
    budget = int(round(cumulated[-1]))
    points = rng.uniform(0, 1) + np.arange(budget)
    positions = np.searchsorted(cumulated, points, side="right")
    chosen = order[np.minimum(positions, probabilities.size - 1)]
    return rng.permutation(chosen)
