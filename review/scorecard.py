"""How good is each run: its acceptance rate with a 95% interval, from the verdicts people gave and the
suggestions on every record (loupe.estimates), per run, per question and per document, and two runs compared.

The acceptance rate is accepted / judged, as on Overview: a corrected answer was not acceptable as it stood. A
record's verdict is `annotator`'s, or with review.queue.EVERYONE its latest verdict by anyone.

Which verdicts enter the estimate depends on the design:
- with a sample (review.sampling), the sample's judged records, each weighted by its inclusion probability; verdicts
  on records outside the sample are counted in `all_verdicts` but not in the estimate (they were not drawn at
  random). A sample record deleted or re-imported with other content since the draw is left out and said; records
  added to the run after the draw are outside the population the sample can speak for, and said too;
- without one, every judged record, taken as a uniform sample (which it is only if nobody chose what to judge:
  the result says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from configuration.settings import Settings
from loupe.estimates import (
    LEVEL,
    SMALL_CELL,
    UNKNOWN_P_ACCEPT,
    Estimate,
    human_only,
    prediction_powered,
    verdicts_for_half_width,
)
from review.access import Principal, current_actor, require_role
from review.errors import NotFoundError, ReviewError
from review.models import Record, Sample
from review.queue import EVERYONE, judged_by, natural_key
from review.sampling import get_sample, sample_units

TARGET_HALF_WIDTH = 0.05


@dataclass
class Unit:
    """One record of the population an estimate speaks for."""

    record_id: str
    question: str
    question_id: str | None
    doc_id: str | None
    p_accept: float | None  # the suggestion's; None when the record has none
    label: int | None = None  # 1 accepted, 0 corrected or rejected, None not judged (in the design)
    probability: float | None = None  # inclusion probability of a judged record (None: uniform)

    @property
    def prediction(self) -> float:
        return UNKNOWN_P_ACCEPT if self.p_accept is None else self.p_accept

    @property
    def pair(self) -> tuple[str, str | None]:
        """What the same question of the same document is in another run."""
        return (self.question_id or self.question, self.doc_id)


@dataclass
class Design:
    """The population of one run's estimate, how its judged records were chosen, and what the design lost."""

    run: str
    units: list[Unit]
    method: str  # "ppi" (uniform) or "ppi-active"
    sample: str | None = None
    notes: list[str] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)
    all_verdicts: dict[str, Any] = field(default_factory=dict)


def _verdicts(session: Session, run: str, annotator: str) -> dict[str, str]:
    mine, joined = judged_by(annotator)
    query = select(Record.id, mine.c.verdict).join(mine, joined).where(Record.run == run)
    return dict(session.execute(query).all())


def _records(session: Session, run: str) -> list[Any]:
    return list(session.execute(
        select(Record.id, Record.question, Record.question_id, Record.doc_id, Record.p_reject, Record.source_hash,
               Record.suggestion)
        .where(Record.run == run).order_by(Record.id)
    ).all())


def _unit(row) -> Unit:
    return Unit(row.id, row.question, row.question_id, row.doc_id, None if row.p_reject is None else 1 - row.p_reject)


def _label(verdict: str | None) -> int | None:
    return None if verdict is None else int(verdict == "accept")


def build_design(session: Session, run: str, annotator: str = EVERYONE, sample: str | None = None) -> Design:
    """The run's records, labelled with the verdicts the estimate may use. :raises NotFoundError: no such run or
    sample. :raises ReviewError: the sample is of another run."""
    rows = _records(session, run)
    if not rows:
        raise NotFoundError(f"run {run!r} has no records")
    verdicts = _verdicts(session, run, annotator)
    accepted = sum(verdict == "accept" for verdict in verdicts.values())
    all_verdicts = {"judged": len(verdicts), "accepted": accepted,
                    "rate": round(accepted / len(verdicts), 4) if verdicts else None}
    if sample is None:
        units = [_unit(row) for row in rows]
        for unit in units:
            unit.label = _label(verdicts.get(unit.record_id))
        notes = ["no sample given: every judged record is used as if it were a uniform random sample (it is one "
                 "only if nobody chose which records to judge)"] if verdicts else []
        return Design(run, units, "ppi", notes=notes, all_verdicts=all_verdicts)
    return _sampled_design(session, run, rows, verdicts, get_sample(session, sample), all_verdicts)


def _sampled_design(session: Session, run: str, rows: list[Any], verdicts: dict[str, str], sample: Sample,
                    all_verdicts: dict[str, Any]) -> Design:
    if sample.run != run:
        raise ReviewError(f"sample {sample.name!r} was drawn from run {sample.run!r}, not {run!r}")
    current = {row.id: row for row in rows}
    units, lost, notes = [], {"deleted": 0, "reimported": 0}, []
    selected: list[tuple[Unit, float]] = []
    for drawn in sample_units(session, sample.name):
        row = current.get(drawn.record_id)
        if row is None or row.source_hash != drawn.source_hash:
            if drawn.selected:
                lost["deleted" if row is None else "reimported"] += 1
            continue
        unit = _unit(row)
        units.append(unit)
        if drawn.selected:
            selected.append((unit, drawn.probability))
    judged = [(unit, probability) for unit, probability in selected if unit.record_id in verdicts]
    # the judged part of the sample is taken as a random part of it (the sample's order is random), so each judged
    # record's probability is its own times the share of the sample judged
    share = len(judged) / len(selected) if selected else 0.0
    for unit, probability in judged:
        unit.label = _label(verdicts[unit.record_id])
        unit.probability = probability * share
    if lost["deleted"] or lost["reimported"]:
        notes.append(f"the sample lost {lost['deleted']} records deleted and {lost['reimported']} re-imported with "
                     f"other content since it was drawn; the estimate uses the {len(selected)} left")
    added = len(set(current) - {unit.record_id for unit in units}) - lost["reimported"]
    if added > 0:
        notes.append(f"{added} records were added to the run after the sample was drawn: the estimate speaks for "
                     f"the {len(units)} it was drawn from")
    if len(judged) < len(selected):
        notes.append(f"{len(judged)} of the sample's {len(selected)} records are judged so far")
    outside = len(set(verdicts) - {unit.record_id for unit, _ in judged})
    if outside:
        notes.append(f"{outside} verdicts on records outside the sample are counted in all_verdicts, not in the "
                     "estimate")
    method = "ppi-active" if sample.method == "active" else "ppi"
    return Design(run, units, method, sample=sample.name, notes=notes, lost=lost, all_verdicts=all_verdicts)


def _arrays(units: list[Unit]):
    judged = [unit for unit in units if unit.label is not None]
    labels = np.array([unit.label for unit in judged], dtype=float)
    predicted = np.array([unit.prediction for unit in judged])
    everyone = np.array([unit.prediction for unit in units])
    weighted = any(unit.probability is not None for unit in judged)
    probabilities = np.array([unit.probability for unit in judged]) if weighted else None
    return labels, predicted, everyone, probabilities


def estimate_units(units: list[Unit]) -> tuple[dict[str, Any], Estimate | None]:
    """The figures of a set of units, and the estimate they report: PPI when any has a suggestion, else
    human-only; beside it the human-only one and the suggestion-only mean (uncalibrated: the model's own belief,
    corrected by nobody)."""
    labels, predicted, everyone, probabilities = _arrays(units)
    suggested = [unit.p_accept for unit in units if unit.p_accept is not None]
    classical = human_only(labels, probabilities)
    powered = prediction_powered(labels, predicted, everyone, probabilities) if suggested else None
    chosen = powered if suggested else classical
    return {
        "records": len(units), "human_n": int(labels.size),
        "estimate": None if chosen is None else round(chosen.estimate, 4),
        "ci": None if chosen is None else [round(chosen.ci[0], 4), round(chosen.ci[1], 4)],
        "human_only": _pair(classical),
        # a plain number, as the issue names it; `suggestion_only_records` says over how many, and it is never
        # calibrated: the model's own belief, corrected by nobody
        "suggestion_only": round(float(np.mean(suggested)), 4) if suggested else None,
        "suggestion_only_records": len(suggested), "suggestion_only_uncalibrated": True,
        "more_for_5_points": verdicts_for_half_width(chosen, TARGET_HALF_WIDTH),
        "small": bool(labels.size < SMALL_CELL),
    }, chosen


def _pair(estimate: Estimate | None) -> dict[str, Any] | None:
    return None if estimate is None else {"estimate": round(estimate.estimate, 4),
                                          "ci": [round(estimate.ci[0], 4), round(estimate.ci[1], 4)]}


def _cells(units: list[Unit], key: Callable[[Unit], Any], label: Callable[[Unit], str]) -> list[dict[str, Any]]:
    groups: dict[Any, list[Unit]] = {}
    for unit in units:
        groups.setdefault(key(unit), []).append(unit)
    cells = []
    for value in sorted(groups, key=natural_key):
        figures, _ = estimate_units(groups[value])
        cells.append({"key": value, "label": label(groups[value][0]), **figures})
    return cells


def _training(settings: Settings) -> tuple[str | None, str | None, set[str]]:
    """The suggester in force: its name, the run it was retrained on (None: the shipped one) and the documents
    whose verdicts it learnt from (training.documents of its file)."""
    # imported here: loupe.suggestion loads Haystack (seconds), which nothing else of the scorecard needs
    from loupe.suggestion import ModelFileError, suggester_in_force

    try:
        model = suggester_in_force(settings).suggester  # the shipped one when the data directory's is unusable
    except (OSError, ModelFileError):
        return None, None, set()
    training = (model.data or {}).get("training") or {}
    documents = training.get("documents") if isinstance(training.get("documents"), list) else []
    return model.name, training.get("run"), {str(document) for document in documents}


def _suggester(session: Session, settings: Settings, units: list[Unit], run: str) -> dict[str, Any]:
    """Which models made the suggestions, and whether the one in force was trained on records of this run."""
    models = sorted({row for row in session.scalars(
        select(Record.suggestion["model"].as_string()).where(Record.run == run).distinct()) if row})
    in_force, trained_run, documents = _training(settings)
    overlap = {unit.doc_id for unit in units if unit.doc_id} & documents
    return {"models": models, "in_force": in_force, "trained_on_run": bool(overlap) or trained_run == run,
            "trained_documents_in_run": len(overlap)}


def run_scorecard(session: Session, settings: Settings, run: str, *, actor: Principal, annotator: str = EVERYONE,
                  sample: str | None = None, details: bool = True) -> dict[str, Any]:
    """The scorecard of one run (see `cli.py scorecard --json` in the README for the keys)."""
    require_role(current_actor(session, actor), "reviewer", "see a run's scorecard")
    design = build_design(session, run, annotator, sample)
    figures, chosen = estimate_units(design.units)
    unanalysed = sum(unit.p_accept is None for unit in design.units)
    notes = list(design.notes)
    method = design.method
    if unanalysed == len(design.units):
        method = "human"
        notes.append("no record of the run has a suggestion: the estimate is the human-only one (run `cli.py "
                     f"analyze --run {run}` to add the suggestions' power)")
    elif unanalysed:
        notes.append(f"{unanalysed} records have no suggestion and count as 50% (run `cli.py analyze --run {run}`)")
    if chosen is None:
        method = None
        notes.append("fewer than two human verdicts: no estimate, only the suggestion-only figure, which is "
                     "uncalibrated" if figures["suggestion_only"] else "fewer than two human verdicts: no estimate")
    suggester = _suggester(session, settings, design.units, run)
    if suggester["trained_on_run"]:
        notes.append(f"the suggester in force ({suggester['in_force']}) was trained on verdicts on records of this "
                     f"run ({suggester['trained_documents_in_run']} of its documents): its suggestions there are "
                     "better than on new documents (the interval stays valid, but may look narrower than it would "
                     "elsewhere)")
    card = {"run": run, "annotator": "everyone" if annotator == EVERYONE else annotator, "sample": design.sample,
            "method": method, "level": LEVEL, **figures, "unanalysed": unanalysed,
            "all_verdicts": design.all_verdicts, "lost": design.lost, "suggester": suggester,
            "suggester_model": ", ".join(suggester["models"]) or None, "notes": notes}
    if details:
        card["per_question"] = _cells(design.units, lambda unit: unit.question_id or unit.question,
                                      lambda unit: unit.question)
        card["per_document"] = _cells(design.units, lambda unit: unit.doc_id or "", lambda unit: unit.doc_id or "")
    return card


def compare_runs(session: Session, first: str, second: str, *, actor: Principal,
                 annotators: tuple[str, str] = (EVERYONE, EVERYONE),
                 samples: tuple[str | None, str | None] = (None, None)) -> dict[str, Any]:
    """The difference in acceptance, `first` minus `second`, on the (question, document) pairs both runs have:
    {estimate, ci, first, second, pairs, human_pairs, method, sentence, notes}.

    Without samples, paired: on the pairs judged in both runs, the difference of verdicts, with the difference of
    suggestions on every shared pair (PPI). With samples (drawn independently per run), each run's estimate on the
    shared pairs, their difference, and the two variances added."""
    require_role(current_actor(session, actor), "reviewer", "compare runs")
    designs = [build_design(session, run, annotator, sample)
               for run, annotator, sample in zip((first, second), annotators, samples)]
    by_pair: list[dict[tuple, Unit]] = [{}, {}]
    repeated = 0
    for pairs, design in zip(by_pair, designs):
        for unit in design.units:
            repeated += unit.pair in pairs
            pairs.setdefault(unit.pair, unit)
    shared = sorted(set(by_pair[0]) & set(by_pair[1]), key=lambda pair: (natural_key(pair[0]), natural_key(pair[1])))
    if not shared:
        raise ReviewError(f"runs {first!r} and {second!r} share no question on the same document")
    if samples == (None, None):
        difference, method = _paired_difference(by_pair, shared), "paired"
    else:
        difference, method = _independent_difference(by_pair, shared), "independent samples"
    human_pairs = sum(by_pair[0][pair].label is not None and by_pair[1][pair].label is not None for pair in shared)
    figures = _pair(difference) or {"estimate": None, "ci": None}
    result = {**figures, "first": first, "second": second, "pairs": len(shared), "method": method,
              "human_pairs": human_pairs,
              "notes": [f"{repeated} records repeat a question of a document asked before in their run: only the "
                        "first of each is compared"] if repeated else []}
    result["sentence"] = difference_sentence(first, second, difference)
    return result


def _paired_difference(by_pair: list[dict], shared: list) -> Estimate | None:
    firsts, seconds = [by_pair[0][pair] for pair in shared], [by_pair[1][pair] for pair in shared]
    both = [(a, b) for a, b in zip(firsts, seconds) if a.label is not None and b.label is not None]
    labels = np.array([a.label - b.label for a, b in both], dtype=float)
    predicted = np.array([a.prediction - b.prediction for a, b in both])
    everyone = np.array([a.prediction - b.prediction for a, b in zip(firsts, seconds)])
    return prediction_powered(labels, predicted, everyone, lower=-1.0)


def _independent_difference(by_pair: list[dict], shared: list) -> Estimate | None:
    estimates = [estimate_units([units[pair] for pair in shared])[1] for units in by_pair]
    if any(estimate is None for estimate in estimates):
        return None
    first, second = estimates
    spread = math.hypot(first.half_width, second.half_width)
    centre = first.estimate - second.estimate
    return Estimate(centre, (max(-1.0, centre - spread), min(1.0, centre + spread)), min(first.n, second.n))


def difference_sentence(first: str, second: str, difference: Estimate | None) -> str:
    """"A is accepted 8 points more often than B (95% CI 3 to 13)"; says when the interval includes no difference."""
    if difference is None:
        return f"Too few verdicts on the questions and documents {first} and {second} share to compare them."
    points = round(difference.estimate * 100)
    low, high = (round(bound * 100) for bound in difference.ci)
    how = "as often as" if points == 0 else f"{abs(points)} points {'more' if points > 0 else 'less'} often than"
    verdict = " — no clear difference" if low <= 0 <= high else ""
    return f"{first} is accepted {how} {second} (95% CI {low:+d} to {high:+d} points){verdict}."
