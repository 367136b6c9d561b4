"""Turn files (PDF, plain text, Markdown, JSONL) into documents, with a reason for every file that fails."""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haystack import Document, component
from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

SUPPORTED_SUFFIXES = (".pdf", ".txt", ".md", ".markdown", ".jsonl")


@dataclass(frozen=True)
class LoadFailure:
    """A file, or one line of a JSONL file, that could not become a document."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class UnreadableFile(Exception):
    """The file's content cannot be turned into text; the message is the reason shown to the user."""


@component
class FileLoader:
    """
    Reads files into Documents: `content` is the full text, `meta` has `doc_id`, `title`, `source` and
    `content_hash`. PDF pages are separated by form feeds so that chunks can name their page.

    Haystack's own converters log a warning and skip a file they cannot read; Loupe must tell the user which
    file failed and why, so this component reads PDFs with pypdf (the library PyPDFToDocument uses) and text
    files itself, and returns every failure with its reason.

    Usage:
    ```python
    result = FileLoader().run(paths=["paper.pdf", "notes.md", "corpus.jsonl"])
    result["documents"], result["failures"]
    ```
    """

    @component.output_types(documents=list[Document], failures=list[LoadFailure])
    def run(self, paths: list[str]) -> dict[str, Any]:
        """
        :param paths: files to read; their suffix chooses the reader.
        :returns: `documents` read, and `failures` (path and reason) for those that could not be read.
        """
        documents: list[Document] = []
        failures: list[LoadFailure] = []
        for path in map(Path, paths):
            try:
                if path.suffix.lower() == ".jsonl":
                    read, bad_lines = _read_jsonl(path)
                    documents.extend(read)
                    failures.extend(bad_lines)
                else:
                    documents.append(_read_single(path))
            except UnreadableFile as error:
                failures.append(LoadFailure(str(path), str(error)))
            except OSError as error:
                failures.append(LoadFailure(str(path), f"cannot read file: {error.strerror or error}"))
        return {"documents": documents, "failures": failures}


def _read_single(path: Path) -> Document:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text, pdf_title = _pdf_text(data)
        title = pdf_title or _first_line_title(text) or path.stem
    elif suffix in (".txt", ".md", ".markdown"):
        text = _decode_text(data)
        title = _markdown_title(text) if suffix != ".txt" else None
        title = title or _first_line_title(text) or path.stem
    else:
        raise UnreadableFile(f"unsupported file type {path.suffix or '(no suffix)'}; "
                             f"supported: {', '.join(SUPPORTED_SUFFIXES)}")
    if not text.strip():
        raise UnreadableFile("empty file" if not data.strip() else "no extractable text (a scanned PDF without OCR?)")
    meta = {"doc_id": path.stem, "title": title, "source": str(path), "content_hash": _hash(data)}
    return Document(content=text, meta=meta)


def _pdf_text(data: bytes) -> tuple[str, str | None]:
    if not data.strip():
        raise UnreadableFile("empty file")
    if not data.lstrip()[:5] == b"%PDF-":
        raise UnreadableFile("not a PDF (no %PDF- header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFile("encrypted PDF; decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title or "").strip() if reader.metadata else ""
    except UnreadableFile:
        raise
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise UnreadableFile(f"corrupt PDF: {error}") from None
    return "\f".join(pages), title or None


def _decode_text(data: bytes) -> str:
    if not data.strip():
        raise UnreadableFile("empty file")
    nul = data.find(b"\x00")  # anywhere in the file, not only in its first 8 KB
    if nul >= 0:
        raise UnreadableFile(f"binary data, not text (a NUL byte at offset {nul})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFile(
            f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); convert it to UTF-8"
        ) from None


def _read_jsonl(path: Path) -> tuple[list[Document], list[LoadFailure]]:
    text = _decode_text(path.read_bytes())
    documents, failures = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append(_jsonl_document(json.loads(line), path))
        except json.JSONDecodeError as error:
            failures.append(LoadFailure(f"{path}:{number}", f"invalid JSON: {error.msg} at column {error.colno}"))
        except UnreadableFile as error:
            failures.append(LoadFailure(f"{path}:{number}", str(error)))
    if not documents and not failures:
        raise UnreadableFile("empty file")
    return documents, failures


def _jsonl_document(row: Any, path: Path) -> Document:
    if not isinstance(row, dict):
        raise UnreadableFile("a line must be a JSON object with id, title, text and meta")
    doc_id, text = row.get("id"), row.get("text")
    if not isinstance(doc_id, (str, int)) or str(doc_id).strip() == "":
        raise UnreadableFile("missing or empty \"id\"")
    if not isinstance(text, str) or not text.strip():
        raise UnreadableFile(f"document {doc_id!r} has no \"text\"")
    extra = row.get("meta") or {}
    if not isinstance(extra, dict):
        raise UnreadableFile(f"document {doc_id!r}: \"meta\" must be an object")
    title = str(row.get("title") or "") or _first_line_title(text) or str(doc_id)
    fingerprint = json.dumps([title, text, extra], sort_keys=True, ensure_ascii=False).encode()
    meta = {**extra, "doc_id": str(doc_id), "title": title, "source": str(path), "content_hash": _hash(fingerprint)}
    return Document(content=text, meta=meta)


_MD_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _markdown_title(text: str) -> str | None:
    match = _MD_HEADING.search(text)
    return match.group(1) if match else None


def _first_line_title(text: str) -> str | None:
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return None


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
