"""Import RAG outputs made elsewhere: record files and prior verdicts, from files, folders and zip archives.

Idempotent: a record is identified by its run and its id in the source (two columns, unique together), and its
parsed content is hashed, so importing the same files again changes nothing; records are inserted with "on conflict
do nothing", so two imports of the same run at once store each record once. A changed file replaces its record
unless someone already reviewed it (then the reviewed snapshot is kept and the file is reported). Files that cannot
be parsed are listed with the reason and line; the rest proceed. Support maps are not computed here (see
review/analysis.py): import stays fast.

Dirty and hostile input: stray control characters (a NUL where PDF extraction lost a ligature) in otherwise valid
UTF-8 text are replaced by U+FFFD and counted in the summary (review/record_files.py); binary files are refused.
Each member of a zip archive is its own item: an encrypted or corrupt member (bad CRC), or one that expands beyond
the limits (`import_max_member_mb`, `import_max_archive_mb` in configuration/settings.py: checked against the zip's
header before reading, and enforced while reading in case the header lies), is reported as
`archive.zip:member: reason` and the other members proceed.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from configuration.settings import Settings, load_settings
from loupe.progress import ProgressCallback
from review.access import Principal, require_role
from review.annotations import record_verdict
from review.context_chunks import ChunkLimits
from review.errors import ReviewError
from review.models import Annotation, Record, Run, utcnow
from review.record_files import (
    ParsedRecord,
    Question,
    RecordParseError,
    decode_text_counted,
    iter_jsonl,
    parse_jsonl_record,
    parse_text_record,
    question_id_for,
)
from review.records import fallback_record_key, record_key
from review.verdict_files import (
    VerdictRow,
    is_verdict_csv,
    is_verdict_jsonl,
    parse_verdict_csv,
    parse_verdict_jsonl,
)
from review.versioned import UNCHECKED

RECORD_SUFFIXES = (".txt", ".jsonl")
BATCH = 500
MB = 1024 * 1024
READ_CHUNK = MB  # zip members are read this much at a time, so that the size limit is enforced as they expand


@dataclass(frozen=True)
class ImportLimits:
    """How far zip archives may expand: one member, and all the members of one archive together (bytes)."""

    max_member_bytes: int
    max_archive_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportLimits:
        return cls(settings.import_max_member_mb * MB, settings.import_max_archive_mb * MB)


@dataclass(frozen=True)
class ImportProblem:
    """A file, or a line of one, that was not imported, and why."""

    source: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.source}{f':{self.line}' if self.line else ''}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did: counts per outcome, and every file or row it could not use."""

    run: str
    records: Counter = field(default_factory=Counter)  # added, replaced, unchanged, kept_reviewed
    verdicts: Counter = field(default_factory=Counter)  # added, changed, unchanged, blank, unknown_record
    failures: list[ImportProblem] = field(default_factory=list)
    skipped: list[ImportProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unknown_record_ids: list[str] = field(default_factory=list)
    replaced_characters: Counter = field(default_factory=Counter)  # origin → stray control characters replaced
    seconds: float = 0.0

    @property
    def imported(self) -> int:
        return sum(self.records.values()) + sum(self.verdicts[k] for k in ("added", "changed", "unchanged"))

    @property
    def exit_code(self) -> int:
        """0: everything imported; 1: some files or rows failed, the rest imported; 2: nothing could be imported."""
        if not self.failures:
            return 0 if self.imported or not self.skipped else 2
        return 1 if self.imported else 2

    def summary(self) -> str:
        r, v = self.records, self.verdicts
        lines = [
            f"run {self.run}: records {r['added']} added, {r['replaced']} replaced, {r['unchanged']} unchanged, "
            f"{r['kept_reviewed']} kept (already reviewed, the file differs); {len(self.failures)} failed; "
            f"{len(self.skipped)} skipped; {self.seconds:.1f} s",
        ]
        if self.replaced_characters:
            lines.append(f"stray control characters (such as NUL): {sum(self.replaced_characters.values())} replaced "
                         f"by U+FFFD in {len(self.replaced_characters)} records or files")
        if sum(v.values()):
            lines.append(
                f"verdicts: {v['added']} added, {v['changed']} changed, {v['unchanged']} unchanged, {v['blank']} blank "
                f"(skipped), {v['unknown_record']} naming records not in this run"
            )
        return "\n".join(lines + self.notes)


@dataclass(frozen=True)
class SourceFile:
    """A file to import: from disk or from inside a zip archive."""

    name: str  # shown in messages
    path: PurePosixPath  # for the suffix, stem and parent folder
    read: Callable[[], bytes]


def default_run_name(paths: Iterable[str | Path]) -> str:
    """The first path's name without its suffix: `records/mixtral_8_22b` and `mixtral_8_22b.csv` both name
    the run `mixtral_8_22b`."""
    first = Path(next(iter(paths)))
    return (first.stem if first.suffix else first.name) or "import"


def find_sources(paths: Iterable[str | Path], limits: ImportLimits | None = None,
                 ) -> tuple[list[SourceFile], list[ImportProblem]]:
    """Files under the given paths (folders recursively, zip archives opened; hidden files ignored). Zip members
    that cannot be imported (encrypted, too large, and in time corrupt ones) are problems, named
    `archive.zip:member`."""
    limits = limits or ImportLimits.from_settings(Settings())
    sources: list[SourceFile] = []
    problems: list[ImportProblem] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = [p for p in sorted(path.rglob("*"))
                     if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        elif path.is_file():
            files = [path]
        else:
            problems.append(ImportProblem(str(path), "no such file or folder"))
            continue
        for file in files:
            if file.suffix.lower() == ".zip":
                sources.extend(_zip_sources(file, problems, limits))
            else:
                sources.append(SourceFile(str(file), PurePosixPath(file.as_posix()), file.read_bytes))
    return sources, problems


def _zip_sources(archive: Path, problems: list[ImportProblem], limits: ImportLimits) -> Iterator[SourceFile]:
    try:
        zipped = zipfile.ZipFile(archive)
        members = [m for m in zipped.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        problems.append(ImportProblem(str(archive), f"not a readable zip archive: {error}"))
        return
    budget = _ArchiveBudget(limits.max_archive_bytes)
    for member in sorted(members, key=lambda m: m.filename):
        inner = PurePosixPath(member.filename)
        if any(part.startswith(".") or part == "__MACOSX" for part in inner.parts):
            continue
        name = f"{archive}:{member.filename}"
        refusal = _refusal(member, limits, budget)
        if refusal:
            problems.append(ImportProblem(name, refusal))
            continue
        budget.declared += member.file_size
        yield SourceFile(name, inner, lambda m=member: _read_member(zipped, m, limits, budget))


@dataclass
class _ArchiveBudget:
    """What one archive's members may expand to together: declared by their headers, and read so far."""

    limit: int
    declared: int = 0
    read: int = 0


def _refusal(member: zipfile.ZipInfo, limits: ImportLimits, budget: _ArchiveBudget) -> str | None:
    """Why a member is not read at all, from the zip's own header; None to read it."""
    if member.flag_bits & 0x1:
        return "encrypted member: Loupe does not read encrypted zip members; unzip it with its password first"
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        return f"unsupported compression method {member.compress_type}"
    if member.file_size > limits.max_member_bytes:
        return (f"expands to {_mb(member.file_size)}, over the limit of {_mb(limits.max_member_bytes)} per member "
                "(LOUPE_IMPORT_MAX_MEMBER_MB): not read")
    if budget.declared + member.file_size > budget.limit:
        return (f"the archive's members expand to more than {_mb(budget.limit)} together "
                "(LOUPE_IMPORT_MAX_ARCHIVE_MB): this member and those after it were not read")
    return None


def _read_member(zipped: zipfile.ZipFile, member: zipfile.ZipInfo, limits: ImportLimits,
                 budget: _ArchiveBudget) -> bytes:
    """The member's bytes, read a chunk at a time and stopped at the limits whatever the header said.

    :raises RecordParseError: corrupt (bad CRC, broken stream), encrypted, or expanding beyond a limit."""
    data = bytearray()
    try:
        with zipped.open(member) as stream:
            while chunk := stream.read(READ_CHUNK):
                data += chunk
                budget.read += len(chunk)
                if len(data) > limits.max_member_bytes:
                    raise RecordParseError(f"expands beyond {_mb(limits.max_member_bytes)} (more than its zip "
                                           "header says), over the limit per member (LOUPE_IMPORT_MAX_MEMBER_MB): "
                                           "not read")
                if budget.read > budget.limit:
                    raise RecordParseError(f"the archive's members expand beyond {_mb(budget.limit)} together "
                                           "(LOUPE_IMPORT_MAX_ARCHIVE_MB): not read")
    except RecordParseError:
        raise
    except zipfile.BadZipFile as error:
        raise RecordParseError(f"corrupt member: {error}") from None
    except RuntimeError as error:  # zipfile: "File ... is encrypted, password required"
        raise RecordParseError(f"cannot read the member: {error}") from None
    except (zlib.error, EOFError, OSError, ValueError, NotImplementedError, lzma.LZMAError) as error:
        raise RecordParseError(f"corrupt member: {type(error).__name__}: {error}") from None
    return bytes(data)


def _mb(size: int) -> str:
    return f"{size / MB:.0f} MB" if size >= MB else f"{size} bytes"


class Importer:
    """Imports record and verdict files into one run of the review database."""

    def __init__(
        self, sessions, *, actor: Principal, run: str, annotator: str | None = None,
        questions: list[Question] | None = None, label_map: dict[str, tuple[str, str | None]] | None = None,
        model: str | None = None, limits: ImportLimits | None = None, chunk_limits: ChunkLimits | None = None,
    ):
        """`limits`: how far zip archives may expand; by default from the settings (LOUPE_IMPORT_MAX_*_MB).
        `chunk_limits`: how the retriever chunked prompt records' contexts (review.context_chunks).

        :raises PermissionDeniedError: only admins import."""
        from review.verdict_files import DEFAULT_LABEL_MAP

        require_role(actor, "admin", "import records")
        self.actor = actor
        if not run.strip():
            raise ValueError("the run name is empty")
        if len(run.strip()) > 200:
            raise ValueError("the run name is longer than 200 characters")
        self.sessions, self.run, self.annotator, self.model = sessions, run.strip(), annotator, model
        self.chunk_limits = chunk_limits
        self.label_map = label_map or DEFAULT_LABEL_MAP
        self.limits = limits or ImportLimits.from_settings(load_settings())
        by_id = {q.id: q for q in questions or []}
        self.questions = {n: by_id.get(question_id_for(n), q) for n, q in enumerate(questions or [], start=1)}

    def import_paths(self, paths: Iterable[str | Path], progress: ProgressCallback | None = None) -> ImportReport:
        started = time.perf_counter()
        report = ImportReport(run=self.run)
        sources, problems = find_sources(paths, self.limits)
        report.failures.extend(problems)
        records: dict[str, tuple[ParsedRecord, str]] = {}
        verdict_rows: list[tuple[VerdictRow, str]] = []
        tick = _throttled(progress, len(sources))
        for done, source in enumerate(sources, start=1):
            self._read_source(source, records, verdict_rows, report)
            tick(done, f"reading {source.path.name}")
        self._store_records(list(records.values()), report, progress)
        if verdict_rows:
            self._store_verdicts(verdict_rows, report, progress)
        without_question = sum(1 for parsed, _ in records.values() if not parsed.question)
        if without_question:
            report.notes.append(f"NOTE: {without_question} answer-only records have no question text: give the "
                                "question set with --questions FILE (line n = question n)")
        report.seconds = time.perf_counter() - started
        return report

    # -- reading ---------------------------------------------------------------------------------------------

    def _read_source(self, source: SourceFile, records: dict, verdict_rows: list, report: ImportReport) -> None:
        suffix = source.path.suffix.lower()
        if suffix not in (*RECORD_SUFFIXES, ".csv"):
            report.skipped.append(ImportProblem(source.name, f"unsupported file type {suffix or '(none)'}; "
                                                "expected .txt or .jsonl records, .csv or .jsonl verdicts"))
            return
        try:
            text, replaced = decode_text_counted(source.read())
        except RecordParseError as error:
            report.failures.append(ImportProblem(source.name, error.reason, error.line))
            return
        except OSError as error:
            report.failures.append(ImportProblem(source.name, f"cannot read: {error}"))
            return
        if suffix == ".csv":
            if not is_verdict_csv(text):
                report.failures.append(ImportProblem(source.name, "a CSV of verdicts needs the columns Unique_ID and "
                                                     "decision", 1))
                return
            self._count_replaced(report, source.name, replaced)
            self._add_verdicts(source, *parse_verdict_csv(text, self.label_map), verdict_rows, report)
        elif suffix == ".txt":
            try:
                parsed = parse_text_record(source.path.stem, text, self.questions, self.chunk_limits)
            except RecordParseError as error:
                report.failures.append(ImportProblem(source.name, error.reason, error.line))
                return
            parsed.replaced_characters += replaced
            self._add_record(parsed, source.name, source, records, report)
        else:
            self._count_replaced(report, source.name, replaced)
            self._read_jsonl(source, text, records, verdict_rows, report)

    @staticmethod
    def _count_replaced(report: ImportReport, origin: str, replaced: int) -> None:
        if replaced:
            report.replaced_characters[origin] += replaced

    def _read_jsonl(self, source: SourceFile, text: str, records: dict, verdict_rows: list,
                    report: ImportReport) -> None:
        lines = list(iter_jsonl(text))
        first = next((obj for _, obj in lines if not isinstance(obj, RecordParseError)), None)
        if is_verdict_jsonl(first):
            self._add_verdicts(source, *parse_verdict_jsonl(text, self.label_map), verdict_rows, report)
            return
        for line, obj in lines:
            try:
                if isinstance(obj, RecordParseError):
                    raise obj
                parsed = parse_jsonl_record(obj, line)
            except RecordParseError as error:
                report.failures.append(ImportProblem(source.name, error.reason, error.line))
                continue
            self._add_record(parsed, f"{source.name}:{line}", source, records, report)

    def _add_record(self, parsed: ParsedRecord, origin: str, source: SourceFile, records: dict,
                    report: ImportReport) -> None:
        if parsed.external_id in records:
            report.failures.append(ImportProblem(origin, f"record id {parsed.external_id!r} repeats "
                                                 f"(first in {records[parsed.external_id][1]}); kept the first"))
            return
        if not parsed.meta.get("model") and self.model is None and source.path.suffix.lower() == ".txt":
            parsed.meta = {**parsed.meta, "model": source.path.parent.name or None}
        self._count_replaced(report, origin, parsed.replaced_characters)
        records[parsed.external_id] = (parsed, origin)

    def _add_verdicts(self, source: SourceFile, rows: list[VerdictRow], errors: list[RecordParseError],
                      verdict_rows: list, report: ImportReport) -> None:
        if not (self.annotator or "").strip():
            report.failures.append(ImportProblem(source.name, "a verdict file is imported as one annotator's "
                                                 "verdicts: give --annotator NAME"))
            return
        report.failures.extend(ImportProblem(source.name, e.reason, e.line) for e in errors)
        verdict_rows.extend((row, source.name) for row in rows)

    # -- storing ---------------------------------------------------------------------------------------------

    def _row(self, parsed: ParsedRecord, origin: str) -> dict[str, Any]:
        model = self.model or parsed.meta.get("model") or parsed.meta.get("generator") or "unknown"
        row = {
            "id": record_key(self.run, parsed.external_id), "external_id": parsed.external_id, "run": self.run,
            "doc_id": parsed.doc_id, "question_id": parsed.question_id, "question": parsed.question,
            "scope": [parsed.doc_id] if parsed.doc_id else [], "passages": parsed.passages, "prompt": parsed.prompt,
            "answer": parsed.answer, "generator_kind": "imported", "generator_model": str(model),
            "settings": {"imported": True}, "meta": {**parsed.meta, "context_recorded": parsed.context_recorded},
            "source": origin,
        }
        # the content hashed includes the key as it was made before migration 0004 (`run/external id`), so that
        # records stored then still compare equal: re-importing the same files changes nothing after an upgrade
        hashed = {**{k: v for k, v in row.items() if k != "source"}, "id": _legacy_key(self.run, parsed.external_id)}
        content = json.dumps(hashed, sort_keys=True, ensure_ascii=False)
        row["source_hash"] = hashlib.sha256(content.encode("utf-8")).hexdigest()
        return row

    def _store_records(self, parsed: list[tuple[ParsedRecord, str]], report: ImportReport,
                       progress: ProgressCallback | None) -> None:
        tick = _throttled(progress, len(parsed))
        if not parsed:
            return
        with self.sessions() as session:
            self._ensure_run(session)
            for start in range(0, len(parsed), BATCH):
                rows = [self._row(record, origin) for record, origin in parsed[start : start + BATCH]]
                self._store_batch(session, rows, report)
                session.commit()
                tick(min(start + BATCH, len(parsed)), "storing records")

    def _store_batch(self, session: Session, rows: list[dict[str, Any]], report: ImportReport,
                     retry: bool = True) -> None:
        stored = self._stored(session, [row["external_id"] for row in rows])
        reviewed = set(session.scalars(select(Annotation.record_id).where(
            Annotation.record_id.in_([record_id for record_id, _ in stored.values()]))))
        new, changed = [], []
        for row in rows:
            if row["external_id"] not in stored:
                new.append(row)
                continue
            row["id"], stored_hash = stored[row["external_id"]]  # the stored record's id, whatever its scheme
            if stored_hash == row["source_hash"]:
                report.records["unchanged"] += 1
            elif row["id"] in reviewed:
                report.records["kept_reviewed"] += 1
                report.failures.append(ImportProblem(row["source"], "differs from the stored record, which was "
                                                     "already reviewed: kept the reviewed snapshot (import the file "
                                                     "into another --run to review the new version)"))
            else:
                changed.append({**row, "support": None, "unsupported_count": None, "abstains": None,
                                "created_at": utcnow()})
        if new:
            self._avoid_taken_ids(session, new)
            inserted = _insert_ignoring_conflicts(session, new)
            report.records["added"] += len(inserted)
            late = [row for row in new if row["external_id"] not in inserted]
            if late and retry:  # another import of this run stored them meanwhile: compare with what it stored
                self._store_batch(session, late, report, retry=False)
            elif late:
                report.failures.extend(ImportProblem(row["source"], "could not be stored: its record id is taken")
                                       for row in late)
        if changed:
            session.execute(update(Record), changed)
            report.records["replaced"] += len(changed)

    def _stored(self, session: Session, external_ids: list[str]) -> dict[str, tuple[str, str | None]]:
        """External id → (record id, content hash) of the records of this run with these external ids."""
        query = select(Record.external_id, Record.id, Record.source_hash).where(
            Record.run == self.run, Record.external_id.in_(external_ids))
        return {external_id: (record_id, source_hash) for external_id, record_id, source_hash in session.execute(query)}

    @staticmethod
    def _avoid_taken_ids(session: Session, rows: list[dict[str, Any]]) -> None:
        """New records whose key another record already has (one stored under the old, ambiguous key scheme,
        e.g. run `a/b` id `c` as `a/b/c` when run `a` id `b/c` arrives) get the fallback key of their pair."""
        taken = set(session.scalars(select(Record.id).where(Record.id.in_([row["id"] for row in rows]))))
        for row in rows:
            if row["id"] in taken:
                row["id"] = fallback_record_key(row["run"], row["external_id"])

    def _ensure_run(self, session: Session) -> None:
        session.execute(_dialect_insert(session, Run).values(
            name=self.run, kind="import", settings={"model": self.model}, questions=[], doc_ids=[],
            created_at=utcnow(), updated_at=utcnow()).on_conflict_do_nothing())
        session.execute(update(Run).where(Run.name == self.run).values(updated_at=utcnow()))
        session.flush()

    def _store_verdicts(self, rows: list[tuple[VerdictRow, str]], report: ImportReport,
                        progress: ProgressCallback | None) -> None:
        tick = _throttled(progress, len(rows))
        with self.sessions() as session:
            keys = self._record_keys(session, {row.record_id for row, _ in rows})
            for done, (row, origin) in enumerate(rows, start=1):
                tick(done, "storing verdicts")
                if row.verdict is None:
                    report.verdicts["blank"] += 1
                    continue
                record_id = keys.get(_without_txt(row.record_id))
                if record_id is None:
                    report.verdicts["unknown_record"] += 1
                    report.unknown_record_ids.append(row.record_id)
                    continue
                self._store_verdict(session, record_id, row, origin, report)
        if report.unknown_record_ids:
            shown = ", ".join(report.unknown_record_ids[:3])
            report.notes.append(f"NOTE: {len(report.unknown_record_ids)} verdict rows name records that are not in "
                                f"run {self.run} (e.g. {shown}); they were not imported")

    def _record_keys(self, session: Session, wanted: set[str]) -> dict[str, str]:
        """External id → record id, for the records of this run that the verdict rows name."""
        names = sorted({_without_txt(name) for name in wanted})
        keys: dict[str, str] = {}
        for start in range(0, len(names), BATCH):
            query = select(Record.external_id, Record.id).where(
                Record.external_id.in_(names[start : start + BATCH]), Record.run == self.run)
            keys.update(session.execute(query).all())
        return keys

    def _store_verdict(self, session: Session, record_id: str, row: VerdictRow, origin: str,
                       report: ImportReport) -> None:
        annotator = self.annotator.strip()
        current = session.scalar(select(Annotation).where(Annotation.record_id == record_id,
                                                          Annotation.annotator == annotator))
        wanted = {"verdict": row.verdict, "reason": row.reason if row.verdict == "reject" else None,
                  "corrected_answer": row.corrected_answer if row.verdict == "correct" else None,
                  "comment": (row.comment or "").strip() or None}
        if current is not None and all(getattr(current, name) == value for name, value in wanted.items()):
            report.verdicts["unchanged"] += 1
            return
        try:
            record_verdict(session, actor=self.actor, record_id=record_id, annotator=annotator,
                           expected_version=UNCHECKED, **wanted)
        except ReviewError as error:
            report.failures.append(ImportProblem(origin, str(error), row.line))
            return
        report.verdicts["changed" if current is not None else "added"] += 1


def _legacy_key(run: str, external_id: str) -> str:
    """The record key before migration 0004 (ambiguous, so no longer a key; only part of the hashed content)."""
    key = f"{run}/{external_id}"
    return key if len(key) <= 300 else f"{run[:100]}/{hashlib.sha256(key.encode()).hexdigest()}"


def _dialect_insert(session: Session, model):
    """INSERT with `on_conflict_do_nothing()`, for SQLite or PostgreSQL. :raises NotImplementedError:"""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(model)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(model)
    raise NotImplementedError(f"importing into a {dialect} database (SQLite and PostgreSQL are supported)")


def _insert_ignoring_conflicts(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the records that no one stored meanwhile (same run and external id, or the same id); the external
    ids of those inserted."""
    statement = _dialect_insert(session, Record).on_conflict_do_nothing().returning(Record.external_id)
    return set(session.scalars(statement, rows))


def _without_txt(name: str) -> str:
    return name[:-4] if name.lower().endswith(".txt") else name


def _throttled(progress: ProgressCallback | None, total: int) -> Callable[[int, str], None]:
    """Report about a hundred steps however long the work, and always the last one."""
    step = max(1, total // 100)

    def tick(done: int, current: str) -> None:
        if progress and (done % step == 0 or done == total):
            progress(done, total, current)

    return tick
