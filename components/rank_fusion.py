"""Reciprocal rank fusion that remembers which retriever found each passage, and at what rank."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

RETRIEVERS = ("bm25", "dense")


@component
class RankFusion:
    """
    Fuses BM25 and dense results by weighted reciprocal rank fusion: score = sum of weight / (k + rank).

    Haystack's DocumentJoiner fuses too, but drops each retriever's rank and score, which Loupe shows on every
    passage. Each output document has `score` = the fused score and, in its meta, `ranks` and
    `retriever_scores`: `{"bm25": ..., "dense": ...}`, None for a retriever that did not return it.
    Either input may be left unconnected (BM25-only or dense-only mode).

    Usage:
    ```python
    fused = RankFusion(top_k=5).run(bm25_documents=bm25_docs, dense_documents=dense_docs)["documents"]
    ```
    """

    def __init__(self, top_k: int = 5, k: int = 60, weights: dict[str, float] | None = None) -> None:
        """
        :param top_k: how many fused documents to return.
        :param k: the RRF constant; larger values flatten the difference between ranks.
        :param weights: per-retriever weights, default 1.0 each.
        :raises ValueError: on top_k or k below 1, or a weight for an unknown retriever.
        """
        if top_k < 1 or k < 1:
            raise ValueError(f"top_k and k must be at least 1, got {top_k} and {k}")
        unknown = set(weights or {}) - set(RETRIEVERS)
        if unknown:
            raise ValueError(f"unknown retrievers in weights: {sorted(unknown)}; known: {RETRIEVERS}")
        self.top_k = top_k
        self.k = k
        self.weights = {name: 1.0 for name in RETRIEVERS} | (weights or {})

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, top_k=self.top_k, k=self.k, weights=self.weights)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankFusion:
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        bm25_documents: list[Document] | None = None,
        dense_documents: list[Document] | None = None,
        top_k: int | None = None,
    ) -> dict[str, list[Document]]:
        """
        :param bm25_documents: BM25 results, best first.
        :param dense_documents: dense results, best first.
        :param top_k: overrides the init value for this call.
        :returns: `documents`: the fused top_k, best first, ties broken by document id.
        """
        inputs = {"bm25": bm25_documents or [], "dense": dense_documents or []}
        fused: dict[str, dict[str, Any]] = {}
        for name, documents in inputs.items():
            for rank, document in enumerate(documents, start=1):
                entry = fused.setdefault(
                    document.id,
                    {"document": document, "score": 0.0, "ranks": dict.fromkeys(RETRIEVERS), "scores": dict.fromkeys(RETRIEVERS)},
                )
                if entry["ranks"][name] is not None:
                    continue  # a retriever listing a document twice counts only its best rank
                entry["ranks"][name] = rank
                entry["scores"][name] = document.score
                entry["score"] += self.weights[name] / (self.k + rank)
        ordered = sorted(fused.values(), key=lambda entry: (-entry["score"], entry["document"].id))
        limit = top_k if top_k is not None else self.top_k
        return {"documents": [_with_ranks(entry) for entry in ordered[:limit]]}


def _with_ranks(entry: dict[str, Any]) -> Document:
    document: Document = entry["document"]
    meta = {**document.meta, "ranks": entry["ranks"], "retriever_scores": entry["scores"]}
    return replace(document, score=entry["score"], meta=meta, embedding=None)
