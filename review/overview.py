"""Verdict counts per run, question and document, for the Overview page and run comparisons."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from review.access import Principal, readable_records, require_viewing_as
from review.models import Record
from review.queue import STATUSES, judged_by, natural_key, status_column

COUNT_COLUMNS = [status for status in STATUSES]


def status_counts(session: Session, runs: list[str], annotator: str, *, actor: Principal) -> pd.DataFrame:
    """One row per (run, question, document, status) with the number of records, as judged by `annotator`
    (an annotator counts only their own records, by their own verdicts), or with review.queue.EVERYONE by everyone's: a
    record is reviewed when anyone judged it, its status the most recent verdict (review.queue.judged_by)."""
    require_viewing_as(actor, annotator)
    mine, joined = judged_by(annotator)
    status = status_column(mine).label("status")
    query = (
        select(Record.run, Record.question_id, Record.question, Record.doc_id, status, func.count().label("records"))
        .outerjoin(mine, joined)
        .where(Record.run.in_(runs), *readable_records(actor))
        .group_by(Record.run, Record.question_id, Record.question, Record.doc_id, status)
    )
    rows = session.execute(query).all()
    return pd.DataFrame(rows, columns=["run", "question_id", "question", "doc_id", "status", "records"])


def question_order(counts: pd.DataFrame) -> list[str]:
    """The questions of `counts` in the natural order of their ids (Q1, Q2, … Q10), those without one last."""
    if counts.empty:
        return []
    ids = counts.groupby("question", dropna=True)["question_id"].min()
    return sorted(ids.index, key=lambda question: (natural_key(_or_none(ids[question])), natural_key(question)))


def question_chart(counts: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Records per (question, status) for a bar chart, each question labelled by its id (else the start of its
    text), and the labels in the natural order of the questions (`question_order`)."""
    chart = counts.groupby(["question_id", "question", "status"], dropna=False, as_index=False)["records"].sum()
    chart["label"] = chart["question_id"].fillna(chart["question"].str.slice(0, 40))
    rank = {question: position for position, question in enumerate(question_order(counts))}
    chart["rank"] = chart["question"].map(rank).fillna(len(rank))
    firsts = chart.dropna(subset=["label"]).groupby("label")["rank"].min()
    labels = sorted(firsts.index, key=lambda label: (firsts[label], natural_key(label)))
    return chart.drop(columns="rank"), labels


def _or_none(value):
    return None if pd.isna(value) else value


def by(counts: pd.DataFrame, key: str) -> pd.DataFrame:
    """Records per status for each value of `key` ("question" or "doc_id"), with the acceptance rate:
    accepted / reviewed (a corrected answer was not acceptable as it stood); questions in the natural order of
    their ids (Q1, Q2, … Q10), documents in the natural order of theirs."""
    if counts.empty:
        return pd.DataFrame(columns=[key, *COUNT_COLUMNS, "reviewed", "acceptance"])
    table = counts.pivot_table(index=key, columns="status", values="records", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=COUNT_COLUMNS, fill_value=0)
    rank = {value: position for position, value in enumerate(question_order(counts))} if key == "question" else {}
    table = table.loc[sorted(table.index, key=lambda value: (rank.get(value, len(rank)), natural_key(value)))]
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
    order = {question: position for position, question in enumerate(question_order(common))}
    merged = merged.sort_values("question", key=lambda column: column.map(order), kind="stable").reset_index(drop=True)
    merged["difference"] = (merged[f"acceptance ({second})"] - merged[f"acceptance ({first})"]).round(3)
    return merged
