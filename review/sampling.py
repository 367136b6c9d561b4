"""Samples of a run to review: drawn once, stored whole, worked through in the Queue ("sample NAME").

A sample is a design, not a to-do list: it is drawn from every record of the run, whatever verdicts they already
have. Every record of the run at drawing time is stored with its inclusion probability (and whether it was chosen),
so that review.scorecard can weight each verdict by the chance its record had, and can tell what a later deletion
or re-import of a record took away. `cli.py sample` and the Scorecard page call `draw_sample`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from loupe.estimates import (
    UNIFORM_SHARE,
    UNKNOWN_P_ACCEPT,
    active_probabilities,
    systematic_sample,
    uniform_probabilities,
)
from review.access import Principal, current_actor, require_role
from review.errors import NotFoundError, ReviewError
from review.models import Record, Sample, SampleUnit

METHODS = ("active", "uniform")
MAX_NAME = 200


@dataclass(frozen=True)
class DrawnSample:
    """What `draw_sample` stored: the sample and the ids its records were imported with, in review order."""

    sample: Sample
    record_ids: list[str]
    unanalysed: int  # records without a suggestion, counted as p_accept 0.5 by an active design

    def summary(self) -> str:
        note = (f"; {self.unanalysed} records had no suggestion and counted as 50% (run `cli.py analyze` first for "
                "a sharper design)") if self.unanalysed and self.sample.method == "active" else ""
        return (f"sample {self.sample.name}: {len(self.record_ids)} of {self.sample.population} records of run "
                f"{self.sample.run} ({self.sample.method}, seed {self.sample.seed}){note}")


def _checked_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ReviewError(f"a sample needs a printable name of 1 to {MAX_NAME} characters")
    return name


def draw_sample(session: Session, *, actor: Principal, run: str, budget: int, seed: int, name: str,
                method: str = "active") -> DrawnSample:
    """Choose `budget` records of `run` and store the sample under `name`, with every record's probability.

    active: a record's probability rises with the suggestion's uncertainty (loupe.estimates.active_probabilities);
    uniform: a simple random sample. The same seed on the same run gives the same sample; other seeds give
    independent ones. :raises NotFoundError: the run has no records. :raises ReviewError: the name is
    taken or not usable, the method unknown. :raises ValueError: the budget is out of range."""
    require_role(current_actor(session, actor), "reviewer", "draw a sample")
    name = _checked_name(name)
    if method not in METHODS:
        raise ReviewError(f"the sampling method must be one of {', '.join(METHODS)}, got {method!r}")
    if session.get(Sample, name) is not None:
        raise ReviewError(f"a sample named {name!r} exists already: choose another name")
    rows = session.execute(
        select(Record.id, Record.external_id, Record.source_hash, Record.p_reject, Record.suggestion)
        .where(Record.run == run).order_by(Record.id)
    ).all()
    if not rows:
        raise NotFoundError(f"run {run!r} has no records")
    p_accept = np.array([UNKNOWN_P_ACCEPT if row.p_reject is None else 1 - row.p_reject for row in rows])
    if method == "active":
        probabilities = active_probabilities(p_accept, budget)
    else:
        probabilities = uniform_probabilities(len(rows), budget)
    chosen = systematic_sample(probabilities, np.random.default_rng(seed))
    position = {int(index): rank for rank, index in enumerate(chosen)}
    models = sorted({row.suggestion.get("model") for row in rows if isinstance(row.suggestion, dict)} - {None})
    sample = Sample(name=name, run=run, method=method, seed=seed, budget=budget, population=len(rows),
                    suggester_model=", ".join(models) or None, created_by=actor.name,
                    settings={"uniform_share": None if method == "uniform" else UNIFORM_SHARE})
    session.add(sample)
    session.flush()
    session.add_all(
        SampleUnit(sample=name, record_id=row.id, external_id=row.external_id, source_hash=row.source_hash,
                   probability=float(probabilities[index]), selected=index in position, position=position.get(index))
        for index, row in enumerate(rows)
    )
    session.commit()
    ordered = sorted(position, key=position.get)
    return DrawnSample(sample, [rows[index].external_id or rows[index].id for index in ordered],
                       unanalysed=sum(row.p_reject is None for row in rows))


def samples_of(session: Session, runs: list[str] | tuple[str, ...] = ()) -> list[Sample]:
    """The samples of the given runs (all runs when none), newest first."""
    query = select(Sample).order_by(Sample.created_at.desc(), Sample.name)
    if runs:
        query = query.where(Sample.run.in_(tuple(runs)))
    return list(session.scalars(query))


def get_sample(session: Session, name: str) -> Sample:
    """:raises NotFoundError:"""
    sample = session.get(Sample, name)
    if sample is None:
        raise NotFoundError(f"no sample named {name!r} (see `cli.py sample --help` to draw one)")
    return sample


def sample_units(session: Session, name: str) -> list[SampleUnit]:
    return list(session.scalars(select(SampleUnit).where(SampleUnit.sample == name).order_by(SampleUnit.id)))
