"""Retrieval quality on a BEIR-format set: nDCG@10, Recall@5, Recall@10 and MRR@10 for each retrieval mode.

A BEIR set is three files: `corpus.jsonl` (`{"_id", "title", "text"}` per line), `queries.jsonl`
(`{"_id", "text"}` per line) and a qrels TSV (`query-id<TAB>corpus-id<TAB>score`, after a header line).
The corpus is indexed with Loupe's own indexing pipeline (cleaning, sentence chunks, embeddings) into a fresh
temporary embedded store, and every query goes through Loupe's retrieval pipeline. Retrieval returns chunks;
a document ranks where its best chunk ranks (chunks deduplicated by `doc_id`, first occurrence kept).

Metrics follow BEIR (pytrec_eval): nDCG@10 with linear graded gains and a log2 discount, Recall@k as the share
of a query's relevant documents (score > 0) in the top k, MRR@10 as 1/rank of the first relevant document in
the top 10 (0 when none). Each is averaged over the queries that have at least one relevant document.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack import Document

from configuration.model_paths import apply_offline_mode
from configuration.settings import RETRIEVAL_MODES, Settings
from loupe.progress import ProgressCallback
from loupe.stores import StoreBundle, build_retrievers
from pipelines.indexing import build_indexing_pipeline
from pipelines.retrieval import build_retrieval_pipeline, retrieval_inputs

logger = logging.getLogger(__name__)

METRICS = ("ndcg@10", "recall@5", "recall@10", "mrr@10")
_INDEX_BATCH = 32  # documents per indexing-pipeline run: bounds memory and paces the progress reports
_PROGRESS_STEPS = 20  # query progress is reported about this many times per mode


class BeirFormatError(ValueError):
    """A BEIR file is missing or malformed; the message names the file (and line) and what is wrong."""


# --- metrics on one ranking -------------------------------------------------------------------------------


def ndcg_at_k(ranking: list[str], judgments: dict[str, int], k: int = 10) -> float:
    """nDCG@k with graded gains (the judgment's score, negatives as 0) and discount 1/log2(rank + 1).

    :param ranking: document ids, best first (no duplicates).
    :param judgments: document id -> relevance score for one query; unjudged documents count as 0.
    :returns: 0.0 when the query has no document with a positive score.
    """
    gains = [max(judgments.get(doc_id, 0), 0) for doc_id in ranking[:k]]
    ideal = sorted((max(score, 0) for score in judgments.values()), reverse=True)[:k]
    ideal_dcg = _dcg(ideal)
    return _dcg(gains) / ideal_dcg if ideal_dcg > 0 else 0.0


def _dcg(gains: list[int]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def recall_at_k(ranking: list[str], judgments: dict[str, int], k: int) -> float:
    """The share of the relevant documents (score > 0) found in the top k; 0.0 when none is relevant."""
    relevant = {doc_id for doc_id, score in judgments.items() if score > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def mrr_at_k(ranking: list[str], judgments: dict[str, int], k: int = 10) -> float:
    """1 / the rank of the first relevant document (score > 0) in the top k; 0.0 when there is none."""
    for rank, doc_id in enumerate(ranking[:k], start=1):
        if judgments.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


def score_rankings(rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """The four metrics averaged over the queries of `qrels`, rounded to 4 places.

    :param rankings: query id -> document ids, best first; a query without a ranking scores 0.
    :param qrels: query id -> {document id: score}; every query in it should have a positive score.
    """
    if not qrels:
        raise ValueError("no query to evaluate: no query has a relevant document (score > 0) in the qrels")
    totals = dict.fromkeys(METRICS, 0.0)
    for query_id, judgments in qrels.items():
        ranking = rankings.get(query_id, [])
        totals["ndcg@10"] += ndcg_at_k(ranking, judgments, 10)
        totals["recall@5"] += recall_at_k(ranking, judgments, 5)
        totals["recall@10"] += recall_at_k(ranking, judgments, 10)
        totals["mrr@10"] += mrr_at_k(ranking, judgments, 10)
    return {name: round(total / len(qrels), 4) for name, total in totals.items()}


def document_ranking(chunks: list[Document]) -> list[str]:
    """Document ids in the order of their best chunk (first occurrence wins)."""
    return list(dict.fromkeys(chunk.meta.get("doc_id") for chunk in chunks if chunk.meta.get("doc_id") is not None))


# --- reading the files ------------------------------------------------------------------------------------


@dataclass
class BeirSet:
    """A parsed BEIR set. `qrels` keeps only queries with a relevant document; `skipped_queries` counts the rest."""

    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    skipped_queries: int = 0


def load_beir(corpus_path: Path, queries_path: Path, qrels_path: Path) -> BeirSet:
    """Read and check the three files.

    :raises BeirFormatError: a file is missing, unreadable or malformed, or the qrels name an unknown query or
        document; the message names the file and line.
    """
    corpus = load_corpus(Path(corpus_path))
    queries = load_queries(Path(queries_path))
    qrels = load_qrels(Path(qrels_path), queries, corpus)
    positive = {qid: judged for qid, judged in qrels.items() if any(score > 0 for score in judged.values())}
    return BeirSet(corpus=corpus, queries=queries, qrels=positive, skipped_queries=len(queries) - len(positive))


def load_corpus(path: Path) -> dict[str, dict[str, str]]:
    """`_id` -> {"title", "text"}. `_id` and `text` are required, `title` may be missing or null."""
    corpus: dict[str, dict[str, str]] = {}
    for number, row in _jsonl_rows(path):
        doc_id = _required_id(row, path, number)
        text = row.get("text")
        if not isinstance(text, str):
            raise BeirFormatError(f"{path}:{number}: document {doc_id!r} has no \"text\" string")
        title = row.get("title")
        if title is not None and not isinstance(title, str):
            raise BeirFormatError(f"{path}:{number}: document {doc_id!r}: \"title\" must be a string")
        if doc_id in corpus:
            raise BeirFormatError(f"{path}:{number}: duplicate document id {doc_id!r}")
        corpus[doc_id] = {"title": title or "", "text": text}
    if not corpus:
        raise BeirFormatError(f"{path}: no documents")
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    """`_id` -> query text; both required, the text not blank."""
    queries: dict[str, str] = {}
    for number, row in _jsonl_rows(path):
        query_id = _required_id(row, path, number)
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BeirFormatError(f"{path}:{number}: query {query_id!r} has no \"text\"")
        if query_id in queries:
            raise BeirFormatError(f"{path}:{number}: duplicate query id {query_id!r}")
        queries[query_id] = text.strip()
    if not queries:
        raise BeirFormatError(f"{path}: no queries")
    return queries


def load_qrels(path: Path, queries: dict[str, Any], corpus: dict[str, Any]) -> dict[str, dict[str, int]]:
    """query id -> {document id: integer score}, from a TSV whose first line is the header."""
    lines = _numbered_lines(path)
    if not lines:
        raise BeirFormatError(f"{path}: empty file; expected a header line 'query-id<TAB>corpus-id<TAB>score'")
    number, header = lines[0]
    columns = header.split("\t")
    if len(columns) != 3 or _is_int(columns[2]):
        raise BeirFormatError(
            f"{path}:{number}: expected the header line 'query-id<TAB>corpus-id<TAB>score', got {header[:80]!r}"
        )
    qrels: dict[str, dict[str, int]] = {}
    for number, line in lines[1:]:
        columns = line.split("\t")
        if len(columns) != 3:
            raise BeirFormatError(
                f"{path}:{number}: expected 3 tab-separated columns (query-id, corpus-id, score), "
                f"got {len(columns)}: {line[:80]!r}"
            )
        query_id, doc_id, raw_score = (column.strip() for column in columns)
        if not _is_int(raw_score):
            raise BeirFormatError(f"{path}:{number}: the score must be an integer, got {raw_score!r}")
        if query_id not in queries:
            raise BeirFormatError(f"{path}:{number}: unknown query id {query_id!r} (not in the queries file)")
        if doc_id not in corpus:
            raise BeirFormatError(f"{path}:{number}: unknown document id {doc_id!r} (not in the corpus file)")
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            raise BeirFormatError(f"{path}:{number}: a second judgment for query {query_id!r}, document {doc_id!r}")
        judged[doc_id] = int(raw_score)
    return qrels


def _is_int(text: str) -> bool:
    try:
        int(text.strip())
    except ValueError:
        return False
    return True


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a UTF-8 file with their 1-based numbers; errors name the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise BeirFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BeirFormatError(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as error:
        raise BeirFormatError(f"{path}: not UTF-8 text (byte offset {error.start})") from None
    except OSError as error:
        raise BeirFormatError(f"{path}: cannot read: {error.strerror or error}") from None
    return [(number, line.rstrip("\r")) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in _numbered_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise BeirFormatError(f"{path}:{number}: invalid JSON: {error.msg} at column {error.colno}") from None
        if not isinstance(row, dict):
            raise BeirFormatError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def _required_id(row: dict[str, Any], path: Path, number: int) -> str:
    value = row.get("_id")
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise BeirFormatError(f"{path}:{number}: missing or empty \"_id\"")
    return str(value).strip()


# --- indexing and retrieval -------------------------------------------------------------------------------


class EvaluationResults(dict):
    """{mode: {metric: value}}, a plain dict (so it prints as JSON), with counts about the run as attributes."""

    def __init__(self, scores: dict[str, dict[str, float]], *, queries: int, skipped_queries: int,
                 documents: int, chunks: int) -> None:
        super().__init__(scores)
        self.queries = queries
        self.skipped_queries = skipped_queries
        self.documents = documents
        self.chunks = chunks


def evaluate_beir(
    settings: Settings,
    corpus_path: Path,
    queries_path: Path,
    qrels_path: Path,
    modes: list[str] | tuple[str, ...] = RETRIEVAL_MODES,
    progress: ProgressCallback | None = None,
) -> EvaluationResults:
    """Index the corpus into a temporary store and score each retrieval mode on the queries.

    The retrievers return as many chunks as `settings.top_k_bm25` and `settings.top_k_dense` say, and all of
    them are fused (no cut at `settings.top_k`), so the ranking is the one the app's fusion produces.

    :param modes: any of "bm25", "dense", "hybrid".
    :param progress: called as (done, total, label) while indexing and while querying each mode.
    :returns: {mode: {"ndcg@10", "recall@5", "recall@10", "mrr@10"}} in the order of `modes`; the
        attributes `queries` and `skipped_queries` (no relevant document) say what was averaged over.
    :raises BeirFormatError: on a missing or malformed file (a ValueError).
    :raises ValueError: on an unknown mode, or when no query has a relevant document.
    """
    unknown = [mode for mode in modes if mode not in RETRIEVAL_MODES]
    if unknown or not modes:
        raise ValueError(f"modes must be among {', '.join(RETRIEVAL_MODES)}, got {list(modes)}")
    beir = load_beir(Path(corpus_path), Path(queries_path), Path(qrels_path))
    if not beir.qrels:
        raise ValueError(f"{qrels_path}: no query has a relevant document (score > 0); nothing to evaluate")
    if beir.skipped_queries:
        logger.warning("skipped %s: no relevant document in %s", _queries(beir.skipped_queries), qrels_path)
    apply_offline_mode(settings)
    with tempfile.TemporaryDirectory(prefix="loupe-beir-") as data_dir:
        run_settings = settings.replace(data_dir=Path(data_dir), backend="embedded")
        bundle = build_retrievers(run_settings)
        chunks = _index_corpus(run_settings, bundle.store, beir.corpus, str(corpus_path), progress)
        scores = {}
        for mode in modes:
            rankings = _rank(run_settings, bundle, mode, beir, progress)
            scores[mode] = score_rankings(rankings, beir.qrels)
    return EvaluationResults(
        scores, queries=len(beir.qrels), skipped_queries=beir.skipped_queries, documents=len(beir.corpus), chunks=chunks
    )


def _index_corpus(
    settings: Settings, store: Any, corpus: dict[str, dict[str, str]], source: str, progress: ProgressCallback | None
) -> int:
    """Clean, chunk, embed and write the corpus; returns the number of chunks written."""
    pipeline = build_indexing_pipeline(settings, store)
    documents = [
        # A document with an empty text is indexed by its title, the way BEIR's retrievers see title + text.
        Document(content=row["text"] if row["text"].strip() else row["title"],
                 meta={"doc_id": doc_id, "title": row["title"], "source": source})
        for doc_id, row in corpus.items()
    ]
    documents = [document for document in documents if document.content.strip()]  # nothing to find in them
    written = 0
    for start in range(0, len(documents), _INDEX_BATCH):
        if progress:
            progress(start, len(documents), f"indexing {source}")
        result = pipeline.run({"cleaner": {"documents": documents[start : start + _INDEX_BATCH]}})
        written += result["writer"]["documents_written"]
    if progress:
        progress(len(documents), len(documents), f"indexed {source}")
    return written


def _rank(
    settings: Settings, bundle: StoreBundle, mode: str, beir: BeirSet, progress: ProgressCallback | None
) -> dict[str, list[str]]:
    """Each evaluated query's document ranking in this mode."""
    # A Haystack component belongs to one pipeline, so each mode gets its own retrievers on the same store.
    pipeline = build_retrieval_pipeline(settings, build_retrievers(settings, bundle.store), mode)
    everything = settings.top_k_bm25 + settings.top_k_dense
    total = len(beir.qrels)
    step = max(1, total // _PROGRESS_STEPS)
    rankings: dict[str, list[str]] = {}
    for done, query_id in enumerate(beir.qrels, start=1):
        result = pipeline.run(retrieval_inputs(pipeline, beir.queries[query_id], None, everything))
        rankings[query_id] = document_ranking(result["fusion"]["documents"])
        if progress and (done % step == 0 or done == total):
            progress(done, total, f"{mode} queries")
    return rankings


# --- output -----------------------------------------------------------------------------------------------


def format_table(results: dict[str, dict[str, float]]) -> str:
    """An aligned text table: one row per mode, one column per metric; with several modes, * marks the best."""
    if not results:
        return "(no results)"
    best = {name: max(row.get(name, 0.0) for row in results.values()) for name in METRICS}
    mode_width = max(len("mode"), *(len(mode) for mode in results))
    lines = ["  ".join([f"{'mode':<{mode_width}}", *(f"{name:>10}" for name in METRICS)])]
    for mode, row in results.items():
        cells = []
        for name in METRICS:
            value = row.get(name)
            mark = "*" if len(results) > 1 and value == best[name] else " "
            cells.append("         -" if value is None else f"{value:>9.4f}{mark}")
        lines.append("  ".join([f"{mode:<{mode_width}}", *cells]))
    if isinstance(results, EvaluationResults):
        note = f"{_queries(results.queries)}, {results.documents} documents ({results.chunks} chunks)"
        if results.skipped_queries:
            note += f"; skipped {_queries(results.skipped_queries)} without a relevant document"
        lines.append(note + ("; * best per column" if len(results) > 1 else ""))
    return "\n".join(lines)


def _queries(count: int) -> str:
    return f"{count} query" if count == 1 else f"{count} queries"
