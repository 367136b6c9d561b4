"""Verdict counts per run, question and document, for the Overview page and run comparisons."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from review.access import Principal, readable_records, require_viewing_as
from review.models import Annotation, Record
from review.queue import STATUSES, status_column

COUNT_COLUMNS = [status for status in STATUSES]


def status_counts(session: Session, runs: list[str], annotator: str, *, actor: Principal) -> pd.DataFrame:
    """One row per (run, question, document, status) with the number of records, as judged by `annotator`
    (an annotator counts only their own records, by their own verdicts)."""
    require_viewing_as(actor, annotator)
    mine = Annotation.__table__.alias("mine")
    status = status_column(mine).label("status")
    query = (
        select(Record.run, Record.question_id, Record.question, Record.doc_id, status, func.count().label("records"))
        .outerjoin(mine, and_(mine.c.record_id == Record.id, mine.c.annotator == annotator))
        .where(Record.run.in_(runs), *readable_records(actor))
        .group_by(Record.run, Record.question_id, Record.question, Record.doc_id, status)
    )
    rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=["run", "question_id", "question", "doc_id", "status", "records"])


def by(counts: pd.DataFrame, key: str) -> pd.DataFrame:
    """Records per status for each value of `key` ("question" or "doc_id"), with the acceptance rate:
    accepted / reviewed (a corrected answer was not acceptable as it stood)."""
    if counts.empty:
        return pd.DataFrame(columns=[key, *COUNT_COLUMNS, "reviewed", "acceptance"])
    table = counts.pivot_table(index=key, columns="status", values="records", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=COUNT_COLUMNS, fill_value=0)
    table["reviewed"] = table["accepted"] + table["corrected"] + table["rejected"]
    table["acceptance"] = (table["accepted"] / table["reviewed"].where(table["reviewed"] > 0)).round(3)
    return table.reset_index()


def compare_runs(session: Session, first: str, second: str, annotator: str, *, actor: Principal) -> pd.DataFrame:
    """Acceptance per question in two runs, on the questions and documents both runs cover."""
    counts = status_counts(session, [first, second], annotator, actor=actor)
    pairs = {run: set(zip(group["question"], group["doc_id"])) for run, group in counts.groupby("run")}
    shared = pairs.get(first, set()) & pairs.get(second, set())
    common = counts[[(q, d) in shared for q, d in zip(counts["question"], counts["doc_id"])]]
    tables = []
    for run in (first, second):
        table = by(common[common["run"] == run], "question")[["question", "reviewed", "acceptance"]]
        tables.append(table.rename(columns={"reviewed": f"reviewed ({run})", "acceptance": f"acceptance ({run})"}))
    merged = tables[0].merge(tables[1], on="question", how="outer")
    merged["difference"] = (merged[f"acceptance ({second})"] - merged[f"acceptance ({first})"]).round(3)
    return merged
