"""BM25 and embedding retrievers of the embedded SQLite document store (document_stores.sqlite)."""

from components.retrievers.sqlite.bm25_retriever import SQLiteBM25Retriever
from components.retrievers.sqlite.embedding_retriever import SQLiteEmbeddingRetriever

__all__ = ["SQLiteBM25Retriever", "SQLiteEmbeddingRetriever"]
