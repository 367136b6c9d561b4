"""Inter-annotator agreement on the verdicts (accept / correct / reject) of a run.

Well-kept implementations do the statistics: scikit-learn's `cohen_kappa_score` for pairs, statsmodels'
`fleiss_kappa` for items judged by the same number (three or more) of annotators, and the `krippendorff`
package's nominal alpha, which also copes with items some annotators did not judge. Each figure comes with the
number of items behind it; a figure that is undefined (one label only, no overlap) is None, not a guess.

Blind review: an annotator sees colleagues' verdicts once they have saved one of their own, so only the first
verdict they saved on a record was surely given blind (a throwaway verdict, Undo and a new one that agrees would
otherwise count as independent agreement). Agreement therefore counts each annotator's first verdict on every
record they judge, and lists the records where someone's current verdict differs from it while a colleague
judged the record too (`revised_verdicts`); done counts and verdict mixes stay the current verdicts.
"""

from __future__ import annotations

import statistics
import warnings
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from review.access import Principal
from review.assignment import assigned_counts
from review.errors import NotFoundError
from review.models import VERDICTS, Annotation, AnnotationVersion, Record, WithdrawnVerdict

_CODES = {verdict: code for code, verdict in enumerate(VERDICTS)}


def verdict_table(session: Session, run: str) -> pd.DataFrame:
    """One row per (record, annotator): the record's question and the annotator's current verdict."""
    return _current_verdicts(session, Record.run == run)


def _current_verdicts(session: Session, *where) -> pd.DataFrame:
    query = (select(Record.id, Record.question, Annotation.annotator, Annotation.verdict, Annotation.seconds)
             .join(Annotation, Annotation.record_id == Record.id).where(*where))
    return pd.DataFrame(session.execute(query).all(), columns=["record", "question", "annotator", "verdict", "seconds"])


def first_verdicts(session: Session, *where) -> pd.DataFrame:
    """(record, annotator, first): the first verdict each annotator saved on each record (of those matching the
    conditions `where` on Record), among their current verdict, its earlier versions and the ones they withdrew."""
    current = (select(Annotation.record_id, Annotation.annotator, Annotation.verdict, Annotation.updated_at)
               .join(Record, Record.id == Annotation.record_id).where(*where))
    earlier = (select(Annotation.record_id, Annotation.annotator, AnnotationVersion.verdict,
                      AnnotationVersion.recorded_at)
               .join(AnnotationVersion, AnnotationVersion.annotation_id == Annotation.id)
               .join(Record, Record.id == Annotation.record_id).where(*where))
    withdrawn = (select(WithdrawnVerdict.record_id, WithdrawnVerdict.annotator, WithdrawnVerdict.verdict,
                        WithdrawnVerdict.recorded_at)
                 .join(Record, Record.id == WithdrawnVerdict.record_id).where(*where))
    rows = [row for query in (current, earlier, withdrawn) for row in session.execute(query)]
    table = pd.DataFrame(rows, columns=["record", "annotator", "first", "saved_at"]).sort_values("saved_at",
                                                                                                 kind="stable")
    return table.groupby(["record", "annotator"], as_index=False).first()[["record", "annotator", "first"]]


def blind_verdicts(session: Session, *where) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The current verdicts (as verdict_table, on the records matching `where`) with each verdict replaced by the
    annotator's first one on the record (see the module docstring), and the revised verdicts: [{"record",
    "annotator", "first", "current"}] where the two differ on a record that a colleague judged too."""
    table = _current_verdicts(session, *where).merge(first_verdicts(session, *where), on=["record", "annotator"],
                                                     how="left")
    table["first"] = table["first"].fillna(table["verdict"])
    judges = table.groupby("record")["annotator"].transform("count")
    revised = table[(table["first"] != table["verdict"]) & (judges >= 2)]
    revisions = [{"record": row.record, "annotator": row.annotator, "first": row.first, "current": row.verdict}
                 for row in revised.itertuples()]
    return table.drop(columns="verdict").rename(columns={"first": "verdict"}), revisions


def _defined(value: float) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 4)


def pair_agreement(table: pd.DataFrame) -> list[dict[str, Any]]:
    """For every pair of annotators, on the records both judged: n, percent agreement, Cohen's kappa."""
    from sklearn.metrics import cohen_kappa_score

    wide = table.pivot(index="record", columns="annotator", values="verdict")
    pairs = []
    for a, b in combinations(sorted(wide.columns), 2):
        both = wide[[a, b]].dropna()
        n = len(both)
        agree = float((both[a] == both[b]).mean()) if n else None
        kappa = None
        if n and both.stack().nunique() > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                kappa = _defined(cohen_kappa_score(both[a], both[b], labels=list(VERDICTS)))
        pairs.append({"a": a, "b": b, "n": n, "percent_agreement": None if agree is None else round(agree, 4),
                      "cohen_kappa": kappa})
    return pairs


def fleiss(table: pd.DataFrame) -> dict[str, Any]:
    """Fleiss' kappa over the records judged by every annotator (three or more of them)."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    wide = table.pivot(index="record", columns="annotator", values="verdict")
    if wide.shape[1] < 3:
        return {"value": None, "n": 0, "raters": int(wide.shape[1])}
    complete = wide.dropna()
    counts = np.array([[sum(1 for v in row if v == verdict) for verdict in VERDICTS] for row in complete.values])
    value = None
    if len(complete) and (counts.sum(axis=0) > 0).sum() > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = _defined(fleiss_kappa(counts, method="fleiss"))
    return {"value": value, "n": int(len(complete)), "raters": int(wide.shape[1])}


def krippendorff_alpha(table: pd.DataFrame) -> dict[str, Any]:
    """Krippendorff's alpha (nominal) over the records judged by at least two annotators."""
    import krippendorff

    wide = table.pivot(index="record", columns="annotator", values="verdict")
    wide = wide[wide.notna().sum(axis=1) >= 2]
    value = None
    if len(wide) and pd.unique(wide.values.ravel()[pd.notna(wide.values.ravel())]).size > 1:
        data = wide.T.apply(lambda column: column.map(_CODES)).astype(float).values
        value = _defined(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    return {"value": value, "n": int(len(wide))}


def suggestion_table(session: Session, run: str) -> pd.DataFrame:
    """One row per record of the run that has a suggested verdict: the suggestion and the model behind it."""
    query = select(Record.id, Record.suggestion).where(Record.run == run, Record.suggestion.is_not(None))
    rows = [(record_id, suggestion.get("verdict"), suggestion.get("model"))
            for record_id, suggestion in session.execute(query).all() if isinstance(suggestion, dict)]
    return pd.DataFrame(rows, columns=["record", "suggestion", "model"])


def suggestion_agreement(table: pd.DataFrame, suggestions: pd.DataFrame) -> list[dict[str, Any]]:
    """The suggestion as if it were one more annotator, paired with each annotator on the records both judged:
    n, percent agreement, Cohen's kappa (accept / reject), and the models behind those suggestions. The
    suggestion says accept or reject only, so an annotator's "correct" counts as reject: the answer was not
    acceptable as it stood."""
    from sklearn.metrics import cohen_kappa_score

    merged = table.merge(suggestions, on="record")
    result = []
    for name in sorted(set(table["annotator"])):
        rows = merged[merged["annotator"] == name]
        people = rows["verdict"].map(lambda verdict: "accept" if verdict == "accept" else "reject")
        n = len(rows)
        agree = float((people == rows["suggestion"]).mean()) if n else None
        kappa = None
        if n and len(set(people) | set(rows["suggestion"])) > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                kappa = _defined(cohen_kappa_score(people, rows["suggestion"], labels=["accept", "reject"]))
        result.append({"annotator": name, "n": n, "percent_agreement": None if agree is None else round(agree, 4),
                       "cohen_kappa": kappa, "models": sorted(set(rows["model"].dropna()))})
    return result


def agreement(table: pd.DataFrame) -> dict[str, Any]:
    return {"pairs": pair_agreement(table), "fleiss_kappa": fleiss(table), "krippendorff_alpha": krippendorff_alpha(table)}


def annotator_progress(session: Session, run: str, table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per annotator (by name) of the verdicts in `table`: done, assigned, median seconds and the verdict mix.
    "assigned" counts the records assigned to them once the run has assignments (annotators who have not started
    are listed too); until then every annotator is assigned the whole run."""
    assigned = assigned_counts(session, run)
    whole_run = None if assigned else session.scalar(select(func.count()).select_from(Record).where(Record.run == run))
    progress = {}
    for name in sorted(set(table["annotator"]) | set(assigned)):
        rows = table[table["annotator"] == name]
        seconds = [s for s in rows["seconds"] if s is not None and not pd.isna(s)]
        mix = rows["verdict"].value_counts()
        progress[name] = {"done": int(len(rows)), "assigned": int(assigned.get(name, 0) if assigned else whole_run),
                          "median_seconds": round(statistics.median(seconds), 1) if seconds else None,
                          "verdicts": {verdict: int(mix.get(verdict, 0)) for verdict in VERDICTS}}
    return progress


def run_report(session: Session, run: str) -> dict[str, Any]:
    """The figures of `cli.py report --json`: per annotator done / assigned / median seconds / verdict mix (see
    annotator_progress), and agreement overall and per question on first verdicts (blind_verdicts), the
    verdicts revised since (agreement["revised"]), and the suggested verdict's agreement with each annotator
    (agreement["suggestion"], see suggestion_agreement)."""
    table = verdict_table(session, run)
    blind, revised = blind_verdicts(session, Record.run == run)
    result = agreement(blind)
    result["per_question"] = {question: agreement(rows) for question, rows in blind.groupby("question")}
    result["suggestion"] = suggestion_agreement(table, suggestion_table(session, run))
    result["revised"] = revised
    return {"run": run, "annotators": annotator_progress(session, run, table), "agreement": result}


def progress_report(session: Session, *, actor: Principal, run: str) -> dict[str, Any]:
    """run_report as `actor` may see it: reviewers and admins see everything; an annotator sees only their own
    progress (no agreement: it would tell them how others judged). :raises NotFoundError: the run has no records."""
    if session.scalar(select(Record.id).where(Record.run == run).limit(1)) is None:
        raise NotFoundError(f"run {run!r} has no records")
    if actor.sees_everyone:
        return run_report(session, run)
    table = verdict_table(session, run)
    progress = annotator_progress(session, run, table[table["annotator"] == actor.name])
    return {"run": run, "annotators": {name: figures for name, figures in progress.items() if name == actor.name},
            "agreement": None}
