"""SQLiteEmbeddingRetriever: dense (cosine) retrieval from a SQLiteDocumentStore, shaped like Haystack's
InMemoryEmbeddingRetriever."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_to_dict
from haystack.document_stores.types import FilterPolicy, apply_filter_policy

from components.retrievers.sqlite.common import check_init_parameters, resolve_top_k, retriever_from_dict
from document_stores.sqlite import SQLiteDocumentStore


@component
class SQLiteEmbeddingRetriever:
    """
    Retrieves the documents whose embeddings are most similar (cosine) to a query embedding, from a
    SQLiteDocumentStore.

    ```python
    retriever = SQLiteEmbeddingRetriever(document_store=store, top_k=20)
    retriever.run(query_embedding=[0.1, ...], filters={"field": "meta.doc_id", "operator": "==", "value": "a"})
    ```
    """

    def __init__(
        self,
        document_store: SQLiteDocumentStore,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        scale_score: bool = False,
        return_embedding: bool = False,
        filter_policy: FilterPolicy = FilterPolicy.REPLACE,
    ) -> None:
        """
        :param document_store: the store to search.
        :param filters: filters applied when run() gets none (REPLACE) or combined with them (MERGE).
        :param top_k: how many documents to return at most; must be greater than 0.
        :param scale_score: scale cosine scores to 0..1 ((score + 1) / 2).
        :param return_embedding: whether the returned documents carry their embeddings.
        :param filter_policy: how run-time filters combine with `filters`.
        :raises TypeError: when the store is not a SQLiteDocumentStore.
        :raises ValueError: when top_k is not greater than 0.
        """
        check_init_parameters(document_store, top_k)
        self.document_store = document_store
        self.filters = filters
        self.top_k = top_k
        self.scale_score = scale_score
        self.return_embedding = return_embedding
        self.filter_policy = filter_policy

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            document_store=self.document_store,
            filters=self.filters,
            top_k=self.top_k,
            scale_score=self.scale_score,
            return_embedding=self.return_embedding,
            filter_policy=self.filter_policy.value,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SQLiteEmbeddingRetriever:
        return retriever_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        scale_score: bool | None = None,
        return_embedding: bool | None = None,
    ) -> dict[str, list[Document]]:
        """
        :param query_embedding: the query's embedding (the same model as the documents').
        :param filters: Haystack filters narrowing the search; combined with the init filters by filter_policy.
        :param top_k: overrides the init top_k; 0 returns nothing.
        :param scale_score: overrides the init scale_score.
        :param return_embedding: overrides the init return_embedding.
        :returns: `documents`: best first, each with its score.
        :raises ValueError: on an empty query embedding or a negative top_k.
        """
        filters = apply_filter_policy(self.filter_policy, self.filters, filters)
        top_k = resolve_top_k(top_k, self.top_k)
        documents = self.document_store.embedding_retrieval(
            query_embedding=query_embedding,
            filters=filters,
            top_k=top_k,
            scale_score=self.scale_score if scale_score is None else scale_score,
            return_embedding=self.return_embedding if return_embedding is None else return_embedding,
        )
        return {"documents": documents}
