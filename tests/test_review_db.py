"""The review database on SQLite and PostgreSQL: records as snapshots, verdicts with history, conflicts, export."""

from __future__ import annotations

import io
import json
import threading

import pandas as pd
import pytest
from sqlalchemy import func, select

from configuration.settings import Settings
from loupe.qa import Answer
from review.annotations import record_verdict, undo_verdict
from review.errors import ConflictError, InvalidVerdictError, NotFoundError
from review.export import export_bytes
from review.models import Annotation, AnnotationVersion
from review.records import get_record, record_from_answer
from tests.conftest import ADMIN
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

SUPPORT = {"abstains": False, "sentences": [{"index": 0, "text": "Seeds were fixed.", "supported": True}]}


def make_answer(**changes) -> Answer:
    values = dict(
        question="How was randomness handled?", answer="Seeds were fixed to 42. [1]",
        generator={"kind": "extractive", "model": "extractive", "fallback_reason": "no weights"},
        passages=[
            {"id": "p#0", "doc_id": "p", "title": "Paper", "page": 1, "text": "All seeds were fixed to 42.",
             "score": 0.03, "ranks": {"bm25": 1, "dense": 2}},
            {"id": "p#1", "doc_id": "p", "title": "Paper", "page": 2, "text": "We used a GPU.", "score": 0.01,
             "ranks": {"bm25": None, "dense": 1}},
        ],
        prompt="PROMPT with passages", mode="hybrid", doc_ids=["p"], timings={"retrieval_ms": 5.0, "generation_ms": 9.0},
    )
    values.update(changes)
    return Answer(**values)


@pytest.fixture
def record_id(sessions, tmp_path):  # noqa: F811
    with sessions() as session:
        record = record_from_answer(session, answer=make_answer(), settings=Settings(data_dir=tmp_path), support=SUPPORT)
        return record.id


def test_record_is_a_full_snapshot(sessions, record_id):  # noqa: F811
    with sessions() as session:
        record = get_record(session, record_id=record_id)
    assert record.question == "How was randomness handled?"
    assert record.scope == ["p"] and record.doc_id == "p"
    assert record.passages[0]["ranks"] == {"bm25": 1, "dense": 2}
    assert record.passages[1]["ranks"]["bm25"] is None
    assert record.prompt == "PROMPT with passages"
    assert (record.generator_kind, record.generator_model, record.generator_note) == ("extractive", "extractive", "no weights")
    assert record.settings["mode"] == "hybrid" and record.settings["top_k"] == 5
    assert "{{ question }}" in record.settings["prompt_template"]
    assert record.support == SUPPORT
    assert record.created_at is not None


def test_verdict_changes_keep_history(sessions, record_id):  # noqa: F811
    with sessions() as session:
        first = record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="accept",
                               passage_marks={"0": "relevant", "1": "not_relevant"}, seconds=12.5)
        assert first.version == 1
        second = record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="correct",
                                corrected_answer="Seeds were fixed to 42 in all runs.", expected_version=1)
        third = record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="reject", reason="wrong",
                               comment="too vague", expected_version=2,
                               evidence=[{"id": "p#1", "text": "We used a GPU."}])
        assert third.version == 3
    with sessions() as session:
        annotations = session.scalars(select(Annotation)).all()
        assert len(annotations) == 1
        current = annotations[0]
        assert (current.verdict, current.reason, current.comment) == ("reject", "wrong", "too vague")
        assert current.corrected_answer is None and current.evidence == [{"id": "p#1", "text": "We used a GPU."}]
        history = session.scalars(select(AnnotationVersion).order_by(AnnotationVersion.version)).all()
        assert [(h.version, h.verdict) for h in history] == [(1, "accept"), (2, "correct")]
        assert history[0].passage_marks == {"0": "relevant", "1": "not_relevant"} and history[0].seconds == 12.5
        assert history[1].corrected_answer == "Seeds were fixed to 42 in all runs."
    assert second is third  # one row per annotator, updated in place; earlier states are in the history


def test_stale_version_is_a_conflict_and_writes_nothing(sessions, record_id):  # noqa: F811
    with sessions() as session:
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="accept")
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="reject", reason="other", expected_version=1)
        with pytest.raises(ConflictError, match="newer verdict"):
            record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="accept", expected_version=1)
        with pytest.raises(ConflictError, match="another tab"):  # a tab opened before any verdict existed
            record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="accept", expected_version=None)
    with sessions() as session:
        assert session.scalar(select(Annotation.verdict)) == "reject"
        assert session.scalar(select(func.count()).select_from(AnnotationVersion)) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"verdict": "maybe"}, "verdict must be one of accept, correct, reject"),
        ({"verdict": "correct"}, "needs the corrected answer"),
        ({"verdict": "correct", "corrected_answer": "Seeds were fixed to 42. [1]"}, "same as the answer"),
        ({"verdict": "reject"}, "needs a reason"),
        ({"verdict": "reject", "reason": "because"}, "needs a reason"),
        ({"verdict": "accept", "passage_marks": {"7": "relevant"}}, "passage mark 7"),
        ({"verdict": "accept", "annotator": " "}, "annotator name is required"),
    ],
)
def test_invalid_verdicts_store_nothing(sessions, record_id, fields, message):  # noqa: F811
    values = {"annotator": "ana", **fields}
    with sessions() as session:
        with pytest.raises(InvalidVerdictError, match=message):
            record_verdict(session, actor=ADMIN, record_id=record_id, **values)
        assert session.scalar(select(func.count()).select_from(Annotation)) == 0


def test_unknown_record(sessions):  # noqa: F811
    with sessions() as session, pytest.raises(NotFoundError, match="no record 'nope'"):
        record_verdict(session, actor=ADMIN, record_id="nope", annotator="ana", verdict="accept")


def test_two_annotators_at_once_never_overwrite(sessions, record_id):  # noqa: F811
    errors = []

    def review(name: str) -> None:
        try:
            for verdict in ("accept", "reject", "accept"):
                with sessions() as session:
                    current = session.scalar(select(Annotation).where(Annotation.annotator == name))
                    record_verdict(session, actor=ADMIN, record_id=record_id, annotator=name, verdict=verdict, reason="other",
                                   expected_version=current.version if current else None)
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=review, args=(name,)) for name in ("ana", "ben", "cy")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:  # three annotators, three verdicts each: nothing lost, earlier ones in the history
        assert sorted(session.scalars(select(Annotation.annotator))) == ["ana", "ben", "cy"]
        assert set(session.scalars(select(Annotation.version))) == {3}
        assert session.scalar(select(func.count()).select_from(AnnotationVersion)) == 6


def test_export_formats(sessions, record_id, tmp_path):  # noqa: F811
    with sessions() as session:
        record_from_answer(session, answer=make_answer(question="Unreviewed?"), settings=Settings(data_dir=tmp_path))
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="correct", corrected_answer="Fixed seeds.")
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ben", verdict="accept")
        data, count = export_bytes(session, "jsonl", actor=ADMIN)
        assert count == 2
        rows = [json.loads(line) for line in data.decode().splitlines()]
        reviewed = next(row for row in rows if row["record_id"] == record_id)
        assert [a["annotator"] for a in reviewed["annotations"]] == ["ana", "ben"]
        assert reviewed["annotations"][0]["corrected_answer"] == "Fixed seeds."
        assert set(reviewed["passages"][0]) == {"text", "doc_id", "title", "page", "score", "ranks"}
        assert reviewed["final_verdict"] is None and reviewed["generator"]["kind"] == "extractive"
        assert next(row for row in rows if row["question"] == "Unreviewed?")["annotations"] == []
        csv = pd.read_csv(io.BytesIO(export_bytes(session, "csv", actor=ADMIN)[0]))
        assert len(csv) == 3  # two annotations + one unannotated record
        assert csv["verdict"].isna().sum() == 1
        parquet = pd.read_parquet(io.BytesIO(export_bytes(session, "parquet", actor=ADMIN)[0]))
        assert sorted(parquet["annotator"].dropna()) == ["ana", "ben"]
        with pytest.raises(ValueError, match="format must be one of"):
            export_bytes(session, "xml", actor=ADMIN)


def test_export_keeps_changed_and_withdrawn_verdicts(sessions, record_id):  # noqa: F811
    with sessions() as session:
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="accept")
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="reject", reason="wrong")
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ben", verdict="correct", corrected_answer="42.")
        undo_verdict(session, actor=ADMIN, record_id=record_id, annotator="ben")  # a first verdict: withdrawn
        row = json.loads(export_bytes(session, "jsonl", actor=ADMIN)[0])
        csv = pd.read_csv(io.BytesIO(export_bytes(session, "csv", actor=ADMIN)[0]))
    (ana,) = row["annotations"]
    assert (ana["verdict"], ana["reason"]) == ("reject", "wrong")
    assert [(old["version"], old["verdict"]) for old in ana["history"]] == [(1, "accept")]
    assert ana["history"][0]["recorded_at"] <= ana["updated_at"]
    (ben,) = row["withdrawn"]
    assert (ben["annotator"], ben["verdict"], ben["corrected_answer"], ben["withdrawn_by"]) == ("ben", "correct", "42.", ADMIN.name)
    assert len(csv) == 1, "a withdrawn verdict is no annotation: the record has one row, ana's"
    assert [old["verdict"] for old in json.loads(csv["history"][0])] == ["accept"]
    assert json.loads(csv["withdrawn"][0])[0]["verdict"] == "correct"


def test_jsonl_export_loads_with_datasets(sessions, record_id, tmp_path):  # noqa: F811
    import os

    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    with sessions() as session:
        record_from_answer(session, answer=make_answer(question="Second?"), settings=Settings(data_dir=tmp_path),
                           support={"abstains": True, "sentences": []})
        record_verdict(session, actor=ADMIN, record_id=record_id, annotator="ana", verdict="reject", reason="wrong",
                       passage_marks={"1": "not_relevant"}, evidence=[{"id": "p#1", "text": "We used a GPU."}])
        data, _ = export_bytes(session, "jsonl", actor=ADMIN)
    path = tmp_path / "export.jsonl"
    path.write_bytes(data)
    dataset = load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
    assert dataset.num_rows == 2
    assert sorted(dataset["question"]) == ["How was randomness handled?", "Second?"]
    reviewed = dataset.filter(lambda row: row["record_id"] == record_id)[0]
    assert reviewed["annotations"][0]["verdict"] == "reject"
    assert reviewed["passages"][0]["ranks"]["bm25"] == 1


def test_migrations_match_the_models(db_url):  # noqa: F811
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from review.db import make_engine, migrate
    from review.models import Base

    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)  # upgrading an up-to-date database changes nothing
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
