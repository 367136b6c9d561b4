"""Support analysis throughput on the study's real records: records analysed per second.

The study (../shared/data/kommineni2024) asked five models each question of each paper from one retrieval, so
five answers share one context. This script takes the mixtral_8_22b prompt records of the first --papers papers
(their passages) and, for the papers that have human decisions, all five models' answers to the same questions
from human_decisions/*.csv, and analyses them in queue order (paper, question, model), as `cli.py analyze` would.

Side by side in one process, on the same records and the same loaded model, each from a cold cache:
  baseline   a fresh SupportAligner per record with lexical_prefilter=False: every passage sentence of every
             record embedded, nothing shared between records (no cache)
  loupe      loupe.support.analyze_support per record, as `cli.py analyze` and the panel do: one aligner for the
             process, passage sentences that share no content word with the answer are not embedded, and
             embeddings of passage sentences are cached across records (the five answers of one question share
             all of them)
  batched    as the background worker does (review.analysis_worker): loupe.support.prepare_support on each
             chunk of 8 records (their sentences embedded in one call), then analyze_support on each
  two_threads (with --threads-variant) loupe with torch's default intra-op threads, as before 2026-11
             (components.sentence_model.ENCODE_THREADS)

Prints records/s, median and p95 ms per record for each, the ratios to the baseline, whether batched and loupe
gave the same support maps, and how many passage sentences the aligner's cache held at the end (against its
size, CACHE_SIZE).
    python bench/analyze.py [--papers 15] [--records N] [--no-baseline] [--threads-variant] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

from bench.synthetic import Progress
from components import sentence_model, support_aligner
from components.support_aligner import CACHE_SIZE, PREPARE_RECORDS, SupportAligner
from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings
from loupe import support
from loupe.support import analyze_support, prepare_support
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


def cold() -> None:
    """A fresh aligner (an empty embedding cache) and an empty passage-split cache for the next variant; the
    loaded model stays."""
    support._aligner.cache_clear()
    support_aligner._sentences_of.cache_clear()


def timed(name: str, analyse, records, progress: Progress, prepare=None) -> tuple[dict, list]:
    """Figures of one variant, and its support maps. With `prepare`, each chunk of PREPARE_RECORDS records is
    prepared first; that time is shared out among the chunk's records."""
    seconds, maps = [], []
    for first in range(0, len(records), PREPARE_RECORDS if prepare else 1):
        chunk = records[first : first + (PREPARE_RECORDS if prepare else 1)]
        started = time.perf_counter()
        if prepare:
            prepare(chunk)
        shared = (time.perf_counter() - started) / len(chunk)
        for answer, passages in chunk:
            started = time.perf_counter()
            maps.append(analyse(answer, passages))
            seconds.append(time.perf_counter() - started + shared)
            progress.update(f"{name}: {len(seconds)}/{len(records)}")
    progress.done()
    ordered = sorted(seconds)
    return {"records": len(records), "records_per_s": round(len(records) / sum(seconds), 2),
            "median_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1)}, maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=15, help="papers of the study to take (default 15)")
    parser.add_argument("--records", type=int, help="only the first N records of those papers")
    parser.add_argument("--no-baseline", action="store_true", help="skip the (slow) baseline")
    parser.add_argument("--threads-variant", action="store_true",
                        help="also time loupe with torch's default threads (as before ENCODE_THREADS)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is absent: this benchmark needs the study's records")
    settings = Settings()
    model = resolve_embedding_model(settings.embedding_model)
    records = study_records(args.papers)[: args.records]
    analyze_support(settings, "Warm-up sentence.", ["Warm-up passage."])  # load the model once for all
    progress = Progress()

    def baseline(answer: str, passages: list[str]) -> dict:
        aligner = SupportAligner(model=model, lexical_prefilter=False)
        aligner.warm_up()  # the process's encoder: the model itself is loaded once
        return aligner.run(answer=answer, passages=passages)["support"].to_dict()

    def loupe(answer: str, passages: list[str]) -> dict:
        return analyze_support(settings, answer, passages)

    results: dict = {}
    if not args.no_baseline:
        results["baseline"], _ = timed("baseline", baseline, records, progress)
    cold()
    results["loupe"], loupe_maps = timed("loupe", loupe, records, progress)
    cache = len(support._aligner(model)._cache)
    cold()
    results["batched"], batched_maps = timed("batched", loupe, records, progress,
                                             prepare=lambda chunk: prepare_support(settings, chunk))
    if args.threads_variant:
        encoder = sentence_model.SentenceEncoderFactory.get_encoder(model)
        encoder.threads, kept = 0, encoder.threads
        cold()
        results["two_threads"], _ = timed("two_threads", loupe, records, progress)
        encoder.threads = kept
    if "baseline" in results:
        for name in ("loupe", "batched", "two_threads"):
            if name in results:
                results[f"ratio_{name}"] = round(results[name]["records_per_s"] / results["baseline"]["records_per_s"], 2)
    results["batched_same_maps"] = sum(a == b for a, b in zip(loupe_maps, batched_maps))
    results["cache"] = {"passage_sentences": cache, "size": CACHE_SIZE}
    if args.json:
        print(json.dumps(results))
        return
    for name in ("baseline", "loupe", "batched", "two_threads"):
        if name in results:
            figures = results[name]
            print(f"{name:11} {figures['records']} records  {figures['records_per_s']:7.2f} records/s  "
                  f"median {figures['median_ms']:7.1f} ms  p95 {figures['p95_ms']:7.1f} ms"
                  + (f"  ({results[f'ratio_{name}']}x baseline)" if f"ratio_{name}" in results else ""))
    print(f"batched gave the same support map as loupe for {results['batched_same_maps']} of {len(records)} records")
    print(f"embedding cache after loupe: {cache} texts of {CACHE_SIZE}")


if __name__ == "__main__":
    main()
