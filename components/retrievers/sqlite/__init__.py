"""BM25 and embedding retrievers of the embedded SQLite document store."""

from components.retrievers.sqlite.retrievers import SQLiteBM25Retriever, SQLiteEmbeddingRetriever

__all__ = ["SQLiteBM25Retriever", "SQLiteEmbeddingRetriever"]
