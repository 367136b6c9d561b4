"""The embedded document store: one SQLite file with BM25 and dense search, for a single machine."""

from document_stores.sqlite.document_store import SQLiteDocumentStore

__all__ = ["SQLiteDocumentStore"]
