"""Import throughput: the review importer on thousands of record files, against parsing alone and a plain bulk insert.

    python bench/import_records.py [--records 12992] [--rounds 1] [--database-url URL] [--synthetic] [--json]

Writes N record files of the size of the Kommineni et al. prompt records (12,992 = 464 papers x 28 questions) to a
temporary folder: the real mixtral_8_22b records from ../shared/data/kommineni2024, cycled under new unique names
`Publication_<doc>-r<round>.pdf_CQ<n>.txt`, or, where ../shared is absent (or with --synthetic), seeded synthetic
files of the same shape (preamble line, four passages separated by blank lines, the `Question:` block with its
`Query: "..."` line, `Helpful Answer:` and the answer). Then it times, in one process, after reading every file
once untimed (so that all sides find them in the page cache):
  parse_only    reading and parsing every file (review.record_files), no database
  bulk_insert   reading, parsing and one plain `insert(Record)` of the rows (500 a statement, one commit) into a
                fresh migrated database: no hashing, no look-up of stored records
  first_import  review.importer.Importer(...).import_paths([folder]) into a fresh review database, what
                `cli.py import FOLDER --run NAME` runs after opening the database
  reimport      the same import again into the same database: every record must come back unchanged
open_s (open_database: engine plus migrations) is measured apart and not in the seconds above. The ratio is
import records/s / baseline records/s: 1.0 means the importer costs nothing beyond the baseline, 0.5 twice as long.
The review database is SQLite in a temporary data directory; --database-url also runs everything against that
database (e.g. postgresql+psycopg://user@host/db), each step in a fresh schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import insert, make_url, text
from sqlalchemy.orm import sessionmaker

# bench/ is not an installed package: run as `python bench/<script>.py`, its folder is sys.path[0]
from bench.synthetic import Progress
from configuration.settings import Settings
from review.access import Principal
from review.db import make_engine, migrate, open_database
from review.importer import BATCH, Importer
from review.models import Record
from review.record_files import decode_text, name_parts, parse_text_record
from review.records import record_key

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_RECORDS = SHARED / "data" / "kommineni2024" / "records" / "mixtral_8_22b"
QUESTIONS = 28
RUN = "bench-import"
PREAMBLE = ("Use the following pieces of context to answer the question at the end. If you don't know the answer, "
            "just say that you don't know, don't try to make up an answer.")
# The instruction block the study wrapped around each question (../shared/data/kommineni2024/RAG_prompt.txt).
PROMPT = ("%INSTRUCTIONS:\nUse the provided pieces of context to answer the query in less than 400 words. If you "
          "don't know the answer, just say that you don't know, don't try to make up an answer.\n\n%Query\n"
          "Query: \"{query}\"\n\nProvide your answer as follows:\n\nAnswer:::\nAnswer: (provide your answer to query "
          "in less than 400 words)\n\nAnswer:::")
WORDS = ("model training seed random data split validation network layer optimizer learning rate batch epoch "
         "augmentation camera image species forest sensor accuracy loss dropout convolutional dataset annotation "
         "classification detection trap acoustic recordings hyperparameters pipeline deployment GPU framework "
         "the of and in to a was were for with by on is as from that we our this these").split()


# -- the files -----------------------------------------------------------------------------------------------


def real_papers(folder: Path) -> dict[str, dict[int, bytes]]:
    """The records of `folder`, by document id and question number (empty when the folder is absent)."""
    papers: dict[str, dict[int, bytes]] = defaultdict(dict)
    if folder.is_dir():
        for path in sorted(folder.glob("*.txt")):
            doc_id, number = name_parts(path.stem)
            if doc_id is not None:
                papers[doc_id][number] = path.read_bytes()
    return dict(papers)


def synthetic_papers(papers: int, seed: int) -> dict[str, dict[int, bytes]]:
    """Seeded records of the real ones' shape and size (passages of 600-1000 characters, answers of 400-1100)."""
    rng = random.Random(seed)

    def words(chars: int) -> str:
        out, length = [], 0
        while length < chars:
            out.append(rng.choice(WORDS))
            length += len(out[-1]) + 1
        return " ".join(out)

    passages = [words(rng.randint(600, 1000)) for _ in range(200)]
    answers = [words(rng.randint(400, 1100)) + "." for _ in range(100)]
    queries = [f"Question {n}: which {words(40)} are used in the deep learning pipeline?"
               for n in range(1, QUESTIONS + 1)]
    result = {}
    for paper in range(papers):
        result[f"10.5555_synthetic.{paper:05d}"] = {
            n: "\n\n".join([PREAMBLE, *rng.sample(passages, 4), "Question: " + PROMPT.format(query=queries[n - 1]),
                            "Helpful Answer:\n" + rng.choice(answers)]).encode("utf-8")
            for n in range(1, QUESTIONS + 1)
        }
    return result


def write_records(folder: Path, count: int, papers: dict[str, dict[int, bytes]], progress: Progress) -> int:
    """`count` files in `folder`, the papers cycled, each copy round under new document ids; bytes written."""
    docs = sorted(papers)
    written = size = 0
    for index in range(math.ceil(count / QUESTIONS) * len(docs)):  # enough even if a paper lacks questions
        doc = docs[index % len(docs)]
        for number, data in sorted(papers[doc].items()):
            if written == count:
                return size
            (folder / f"Publication_{doc}-r{index // len(docs)}.pdf_CQ{number}.txt").write_bytes(data)
            written += 1
            size += len(data)
        progress.update(f"writing record files {written}/{count}")
    return size


# -- the databases ---------------------------------------------------------------------------------------------


@contextmanager
def fresh_database(server_url: str | None, workdir: Path, name: str) -> Iterator[str]:
    """A URL of an empty database: a SQLite file under `workdir`, or a new schema of the server (dropped after)."""
    if server_url is None:
        yield f"sqlite:///{(workdir / name / 'review.sqlite3').resolve()}"
        return
    schema = f"loupe_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def database_mb(url: str) -> float:
    """The size of the database: SQLite's files (after the last connection closed), or the schema's tables."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6, 1)
    engine = make_engine(url)
    with engine.connect() as connection:
        size = connection.scalar(text(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"))
    engine.dispose()
    return round(int(size) / 1e6, 1)


# -- the timed steps -----------------------------------------------------------------------------------------


def parse_all(folder: Path) -> list[tuple[Any, str]]:
    """Every record file of `folder` read and parsed, with its name."""
    return [(parse_text_record(path.stem, decode_text(path.read_bytes())), str(path))
            for path in sorted(folder.glob("*.txt"))]


def bulk_insert(url: str, folder: Path) -> tuple[float, int]:
    """Read, parse and insert the rows into the (migrated) database with plain INSERTs; seconds and rows."""
    engine = make_engine(url)
    migrate(engine)
    sessions = sessionmaker(engine)
    started = time.perf_counter()
    parsed = parse_all(folder)
    rows = [{
        "id": record_key(RUN, record.external_id), "external_id": record.external_id, "run": RUN,
        "doc_id": record.doc_id, "question_id": record.question_id, "question": record.question,
        "scope": [record.doc_id], "passages": record.passages, "prompt": record.prompt, "answer": record.answer,
        "generator_kind": "imported", "generator_model": folder.name, "settings": {"imported": True},
        "meta": {**record.meta, "context_recorded": record.context_recorded}, "source": origin,
    } for record, origin in parsed]
    with sessions() as session:
        for start in range(0, len(rows), BATCH):
            session.execute(insert(Record), rows[start : start + BATCH])
        session.commit()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, len(rows)


def use_database(url: str) -> None:
    """Point review.db.open_database at `url`, as DATABASE_URL does for `cli.py import`."""
    if url.startswith("sqlite"):
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = url


def import_folder(url: str, data_dir: Path, folder: Path, progress: Progress, label: str) -> dict[str, Any]:
    """What `cli.py import FOLDER --run NAME` does, timed: open the database, then import the folder."""
    use_database(url)
    started = time.perf_counter()
    sessions = open_database(Settings(data_dir=data_dir))
    opened = time.perf_counter()
    report = Importer(sessions, actor=Principal("bench", "admin"), run=RUN).import_paths(
        [folder], progress=lambda done, total, current: progress.update(f"{label}: {current} {done}/{total}"))
    elapsed = time.perf_counter() - opened
    sessions.kw["bind"].dispose()
    if report.failures or report.skipped:
        raise SystemExit(f"{label}: {len(report.failures)} failed, {len(report.skipped)} skipped, e.g. "
                         f"{(report.failures + report.skipped)[0]}")
    return {"seconds": elapsed, "open_s": opened - started, "records": dict(report.records)}


def measure(server_url: str | None, workdir: Path, folder: Path, files: int, rounds: int,
            progress: Progress) -> dict[str, Any]:
    """Bulk insert, first import and re-import on fresh databases of one kind, `rounds` times; medians."""
    times: dict[str, list[float]] = defaultdict(list)
    for round_ in range(rounds):
        with fresh_database(server_url, workdir, f"bulk{round_}") as url:
            progress.update(f"bulk insert, round {round_ + 1}/{rounds}", force=True)
            seconds, rows = bulk_insert(url, folder)
            if rows != files:
                raise SystemExit(f"the bulk insert wrote {rows} rows of {files} files")
            times["bulk_insert"].append(seconds)
            baseline_mb = database_mb(url)
        with fresh_database(server_url, workdir, f"import{round_}") as url:
            data_dir = Path(url.split("///", 1)[1]).parent if url.startswith("sqlite") else workdir / "data"
            first = import_folder(url, data_dir, folder, progress, f"first import {round_ + 1}/{rounds}")
            if first["records"] != {"added": files}:
                raise SystemExit(f"the first import gave {first['records']}, expected {files} added")
            again = import_folder(url, data_dir, folder, progress, f"re-import {round_ + 1}/{rounds}")
            if again["records"] != {"unchanged": files}:
                raise SystemExit(f"the re-import gave {again['records']}, expected all {files} unchanged")
            for name, result in (("first_import", first), ("reimport", again)):
                times[name].append(result["seconds"])
                times[name + "_open"].append(result["open_s"])
            import_mb = database_mb(url)
    os.environ.pop("DATABASE_URL", None)

    def timing(name: str, **extra: Any) -> dict[str, Any]:
        seconds = statistics.median(times[name])
        return {"records": files, "seconds": round(seconds, 3), "records_per_s": round(files / seconds, 1), **extra}

    def open_s(name: str) -> float:
        return round(statistics.median(times[name + "_open"]), 3)

    results = {
        "first_import": timing("first_import", added=files, open_s=open_s("first_import")),
        "reimport": timing("reimport", unchanged=files, open_s=open_s("reimport")),
        "database_mb": import_mb,
        "bulk_insert": timing("bulk_insert", database_mb=baseline_mb),
    }
    results["ratio"] = {"first_import_vs_bulk_insert": round(
        statistics.median(times["bulk_insert"]) / statistics.median(times["first_import"]), 3)}
    return results


def run(count: int, rounds: int, seed: int, server_url: str | None, synthetic: bool) -> dict[str, Any]:
    progress = Progress()
    papers = {} if synthetic else real_papers(SHARED_RECORDS)
    if papers:
        source = f"{SHARED_RECORDS.name} records from ../shared ({sum(map(len, papers.values()))} files, cycled)"
    else:
        if not synthetic:
            print(f"{SHARED_RECORDS} is absent: writing synthetic records of the same shape", file=sys.stderr)
        papers = synthetic_papers(math.ceil(count / QUESTIONS), seed)
        source = "synthetic"
    with tempfile.TemporaryDirectory(prefix="loupe-bench-import-") as tmp:
        workdir = Path(tmp)
        folder = workdir / "records"
        folder.mkdir()
        size = write_records(folder, count, papers, progress)
        del papers
        progress.update("reading every file once (untimed)", force=True)
        for path in folder.iterdir():
            path.read_bytes()
        results: dict[str, Any] = {
            "files": count, "source": source, "file_bytes_mean": round(size / count), "folder_mb": round(size / 1e6, 1),
            "rounds": rounds, "load_before": round(os.getloadavg()[0], 2),
        }
        parse_times = []
        for round_ in range(rounds):
            progress.update(f"parsing only, round {round_ + 1}/{rounds}", force=True)
            started = time.perf_counter()
            parsed = len(parse_all(folder))
            parse_times.append(time.perf_counter() - started)
            if parsed != count:
                raise SystemExit(f"parsed {parsed} records of {count} files")
        parse_s = statistics.median(parse_times)
        results["parse_only"] = {"records": count, "seconds": round(parse_s, 3),
                                 "records_per_s": round(count / parse_s, 1)}
        databases = {"sqlite": None} | ({"postgresql": server_url} if server_url else {})
        for name, url in databases.items():
            results[name] = measure(url, workdir, folder, count, rounds, progress)
            results[name]["ratio"]["first_import_vs_parse_only"] = round(
                results[name]["first_import"]["records_per_s"] / results["parse_only"]["records_per_s"], 3)
        progress.done()
    results["load_after"] = round(os.getloadavg()[0], 2)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Import of {results['files']} record files ({results['source']}; {results['file_bytes_mean']} bytes each on "
        f"average, {results['folder_mb']} MB), medians of {results['rounds']} round(s)",
        f"  parse only (read + parse, no database): {results['parse_only']['seconds']:.2f} s, "
        f"{results['parse_only']['records_per_s']:.0f} records/s",
        "",
        f"{'database':<11}{'step':<14}{'seconds':>9}{'records/s':>11}{'open s':>8}{'ratio':>8}  outcome",
    ]
    for name in ("sqlite", "postgresql"):
        if name not in results:
            continue
        db = results[name]
        first, again, bulk = db["first_import"], db["reimport"], db["bulk_insert"]
        lines += [
            f"{name:<11}{'first import':<14}{first['seconds']:>9.2f}{first['records_per_s']:>11.0f}"
            f"{first['open_s']:>8.2f}{db['ratio']['first_import_vs_bulk_insert']:>8.2f}  {first['added']} added, "
            f"database {db['database_mb']} MB",
            f"{'':<11}{'re-import':<14}{again['seconds']:>9.2f}{again['records_per_s']:>11.0f}"
            f"{again['open_s']:>8.2f}{'':>8}  {again['unchanged']} unchanged",
            f"{'':<11}{'bulk insert':<14}{bulk['seconds']:>9.2f}{bulk['records_per_s']:>11.0f}{'':>8}{'':>8}  "
            f"baseline, database {bulk['database_mb']} MB",
        ]
    lines += [
        "",
        "first import / re-import: review.importer.Importer.import_paths (what `cli.py import` runs), seconds without",
        "  opening the database (open s: open_database, i.e. engine + migrations); bulk insert: read + parse + plain",
        "  INSERTs of the same rows, no hashing or look-ups; ratio = import records/s / bulk insert records/s",
        f"peak resident memory of the process {results['peak_rss_mb']} MB; load average (1 min) before / after: "
        f"{results['load_before']:.2f} / {results['load_after']:.2f} on {os.cpu_count()} CPUs",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=12992, help="how many record files (default 12992 = 464 x 28)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement, report medians (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the synthetic records (default 0)")
    parser.add_argument("--database-url", help="also measure on this database (a fresh schema of it), e.g. "
                        "postgresql+psycopg://user@host/db")
    parser.add_argument("--synthetic", action="store_true", help="synthetic records even where ../shared is present")
    parser.add_argument("--json", action="store_true", help="print only the results as JSON")
    args = parser.parse_args(argv)
    if args.records < 1 or args.rounds < 1:
        parser.error("--records and --rounds must be at least 1")
    if args.database_url and args.database_url.startswith("sqlite"):
        parser.error("--database-url is for a database server; SQLite is always measured")
    results = run(args.records, args.rounds, args.seed, args.database_url, args.synthetic)
    print(json.dumps(results) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
