"""Ingest throughput: Loupe's whole indexing pipeline against raw sentence-transformers encoding of the same chunks.

    python bench/ingest.py [--chunks 500] [--seed 0] [--json]

Synthetic documents (Zipf-distributed English words in sentences, about 10 chunks each) are generated so that
the project's SentenceChunker cuts exactly --chunks chunks from them. Timed, in one process, after both models
are loaded and have embedded one warm-up text:
  pipeline    pipelines.indexing.build_indexing_pipeline (clean, chunk, embed, write) into an
              configured embedded store at a temporary path, plus its persist()
  raw_encode  SentenceTransformer(<the same model>).encode(texts, batch_size=32) on the texts the pipeline's
              embedder embeds (title, newline, chunk content)
The ratio is pipeline chunks/s / raw chunks/s (= raw seconds / pipeline seconds): 1.0 means the pipeline
costs nothing beyond the encoding, 0.8 means it takes 25% longer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import configuration  # noqa: F401 - first: it switches Haystack's telemetry off before Haystack is imported

# isort: split
from haystack import Document

# bench/ is not an installed package: run as `python bench/<script>.py`, its folder is sys.path[0]
from bench.synthetic import Progress, ZipfText
from components.sentence_chunker import SentenceChunker
from configuration.model_paths import apply_offline_mode, resolve_embedding_model
from configuration.settings import Settings
from loupe.stores import build_document_store
from pipelines.indexing import build_indexing_pipeline

CHUNKS_PER_DOC = 10


def make_documents(text: ZipfText, chunks: int, settings: Settings) -> list[Document]:
    """Documents from which the project's chunker cuts exactly `chunks` chunks, about 10 per document."""
    chunker = SentenceChunker(chunk_words=settings.chunk_words, overlap_words=settings.chunk_overlap_words)

    def chunk_count(sentences: list[str]) -> int:
        return len(chunker.run([Document(content=" ".join(sentences), meta={"doc_id": "count"})])["documents"])

    stride = settings.chunk_words - settings.chunk_overlap_words + 5  # new words per chunk, roughly
    documents: list[Document] = []
    remaining = chunks
    while remaining > 0:
        want = min(CHUNKS_PER_DOC, remaining)
        sentences = text.sentences(stride * want + settings.chunk_overlap_words)
        while chunk_count(sentences) > want:
            sentences.pop()
        while chunk_count(sentences) < want:  # rarely needed: add words until the chunker makes another chunk
            sentences += text.sentences(12)
        number = len(documents)
        content = " ".join(sentences)
        meta = {
            "doc_id": f"doc{number:05d}",
            "title": f"Paper {number}: " + " ".join(text.words(5, skip=50)).capitalize(),
            "source": f"synthetic/doc{number:05d}.txt",
            "content_hash": hashlib.sha256(content.encode("utf-8")).hexdigest(),
        }
        documents.append(Document(id=meta["doc_id"], content=content, meta=meta))
        remaining -= chunk_count(sentences)
    return documents


def embedded_texts(embedder: Any, chunks: list[Document]) -> list[str]:
    """What the pipeline's document embedder encodes for each chunk: its meta fields to embed, then its content."""
    return [
        embedder.embedding_separator.join(
            [*(str(chunk.meta[key]) for key in embedder.meta_fields_to_embed if chunk.meta.get(key) is not None),
             chunk.content or ""]
        )
        for chunk in chunks
    ]


def run(chunks: int, seed: int, rounds: int = 1) -> dict[str, Any]:
    progress = Progress()
    progress.update("generating documents", force=True)
    text = ZipfText(seed=seed)
    with tempfile.TemporaryDirectory(prefix="loupe-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data").validate()
        apply_offline_mode(settings)
        documents = make_documents(text, chunks, settings)

        progress.update("loading the pipeline's embedding model", force=True)
        store = build_document_store(settings)
        pipeline = build_indexing_pipeline(settings, store)
        started = time.perf_counter()
        pipeline.warm_up()
        embedder = pipeline.get_component("embedder")
        embedder.run(documents=[Document(content="A warm-up sentence.")])
        pipeline_load_s = time.perf_counter() - started

        load_before = os.getloadavg()[0]
        pipeline_times: list[float] = []
        raw_times: list[float] = []
        texts: list[str] = []
        written = 0
        model = None
        for round_number in range(1, rounds + 1):
            label = f"round {round_number}/{rounds}: " if rounds > 1 else ""
            store.delete_all_documents()
            progress.update(f"{label}pipeline: indexing {len(documents)} documents ({chunks} chunks)", force=True)
            started = time.perf_counter()
            result = pipeline.run({"cleaner": {"documents": documents}})
            store.persist()
            pipeline_times.append(time.perf_counter() - started)
            written = result["writer"]["documents_written"]
            if model is None:
                texts = embedded_texts(embedder, store.filter_documents())
                progress.update("raw: loading the embedding model", force=True)
                from sentence_transformers import SentenceTransformer

                started = time.perf_counter()
                model = SentenceTransformer(resolve_embedding_model(settings.embedding_model), local_files_only=True)
                model.encode(["A warm-up sentence."])
                raw_load_s = time.perf_counter() - started
            progress.update(f"{label}raw: encoding {len(texts)} chunks", force=True)
            started = time.perf_counter()
            model.encode(texts, batch_size=32)
            raw_times.append(time.perf_counter() - started)
        progress.done()
        load_after = os.getloadavg()[0]

    pipeline_s, raw_s = statistics.median(pipeline_times), statistics.median(raw_times)
    results = {
        "pipeline": {"chunks": written, "seconds": round(pipeline_s, 3), "chunks_per_s": round(written / pipeline_s, 3)},
        "raw_encode": {"chunks": len(texts), "seconds": round(raw_s, 3), "chunks_per_s": round(len(texts) / raw_s, 3)},
    }
    results["ratio"] = round(results["pipeline"]["chunks_per_s"] / results["raw_encode"]["chunks_per_s"], 3)
    info = {
        "documents": len(documents),
        "pipeline_load_s": pipeline_load_s,
        "raw_load_s": raw_load_s,
        "words_per_chunk": sum(len(t.split()) for t in texts) / max(1, len(texts)),
        "rounds": rounds,
        "load_before": load_before,
        "load_after": load_after,
    }
    return {"results": results, "info": info}


def table(results: dict[str, Any], info: dict[str, Any]) -> str:
    pipeline, raw = results["pipeline"], results["raw_encode"]
    return "\n".join(
        [
            f"Ingest throughput: {pipeline['chunks']} chunks from {info['documents']} documents "
            f"(about {info['words_per_chunk']:.0f} words per embedded text), {os.cpu_count()} CPUs",
            "",
            f"{'':<12}{'chunks':>8}{'seconds':>10}{'chunks/s':>10}   model load (not timed)",
            f"{'pipeline':<12}{pipeline['chunks']:>8}{pipeline['seconds']:>10.2f}{pipeline['chunks_per_s']:>10.2f}"
            f"   {info['pipeline_load_s']:.1f} s",
            f"{'raw encode':<12}{raw['chunks']:>8}{raw['seconds']:>10.2f}{raw['chunks_per_s']:>10.2f}"
            f"   {info['raw_load_s']:.1f} s",
            "",
            f"ratio (pipeline chunks/s / raw chunks/s): {results['ratio']:.3f}",
            "pipeline = clean + chunk + embed + write + persist(); raw = SentenceTransformer.encode(batch_size=32)",
            (f"seconds: median of {info['rounds']} rounds; " if info["rounds"] > 1 else "")
            + f"load average (1 min) before / after: {info['load_before']:.2f} / {info['load_after']:.2f} "
            "(other processes skew the timings)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=500, help="how many chunks to index (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat both measurements, report medians (default 1)")
    parser.add_argument("--json", action="store_true", help="print only the results as JSON")
    args = parser.parse_args(argv)
    if args.chunks < 1 or args.rounds < 1:
        parser.error("--chunks and --rounds must be at least 1")
    outcome = run(args.chunks, args.seed, args.rounds)
    if args.json:
        print(json.dumps(outcome["results"]))
    else:
        print(table(outcome["results"], outcome["info"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
