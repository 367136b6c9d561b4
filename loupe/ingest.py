"""Ingest files into the document store: find them, skip unchanged ones, replace changed ones, report all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Document

from components.file_loader import SUPPORTED_SUFFIXES, FileLoader, LoadFailure
from configuration.model_paths import apply_offline_mode
from configuration.settings import Settings
from loupe.progress import ProgressCallback
from loupe.stores import persist
from pipelines.indexing import build_indexing_pipeline


@dataclass
class IngestReport:
    """What an ingest run did, per document and in totals."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    chunks_written: int = 0
    chunks_removed: int = 0

    @property
    def succeeded(self) -> int:
        return len(self.added) + len(self.replaced) + len(self.unchanged)

    @property
    def exit_code(self) -> int:
        """0: everything ingested; 1: some failed, the rest ingested; 2: nothing could be ingested."""
        if not self.failures:
            return 0
        return 1 if self.succeeded else 2

    def summary(self) -> str:
        return (
            f"documents: {len(self.added)} added, {len(self.replaced)} replaced, {len(self.unchanged)} unchanged, "
            f"{len(self.failures)} failed; chunks: {self.chunks_written} written, {self.chunks_removed} removed"
        )


def find_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[LoadFailure]]:
    """Expand folders recursively (hidden files skipped); a missing path or unsupported file is a failure."""
    files: list[Path] = []
    failures: list[LoadFailure] = []
    for path in map(Path, paths):
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(part.startswith(".") for part in child.relative_to(path).parts):
                    if child.suffix.lower() in SUPPORTED_SUFFIXES:
                        files.append(child)
                    else:
                        failures.append(LoadFailure(str(child), f"unsupported file type {child.suffix or '(none)'}"))
        elif path.is_file():
            files.append(path)
        else:
            failures.append(LoadFailure(str(path), "no such file or folder"))
    return files, failures


def stored_hashes(store: Any, doc_ids: list[str]) -> dict[str, set[str]]:
    """For each given document id already in the store: the content hashes its chunks carry."""
    if not doc_ids:
        return {}
    chunks = store.filter_documents({"field": "meta.doc_id", "operator": "in", "value": doc_ids})
    hashes: dict[str, set[str]] = {}
    for chunk in chunks:
        hashes.setdefault(chunk.meta["doc_id"], set()).add(chunk.meta.get("content_hash"))
    return hashes


class Ingester:
    """Runs the indexing pipeline over files, a few documents at a time so that progress can be shown."""

    def __init__(self, settings: Settings, store: Any, batch_size: int = 8) -> None:
        apply_offline_mode(settings)
        self.store = store
        self.batch_size = batch_size
        self.loader = FileLoader()
        self.pipeline = build_indexing_pipeline(settings, store)

    def ingest(self, paths: Iterable[str | Path], progress: ProgressCallback | None = None) -> IngestReport:
        """Ingest files and folders. Each failure is reported with its reason; the rest proceed."""
        report = IngestReport()
        files, report.failures = find_files(paths)
        seen: dict[str, str] = {}
        for start in range(0, len(files), self.batch_size):
            batch = files[start : start + self.batch_size]
            if progress:
                progress(start, len(files), str(batch[0]))
            loaded = self.loader.run(paths=[str(path) for path in batch])
            report.failures.extend(loaded["failures"])
            documents = _unique_documents(loaded["documents"], seen, report)
            self._index(documents, report)
        if progress:
            progress(len(files), len(files), "")
        persist(self.store)
        return report

    def _index(self, documents: list[Document], report: IngestReport) -> None:
        """Write new and changed documents; then drop a changed document's old chunks, so that a failure
        while embedding leaves the old version searchable rather than nothing."""
        existing = stored_hashes(self.store, [doc.meta["doc_id"] for doc in documents])
        to_index: list[Document] = []
        for document in documents:
            doc_id = document.meta["doc_id"]
            if existing.get(doc_id) == {document.meta["content_hash"]}:
                report.unchanged.append(doc_id)
            else:
                (report.replaced if doc_id in existing else report.added).append(doc_id)
                to_index.append(document)
        if not to_index:
            return
        result = self.pipeline.run({"cleaner": {"documents": to_index}})
        report.chunks_written += result["writer"]["documents_written"]
        for document in to_index:
            if document.meta["doc_id"] in existing:
                report.chunks_removed += self.store.delete_by_filter(_stale_chunks(document))


def _stale_chunks(document: Document) -> dict[str, Any]:
    """Chunks of this document id left from an earlier version (a different content hash)."""
    return {
        "operator": "AND",
        "conditions": [
            {"field": "meta.doc_id", "operator": "==", "value": document.meta["doc_id"]},
            {"field": "meta.content_hash", "operator": "!=", "value": document.meta["content_hash"]},
        ],
    }


def _unique_documents(documents: list[Document], seen: dict[str, str], report: IngestReport) -> list[Document]:
    """Drop (and report) a document whose id another file of this run already took."""
    unique = []
    for document in documents:
        doc_id, source = document.meta["doc_id"], document.meta["source"]
        if doc_id in seen:
            report.failures.append(
                LoadFailure(source, f"document id {doc_id!r} is already taken by {seen[doc_id]}; rename one of them")
            )
            continue
        seen[doc_id] = source
        unique.append(document)
    return unique


def count_by_document(store: Any) -> Counter:
    """Chunks per document id in the store (counted in SQL where the store can, without loading documents)."""
    if hasattr(store, "count_by_meta"):
        return Counter({doc_id: n for doc_id, n in store.count_by_meta("doc_id").items() if doc_id is not None})
    return Counter(chunk.meta.get("doc_id") for chunk in store.filter_documents())
