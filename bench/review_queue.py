"""Queue paging at scale: the Queue page's SQL against loading every record and filtering in Python.

Fills a fresh SQLite review database with N synthetic records of the size of the Kommineni et al. records
(four 1,000-character passages, a 1,500-character answer), 28 questions per document, support columns set
for most, a verdict on a third of them and a third assigned to the annotator; then times what one step through
the queue costs, as a reviewer sees it and as that annotator (whose queue holds their assigned records) does:

- queue: `review.queue.queue_entries` (ids and statuses of the whole filtered, sorted queue) plus loading the
  one record shown (`get_record`): what the Queue page runs when the filters change;
- next: `get_record` alone: what a step to the next or previous record costs once the queue is read;
- baseline: every record loaded as an ORM object with its annotations, then filtered and sorted in Python
  (what a page built on "load the records, then filter" does).

Usage: .venv/bin/python bench/review_queue.py --records 100000 [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time

from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload, sessionmaker

from review.access import Principal
from review.db import make_engine, migrate
from review.models import Annotation, Assignment, Record
from review.queue import QueueFilter, queue_entries
from review.records import get_record

QUESTIONS = 28
WORDS = ("model training seed random data split validation network layer optimizer learning rate batch epoch "
         "augmentation camera image species forest sensor accuracy loss dropout").split()

REVIEWER = Principal("bench", "reviewer")  # sees every record: the queue without assignment conditions
ANNOTATOR = Principal("me", "annotator")  # sees the records assigned to them: the queue joins the assignments
CASES = {  # name: (filter, who looks at the queue)
    "all, newest first": (QueueFilter(annotator="me", sort="newest"), REVIEWER),
    "one run, unreviewed, riskiest": (QueueFilter(annotator="me", runs=("run-0",), statuses=("unreviewed",),
                                                  sort="riskiest"), REVIEWER),
    "one question, by document": (QueueFilter(annotator="me", questions=("Question 7 about the pipeline?",),
                                              sort="document"), REVIEWER),
    "has unsupported sentences": (QueueFilter(annotator="me", support="unsupported", sort="riskiest"), REVIEWER),
    "annotator: assigned, newest": (QueueFilter(annotator="me", sort="newest"), ANNOTATOR),
}


def text(rng: random.Random, chars: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)


def fill(sessions, records: int, seed: int) -> None:
    rng = random.Random(seed)
    passages = [[{"text": text(rng, 1000)} for _ in range(4)] for _ in range(50)]
    answers = [text(rng, 1500) for _ in range(50)]
    with sessions() as session:
        for start in range(0, records, 2000):
            rows = []
            for i in range(start, min(start + 2000, records)):
                analysed = rng.random() < 0.8
                rows.append({
                    "id": f"r{i}", "external_id": f"r{i}", "run": f"run-{i % 3}", "doc_id": f"doc{i // QUESTIONS}",
                    "question_id": f"Q{i % QUESTIONS + 1}", "question": f"Question {i % QUESTIONS + 1} about the pipeline?",
                    "passages": passages[i % 50], "answer": answers[i % 50], "generator_kind": "imported",
                    "generator_model": f"model-{i % 2}", "settings": {}, "meta": {}, "scope": [],
                    "unsupported_count": rng.randint(0, 4) if analysed else None,
                    "abstains": rng.random() < 0.3 if analysed else None,
                    "support": {"sentences": []} if analysed else None,
                })
            session.execute(insert(Record), rows)
            session.execute(insert(Assignment), [  # a third of the records are assigned to "me"
                {"run": row["run"], "record_id": row["id"], "annotator": "me", "assigned_by": "bench"}
                for row in rows if int(row["id"][1:]) % 3 == 0])
            session.execute(insert(Annotation), [
                {"record_id": row["id"], "annotator": "me", "verdict": rng.choice(["accept", "reject", "correct"]),
                 "passage_marks": {}, "evidence": [], "version": 1} for row in rows if rng.random() < 1 / 3])
            session.commit()
            print(f"filled {min(start + 2000, records)}/{records}", file=sys.stderr)


def queue_step(sessions, flt: QueueFilter, actor: Principal) -> int:
    with sessions() as session:
        entries = queue_entries(session, flt, actor=actor)
        if entries:
            get_record(session, record_id=entries[len(entries) // 2][0])
    return len(entries)


def page_step(sessions, record_id: str) -> None:
    with sessions() as session:
        get_record(session, record_id=record_id)


def baseline_step(sessions, flt: QueueFilter, actor: Principal) -> int:
    with sessions() as session:
        records = session.scalars(select(Record).options(selectinload(Record.annotations))).all()
        assigned = set(session.scalars(select(Assignment.record_id).where(Assignment.annotator == actor.name)))
    status_of = {"accept": "accepted", "correct": "corrected", "reject": "rejected"}

    def status(record) -> str:
        mine = next((a for a in record.annotations if a.annotator == flt.annotator), None)
        return status_of[mine.verdict] if mine else "unreviewed"

    kept = [r for r in records
            if (actor.sees_everyone or r.id in assigned) and (not flt.runs or r.run in flt.runs) and (not flt.questions or r.question in flt.questions)
            and (not flt.statuses or status(r) in flt.statuses)
            and (flt.support != "unsupported" or (r.unsupported_count or 0) > 0)]
    keys = {"newest": lambda r: r.created_at, "riskiest": lambda r: -(r.unsupported_count or -1),
            "document": lambda r: (r.doc_id, len(r.question_id), r.question_id)}
    kept.sort(key=keys[flt.sort])
    return len([(r.id, status(r)) for r in kept])


def timed(function, *args) -> tuple[float, int]:
    started = time.perf_counter()
    result = function(*args)
    return (time.perf_counter() - started) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/review.sqlite3")
        migrate(engine)
        sessions = sessionmaker(engine, expire_on_commit=False)
        started = time.perf_counter()
        fill(sessions, args.records, args.seed)
        results = {"records": args.records, "fill_s": round(time.perf_counter() - started, 1), "cases": {}}
        for name, (flt, actor) in CASES.items():
            print(f"timing {name}", file=sys.stderr)
            queue_times, sizes = zip(*(timed(queue_step, sessions, flt, actor) for _ in range(args.rounds)))
            with sessions() as session:
                entries = queue_entries(session, flt, actor=actor)
            picks = random.Random(args.seed).sample(entries, min(args.rounds * 4, len(entries)))
            page_times = [timed(page_step, sessions, record_id)[0] for record_id, _ in picks]
            base_times, base_sizes = zip(*(timed(baseline_step, sessions, flt, actor)
                                           for _ in range(args.baseline_rounds)))
            if sizes[0] != base_sizes[0]:
                raise SystemExit(f"{name}: the queue has {sizes[0]} records, the baseline {base_sizes[0]}")
            results["cases"][name] = {
                "queue_length": sizes[0], "queue_p50_ms": round(statistics.median(queue_times), 1),
                "next_record_p50_ms": round(statistics.median(page_times), 1),
                "baseline_p50_ms": round(statistics.median(base_times), 1),
                "ratio": round(statistics.median(base_times) / statistics.median(queue_times), 1),
            }
        engine.dispose()
    if args.json:
        print(json.dumps(results))
        return
    print(f"Queue step over {args.records} records (filled in {results['fill_s']} s); medians of {args.rounds} "
          f"(queue) and {args.baseline_rounds} (baseline) rounds")
    print(f"{'case':34} {'length':>7} {'queue ms':>9} {'next ms':>8} {'baseline ms':>12} {'ratio':>7}")
    for name, row in results["cases"].items():
        print(f"{name:34} {row['queue_length']:>7} {row['queue_p50_ms']:>9} {row['next_record_p50_ms']:>8} "
              f"{row['baseline_p50_ms']:>12} {row['ratio']:>7}")
    print("queue: review.queue.queue_entries + get_record of one entry (reading the filtered queue); next: get_record "
          "alone (stepping through a queue already read); baseline: all records loaded, filtered and sorted in "
          "Python; ratio = baseline / queue")


if __name__ == "__main__":
    main()
