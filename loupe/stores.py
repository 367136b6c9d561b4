"""Build the configured document store and its two retrievers: one code path for both backends.

The embedded backend is document_stores.sqlite.document_store.SQLiteDocumentStore (one SQLite file); the retriever factories also
serve the older JSON-file JSONFileDocumentStore (an InMemoryDocumentStore), which bench/retrieval.py still measures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils import Secret

from components.retrievers.sqlite import SQLiteBM25Retriever, SQLiteEmbeddingRetriever
from configuration.settings import Settings
from document_stores.json_file import JSONFileDocumentStore
from document_stores.sqlite.document_store import SQLiteDocumentStore

# Chunk metadata Loupe writes (see components.sentence_chunker and components.file_loader), typed for
# Elasticsearch so that scope filters are exact keyword matches and numbers sort as numbers.
ELASTICSEARCH_MAPPING: dict[str, Any] = {
    "properties": {
        "content": {"type": "text"},
        "embedding": {"type": "dense_vector", "index": True, "similarity": "cosine"},
        "doc_id": {"type": "keyword"},
        "title": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
        "source": {"type": "keyword"},
        "content_hash": {"type": "keyword"},
        "page": {"type": "integer"},
        "chunk_index": {"type": "integer"},
        "char_start": {"type": "integer"},
        "char_end": {"type": "integer"},
    },
    "dynamic_templates": [
        {"strings": {"path_match": "*", "match_mapping_type": "string", "mapping": {"type": "keyword"}}}
    ],
}


@dataclass
class StoreBundle:
    """A document store with factories for the BM25 and the dense retriever that fit it.

    Factories, because a Haystack component instance may belong to one pipeline only.
    """

    store: Any
    settings: Settings

    def bm25_retriever(self) -> Any:
        if self.settings.backend == "elasticsearch":
            from haystack_integrations.components.retrievers.elasticsearch import ElasticsearchBM25Retriever

            # fuzziness "0": exact term matching, the same semantics as the embedded BM25.
            return ElasticsearchBM25Retriever(document_store=self.store, top_k=self.settings.top_k_bm25, fuzziness="0")
        if isinstance(self.store, SQLiteDocumentStore):
            return SQLiteBM25Retriever(document_store=self.store, top_k=self.settings.top_k_bm25)
        return InMemoryBM25Retriever(document_store=self.store, top_k=self.settings.top_k_bm25)

    def dense_retriever(self) -> Any:
        if self.settings.backend == "elasticsearch":
            from haystack_integrations.components.retrievers.elasticsearch import ElasticsearchEmbeddingRetriever

            return ElasticsearchEmbeddingRetriever(document_store=self.store, top_k=self.settings.top_k_dense)
        if isinstance(self.store, SQLiteDocumentStore):
            return SQLiteEmbeddingRetriever(document_store=self.store, top_k=self.settings.top_k_dense)
        return InMemoryEmbeddingRetriever(document_store=self.store, top_k=self.settings.top_k_dense)


def build_document_store(settings: Settings) -> Any:
    """The configured document store. Elasticsearch connects lazily, on first use."""
    if settings.backend == "elasticsearch":
        return _elasticsearch_store(settings)
    store = SQLiteDocumentStore(path=str(settings.store_path))
    legacy = settings.store_path.with_name("documents.json")
    if legacy.is_file() and store.count_documents() == 0:
        _import_legacy_store(store, legacy)
    return store


def _import_legacy_store(store: SQLiteDocumentStore, legacy: Path) -> None:
    """Copy the documents of the JSON file that earlier versions kept into the (empty) SQLite store, in one
    transaction, then rename the file to documents.json.imported; an interrupted import is simply done again."""
    store.write_documents(JSONFileDocumentStore(path=str(legacy)).filter_documents(), policy=DuplicatePolicy.OVERWRITE)
    try:
        legacy.rename(legacy.with_name(legacy.name + ".imported"))
    except OSError:
        pass  # the store is no longer empty, so the file is not imported again


def _elasticsearch_store(settings: Settings) -> Any:
    from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore

    extra: dict[str, Any] = {}
    if settings.elasticsearch_username:
        extra["basic_auth"] = (settings.elasticsearch_username, os.environ.get("ELASTICSEARCH_PASSWORD", ""))
    return ElasticsearchDocumentStore(
        hosts=settings.elasticsearch_url,
        index=settings.elasticsearch_index,
        custom_mapping=ELASTICSEARCH_MAPPING,
        api_key=Secret.from_env_var("ELASTICSEARCH_API_KEY", strict=False),
        api_key_id=Secret.from_env_var("ELASTICSEARCH_API_KEY_ID", strict=False),
        **extra,
    )


def build_retrievers(settings: Settings, store: Any | None = None) -> StoreBundle:
    """The store (built from settings unless given) with its retriever factories."""
    return StoreBundle(store=store if store is not None else build_document_store(settings), settings=settings)


def persist(store: Any) -> None:
    """Make written documents durable: the embedded store already committed them (SQLite) or saves its file
    (the JSON JSONFileDocumentStore); Elasticsearch already has them."""
    if isinstance(store, (SQLiteDocumentStore, JSONFileDocumentStore)):
        store.persist()


def refresh(store: Any) -> None:
    """Pick up documents another process wrote to the embedded store; a no-op for Elasticsearch."""
    if isinstance(store, (SQLiteDocumentStore, JSONFileDocumentStore)):
        store.reload_if_changed()
