"""The embedded document store: one SQLite file with BM25 and dense search, for a single machine.

`document_store` holds the store, `filters` the Haystack-filter-to-SQL translation, `search_index` the
in-memory search structures (and the BM25 tokenizer).
"""

from document_stores.sqlite.document_store import SQLiteDocumentStore
from document_stores.sqlite.filters import filter_to_sql
from document_stores.sqlite.search_index import fts5_query, tokenize

__all__ = ["SQLiteDocumentStore", "filter_to_sql", "fts5_query", "tokenize"]
