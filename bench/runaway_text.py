"""Hostile text through splitting, analysis and import (issue 24, items 2, 5 and 7): seconds taken, printed.

  split        components.sentences.sentence_spans on '.' * n + 'a' and '!?' * (n / 2) + 'a'
  analyze      `cli.py analyze` (a subprocess, model load included) on four imported records whose answers hold
               15,000, 20,000, 25,000 and 30,000 dots, less the same on one ordinary record (the process start
               and the model load); the acceptance bound is 5 s in all
  many         loupe.support.analyze_support on one record of 10,000 passages (the first 50 are analysed)
  chunks       review.context_chunks.group_context of 1,000 short paragraphs with --chunk-chars 1000 and
               --chunks 100 (and 500 where the bound allows it)

    python bench/runaway_text.py [--cli PATH] [--skip analyze,many,...]

`--cli` names another checkout's cli.py, to time `analyze` on the code before a change.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOTS = (15_000, 20_000, 25_000, 30_000)


def _seconds(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def bench_split() -> None:
    from components.sentences import sentence_spans

    for n in (10_000, 30_000):
        print(f"split  '.' * {n:,} + 'a': {_seconds(sentence_spans, '.' * n + 'a'):.3f} s;  "
              f"'!?' * {n // 2:,} + 'a': {_seconds(sentence_spans, '!?' * (n // 2) + 'a'):.3f} s")


def bench_analyze(cli: Path) -> None:
    """`cli.py analyze` on one ordinary record, then on it and the four records of dots: the difference is what
    the dots cost (each run starts a process and loads the model)."""
    ordinary = {"id": "ordinary", "question": "Which seed was used?", "answer": "The seed was 42.", "doc_id": "d1",
                "contexts": ["The seed was fixed at 42 for every run."]}
    dots = [{**ordinary, "id": f"dots{n}", "answer": "." * n} for n in DOTS]
    alone, with_dots = _analyze_seconds(cli, [ordinary]), _analyze_seconds(cli, [ordinary, *dots])
    print(f"analyze  `cli.py analyze`: one ordinary record {alone:.1f} s; with four records of "
          f"{', '.join(f'{n:,}' for n in DOTS)} dots {with_dots:.1f} s: the dots {with_dots - alone:.1f} s")


def _analyze_seconds(cli: Path, records: list[dict]) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "records.jsonl"
        path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
        env = {"LOUPE_DATA_DIR": str(Path(folder) / "data"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, str(cli), "import", str(path), "--run", "r"], env=env, check=True,
                       capture_output=True, cwd=cli.parent)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(cli), "analyze", "--run", "r"], env=env, check=True,
                       capture_output=True, cwd=cli.parent)
        return time.perf_counter() - started


def bench_many() -> None:
    from configuration.settings import Settings
    from loupe.support import analyze_support

    settings = Settings()
    analyze_support(settings, "Warm-up sentence.", ["Warm-up passage."])
    passages = [f"Seed {number} was fixed at noon for run {number}." for number in range(10_000)]
    started = time.perf_counter()
    support = analyze_support(settings, "The seed was fixed at noon.", passages)
    print(f"many  10,000 passages: {time.perf_counter() - started:.2f} s, cut: {support.get('cut')}")


def bench_chunks() -> None:
    from review.context_chunks import MAX_CHUNKS, ChunkLimits, group_context

    context = "\n\n".join(f"Paragraph {number} is short." for number in range(1_000))
    for chunks in (100, 500):
        if chunks > MAX_CHUNKS:
            print(f"chunks  --chunks {chunks}: refused (at most {MAX_CHUNKS})")
            continue
        print(f"chunks  1,000 paragraphs --chunk-chars 1000 --chunks {chunks}: "
              f"{_seconds(group_context, context, ChunkLimits(1000, chunks)):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", type=Path, default=ROOT / "cli.py", help="the cli.py whose `analyze` is timed")
    parser.add_argument("--skip", default="", help="comma-separated: split, analyze, many, chunks")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    for name, run in (("split", bench_split), ("analyze", lambda: bench_analyze(args.cli.resolve())),
                      ("many", bench_many), ("chunks", bench_chunks)):
        if name not in skip:
            run()


if __name__ == "__main__":
    main()
