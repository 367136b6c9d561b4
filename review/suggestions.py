"""Retraining the verdict suggester on a team's own verdicts: one annotator's verdicts on one run, from the
review database (`cli.py train-suggester --run NAME --annotator NAME`).

The records' support maps are computed first where they are missing (review.analysis). "accept" is a positive
example; "reject" and "correct" (not acceptable as it stood) are negative ones. Folds hold whole documents
(records without a document are each their own group). The model is of the shipped kind (the logistic regression
and boosted trees, loupe.suggester_training.TREES) and is written as JSON (loupe.suggestion), by default
to `<data dir>/models/suggester.json`, where it replaces the shipped model; `cli.py analyze` then suggests again
for every record, since the suggestions are versioned by the model's name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from configuration.settings import Settings
from loupe.progress import ProgressCallback
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
from loupe.suggestion import FEATURES, LOCAL_MODEL, MODEL_FEATURES, feature_vector, features
from review.errors import NotFoundError
from review.models import Annotation, Record
from review.records import get_record


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "run"


def training_rows(sessions, settings: Settings, *, run: str, annotator: str,
                  progress: ProgressCallback | None = None) -> list[dict[str, Any]]:
    """One row per record of `run` judged by `annotator`: id, group (document), verdict, features.

    :raises NotFoundError: the annotator judged no record of the run."""
    from review.analysis import ensure_support

    with sessions() as session:
        query = (select(Record.id, Annotation.verdict).join(Annotation, Annotation.record_id == Record.id)
                 .where(Record.run == run, Annotation.annotator == annotator).order_by(Record.id))
        judged = list(session.execute(query).all())
    if not judged:
        raise NotFoundError(f"{annotator!r} has judged no record of run {run!r}")
    rows = []
    for done, (record_id, verdict) in enumerate(judged, start=1):
        with sessions() as session:
            record = get_record(session, record_id=record_id)
        if record.support is None:
            record = ensure_support(sessions, settings, record)
        values = features(record.support, record.passages, record.answer, record.question)
        rows.append({"id": record.id, "group": record.doc_id or record.id,
                     "verdict": "accept" if verdict == "accept" else "reject", "question": record.question,
                     **{name: round(values[name], 6) for name in FEATURES}})
        if progress:
            progress(done, len(judged), record_id)
    return rows


def train_from_reviews(sessions, settings: Settings, *, run: str, annotator: str, out: Path | None = None,
                       folds: int = DEFAULT_FOLDS, c: float = DEFAULT_C,
                       progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Train on `annotator`'s verdicts on `run`, measure it with documents held out, and write the model file
    (`out`, default `<data dir>/models/suggester.json`). Returns the model's dict (name, training, figures) and
    `path`. :raises NotFoundError: no verdicts. :raises loupe.suggester_training.TrainingError: too few."""
    rows = training_rows(sessions, settings, run=run, annotator=annotator, progress=progress)
    matrix = np.array([feature_vector(row, MODEL_FEATURES) for row in rows])
    y = np.array([row["verdict"] == "accept" for row in rows], dtype=int)
    groups, questions = [row["group"] for row in rows], [row["question"] for row in rows]
    p_accept, thresholds = grouped_cross_validation(matrix, y, groups, c=c, folds=folds, trees=TREES,
                                                    questions=questions)
    digest = table_hash(rows)
    fitted = fit(matrix, y, groups, c=c, folds=folds, trees=TREES, questions=questions)
    model = {
        "name": model_name(_slug(f"{run}-{annotator}"), digest, fitted["kind"]),
        **fitted,
        "training": {"data": f"verdicts of {annotator} on run {run} (review database)", "run": run, "sha256": digest,
                     "rows": len(rows), "accepted": int(y.sum()), "documents": len(set(groups)),
                     "support_model": settings.embedding_model, "trained_at": datetime.now(UTC).date().isoformat(),
                     "script": "cli.py train-suggester"},
        "cross_validation": {"method": f"GroupKFold({folds}) by document; scaler, regression, trees, "
                                       "question priors and calibration refitted on the other documents for each fold",
                             "pooled": figures(y, p_accept, thresholds)},
    }
    path = Path(out) if out is not None else settings.data_dir / LOCAL_MODEL
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(model_json(model), encoding="utf-8")
    temporary.replace(path)
    return {**model, "path": str(path)}
