"""SQLiteBM25Retriever: keyword (BM25) retrieval from a SQLiteDocumentStore, shaped like Haystack's InMemoryBM25Retriever."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_to_dict
from haystack.document_stores.types import FilterPolicy, apply_filter_policy

from components.retrievers.sqlite.common import check_init_parameters, resolve_top_k, retriever_from_dict
from document_stores.sqlite import SQLiteDocumentStore


@component
class SQLiteBM25Retriever:
    """
    Retrieves the documents that best match a keyword query, by BM25, from a SQLiteDocumentStore.

    Free text is safe: with the FTS5 engine the query is reduced to its quoted words (quotes, `*`, `-`, `:`,
    NEAR, AND/OR/NOT are never FTS5 syntax); the default engine only ever sees word tokens.

    ```python
    retriever = SQLiteBM25Retriever(document_store=store, top_k=20)
    retriever.run(query='"owl" survey -methods', filters={"field": "meta.doc_id", "operator": "in", "value": ["a"]})
    ```
    """

    def __init__(
        self,
        document_store: SQLiteDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        scale_score: bool = False,
        filter_policy: FilterPolicy = FilterPolicy.REPLACE,
    ) -> None:
        """
        :param document_store: the store to search.
        :param filters: filters applied when run() gets none (REPLACE) or combined with them (MERGE).
        :param top_k: how many documents to return at most; must be greater than 0.
        :param scale_score: scale scores to 0..1 (expit(score / 8), as Haystack's in-memory BM25).
        :param filter_policy: how run-time filters combine with `filters`.
        :raises TypeError: when the store is not a SQLiteDocumentStore.
        :raises ValueError: when top_k is not greater than 0.
        """
        check_init_parameters(document_store, top_k)
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.scale_score = scale_score
        self.filter_policy = filter_policy

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            document_store=self.document_store,
            filters=self.filters,
            top_k=self.top_k,
            scale_score=self.scale_score,
            filter_policy=self.filter_policy.value,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SQLiteBM25Retriever:
        return retriever_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, list[Document]]:
        """
        :param query: the keyword query.
        :param filters: Haystack filters narrowing the search; combined with the init filters by filter_policy.
        :param top_k: overrides the init top_k; 0 returns nothing.
        :param scale_score: overrides the init scale_score.
        :returns: `documents`: best first, each with its score.
        :raises ValueError: on an empty query or a negative top_k.
        """
        filters = apply_filter_policy(self.filter_policy, self.filters, filters)
        top_k = resolve_top_k(top_k, self.top_k)
        scale = self.scale_score if scale_score is None else scale_score
        documents = self.document_store.bm25_retrieval(query=query, filters=filters, top_k=top_k, scale_score=scale)
        return {"documents": documents}
