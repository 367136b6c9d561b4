"""Loupe's retrieval against stock Haystack hybrid retrieval with the same embedding model, on one BEIR set.

    python bench/eval_baseline.py                      # PubMedQA (../shared), all 500 items
    python bench/eval_baseline.py --limit 100          # its first 100 items
    python bench/eval_baseline.py CORPUS QUERIES QRELS # any BEIR-format set
    python bench/eval_baseline.py --json               # the results alone, as one JSON object

Loupe: `loupe.retrieval_eval.evaluate_beir` (sentence chunks, titles embedded, BM25 on chunk text, RankFusion
with the configured top_k_bm25 / top_k_dense / rrf_k; a document ranks where its best chunk ranks).
Stock: InMemoryDocumentStore with whole documents (title + text, unsplit), InMemoryBM25Retriever,
SentenceTransformers embedders, InMemoryEmbeddingRetriever, DocumentJoiner(join_mode="reciprocal_rank_fusion"),
every component at its defaults except the model and the retrievers' top_k (the same as Loupe's).
Both are scored by the same metric functions; the two tables are printed side by side. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import configuration  # noqa: F401 - first: it switches Haystack's telemetry off before Haystack is imported

# isort: split
from haystack import Document, Pipeline
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)

# bench/ is not an installed package: run as `python bench/<script>.py`, its folder is sys.path[0]
from bench.make_beir_pubmedqa import DEFAULT_SOURCE, write_beir
from bench.synthetic import Progress
from configuration.model_paths import apply_offline_mode, resolve_embedding_model
from configuration.settings import RETRIEVAL_MODES, Settings, load_settings
from loupe.retrieval_eval import METRICS, BeirSet, evaluate_beir, format_table, load_beir, score_rankings

MODES = ("bm25", "dense", "hybrid")


def stock_haystack(settings: Settings, beir: BeirSet, progress: Progress) -> dict[str, dict[str, float]]:
    """Scores of stock Haystack retrieval (whole documents) in the three modes, from one pipeline run per query."""
    model = resolve_embedding_model(settings.embedding_model)
    local = not settings.allow_downloads
    store = InMemoryDocumentStore()
    documents = [
        Document(id=doc_id, content=f"{row['title']}\n\n{row['text']}".strip(), meta={"title": row["title"]})
        for doc_id, row in beir.corpus.items()
    ]
    embedder = SentenceTransformersDocumentEmbedder(model=model, local_files_only=local, progress_bar=False)
    progress.update(f"stock: embedding {len(documents)} documents", force=True)
    store.write_documents(embedder.run(documents=documents)["documents"])

    pipeline = Pipeline()
    pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(model=model, local_files_only=local, progress_bar=False))
    pipeline.add_component("bm25", InMemoryBM25Retriever(document_store=store, top_k=settings.top_k_bm25))
    pipeline.add_component("dense", InMemoryEmbeddingRetriever(document_store=store, top_k=settings.top_k_dense))
    pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
    pipeline.connect("text_embedder.embedding", "dense.query_embedding")
    pipeline.connect("bm25", "joiner")
    pipeline.connect("dense", "joiner")

    rankings: dict[str, dict[str, list[str]]] = {mode: {} for mode in MODES}
    for done, query_id in enumerate(beir.qrels, start=1):
        progress.update(f"stock: query {done}/{len(beir.qrels)}")
        query = beir.queries[query_id]
        result = pipeline.run(
            {"text_embedder": {"text": query}, "bm25": {"query": query}}, include_outputs_from={"bm25", "dense"}
        )
        for mode, name in (("bm25", "bm25"), ("dense", "dense"), ("hybrid", "joiner")):
            rankings[mode][query_id] = [document.id for document in result[name]["documents"]]
    return {mode: score_rankings(rankings[mode], beir.qrels) for mode in MODES}


def side_by_side(ours: dict[str, dict[str, float]], stock: dict[str, dict[str, float]]) -> str:
    """One row per mode; each metric as `ours / stock`."""
    header = f"{'mode':<8}" + "".join(f"{name + ' loupe/stock':>24}" for name in METRICS)
    rows = [header, "-" * len(header)]
    for mode in MODES:
        cells = "".join(f"{ours[mode][name]:>15.4f} / {stock[mode][name]:.4f}" for name in METRICS)
        rows.append(f"{mode:<8}{cells}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loupe vs stock Haystack retrieval on a BEIR set.")
    parser.add_argument("files", nargs="*", metavar="FILE", help="CORPUS.jsonl QUERIES.jsonl QRELS.tsv (default: PubMedQA)")
    parser.add_argument("--limit", type=int, help="with PubMedQA: only its first N items")
    parser.add_argument("--json", action="store_true", help="print the results alone as one JSON object")
    args = parser.parse_args(argv)
    if args.files and len(args.files) != 3:
        parser.error("give three files (corpus, queries, qrels) or none")
    if not args.files and not DEFAULT_SOURCE.is_file():
        parser.error(f"{DEFAULT_SOURCE} is absent (../shared exists only on the project's build machines); give three files")
    settings = load_settings()
    apply_offline_mode(settings)
    progress = Progress()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="beir-") as folder:
        if args.files:
            corpus, queries, qrels = map(Path, args.files)
        else:
            paths = write_beir(Path(folder), DEFAULT_SOURCE, args.limit)
            corpus, queries, qrels = paths["corpus"], paths["queries"], paths["qrels"]
        started = time.perf_counter()
        try:
            ours = evaluate_beir(
                settings, corpus, queries, qrels, list(RETRIEVAL_MODES),
                progress=lambda done, total, label: progress.update(f"loupe: [{done}/{total}] {label}", done == total),
            )
        except ValueError as error:  # a malformed BEIR file: the message names it
            print(f"error: {error}", file=sys.stderr)
            return 2
        ours_s = time.perf_counter() - started
        started = time.perf_counter()
        stock = stock_haystack(settings, load_beir(corpus, queries, qrels), progress)
        stock_s = time.perf_counter() - started
    progress.done()
    if args.json:
        print(json.dumps({"loupe": {mode: ours[mode] for mode in MODES}, "stock": stock, "queries": ours.queries,
                          "documents": ours.documents, "chunks": ours.chunks}))
        return 0
    name = str(corpus) if args.files else f"PubMedQA {DEFAULT_SOURCE.name}" + (f", first {args.limit}" if args.limit else "")
    print(f"set: {name}; {ours.queries} queries, {ours.documents} documents "
          f"({ours.chunks} Loupe chunks); retriever top_k {settings.top_k_bm25}/{settings.top_k_dense}, "
          f"Loupe rrf_k {settings.rrf_k}; load average (1 min) before / after: "
          f"{load_before:.2f} / {os.getloadavg()[0]:.2f}\n")
    print(f"Loupe ({ours_s:.0f} s):\n{format_table({mode: ours[mode] for mode in MODES})}\n")
    print(f"stock Haystack ({stock_s:.0f} s):\n{format_table(stock)}\n")
    print(side_by_side(ours, stock))
    return 0


if __name__ == "__main__":
    sys.exit(main())
