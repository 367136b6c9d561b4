"""Batch runs: every question of a set asked of every selected document, retrieval scoped to that document.

Each answer is committed as a record of the run as soon as it exists, so a run that is cancelled or crashes
resumes where it stopped: records already answered are not asked again. A run keeps the settings it started
with; resuming it under other settings is refused, so that all its records are comparable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from configuration.settings import Settings
from loupe.qa import Asker
from review.access import Principal, require_role
from review.asking import ask_and_record
from review.errors import ReviewError
from review.models import Record, Run, utcnow
from review.record_files import Question
from review.records import record_key, settings_snapshot

# (done, total, current item, seconds left or None): the caller draws the progress bar or line.
BatchProgress = Callable[[int, int, str, float | None], None]


@dataclass
class BatchReport:
    run: str
    total: int
    already_done: int = 0
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    cancelled: bool = False
    degenerate: int = 0  # answers of the model replaced by the extractive answer (loupe.degeneration)

    @property
    def remaining(self) -> int:
        return self.total - self.already_done - self.answered

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "finished" if not self.remaining else "stopped"
        replaced = (f"; {self.degenerate} of them by the extractive answerer, the model's output being degenerate"
                    if self.degenerate else "")
        return (f"run {self.run} {state}: {self.answered} answered now, {self.already_done} already done, "
                f"{len(self.failures)} failed, {self.remaining} still to do (of {self.total}){replaced}")


def batch_external_id(doc_id: str, question: Question) -> str:
    return f"{doc_id}:{question.id}"


def run_settings(settings: Settings, asker: Asker, mode: str, top_k: int) -> dict:
    """What a run's records have in common: retrieval mode and top-k, the generator, the prompt template."""
    return settings_snapshot(settings, mode=mode, top_k=top_k, generator_kind=asker.generator.kind,
                             generator_model=asker.generator.model)


def open_run(sessions, name: str, questions: list[Question], doc_ids: list[str], snapshot: dict) -> Run:
    """Create the run, or return it to resume it. :raises ReviewError: it exists with other settings."""
    if not name.strip():
        raise ReviewError("the run name is empty")
    with sessions() as session:
        run = session.get(Run, name)
        if run is None:
            run = Run(name=name, kind="batch", settings=snapshot,
                      questions=[{"id": q.id, "question": q.text} for q in questions], doc_ids=list(doc_ids))
            session.add(run)
        else:
            differs = sorted(key for key in set(snapshot) | set(run.settings)
                             if snapshot.get(key) != run.settings.get(key))
            if run.kind != "batch" or differs:
                why = f"it is an {run.kind} run" if run.kind != "batch" else f"it used other settings ({', '.join(differs)})"
                raise ReviewError(f"run {name!r} exists and {why}: resume it with the same settings or choose "
                                  "another run name")
            run.updated_at = utcnow()
        session.commit()
        return run


@dataclass
class BatchRunSummary:
    """A batch run as its progress bar shows it."""

    name: str
    total: int
    answered: int
    settings: dict


def batch_runs(sessions) -> list[BatchRunSummary]:
    """Every batch run, most recently started or resumed first, with how far it got."""
    with sessions() as session:
        runs = list(session.scalars(select(Run).where(Run.kind == "batch").order_by(Run.updated_at.desc())))
    return [BatchRunSummary(run.name, len(run.questions) * len(run.doc_ids), len(answered_ids(sessions, run.name)),
                            dict(run.settings)) for run in runs]


def answered_ids(sessions, run: str) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Record.external_id).where(Record.run == run)))


def run_batch(
    sessions, asker: Asker, settings: Settings, *, actor: Principal, run: str, questions: list[Question],
    doc_ids: list[str], mode: str, top_k: int, progress: BatchProgress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> BatchReport:
    """Answer every (document, question) pair of the run that has no record yet. Admins only."""
    require_role(actor, "admin", "start batch runs")
    if not questions or not doc_ids:
        raise ReviewError("a batch needs at least one question and one document")
    open_run(sessions, run, questions, doc_ids, run_settings(settings, asker, mode, top_k))
    done_ids = answered_ids(sessions, run)
    items = [(doc_id, question) for doc_id in doc_ids for question in questions]
    report = BatchReport(run=run, total=len(items))
    todo = [(d, q) for d, q in items if batch_external_id(d, q) not in done_ids]
    report.already_done = len(items) - len(todo)
    started = time.perf_counter()
    for position, (doc_id, question) in enumerate(todo, start=1):
        if should_stop():
            report.cancelled = True
            break
        external_id = batch_external_id(doc_id, question)
        try:
            record = ask_and_record(sessions, asker, actor=actor, question=question.text, doc_ids=[doc_id],
                                    mode=mode, top_k=top_k, analyse=False, run=run,
                                    record_id=record_key(run, external_id), external_id=external_id,
                                    question_id=question.id, created_by=None)
            report.answered += 1
            report.degenerate += replaced_as_degenerate(record)
        except Exception as error:  # one failed question must not end a long run; it is retried on resume
            report.failures.append(f"{external_id}: {type(error).__name__}: {error}")
        if progress:
            elapsed = time.perf_counter() - started
            left = elapsed / position * (len(todo) - position)
            progress(report.already_done + position, report.total, external_id, left)
    return report


def replaced_as_degenerate(record: Record) -> bool:
    """Whether the record's answer is the extractive one standing in for a degenerate output of the model."""
    return record.generator_kind == "extractive" and bool((record.meta or {}).get("raw_output"))
