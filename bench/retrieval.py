"""Retrieval latency: Loupe's embedded store and retrievers against a plain Haystack InMemoryDocumentStore.

    python bench/retrieval.py --chunks 10000 [--queries 30] [--seed 0] [--store sqlite|inmemory-file] [--json]

Both stores hold the same synthetic chunks (Zipf-distributed English words, random unit-norm embeddings) in one
process. For each store and mode the retrievers' run() is called directly, so query embedding is not timed:
  bm25    the BM25 retriever alone
  dense   the embedding retriever alone, with a precomputed random query embedding
  hybrid  both retrievers, then Loupe's RankFusion (baseline: DocumentJoiner reciprocal_rank_fusion)
  scoped  hybrid restricted to one document by the filter meta.doc_id in [doc]
The project side is built as the app builds it (loupe.stores.build_retrievers on default Settings); the
baseline is InMemoryDocumentStore() with Haystack's defaults. The ratio is baseline p50 / embedded p50, so
above 1 means Loupe's store is faster.

--store picks the project store: "sqlite" (document_stores.sqlite.SQLiteDocumentStore) or "inmemory-file" (the
JSON-file document_stores.json_file.JSONFileDocumentStore); the default is what loupe.stores.build_document_store
builds for the "embedded" backend. Besides the query latencies it measures, for the project store:
  open_first_query_s   a fresh process opens the persisted store and answers one hybrid query (imports excluded)
  store_rss_mb         that process's resident memory after the query minus before opening (/proc/self/statm),
  store_peak_rss_mb    and its peak while opening and querying (VmHWM, reset first) minus the same start
  add_100_s            write 100 new chunks to the loaded store and make them durable (loupe.stores.persist)
  query_after_add_ms   the next hybrid query, which has to take in the 100 chunks
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import configuration  # noqa: F401 - first: it switches Haystack's telemetry off before Haystack is imported

# isort: split
from haystack import Document
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy

# bench/ is not an installed package: run as `python bench/<script>.py`, its folder is sys.path[0]
from bench.synthetic import Progress, ZipfText
from components.rank_fusion import RankFusion
from configuration.settings import Settings
from document_stores.json_file import JSONFileDocumentStore
from document_stores.sqlite import SQLiteDocumentStore
from loupe.stores import build_document_store, build_retrievers, persist
from pipelines.retrieval import scope_filter

MODES = ("bm25", "dense", "hybrid", "scoped")
STORES = ("embedded", "baseline")
STORE_KINDS = ("sqlite", "inmemory-file")
ADDED_CHUNKS = 100
DIM = 384
CHUNKS_PER_DOC = 20
WRITE_BATCH = 2000

Search = Callable[[str, list[float], str], list[Document]]


def make_chunks(text: ZipfText, count: int, progress: Progress) -> list[Document]:
    """`count` chunks of about 150 words over count/20 documents, each with a unit-norm embedding."""
    n_docs = max(1, count // CHUNKS_PER_DOC)
    titles = [f"Paper {i}: " + " ".join(text.words(5, skip=50)).capitalize() for i in range(n_docs)]
    chunks: list[Document] = []
    next_index = [0] * n_docs
    for start in range(0, count, 1000):
        vectors = text.unit_vectors(min(1000, count - start), DIM)
        for offset, vector in enumerate(vectors):
            position = start + offset
            doc = position * n_docs // count
            index = next_index[doc]
            next_index[doc] += 1
            meta = {"doc_id": f"doc{doc:06d}", "chunk_index": index, "title": titles[doc]}
            content = text.text(int(text.rng.integers(130, 171)))
            chunks.append(Document(id=f"doc{doc:06d}#{index}", content=content, embedding=vector.tolist(), meta=meta))
        progress.update(f"generating chunks {len(chunks)}/{count}")
    return chunks


def load(store: Any, chunks: list[Document], name: str, progress: Progress) -> float:
    """Write the chunks in batches; seconds taken."""
    started = time.perf_counter()
    for start in range(0, len(chunks), WRITE_BATCH):
        store.write_documents(chunks[start : start + WRITE_BATCH])
        progress.update(f"loading {name} store {min(start + WRITE_BATCH, len(chunks))}/{len(chunks)}")
    return time.perf_counter() - started


def default_store_kind() -> str:
    """The kind of store loupe.stores.build_document_store builds for the embedded backend."""
    with tempfile.TemporaryDirectory(prefix="loupe-bench-") as tmp:
        store = build_document_store(Settings(data_dir=Path(tmp)).validate())
        return "sqlite" if isinstance(store, SQLiteDocumentStore) else "inmemory-file"


def open_store(kind: str, directory: Path) -> Any:
    """The project store of this kind in `directory` (opened on the existing file, if any)."""
    if kind == "sqlite":
        return SQLiteDocumentStore(path=str(directory / "documents.sqlite3"))
    return JSONFileDocumentStore(path=str(directory / "documents.json"))


def store_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir() if path.is_file())


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_resident() -> bool:
    """Reset this process's peak resident memory (VmHWM) to its current value (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def peak_resident_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe_open(kind: str, directory: str) -> dict[str, float]:
    """In this (fresh) process: open the store, answer one hybrid query; seconds and memory."""
    request = json.loads(sys.stdin.read())
    settings = Settings(data_dir=Path(directory)).validate()
    gc.collect()
    reset_peak_resident()  # else the peak of the imports counts
    before = resident_bytes()
    started = time.perf_counter()
    store = open_store(kind, Path(directory))
    documents = project_searches(store, settings)["hybrid"](request["query"], request["embedding"], "")
    elapsed = time.perf_counter() - started
    assert documents, "the first query found nothing"
    gc.collect()
    peak = peak_resident_bytes()
    return {
        "open_first_query_s": round(elapsed, 3),
        "store_rss_mb": round((resident_bytes() - before) / 2**20, 1),
        "store_peak_rss_mb": round((peak - before) / 2**20, 1),
    }


def measure_open(kind: str, directory: Path, query: str, embedding: list[float]) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--probe-open", kind, str(directory)],
        input=json.dumps({"query": query, "embedding": embedding}), capture_output=True, text=True, check=False,
    )
    if completed.returncode:
        raise RuntimeError(f"the open probe failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)


def _component(attribute: Any) -> Any:
    """A StoreBundle retriever: the component itself, or what its factory method builds."""
    return attribute if hasattr(attribute, "run") else attribute()


def project_searches(store: Any, settings: Settings) -> dict[str, Search]:
    bundle = build_retrievers(settings, store=store)
    bm25, dense = _component(bundle.bm25_retriever), _component(bundle.dense_retriever)
    fusion = RankFusion(top_k=settings.top_k, k=settings.rrf_k)

    def hybrid(query: str, embedding: list[float], filters: dict[str, Any] | None) -> list[Document]:
        return fusion.run(
            bm25_documents=bm25.run(query=query, filters=filters)["documents"],
            dense_documents=dense.run(query_embedding=embedding, filters=filters)["documents"],
        )["documents"]

    return {
        "bm25": lambda query, embedding, doc_id: bm25.run(query=query)["documents"],
        "dense": lambda query, embedding, doc_id: dense.run(query_embedding=embedding)["documents"],
        "hybrid": lambda query, embedding, doc_id: hybrid(query, embedding, None),
        "scoped": lambda query, embedding, doc_id: hybrid(query, embedding, scope_filter([doc_id])),
    }


def baseline_searches(store: InMemoryDocumentStore, settings: Settings) -> dict[str, Search]:
    bm25 = InMemoryBM25Retriever(document_store=store, top_k=settings.top_k_bm25)
    dense = InMemoryEmbeddingRetriever(document_store=store, top_k=settings.top_k_dense)
    joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=settings.top_k)

    def hybrid(query: str, embedding: list[float], filters: dict[str, Any] | None) -> list[Document]:
        return joiner.run(
            documents=[
                bm25.run(query=query, filters=filters)["documents"],
                dense.run(query_embedding=embedding, filters=filters)["documents"],
            ]
        )["documents"]

    def scoped(query: str, embedding: list[float], doc_id: str) -> list[Document]:
        return hybrid(query, embedding, {"field": "meta.doc_id", "operator": "in", "value": [doc_id]})

    return {
        "bm25": lambda query, embedding, doc_id: bm25.run(query=query)["documents"],
        "dense": lambda query, embedding, doc_id: dense.run(query_embedding=embedding)["documents"],
        "hybrid": lambda query, embedding, doc_id: hybrid(query, embedding, None),
        "scoped": scoped,
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(count: int, n_queries: int, seed: int, persist_store: bool, kind: str) -> dict[str, Any]:
    """Build both stores, time every mode; the results and some context for the table."""
    progress = Progress()
    text = ZipfText(seed=seed)
    chunks = make_chunks(text, count, progress)
    n_docs = len({chunk.meta["doc_id"] for chunk in chunks})
    queries = [text.query() for _ in range(n_queries + 1)]  # the first one warms up
    embeddings = [vector.tolist() for vector in text.unit_vectors(n_queries + 1, DIM)]
    scopes = [f"doc{int(i):06d}" for i in text.rng.integers(0, n_docs, size=n_queries + 1)]
    added = [  # new documents, not replacements
        replace(chunk, id="added-" + chunk.id, meta={**chunk.meta, "doc_id": "added-" + chunk.meta["doc_id"]})
        for chunk in make_chunks(ZipfText(seed=seed + 1), ADDED_CHUNKS, progress)
    ]

    with tempfile.TemporaryDirectory(prefix="loupe-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data").validate()
        directory = settings.store_path.parent
        directory.mkdir(parents=True)
        embedded = open_store(kind, directory)
        baseline = InMemoryDocumentStore()
        info: dict[str, Any] = {"documents": n_docs, "store": kind}
        info["load_embedded_s"] = load(embedded, chunks, "embedded", progress)
        if persist_store or kind == "sqlite":  # SQLite's persist() only checkpoints; its file is always complete
            progress.update("persisting the embedded store", force=True)
            started = time.perf_counter()
            persist(embedded)
            info["persist_s"] = time.perf_counter() - started
            info["file_mb"] = store_bytes(directory) / 1e6
            progress.update("opening the store in a new process", force=True)
            info.update(measure_open(kind, directory, queries[0], embeddings[0]))
        info["load_baseline_s"] = load(baseline, chunks, "baseline", progress)
        del chunks
        searches = {"embedded": project_searches(embedded, settings), "baseline": baseline_searches(baseline, settings)}

        info["load_before"] = os.getloadavg()[0]
        timings: dict[str, dict[str, list[float]]] = {store: {mode: [] for mode in MODES} for store in STORES}
        agree: dict[str, int] = {mode: 0 for mode in MODES}
        for mode in MODES:
            gc.collect()
            for store in STORES:
                progress.update(f"{mode}: warming up {store}", force=True)
                searches[store][mode](queries[0], embeddings[0], scopes[0])
            for i in range(1, n_queries + 1):
                progress.update(f"{mode}: query {i}/{n_queries}")
                ids = {}
                # alternate which store goes first, so neither always runs on a warmer cache
                for store in STORES if i % 2 else STORES[::-1]:
                    started = time.perf_counter()
                    documents = searches[store][mode](queries[i], embeddings[i], scopes[i])
                    timings[store][mode].append((time.perf_counter() - started) * 1000)
                    ids[store] = {document.id for document in documents}
                agree[mode] += ids["embedded"] == ids["baseline"]
        progress.update(f"adding {ADDED_CHUNKS} chunks", force=True)
        started = time.perf_counter()
        embedded.write_documents(added, policy=DuplicatePolicy.OVERWRITE)
        persist(embedded)
        info["add_100_s"] = time.perf_counter() - started
        started = time.perf_counter()
        searches["embedded"]["hybrid"](queries[1], embeddings[1], scopes[1])
        info["query_after_add_ms"] = (time.perf_counter() - started) * 1000
        progress.done()
        info["load_after"] = os.getloadavg()[0]

    results: dict[str, Any] = {
        store: {
            mode: {
                "p50_ms": round(statistics.median(timings[store][mode]), 4),
                "p95_ms": round(percentile(timings[store][mode], 95), 4),
            }
            for mode in MODES
        }
        for store in STORES
    }
    results["ratio"] = {
        mode: round(results["baseline"][mode]["p50_ms"] / results["embedded"][mode]["p50_ms"], 3) for mode in MODES
    }
    results["chunks"] = count
    results["queries"] = n_queries
    results["store"] = kind
    for key in ("open_first_query_s", "store_rss_mb", "store_peak_rss_mb"):
        results[key] = info.get(key)
    results["add_100_s"] = round(info["add_100_s"], 3)
    results["query_after_add_ms"] = round(info["query_after_add_ms"], 2)
    info["agreement"] = agree
    return {"results": results, "info": info}


def table(results: dict[str, Any], info: dict[str, Any]) -> str:
    n = results["queries"]
    lines = [
        f"Retrieval latency: {results['chunks']} chunks over {info['documents']} documents, {n} queries "
        "(top_k 20 per retriever, 5 after fusion; query embedding not timed)",
        f"  embedded store: {info['store']}",
        f"  load: embedded {info['load_embedded_s']:.1f} s, baseline {info['load_baseline_s']:.1f} s"
        + (
            f"; embedded persist() {info['persist_s']:.1f} s, {info['file_mb']:.0f} MB (not in the timings)"
            if "persist_s" in info
            else ""
        ),
        (
            f"  new process: open + first hybrid query {info['open_first_query_s']:.2f} s, store memory "
            f"{info['store_rss_mb']:.0f} MB resident ({info['store_peak_rss_mb']:.0f} MB peak)"
            if "open_first_query_s" in info
            else "  new process: not measured (--no-persist)"
        ),
        f"  add {ADDED_CHUNKS} chunks + persist: {info['add_100_s']:.2f} s; next hybrid query "
        f"{info['query_after_add_ms']:.1f} ms",
        "",
        f"{'mode':<8}{'embedded p50':>14}{'p95':>12}{'baseline p50':>15}{'p95':>12}{'ratio':>8}  same results",
    ]
    for mode in MODES:
        embedded, baseline = results["embedded"][mode], results["baseline"][mode]
        lines.append(
            f"{mode:<8}{embedded['p50_ms']:>11.1f} ms{embedded['p95_ms']:>9.1f} ms"
            f"{baseline['p50_ms']:>12.1f} ms{baseline['p95_ms']:>9.1f} ms"
            f"{results['ratio'][mode]:>8.2f}  {info['agreement'][mode]}/{n}"
        )
    lines += [
        "",
        f"embedded: loupe.stores.build_retrievers on the {info['store']} store + RankFusion",
        "baseline: InMemoryDocumentStore() defaults (dot_product, return_embedding=True) + DocumentJoiner(RRF)",
        "ratio = baseline p50 / embedded p50 (above 1: the embedded store is faster)",
        "same results: queries where both returned the same set of document ids (after fusion they can differ on",
        "  RRF ties, which RankFusion breaks by document id and DocumentJoiner by arrival order)",
        f"load average (1 min) before / after timing: {info['load_before']:.2f} / {info['load_after']:.2f} "
        f"on {os.cpu_count()} CPUs (other processes skew the timings)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, help="how many synthetic chunks to load (required)")
    parser.add_argument("--queries", type=int, default=30, help="timed queries per mode (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--no-persist", action="store_true", help="skip the (untimed) persist() of the embedded store")
    parser.add_argument("--json", action="store_true", help="print only the results as JSON")
    parser.add_argument(
        "--store", choices=STORE_KINDS, help="the project store (default: what the embedded backend uses)"
    )
    parser.add_argument("--probe-open", nargs=2, metavar=("STORE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe_open:
        print(json.dumps(probe_open(*args.probe_open)))
        return 0
    if args.chunks is None:
        parser.error("--chunks is required")
    if args.chunks < 1 or args.queries < 1:
        parser.error("--chunks and --queries must be at least 1")
    kind = args.store or default_store_kind()
    outcome = run(args.chunks, args.queries, args.seed, persist_store=not args.no_persist, kind=kind)
    if args.json:
        print(json.dumps(outcome["results"]))
    else:
        print(table(outcome["results"], outcome["info"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
