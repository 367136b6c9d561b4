"""Typed SQLAlchemy models of the review database. Schema changes go through Alembic (review/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

VERDICTS = ("accept", "correct", "reject")
REJECT_REASONS = {
    "unsupported": "unsupported by the passages",
    "wrong": "wrong or incomplete",
    "retrieval_missed": "retrieval missed the evidence",
    "should_abstain": "should have abstained",
    "other": "other",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Record(Base):
    """A snapshot of one answered question: enough to judge it even after the corpus or pipeline changed."""

    __tablename__ = "records"

    id: Mapped[str] = mapped_column(String(300), primary_key=True)
    # The id the record has where it came from (a file stem, a JSONL id); a record is found by (run, external_id),
    # unique together (uq_records_run_external_id); `id` is derived from the pair (review.records.record_key).
    external_id: Mapped[str | None] = mapped_column(String(300), index=True)
    run: Mapped[str | None] = mapped_column(String(200), index=True)
    doc_id: Mapped[str | None] = mapped_column(String(300), index=True)
    question_id: Mapped[str | None] = mapped_column(String(200), index=True)  # e.g. "CQ7": same question, many docs
    question: Mapped[str] = mapped_column(Text)
    scope: Mapped[list[Any]] = mapped_column(default=list)
    passages: Mapped[list[Any]] = mapped_column(default=list)
    prompt: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    generator_kind: Mapped[str] = mapped_column(String(50))
    generator_model: Mapped[str] = mapped_column(String(300))
    generator_note: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    support: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Kept in step with `support` so that the queue filters and sorts on them in SQL.
    unsupported_count: Mapped[int | None] = mapped_column(Integer, index=True)
    abstains: Mapped[bool | None] = mapped_column(Boolean)
    # The suggested verdict (loupe.suggestion: verdict, p_accept, reasons, model), computed with the support map,
    # and 1 - p_accept, kept in step for the queue's "riskiest first" and its filters.
    suggestion: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    p_reject: Mapped[float | None] = mapped_column(Float, index=True)
    source: Mapped[str | None] = mapped_column(Text)  # the imported file (and line) the record came from
    source_hash: Mapped[str | None] = mapped_column(String(64))  # of the parsed content: re-imports change nothing
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    final_verdict: Mapped[str | None] = mapped_column(String(20))  # kept in step with the adjudication
    created_by: Mapped[str | None] = mapped_column(String(200), index=True)  # who asked it (Ask page); None: imported
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    annotations: Mapped[list[Annotation]] = relationship(
        back_populates="record", cascade="all, delete-orphan", order_by="Annotation.id"
    )
    # first verdicts taken back with Undo; read with the record (export), written by review.annotations
    withdrawn: Mapped[list[WithdrawnVerdict]] = relationship(
        viewonly=True, order_by="WithdrawnVerdict.withdrawn_at"
    )


class Run(Base):
    """A named set of records: an import or a batch of questions over documents, with the settings it used."""

    __tablename__ = "runs"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # "import" or "batch"
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    questions: Mapped[list[Any]] = mapped_column(default=list)  # batch: [{"id", "question"}]
    doc_ids: Mapped[list[Any]] = mapped_column(default=list)  # batch: the selected documents
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VerdictFields:
    """What a reviewer decided: shared by the current annotation and each of its earlier versions."""

    annotator: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(20))
    corrected_answer: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(50))
    comment: Mapped[str | None] = mapped_column(Text)
    passage_marks: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    seconds: Mapped[float | None] = mapped_column()
    # the annotator took the suggested verdict (loupe.suggestion) as their own with one key
    suggested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class VersionedRow:
    """The current state of something saved again and again: its version (checked on every update, so two saves
    from the same state cannot both win) and when it was first and last saved."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    history_class: ClassVar[str]  # the HistoryRow model of its superseded states
    history_backref: ClassVar[str]  # the name of that model's relationship back to this one

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}

    @declared_attr
    def history(cls) -> Mapped[list[Any]]:
        return relationship(cls.history_class, back_populates=cls.history_backref, cascade="all, delete-orphan",
                            order_by=f"{cls.history_class}.version")


class HistoryRow:
    """A superseded state of a VersionedRow: the version it had and when it was saved."""

    parent_key: ClassVar[str]  # the column that points at the VersionedRow; one row per (parent, version)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.parent_key.removesuffix("_id")
        return (UniqueConstraint(cls.parent_key, "version", name=f"uq_{name}_version"),)


class Annotation(VersionedRow, VerdictFields, Base):
    """One reviewer's current verdict on one record; earlier versions live in AnnotationVersion."""

    __tablename__ = "annotations"
    __table_args__ = (UniqueConstraint("record_id", "annotator", name="uq_annotation_record_annotator"),)

    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)

    history_class, history_backref = "AnnotationVersion", "annotation"

    record: Mapped[Record] = relationship(back_populates="annotations")


class AnnotationVersion(HistoryRow, VerdictFields, Base):
    """A superseded state of an annotation, kept when the verdict is changed: verdicts are never overwritten."""

    __tablename__ = "annotation_versions"
    parent_key = "annotation_id"

    annotation_id: Mapped[int] = mapped_column(ForeignKey("annotations.id", ondelete="CASCADE"), index=True)

    annotation: Mapped[Annotation] = relationship(back_populates="history")


class WithdrawnVerdict(VerdictFields, Base):
    """A first verdict taken back with Undo: the record is unreviewed by its annotator again, and what they had
    decided (all of it, with its version and when it was saved) is kept here, never deleted."""

    __tablename__ = "withdrawn_verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # when the verdict was saved
    withdrawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    withdrawn_by: Mapped[str] = mapped_column(String(200))


class User(Base):
    """A person who logs in (LOUPE_AUTH=password): their role decides what they may read and write."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(300), unique=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # bumped when the password is set or the account disabled: a session logged in under an earlier one is ended
    credentials_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginAttempt(Base):
    """Every login attempt, kept for the log and for rate-limiting failures across processes."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    client: Mapped[str | None] = mapped_column(String(100))  # the browser's address, when Streamlit knows it
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Assignment(Base):
    """A record to be judged by an annotator (each record of an assigned run goes to k annotators)."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("record_id", "annotator", name="uq_assignment_record_annotator"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run: Mapped[str] = mapped_column(String(200))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    annotator: Mapped[str] = mapped_column(String(200))
    assigned_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdjudicationFields:
    """A reviewer's settlement of a disagreement: shared by the current adjudication and its earlier versions."""

    adjudicator: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(20))
    final_answer: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)


class Adjudication(VersionedRow, AdjudicationFields, Base):
    """The final verdict and answer of a record on which annotators disagreed; one per record, versioned."""

    __tablename__ = "adjudications"

    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), unique=True)

    history_class, history_backref = "AdjudicationVersion", "adjudication"


class AdjudicationVersion(HistoryRow, AdjudicationFields, Base):
    """A superseded state of an adjudication: who decided what, and when."""

    __tablename__ = "adjudication_versions"
    parent_key = "adjudication_id"

    adjudication_id: Mapped[int] = mapped_column(ForeignKey("adjudications.id", ondelete="CASCADE"), index=True)

    adjudication: Mapped[Adjudication] = relationship(back_populates="history")


class Sample(Base):
    """A named design for reviewing part of a run (review.sampling): how its records were chosen, kept so that an
    estimate from its verdicts can weight each record by the chance it had of being chosen."""

    __tablename__ = "samples"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    run: Mapped[str] = mapped_column(String(200), index=True)
    method: Mapped[str] = mapped_column(String(20))  # "active" or "uniform"
    seed: Mapped[int] = mapped_column(Integer)
    budget: Mapped[int] = mapped_column(Integer)
    population: Mapped[int] = mapped_column(Integer)  # records of the run when it was drawn
    suggester_model: Mapped[str | None] = mapped_column(String(300))  # whose p_accept set the probabilities
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SampleUnit(Base):
    """One record of a run when a sample was drawn: its inclusion probability and whether it was chosen. Every
    record of the population is kept, so the design is known whole even after records are deleted or re-imported
    (no foreign key: a deleted record's unit stays, and the estimate says what was lost)."""

    __tablename__ = "sample_units"
    __table_args__ = (UniqueConstraint("sample", "record_id", name="uq_sample_unit_record"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample: Mapped[str] = mapped_column(ForeignKey("samples.name", ondelete="CASCADE"), index=True)
    record_id: Mapped[str] = mapped_column(String(300))
    external_id: Mapped[str | None] = mapped_column(String(300))
    source_hash: Mapped[str | None] = mapped_column(String(64))  # the record's content when drawn
    probability: Mapped[float] = mapped_column(Float)
    selected: Mapped[bool] = mapped_column(Boolean)
    position: Mapped[int | None] = mapped_column(Integer)  # order of review among the selected


Index("ix_records_created_at", Record.created_at)
Index("uq_records_run_external_id", Record.run, Record.external_id, unique=True)
Index("ix_annotations_annotator_verdict", Annotation.annotator, Annotation.verdict)
Index("ix_assignments_annotator_run", Assignment.annotator, Assignment.run)
Index("ix_login_attempts_name_at", LoginAttempt.name, LoginAttempt.at)
