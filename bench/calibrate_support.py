"""Calibrate SupportAligner's thresholds on real RAG records: own context versus another paper's context.

    python bench/calibrate_support.py [--records 600] [--seed 0] [--threads 1] [--cache /tmp/support.npz]
                                      [--latency-records 40] [--show-abstentions 40] [--json]

All 1680 records by default (about 18,000 distinct sentences to embed: some 8 minutes on 2 CPU cores; --records N
takes a seeded subset, --cache keeps the embeddings for the next run).

Data: ../shared/data/kommineni2024 (beside the repository root), the mixtral_8_22b records. Each record holds the
retrieved context (the text between the prompt's first line and "Question:"; its blank-line separated paragraphs
are the passages) and the answer after "Helpful Answer:".

  positives  each sentence of a non-abstaining answer (abstention and hedged sentences left out), scored against
             the passages of its OWN record: the best combined score over all passage sentences;
  negatives  the same sentences scored against the passages of a record of a DIFFERENT paper for the same
             question number (seeded choice): they approximate "not supported".

For every semantic_weight in 0, 0.05, ..., 1 and min_score in -0.2, -0.19, ..., 1.0 the script counts a score
>= min_score as "supported" and computes precision / recall / F1 (positive class: supported) and balanced
accuracy; the chosen point is the one with the highest balanced accuracy (ties: the higher min_score, then the
lower weight). Scoring is SupportAligner's own (score_matrices, with its lexical prefilter); the same point
without the prefilter is reported too. The same
point is also evaluated on every non-abstention sentence of every answer (abstaining answers included), a noisier
set because abstaining answers mostly add outside knowledge.

Secondary checks: the human Yes/No decisions (human_decisions/mixtral_8_22b.csv) against the share of supported
sentences and the abstention flag; the abstention detector's counts; SupportAligner.run latency on real records
(p50 / p95 wall time and p50 CPU time over --latency-records records after a warm-up: a fresh aligner per record,
the same without the prefilter, and one aligner over consecutive records, whose passages recur). Progress goes to
stderr.

Hand check of the abstention patterns (ABSTENTION_PATTERNS in components/support_aligner.py), on the full set:
  - `--show-abstentions 40` (seed 0) prints 40 flagged answers with their first abstention sentence. Read by eye,
    all 40 do say that the context lacks (some of) the requested information: precision 40/40. Six of them are
    partial ("However, the exact criterion is not explicitly stated in the provided context.") in answers that
    also give information, and one sentence carries a claim next to the abstention ("the authors mention using
    diverse data collection methods, although no further details are given"); such a claim goes unchecked.
  - 40 random flagged sentences (seed 5): 40/40 statements about missing information.
  - 80 random unflagged answers (two samples of 40) were read for missed abstentions: 3 found ("... do not appear
    to be explicitly stated in the provided context", "there isn't a direct statement about ...", "The
    information about <15 words> is not available"); the patterns were widened for them, so the numbers printed
    now include them.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import configuration  # noqa: F401 - first: it switches Haystack's telemetry off before Haystack is imported

# isort: split
# bench/ is not an installed package: run as `python bench/<script>.py`, its folder is sys.path[0]
from bench.synthetic import Progress
from components.sentence_model import SentenceEncoderFactory
from components.support_aligner import (
    AnswerSentence,
    PassageSentence,
    SupportAligner,
    answer_sentences,
    passage_sentences,
    score_matrices,
    shares_words,
)
from configuration.model_paths import MINILM_ID, resolve_embedding_model

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "kommineni2024"
MODEL_NAME = "mixtral_8_22b"
WEIGHTS = [round(0.05 * i, 2) for i in range(21)]
THRESHOLDS = [round(-0.2 + 0.01 * i, 2) for i in range(121)]
PAD = -10.0


@dataclass
class Record:
    name: str
    paper: str
    question: int
    passages: list[str]
    answer: str
    sentences: list[AnswerSentence]
    candidates: list[PassageSentence]

    @property
    def abstains(self) -> bool:
        return any(sentence.abstention for sentence in self.sentences)


def parse_record(path: Path) -> tuple[list[str], str]:
    """(passages, answer) of one record file."""
    text = path.read_text(encoding="utf-8")
    answer_at = text.find("\nHelpful Answer:")
    if answer_at < 0:
        raise ValueError(f"{path.name}: no 'Helpful Answer:'")
    question_at = text.rfind("\nQuestion:", 0, answer_at)
    context_start = text.find("\n") + 1  # after the instruction line
    context = text[context_start:question_at] if question_at > 0 else ""
    passages = [part.strip() for part in context.replace("\r\n", "\n").split("\n\n") if part.strip()]
    answer = text[answer_at + len("\nHelpful Answer:") :].strip()
    return passages, answer


def load_records(limit: int, seed: int, progress: Progress) -> list[Record]:
    paths = sorted((DATA / "records" / MODEL_NAME).glob("*.txt"))
    if limit and limit < len(paths):
        paths = sorted(random.Random(seed).sample(paths, limit))
    records = []
    for count, path in enumerate(paths, start=1):
        stem = path.name[: -len(".txt")]
        paper, _, cq = stem.rpartition("_CQ")
        passages, answer = parse_record(path)
        records.append(Record(path.name, paper, int(cq), passages, answer, answer_sentences(answer),
                              passage_sentences(passages)))
        progress.update(f"parsing records {count}/{len(paths)}")
    return records


def pick_partners(records: list[Record], seed: int) -> dict[str, Record]:
    """For each record, a record of another paper for the same question number (seeded)."""
    rng = random.Random(seed + 1)
    by_question: dict[int, list[Record]] = {}
    for record in records:
        by_question.setdefault(record.question, []).append(record)
    partners = {}
    for record in records:
        others = [other for other in by_question[record.question] if other.paper != record.paper and other.candidates]
        if others:
            partners[record.name] = rng.choice(others)
    return partners


def embed_all(records: list[Record], model: str, progress: Progress, cache: Path | None) -> dict[str, np.ndarray]:
    """One embedding per distinct cleaned sentence text; with a cache file, texts embedded before are reused."""
    texts = sorted({s.clean for r in records for s in r.sentences} | {c.clean for r in records for c in r.candidates})
    vectors: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache, allow_pickle=False) as stored:
            vectors = dict(zip(stored["texts"].tolist(), stored["vectors"]))
    missing = [text for text in texts if text not in vectors]
    batch = 512
    for start in range(0, len(missing), batch):
        chunk = missing[start : start + batch]
        for text, vector in zip(chunk, SentenceEncoderFactory.get_encoder(model).encode(chunk)):
            vectors[text] = vector
        progress.update(f"embedding sentences {min(start + batch, len(missing))}/{len(missing)}")
    if cache is not None and missing:
        names = sorted(vectors)
        np.savez(cache, texts=np.array(names), vectors=np.stack([vectors[name] for name in names]))
    return vectors


def best_rows(record: Record, candidates: list[PassageSentence], vectors: dict[str, np.ndarray], width: int,
              prefilter: bool):
    """Semantic and lexical matrices of the record's sentences against candidates (only those sharing a content
    word with the answer when prefilter is set, as SupportAligner does by default), padded to `width` columns."""
    if prefilter:
        candidates = [c for c, keep in zip(candidates, shares_words(record.sentences, candidates)) if keep]
    answers = np.stack([vectors[s.clean] for s in record.sentences])
    if candidates:
        passages = np.stack([vectors[c.clean] for c in candidates])
    else:
        passages = np.zeros((0, answers.shape[1]), dtype=np.float32)
    semantic, lexical = score_matrices(record.sentences, candidates, answers, passages)
    padded_s = np.full((len(record.sentences), width), PAD, dtype=np.float32)
    padded_l = np.full((len(record.sentences), width), PAD, dtype=np.float32)
    padded_s[:, : semantic.shape[1]] = semantic
    padded_l[:, : lexical.shape[1]] = lexical
    return padded_s, padded_l


def metrics(own: np.ndarray, other: np.ndarray, threshold: float) -> dict[str, float]:
    true_pos = float((own >= threshold).sum())
    false_pos = float((other >= threshold).sum())
    recall = true_pos / len(own)
    specificity = 1.0 - false_pos / len(other)
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "specificity": round(specificity, 4), "balanced_accuracy": round((recall + specificity) / 2, 4)}


def auc(own: np.ndarray, other: np.ndarray) -> float:
    """Probability that an own-context score beats an other-context score (ties count half)."""
    ordered = np.sort(other)
    below = np.searchsorted(ordered, own, side="left")
    equal = np.searchsorted(ordered, own, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(own) * len(other)))


def best_scores(own_s, own_l, oth_s, oth_l, weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Each sentence's best combined score against its own and against the other record's passages."""
    return ((weight * own_s + (1 - weight) * own_l).max(axis=1),
            (weight * oth_s + (1 - weight) * oth_l).max(axis=1))


def evaluate(own_s, own_l, oth_s, oth_l, mask: np.ndarray) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The grid: for each weight the min_score with the best balanced accuracy; and the best row overall."""
    grid, best = [], None
    for weight in WEIGHTS:
        own, other = best_scores(own_s, own_l, oth_s, oth_l, weight)
        own, other = own[mask], other[mask]
        top = None
        for threshold in THRESHOLDS:
            point = metrics(own, other, threshold)
            if top is None or point["balanced_accuracy"] >= top[1]["balanced_accuracy"]:
                top = (threshold, point)
        grid.append({"semantic_weight": weight, "auc": round(auc(own, other), 4), "min_score": top[0], **top[1]})
        if best is None or top[1]["balanced_accuracy"] > best["balanced_accuracy"]:
            best = grid[-1]
    return grid, best


def read_decisions() -> dict[str, str]:
    path = DATA / "human_decisions" / f"{MODEL_NAME}.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["Unique_ID"]: row["decision"].strip() for row in csv.DictReader(handle)
                if row.get("decision", "").strip() in ("Yes", "No")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=0, help="seeded subset size; 0 = all 1680 records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-records", type=int, default=50)
    parser.add_argument("--show-abstentions", type=int, default=0, help="print this many flagged answers (stderr)")
    parser.add_argument("--cache", type=Path, help="an .npz file keeping sentence embeddings between runs")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent (../shared exists only on the project's build machines)")

    progress = Progress()
    model = resolve_embedding_model(MINILM_ID)
    records = load_records(args.records, args.seed, progress)
    partners = pick_partners(records, args.seed)
    vectors = embed_all(records, model, progress, args.cache)
    progress.done()

    width = max(len(r.candidates) for r in records) or 1
    keys = ("own_s", "own_l", "oth_s", "oth_l")
    rows: dict[bool, dict[str, list[np.ndarray]]] = {True: {k: [] for k in keys}, False: {k: [] for k in keys}}
    clean_mask, all_mask = [], []
    for record in records:
        if not record.sentences or record.name not in partners:
            continue
        for prefilter in (True, False):
            own_s, own_l = best_rows(record, record.candidates, vectors, width, prefilter)
            oth_s, oth_l = best_rows(record, partners[record.name].candidates, vectors, width, prefilter)
            for key, value in zip(keys, (own_s, own_l, oth_s, oth_l)):
                rows[prefilter][key].append(value)
        for sentence in record.sentences:
            claim = not sentence.abstention and not sentence.hedged
            all_mask.append(not sentence.abstention)
            clean_mask.append(claim and not record.abstains)
    clean, every = np.array(clean_mask), np.array(all_mask)
    matrices = {prefilter: [np.concatenate(rows[prefilter][key]) for key in keys] for prefilter in (True, False)}

    grid, best = evaluate(*matrices[True], clean)
    weight, threshold = best["semantic_weight"], best["min_score"]
    own, other = best_scores(*matrices[True], weight)
    best_f1 = max(({"min_score": t, **metrics(own[clean], other[clean], t)} for t in THRESHOLDS),
                  key=lambda point: point["f1"])
    semantic_only = next(row for row in grid if row["semantic_weight"] == 1.0)
    lexical_only = next(row for row in grid if row["semantic_weight"] == 0.0)
    own_all, other_all = best_scores(*matrices[False], weight)
    without_prefilter = {"auc": round(auc(own_all[clean], other_all[clean]), 4),
                         **metrics(own_all[clean], other_all[clean], threshold)}
    grid_all, best_all = evaluate(*matrices[False], clean)
    without_prefilter["best"] = best_all

    # Human decisions: share of supported sentences among non-abstention ones and among all, abstention flag.
    decisions = read_decisions()
    by_decision: dict[str, dict[str, list[float]]] = {
        decision: {"share": [], "grounded": [], "abstains": []} for decision in ("Yes", "No")}
    for record in records:
        decision = decisions.get(record.name)
        if decision is None or not record.sentences:
            continue
        semantic, lexical = best_rows(record, record.candidates, vectors, width, prefilter=True)
        scores = (weight * semantic + (1 - weight) * lexical).max(axis=1)
        judged = [score >= threshold for score, s in zip(scores, record.sentences) if not s.abstention]
        if judged:
            by_decision[decision]["share"].append(float(np.mean(judged)))
        by_decision[decision]["grounded"].append(sum(judged) / len(record.sentences))
        by_decision[decision]["abstains"].append(float(record.abstains))
    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 4) if values else None

    human = {
        decision: {"records": len(values["abstains"]), "mean_supported_share": mean(values["share"]),
                   "mean_grounded_share": mean(values["grounded"]), "abstaining_share": mean(values["abstains"])}
        for decision, values in by_decision.items()
    }

    flagged = [r for r in records if r.abstains]
    abstention = {
        "answers": len(records),
        "answers_flagged": len(flagged),
        "answers_starting_with_abstention": sum(1 for r in records if r.sentences and r.sentences[0].abstention),
        "sentences": sum(len(r.sentences) for r in records),
        "sentences_flagged": sum(s.abstention for r in records for s in r.sentences),
        "sentences_hedged": sum(s.hedged for r in records for s in r.sentences),
        "judged_flagged_yes_no": [sum(1 for r in flagged if decisions.get(r.name) == d) for d in ("Yes", "No")],
        "judged_unflagged_yes_no": [sum(1 for r in records if not r.abstains and decisions.get(r.name) == d)
                                    for d in ("Yes", "No")],
    }
    if args.show_abstentions:
        for record in random.Random(args.seed).sample(flagged, min(args.show_abstentions, len(flagged))):
            first = next(s for s in record.sentences if s.abstention)
            print(f"--- {record.name}\n    {first.clean[:240]}", file=sys.stderr)

    # Latency of the component itself on real records (one batched encode per run), wall and process CPU time.
    timed = [r for r in records if r.sentences and r.candidates][: args.latency_records]
    latency: dict[str, Any] = {
        "records": len(timed), "torch_threads": torch.get_num_threads(),
        "mean_passages": round(statistics.fmean(len(r.passages) for r in timed), 1) if timed else None,
        "mean_passage_chars": round(statistics.fmean(sum(map(len, r.passages)) for r in timed)) if timed else None,
        "mean_passage_sentences": round(statistics.fmean(len(r.candidates) for r in timed), 1) if timed else None,
        "mean_answer_sentences": round(statistics.fmean(len(r.sentences) for r in timed), 1) if timed else None,
    }
    settings = {"min_score": threshold, "semantic_weight": weight}
    for label, prefilter, fresh in (("prefilter", True, True), ("no_prefilter", False, True),
                                    ("prefilter_warm_cache", True, False)):
        shared = SupportAligner(model, lexical_prefilter=prefilter, **settings)
        for record in timed[:3]:  # warm-up: model loading
            shared.run(answer=record.answer, passages=record.passages)
        shared = SupportAligner(model, lexical_prefilter=prefilter, **settings)
        wall, cpu = [], []
        for count, record in enumerate(timed, start=1):
            # fresh: a new aligner per record, nothing cached; warm: one aligner over the records in name order,
            # i.e. the questions of one paper after another, whose retrieved passages recur
            timer = SupportAligner(model, lexical_prefilter=prefilter, **settings) if fresh else shared
            started, started_cpu = time.perf_counter(), time.process_time()
            timer.run(answer=record.answer, passages=record.passages)
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            progress.update(f"timing ({label}) {count}/{len(timed)}")
        latency[label] = {
            "wall_p50_ms": round(statistics.median(wall), 1) if wall else None,
            "wall_p95_ms": round(float(np.percentile(wall, 95)), 1) if wall else None,
            "cpu_p50_ms": round(statistics.median(cpu), 1) if cpu else None,
        }
    progress.done()

    result: dict[str, Any] = {
        "records": len(records),
        "pairs": len(rows[True]["own_s"]),
        "positives": int(clean.sum()),
        "negatives": int(clean.sum()),
        "chosen": {"semantic_weight": weight, "min_score": threshold,
                   **{k: best[k] for k in ("precision", "recall", "f1", "specificity", "balanced_accuracy", "auc")}},
        "best_f1_at_chosen_weight": best_f1,
        "all_non_abstention_sentences": {"sentences": int(every.sum()),
                                          **metrics(own[every], other[every], threshold)},
        "without_prefilter": without_prefilter,
        "semantic_only": semantic_only,
        "lexical_only": lexical_only,
        "grid": grid,
        "human_decisions": human,
        "abstention": abstention,
        "latency": latency,
    }
    if args.json:
        print(json.dumps(result))
        return
    chosen = result["chosen"]
    print(f"records {result['records']}, positive/negative sentences {result['positives']} each")
    print(f"chosen: semantic_weight={weight} min_score={threshold}  precision {chosen['precision']:.3f} "
          f"recall {chosen['recall']:.3f} F1 {chosen['f1']:.3f} balanced accuracy {chosen['balanced_accuracy']:.3f} "
          f"AUC {chosen['auc']:.3f}")
    print(f"best F1 at that weight: min_score={best_f1['min_score']} F1 {best_f1['f1']:.3f} "
          f"(precision {best_f1['precision']:.3f}, recall {best_f1['recall']:.3f})")
    for name in ("semantic_only", "lexical_only"):
        row = result[name]
        print(f"{name}: min_score={row['min_score']} balanced accuracy {row['balanced_accuracy']:.3f} "
              f"F1 {row['f1']:.3f} AUC {row['auc']:.3f}")
    every_row = result["all_non_abstention_sentences"]
    print(f"all non-abstention sentences ({every_row['sentences']}): precision {every_row['precision']:.3f} "
          f"recall {every_row['recall']:.3f} F1 {every_row['f1']:.3f} "
          f"balanced accuracy {every_row['balanced_accuracy']:.3f}")
    print("weight  auc    min_score  bal.acc  F1")
    for row in grid:
        print(f"{row['semantic_weight']:<7} {row['auc']:.3f}  {row['min_score']:<9}  {row['balanced_accuracy']:.3f}"
              f"    {row['f1']:.3f}")
    for decision, values in human.items():
        print(f"human {decision}: {values['records']} records, supported share of non-abstention sentences "
              f"{values['mean_supported_share']}, of all sentences {values['mean_grounded_share']}, "
              f"abstaining {values['abstaining_share']}")
    print("abstention: " + ", ".join(f"{key} {value}" for key, value in abstention.items()))
    print(f"prefilter off at the chosen point: balanced accuracy {without_prefilter['balanced_accuracy']:.3f} "
          f"F1 {without_prefilter['f1']:.3f} AUC {without_prefilter['auc']:.3f}; its own best: weight "
          f"{best_all['semantic_weight']} min_score {best_all['min_score']} balanced accuracy "
          f"{best_all['balanced_accuracy']:.3f}")
    print(f"latency over {latency['records']} records ({latency['mean_passages']} passages, "
          f"{latency['mean_passage_chars']} chars, {latency['mean_passage_sentences']} passage sentences, "
          f"{latency['mean_answer_sentences']} answer sentences on average; {latency['torch_threads']} torch threads):")
    for key in ("prefilter", "no_prefilter", "prefilter_warm_cache"):
        row = latency[key]
        print(f"  {key}: wall p50 {row['wall_p50_ms']} ms, p95 {row['wall_p95_ms']} ms, CPU p50 {row['cpu_p50_ms']} ms")


if __name__ == "__main__":
    main()
