"""Support analysis throughput on the study's real records: records analysed per second.

The study (../shared/data/kommineni2024) asked five models each question of each paper from one retrieval, so
five answers share one context. This script takes the mixtral_8_22b prompt records of the first --papers papers
(their passages) and, for the papers that have human decisions, all five models' answers to the same questions
from human_decisions/*.csv, and analyses them in queue order (paper, question, model), as `cli.py analyze` would.

Side by side in one process, on the same records and the same loaded model:
  baseline   a fresh SupportAligner per record with lexical_prefilter=False: every passage sentence of every
             record embedded, nothing shared between records (no cache)
  loupe      loupe.support.analyze_support: one aligner for the process, passage sentences that share no content
             word with the answer are not embedded, and embeddings of passage sentences are cached across records
             (the five answers of one question share all of them)

Prints records/s, median and p95 ms per record for each, and the ratio.
    python bench/analyze.py [--papers 15] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

from bench.synthetic import Progress
from components.support_aligner import SupportAligner
from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings
from loupe.support import analyze_support
from review.record_files import parse_text_record

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "kommineni2024"


def study_records(papers: int) -> list[tuple[str, list[str]]]:
    """(answer, passage texts) in queue order: for each paper and question, each model's answer."""
    folder = SHARED / "records" / "mixtral_8_22b"
    answers: dict[str, list[str]] = {}
    for table in sorted((SHARED / "human_decisions").glob("*.csv")):
        with table.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                answers.setdefault(row["Unique_ID"].removesuffix(".txt"), []).append(row["CQ_Answer"] or "")
    stems = sorted(path.stem for path in folder.glob("*.txt"))
    chosen = sorted({stem.rsplit("_CQ", 1)[0] for stem in stems if stem in answers})[:papers]
    records = []
    for stem in stems:
        if stem.rsplit("_CQ", 1)[0] not in chosen:
            continue
        parsed = parse_text_record(stem, (folder / f"{stem}.txt").read_text(encoding="utf-8", errors="replace"))
        passages = [passage["text"] for passage in parsed.passages]
        for answer in answers.get(stem, [parsed.answer]):
            records.append((answer, passages))
    return records


def timed(name: str, analyse, records, progress: Progress) -> dict:
    seconds = []
    for number, (answer, passages) in enumerate(records, start=1):
        started = time.perf_counter()
        analyse(answer, passages)
        seconds.append(time.perf_counter() - started)
        progress.update(f"{name}: {number}/{len(records)}")
    progress.done()
    ordered = sorted(seconds)
    return {"records": len(records), "records_per_s": round(len(records) / sum(seconds), 2),
            "median_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=15, help="papers of the study to take (default 15)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is absent: this benchmark needs the study's records")
    settings = Settings()
    model = resolve_embedding_model(settings.embedding_model)
    records = study_records(args.papers)
    analyze_support(settings, "Warm-up sentence.", ["Warm-up passage."])  # load the model once for both
    progress = Progress()

    def baseline(answer: str, passages: list[str]) -> None:
        aligner = SupportAligner(model=model, lexical_prefilter=False)
        aligner.warm_up()  # the process's encoder: the model itself is loaded once
        aligner.run(answer=answer, passages=passages)

    results = {"baseline": timed("baseline", baseline, records, progress),
               "loupe": timed("loupe", lambda a, p: analyze_support(settings, a, p), records, progress)}
    results["ratio_records_per_s"] = round(results["loupe"]["records_per_s"] / results["baseline"]["records_per_s"], 2)
    if args.json:
        print(json.dumps(results))
        return
    for name in ("baseline", "loupe"):
        figures = results[name]
        print(f"{name:9} {figures['records']} records  {figures['records_per_s']:7.2f} records/s  "
              f"median {figures['median_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms")
    print(f"loupe / baseline: {results['ratio_records_per_s']}x records/s")


if __name__ == "__main__":
    main()
