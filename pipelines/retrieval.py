"""The retrieval pipeline: BM25 and/or dense retrieval, fused by reciprocal rank fusion."""

from __future__ import annotations

from typing import Any, Protocol

from haystack import Pipeline
from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

from components.rank_fusion import RankFusion
from configuration.model_paths import resolve_embedding_model
from configuration.settings import RETRIEVAL_MODES, Settings


class RetrieverFactory(Protocol):
    """Makes fresh retrievers that fit one document store (a component instance belongs to one pipeline only)."""

    def bm25_retriever(self) -> Any: ...

    def dense_retriever(self) -> Any: ...


def build_retrieval_pipeline(settings: Settings, bundle: RetrieverFactory, mode: str = "hybrid") -> Pipeline:
    """A pipeline whose `fusion` component outputs the top passages with fused score and per-retriever ranks.

    Inputs (see `retrieval_inputs`): the query for the BM25 retriever and/or the text embedder, filters for
    each retriever, and top_k for the fusion.
    :raises ValueError: on an unknown mode.
    """
    if mode not in RETRIEVAL_MODES:
        raise ValueError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, got {mode!r}")
    pipeline = Pipeline()
    pipeline.add_component("fusion", RankFusion(top_k=settings.top_k, k=settings.rrf_k))
    if mode in ("hybrid", "bm25"):
        pipeline.add_component("bm25_retriever", bundle.bm25_retriever())
        pipeline.connect("bm25_retriever.documents", "fusion.bm25_documents")
    if mode in ("hybrid", "dense"):
        pipeline.add_component(
            "query_embedder",
            SentenceTransformersTextEmbedder(
                model=resolve_embedding_model(settings.embedding_model),
                progress_bar=False,
                normalize_embeddings=True,
                local_files_only=not settings.allow_downloads,
            ),
        )
        pipeline.add_component("dense_retriever", bundle.dense_retriever())
        pipeline.connect("query_embedder.embedding", "dense_retriever.query_embedding")
        pipeline.connect("dense_retriever.documents", "fusion.dense_documents")
    return pipeline


def scope_filter(doc_ids: list[str] | None) -> dict[str, Any] | None:
    """A Haystack filter that keeps only chunks of the given documents; None means the whole corpus."""
    if not doc_ids:
        return None
    return {"field": "meta.doc_id", "operator": "in", "value": list(doc_ids)}


def retrieval_inputs(
    pipeline: Pipeline, query: str, doc_ids: list[str] | None = None, top_k: int | None = None
) -> dict[str, dict[str, Any]]:
    """The run() inputs of a retrieval pipeline built by build_retrieval_pipeline, whatever its mode."""
    filters = scope_filter(doc_ids)
    inputs: dict[str, dict[str, Any]] = {"fusion": {"top_k": top_k}}
    names = set(pipeline.graph.nodes)
    if "bm25_retriever" in names:
        inputs["bm25_retriever"] = {"query": query, "filters": filters}
    if "dense_retriever" in names:
        inputs["query_embedder"] = {"text": query}
        inputs["dense_retriever"] = {"filters": filters}
    return inputs
