"""The legacy JSON-file document store: one job, reading and writing the documents.json of earlier Loupe versions.

The embedded store is document_stores.sqlite now. This one stays for two users: loupe.stores imports an old
documents.json into the SQLite store, and bench/retrieval.py measures it as the baseline.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from haystack import Document, default_from_dict, default_to_dict
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy


class JSONFileDocumentStore(InMemoryDocumentStore):
    """
    An InMemoryDocumentStore that loads itself from `path` and saves there on `persist()`.

    What it is for now: reading the documents.json that Loupe versions before the SQLite store wrote (loupe.stores
    imports it into the SQLite store once), and serving as bench/retrieval.py's baseline ("inmemory-file").
    New documents go to document_stores.sqlite.SQLiteDocumentStore.

    It is an InMemoryDocumentStore, so Haystack's in-memory BM25 and embedding retrievers work on it unchanged.
    Saving writes a temporary file and renames it over the old one, so a crash mid-save leaves the previous
    state readable. Another process (the CLI ingesting while the app serves) may replace the file;
    `reload_if_changed()` picks that up.
    """

    def __init__(self, path: str, bm25_algorithm: str = "BM25L") -> None:
        """
        :param path: the JSON file that holds the documents; created on first `persist()`.
        :param bm25_algorithm: one of InMemoryDocumentStore's BM25 variants.
        """
        # Loupe's embedders normalise vectors, so the dot product ranks like cosine without re-normalising every
        # stored vector per query; returning embeddings avoids a copy of every document per query.
        super().__init__(
            bm25_algorithm=bm25_algorithm, embedding_similarity_function="dot_product", shared=False, return_embedding=True
        )
        self.path = path
        self._loaded_mtime: float | None = None
        self.reload_if_changed()

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, path=self.path, bm25_algorithm=self.bm25_algorithm)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JSONFileDocumentStore:
        return default_from_dict(cls, data)

    def _file_mtime(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return None

    def reload_if_changed(self) -> bool:
        """Load the file again if another process replaced it since we last read or wrote it.

        :returns: True when documents were (re)loaded.
        :raises ValueError: when the file exists but is not a store written by Loupe.
        """
        mtime = self._file_mtime()
        if mtime is None or mtime == self._loaded_mtime:
            return False
        try:
            with open(self.path, encoding="utf-8") as handle:
                rows = json.load(handle)["documents"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
            raise ValueError(f"the document store file {self.path} is unreadable: {error}") from None
        super().delete_all_documents()
        super().write_documents([Document.from_dict(row) for row in rows], policy=DuplicatePolicy.OVERWRITE)
        self._loaded_mtime = mtime
        return True

    def persist(self) -> None:
        """Write all documents to `path` atomically (temporary file, fsync, rename)."""
        directory = Path(self.path).parent
        directory.mkdir(parents=True, exist_ok=True)
        rows = [doc.to_dict(flatten=False) for doc in self.storage.values()]
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".documents-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"format": 1, "documents": rows}, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._loaded_mtime = self._file_mtime()
