"""Dirty and hostile imports (issue 15, items 6-14): stray control characters, bad zip members and expansion
limits, badly typed verdict lines and unbalanced CSV quotes, empty answers, non-numeric passage scores, record keys
across runs, races between imports, and the queue's passage-text search; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import sessionmaker

from components.file_loader import FileLoader
from configuration.settings import Settings, load_settings
from review.db import make_engine, migrate
from review.importer import MB, Importer, ImportLimits, _ArchiveBudget, _read_member
from review.models import Annotation, Record
from review.queue import QueueFilter, queue_entries
from review.record_files import RecordParseError, decode_text_counted, parse_jsonl_record
from tests import import_worker
from tests.conftest import ADMIN, REPO, shared_path
from tests.db_fixtures import db_url, sessions  # noqa: F401  (fixtures)

GOOD = ("Use the context.\n\nSeeds were fixed to {seed}.\n\nQuestion: %INSTRUCTIONS:\nQuery: \"Which seed?\"\n\n"
        "Helpful Answer:\nThe seed was {seed}.\n")
NUL_RECORD = ("Use the context.\n\nThe e\x00cient net was trained with seed 3.\n\nQuestion: %INSTRUCTIONS:\n"
              "Query: \"Which seed?\"\n\nHelpful Answer:\nThe e\x00cient net used seed 3.\n")


def importer(sessions, run="r", **kwargs) -> Importer:  # noqa: F811
    return Importer(sessions, actor=ADMIN, run=run, **kwargs)


def stored(sessions, run="r") -> dict[str, Record]:  # noqa: F811
    with sessions() as session:
        return {r.external_id: r for r in session.scalars(select(Record).where(Record.run == run))}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows),
                    encoding="utf-8")
    return path


# -- 6: stray control characters -----------------------------------------------------------------------------

def test_a_stray_nul_is_replaced_and_counted_and_binary_files_are_still_refused(sessions, tmp_path):  # noqa: F811
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "ligature.txt").write_text(NUL_RECORD, encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"Answer:::\n" + b"\x00\x01\x02" * 50 + b"text")
    write_jsonl(folder / "records.jsonl", [{"id": "j", "question": "Q\u0000?", "answer": "e\u0000cient",
                                            "contexts": [{"text": "a\u0000b", "meta": {"k\u0000": "v"}}]}])
    report = importer(sessions).import_paths([folder])
    records = stored(sessions)
    assert sorted(records) == ["j", "ligature"]
    assert records["ligature"].answer == "The e\ufffdcient net used seed 3."
    assert [p["text"] for p in records["ligature"].passages] == ["The e\ufffdcient net was trained with seed 3."]
    assert records["j"].answer == "e\ufffdcient" and records["j"].passages[0]["meta"] == {"k\ufffd": "v"}
    assert sum(report.replaced_characters.values()) == 2 + 4
    assert "6 replaced by U+FFFD in 2 records" in report.summary()
    [failure] = report.failures
    assert failure.source.endswith("binary.txt") and "binary data" in failure.reason


def test_decoding_keeps_tabs_line_ends_and_page_breaks():
    assert decode_text_counted(b"a\tb\r\nc\fd\x00e" + b" " * 200) == ("a\tb\nc\fd\ufffde" + " " * 200, 1)
    with pytest.raises(RecordParseError, match="binary data"):
        decode_text_counted(b"ab\x00\x00cd")
    with pytest.raises(RecordParseError, match="not UTF-8"):
        decode_text_counted("x".encode("utf-16"))


def test_ingestion_refuses_a_nul_anywhere_in_a_text_file_not_only_in_its_first_8_kb(tmp_path):
    late = tmp_path / "late.txt"
    late.write_bytes(b"plain words. " * 1000 + b"\x00 and more words.")
    documents, failures = _load(late)
    assert not documents and "binary data" in failures[0].reason and "offset 13000" in failures[0].reason


def _load(path: Path):
    result = FileLoader().run(paths=[str(path)])
    return result["documents"], result["failures"]


def test_the_studys_records_with_a_stray_nul_import(sessions):  # noqa: F811
    folder = shared_path("data", "kommineni2024", "records", "mixtral_8_22b")
    with_nul = [path for path in sorted(folder.glob("*.txt")) if b"\x00" in path.read_bytes()]
    if not with_nul:
        pytest.skip(f"no record under {folder} holds a NUL byte (the shared subset has none of the study's 19)")
    report = importer(sessions).import_paths(with_nul)
    assert report.records["added"] == len(with_nul) and not report.failures
    assert all("\x00" not in r.answer + json.dumps(r.passages) for r in stored(sessions).values())


# -- 7, 8: zip members one by one, expansion limits ----------------------------------------------------------

def _patch_member(archive: Path, name: str, *, flag: int = 0, corrupt: bool = False) -> None:
    """Set flag bits of a member (in its local header and the central directory) or flip a byte of its data."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zipped:
        info = zipped.getinfo(name)
    local = info.header_offset
    name_length, extra_length = struct.unpack("<HH", data[local + 26 : local + 30])
    if corrupt:
        data[local + 30 + name_length + extra_length] ^= 0xFF
    if flag:
        data[local + 6 : local + 8] = struct.pack("<H", struct.unpack("<H", data[local + 6 : local + 8])[0] | flag)
        central = data.find(b"PK\x01\x02")
        while central >= 0:
            length = struct.unpack("<H", data[central + 28 : central + 30])[0]
            if data[central + 46 : central + 46 + length] == name.encode():
                old = struct.unpack("<H", data[central + 8 : central + 10])[0]
                data[central + 8 : central + 10] = struct.pack("<H", old | flag)
            central = data.find(b"PK\x01\x02", central + 4)
    archive.write_bytes(bytes(data))


def hostile_zip(path: Path, big_mb: int = 300) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("good1.txt", GOOD.format(seed=1))
        zipped.writestr("good2.txt", GOOD.format(seed=2))
        zipped.writestr("ligature.txt", NUL_RECORD)
        zipped.writestr("secret.txt", GOOD.format(seed=4))
        zipped.writestr(zipfile.ZipInfo("badcrc.txt"), GOOD.format(seed=5))  # stored: its bytes are its text
        with zipped.open("big.txt", "w", force_zip64=True) as member:
            member.write(b"Answer:::\n")
            for _ in range(big_mb):
                member.write(b" " * MB)
    _patch_member(path, "secret.txt", flag=0x1)
    _patch_member(path, "badcrc.txt", corrupt=True)
    return path


def test_each_bad_zip_member_is_reported_by_name_and_the_rest_imported_in_little_memory(tmp_path):
    archive = hostile_zip(tmp_path / "hostile.zip")
    assert archive.stat().st_size < 2 * MB
    env = {**os.environ, "LOUPE_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    env.pop("DATABASE_URL", None)
    measure = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
               "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", measure, sys.executable, str(REPO / "cli.py"), "import", str(archive),
                           "--run", "z"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    failed = {line.split(": ", 1)[0].removeprefix("FAILED "): line for line in done.stderr.splitlines()
              if line.startswith("FAILED")}
    assert sorted(failed) == [f"{archive}:{name}" for name in ("badcrc.txt", "big.txt", "secret.txt")], done.stderr
    assert "encrypted" in failed[f"{archive}:secret.txt"]
    assert "CRC" in failed[f"{archive}:badcrc.txt"]
    assert "expands to 300 MB, over the limit of 200 MB" in failed[f"{archive}:big.txt"]
    assert "3 added" in done.stdout and "2 replaced by U+FFFD in 1 records" in done.stdout
    peak_mb = int(done.stderr.split("PEAK_KB ")[1].split()[0]) / 1024
    assert peak_mb < 600, f"peak memory {peak_mb:.0f} MB"
    with make_engine(f"sqlite:///{tmp_path / 'data' / 'review.sqlite3'}").connect() as connection:
        assert sorted(connection.scalars(text("SELECT external_id FROM records"))) == ["good1", "good2", "ligature"]


def test_a_member_is_read_only_up_to_the_limit_whatever_its_header_says(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("big.txt", b"Answer:::\n" + b" " * (3 * MB))
    limits = ImportLimits(max_member_bytes=MB, max_archive_bytes=10 * MB)
    with zipfile.ZipFile(archive) as zipped:
        member = zipped.getinfo("big.txt")
        member.file_size = 100  # as a lying header would say: reading is still bounded by the limit, or refused
        with pytest.raises(RecordParseError, match="CRC|expands beyond"):
            _read_member(zipped, member, limits, _ArchiveBudget(limits.max_archive_bytes))
    with zipfile.ZipFile(archive) as zipped:  # the header check bypassed: reading stops at the limit
        with pytest.raises(RecordParseError, match="expands beyond 1 MB"):
            _read_member(zipped, zipped.getinfo("big.txt"), limits, _ArchiveBudget(limits.max_archive_bytes))
        with pytest.raises(RecordParseError, match="archive's members expand beyond"):
            _read_member(zipped, zipped.getinfo("big.txt"), ImportLimits(10 * MB, 2 * MB), _ArchiveBudget(2 * MB))


def test_the_archive_total_is_limited_and_the_limits_are_settings(sessions, tmp_path, monkeypatch):  # noqa: F811
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for n in range(3):
            zipped.writestr(f"r{n}.txt", GOOD.format(seed=n) + "\n" * (400 * 1024))
    report = importer(sessions, limits=ImportLimits(max_member_bytes=MB, max_archive_bytes=MB)).import_paths([archive])
    assert report.records["added"] == 2 and report.exit_code == 1
    [failure] = report.failures
    assert failure.source == f"{archive}:r2.txt" and "LOUPE_IMPORT_MAX_ARCHIVE_MB" in failure.reason
    monkeypatch.setenv("LOUPE_IMPORT_MAX_MEMBER_MB", "7")
    monkeypatch.setenv("LOUPE_IMPORT_MAX_ARCHIVE_MB", "70")
    assert importer(sessions).limits == ImportLimits(7 * MB, 70 * MB)
    assert Settings().import_max_member_mb == 200 and Settings().import_max_archive_mb == 2000
    monkeypatch.setenv("LOUPE_IMPORT_MAX_MEMBER_MB", "0")
    with pytest.raises(ValueError, match="import_max_member_mb"):
        load_settings(toml_path=tmp_path / "none.toml")


# -- 9: verdict files checked line by line -------------------------------------------------------------------

def test_verdict_lines_of_the_wrong_type_and_unbalanced_csv_quotes_are_reported_and_the_rest_imported(
        sessions, tmp_path):  # noqa: F811
    ids = [f"r{n}" for n in range(8)]
    write_jsonl(tmp_path / "records.jsonl", [{"id": i, "question": "Q?", "answer": "A."} for i in ids])
    assert importer(sessions).import_paths([tmp_path / "records.jsonl"]).records["added"] == 8
    verdicts = write_jsonl(tmp_path / "verdicts.jsonl", [
        {"record_id": "r0", "verdict": "accept"},
        {"record_id": "r1", "verdict": "reject", "comment": 5},
        {"record_id": "r2", "verdict": ["accept"]},
        {"record_id": "r3", "verdict": "reject", "reason": "nonsense"},
        {"record_id": "r4", "verdict": "reject", "reason": "wrong", "comment": "late"},
    ])
    report = importer(sessions, annotator="ann").import_paths([verdicts])
    assert sorted((f.line, f.reason.split(" ", 2)[:2][0]) for f in report.failures) == [
        (2, "'comment'"), (3, "'verdict'"), (4, "reason")]
    assert report.verdicts["added"] == 2 and report.exit_code == 1
    csv_path = tmp_path / "decisions.csv"
    csv_path.write_text('Unique_ID,decision\nr5,Yes\nr6,"No\nr7,Yes\nr0,No\n', encoding="utf-8")
    report = importer(sessions, annotator="csv").import_paths([csv_path])
    [failure] = report.failures
    assert failure.line == 3 and "unbalanced quote" in failure.reason
    with sessions() as session:
        rows = session.execute(select(Record.external_id, Annotation.annotator, Annotation.verdict, Annotation.comment)
                               .join(Annotation)).all()
    assert sorted(rows) == [("r0", "ann", "accept", None), ("r0", "csv", "reject", None),
                            ("r4", "ann", "reject", "late"), ("r5", "csv", "accept", None),
                            ("r7", "csv", "accept", None)]


def test_a_quote_that_closes_rows_later_is_detected_not_swallowed(sessions, tmp_path):  # noqa: F811
    from review.verdict_files import DEFAULT_LABEL_MAP, parse_verdict_csv

    rows, errors = parse_verdict_csv('Unique_ID,decision\na,Yes\nb,"No\nc,Yes\nd,"\ne,No\n', DEFAULT_LABEL_MAP)
    # line 3's stray quote pairs with line 5's; read again from line 4, line 5's quote is unbalanced in its turn
    assert [e.line for e in errors] == [3, 5] and "closes only on line 5" in errors[0].reason
    assert [(r.record_id, r.line) for r in rows] == [("a", 2), ("c", 4), ("e", 6)]
    answer = '"A long answer, with commas, over\ntwo lines, and, more"'
    rows, errors = parse_verdict_csv(f"CQ,CQ_Answer,Unique_ID,decision\nq,{answer},x,Yes\n", DEFAULT_LABEL_MAP)
    assert not errors and [r.record_id for r in rows] == ["x"], "a legitimate multi-line answer is no error"


# -- 10, 11: empty answers, passage scores -------------------------------------------------------------------

def test_an_empty_answer_is_an_answer_and_a_missing_one_an_error(sessions, tmp_path):  # noqa: F811
    path = write_jsonl(tmp_path / "records.jsonl", [{"id": "empty", "question": "Q?", "answer": ""},
                                                    {"id": "missing", "question": "Q?"},
                                                    {"id": "number", "question": "Q?", "answer": 5}])
    (tmp_path / "silent.txt").write_text(GOOD.format(seed=1).split("Helpful Answer:")[0] + "Helpful Answer:\n",
                                         encoding="utf-8")
    report = importer(sessions).import_paths([path, tmp_path / "silent.txt"])
    records = stored(sessions)
    assert sorted(records) == ["empty", "silent"] and records["empty"].answer == records["silent"].answer == ""
    assert sorted((f.line, f.reason) for f in report.failures) == [
        (2, "'answer' is missing or not a string (empty for no answer)"),
        (3, "'answer' is missing or not a string (empty for no answer)")]


def test_passage_metadata_is_kept_and_the_shown_score_is_numeric_or_absent():
    contexts = [{"text": t, "meta": {"score": s, "page": 3}} for t, s in
                (("a", "high"), ("b", "0.25"), ("c", 0.5), ("d", float("nan")), ("e", [1]), ("f", True))]
    passages = parse_jsonl_record({"id": 1, "question": "Q?", "answer": "A.", "contexts": contexts}, 1).passages
    assert [p.get("score") for p in passages] == [None, 0.25, 0.5, None, None, None]
    assert passages[0]["meta"] == {"score": "high", "page": 3} and passages[0]["page"] == 3
    assert "NaN is not a JSON number" in str(next(__import__("review.record_files").record_files.iter_jsonl(
        '{"score": NaN}'))[1])


# -- 12: record keys across runs -----------------------------------------------------------------------------

def test_run_a_id_b_c_and_run_a_b_id_c_are_two_records(sessions, tmp_path):  # noqa: F811
    first = write_jsonl(tmp_path / "one.jsonl", [{"id": "b/c", "question": "Q?", "answer": "first"}])
    second = write_jsonl(tmp_path / "two.jsonl", [{"id": "c", "question": "Q?", "answer": "second"}])
    assert importer(sessions, run="a").import_paths([first]).records["added"] == 1
    assert importer(sessions, run="a/b").import_paths([second]).records["added"] == 1
    assert stored(sessions, "a")["b/c"].answer == "first" and stored(sessions, "a/b")["c"].answer == "second"
    assert importer(sessions, run="a").import_paths([first]).records["unchanged"] == 1


def test_the_migration_keeps_records_stored_under_the_old_keys(db_url, tmp_path):  # noqa: F811
    from alembic import command
    from alembic.config import Config

    from review.db import MIGRATIONS

    engine = make_engine(db_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    with engine.begin() as connection:  # stored by the old importer: key "run/external id"
        connection.execute(text(
            "INSERT INTO records (id, external_id, run, question, scope, passages, answer, generator_kind, "
            "generator_model, settings, meta, created_at) VALUES ('a/b/c', 'c', 'a/b', 'Q?', '[]', '[]', 'old', "
            "'imported', 'm', '{}', '{}', CURRENT_TIMESTAMP)"))
        connection.execute(text(
            "INSERT INTO annotations (record_id, annotator, verdict, passage_marks, evidence, version, created_at, "
            "updated_at) VALUES ('a/b/c', 'ann', 'accept', '{}', '[]', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
    migrate(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    path = write_jsonl(tmp_path / "k.jsonl", [{"id": "b/c", "question": "Q?", "answer": "new"}])
    assert importer(sessions, run="a").import_paths([path]).records["added"] == 1
    with sessions() as session:
        rows = session.execute(select(Record.run, Record.external_id, Record.answer, func.count(Annotation.id))
                               .outerjoin(Annotation).group_by(Record.id).order_by(Record.run)).all()
    assert [tuple(r) for r in rows] == [("a", "b/c", "new", 0), ("a/b", "c", "old", 1)]
    engine.dispose()


# -- 13: races -------------------------------------------------------------------------------------------------

CONTEXT = multiprocessing.get_context("spawn")


@pytest.fixture
def worker_main(monkeypatch):
    monkeypatch.setitem(sys.modules, "__main__", import_worker)


@pytest.mark.slow
def test_two_imports_at_once_on_a_new_database_migrate_once_and_store_each_record_once(
        db_url, tmp_path, worker_main):  # noqa: F811
    path = write_jsonl(tmp_path / "records.jsonl",
                       [{"id": f"r{n}", "question": "Q?", "answer": f"A{n}."} for n in range(1200)])
    workers = 3
    barrier, results = CONTEXT.Barrier(workers), CONTEXT.Queue()
    processes = [CONTEXT.Process(target=import_worker.migrate_and_import, args=(db_url, str(path), "r", barrier, results))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [outcome for outcome, _, _ in outcomes] == ["ok"] * workers, outcomes
    assert all(not failures for _, _, failures in outcomes), outcomes
    assert sum(counts.get("added", 0) for _, counts, _ in outcomes) == 1200
    assert sum(sum(counts.values()) for _, counts, _ in outcomes) == 1200 * workers
    engine = create_engine(db_url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM records")) == 1200
        assert connection.scalar(text("SELECT COUNT(*) FROM runs")) == 1
    engine.dispose()


# -- 14: search the passages' text only ------------------------------------------------------------------------

def test_search_matches_passage_text_not_json_keys(sessions, tmp_path):  # noqa: F811
    path = write_jsonl(tmp_path / "records.jsonl", [
        {"id": "plain", "question": "Q?", "answer": "A.", "contexts": [{"text": "Seeds.", "meta": {"title": "T"}}]},
        {"id": "texty", "question": "Q?", "answer": "A.", "contexts": ["Some context TEXT here.", {"text": "x"}]},
        {"id": "meta", "question": "Q?", "answer": "A.", "contexts": [{"text": "y", "meta": {"note": "seeds text"}}]},
    ])
    importer(sessions).import_paths([path])

    def found(term: str) -> list[str]:
        with sessions() as session:
            entries = queue_entries(session, QueueFilter(annotator="me", search=term), actor=ADMIN)
            return sorted(session.get(Record, rid).external_id for rid, _ in entries)

    assert found("text") == ["texty"]
    assert found("title") == [] and found("meta") == [] and found("seeds") == ["plain"]
    assert found("x") == ["texty"], "a second search reuses the compiled query with its own pattern"
