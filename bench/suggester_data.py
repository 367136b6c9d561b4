"""The human-judged answers of Kommineni et al. (2024) as training examples for the verdict suggester.

Each row of `human_decisions/<model>.csv` (CQ, CQ_Answer, Unique_ID, decision) is one example: that model's
answer, the passages of the `mixtral_8_22b` prompt record of the same paper and question (the study retrieved once
and gave every model the same context), and the person's Yes (accept) / No (reject). Blank decisions are skipped.
Support maps are computed with the configured MiniLM model through `loupe.support.analyze_support` and cached on
disk (one JSON file per answer and context), so that a second run takes seconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import configuration  # noqa: F401 - first: it switches Haystack's telemetry off before Haystack is imported

# isort: split
from components.support_aligner import (
    ABSTENTION_PATTERNS,
    DEFAULT_MAX_EVIDENCE,
    DEFAULT_MIN_SCORE,
    DEFAULT_SEMANTIC_WEIGHT,
)
from configuration.settings import Settings
from review.record_files import name_parts, parse_text_record

REPO = Path(__file__).resolve().parents[1]
KOMMINENI = REPO.parent / "shared" / "data" / "kommineni2024"
DEFAULT_CACHE = REPO / "data" / "cache" / "suggester-support"  # data/ is gitignored
LABELS = {"yes": "accept", "no": "reject"}
_BLANK_LINES = re.compile(r"\n(?:[ \t\r\f\v]*\n)+")


@dataclass
class Example:
    """One human-judged answer with its context and (once computed) its support map."""

    id: str  # <model>/<record file stem>
    model: str  # the generating model, the CSV's name
    paper: str  # the grouping key of the cross-validation
    question_id: str
    question: str
    answer: str
    passages: list[dict[str, Any]]
    verdict: str  # "accept" | "reject"
    support: dict[str, Any] | None = None


def load_examples(root: Path = KOMMINENI, models: list[str] | None = None) -> list[Example]:
    """Every decided row of every (or the named) model's decisions CSV, with the mixtral_8_22b passages.

    :raises FileNotFoundError: the data or a record file behind a decision is missing."""
    decisions = sorted((root / "human_decisions").glob("*.csv"))
    if not decisions:
        raise FileNotFoundError(f"no decisions CSVs under {root / 'human_decisions'}")
    records_dir = root / "records" / "mixtral_8_22b"
    parsed: dict[str, Any] = {}
    examples: list[Example] = []
    for path in decisions:
        model = path.stem
        if models and model not in models:
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                label = LABELS.get((row.get("decision") or "").strip().lower())
                if label is None:
                    continue
                stem = row["Unique_ID"].strip().removesuffix(".txt")
                if stem not in parsed:
                    record_path = records_dir / f"{stem}.txt"
                    parsed[stem] = parse_text_record(stem, record_path.read_text(encoding="utf-8"))
                record = parsed[stem]
                paper, number = name_parts(stem)
                examples.append(Example(
                    id=f"{model}/{stem}", model=model, paper=paper or stem, question_id=f"Q{number}",
                    question=record.question, answer=(row.get("CQ_Answer") or "").strip(),
                    passages=[{"text": text} for text in paragraphs(record.passages)], verdict=label,
                ))
    return examples


def paragraphs(passages: list[dict[str, Any]]) -> list[str]:
    """The blank-line paragraphs of a prompt record's passages, in order: the study's context split as the
    importer split it before passages were regrouped into chunks (review.context_chunks). The suggester's
    features do not depend on how the context is cut into passages (no passage counts or positions), so the
    support maps cached for these paragraphs serve."""
    return [part for passage in passages for part in _BLANK_LINES.split(passage["text"].strip("\n")) if part.strip()]


def support_key(settings: Settings, answer: str, passages: list[str]) -> str:
    """The cache key of a support map: the aligner's settings and patterns, the answer and the passages."""
    aligner = {"model": settings.embedding_model, "min_score": DEFAULT_MIN_SCORE,
               "semantic_weight": DEFAULT_SEMANTIC_WEIGHT, "max_evidence": DEFAULT_MAX_EVIDENCE,
               "abstention": hashlib.sha256("\n".join(ABSTENTION_PATTERNS).encode()).hexdigest()}
    payload = json.dumps({"aligner": aligner, "answer": answer, "passages": passages}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def attach_support(examples: list[Example], settings: Settings, cache: Path = DEFAULT_CACHE,
                   every_s: float = 10.0) -> None:
    """Give every example its support map, from the cache or computed now (a progress line on stderr)."""
    from loupe.support import analyze_support  # loads the sentence model on first use

    cache.mkdir(parents=True, exist_ok=True)
    started = last = time.monotonic()
    computed = 0
    for done, example in enumerate(examples, start=1):
        texts = [passage["text"] for passage in example.passages]
        path = cache / f"{support_key(settings, example.answer, texts)}.json"
        if path.exists():
            example.support = json.loads(path.read_text(encoding="utf-8"))
        else:
            example.support = analyze_support(settings, example.answer, texts)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(example.support, ensure_ascii=False), encoding="utf-8")
            temporary.replace(path)
            computed += 1
        now = time.monotonic()
        if now - last >= every_s or done == len(examples):
            rate = computed / (now - started) if computed else 0.0
            left = (len(examples) - done) / rate if rate else 0.0
            sys.stderr.write(f"support maps: {done}/{len(examples)} ({computed} computed, "
                             f"{rate:.1f}/s, about {left / 60:.0f} min left)\n")
            sys.stderr.flush()
            last = now
