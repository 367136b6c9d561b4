"""The in-memory search structures of the SQLite store: one job, scoring rows for BM25 and dense search.

The store reads its database file once (ORDER BY rid) into a `SearchIndex`:
  - a contiguous float32 matrix of L2-normalised embeddings (dense search: one matrix-vector product), and
  - in-memory BM25 postings (term -> slots, term frequencies), as CSC segments (scipy.sparse's CSR->CSC
    conversion; numpy radix passes when scipy is missing).
Slot i is the i-th row by rid. The store brings the index up to date incrementally: replaced/deleted rows are
marked dead and new rows are appended as a new small segment. Segments are merged, and dead rows compacted away,
when they accumulate.

BM25 here is BM25L with Haystack's defaults (k1=1.5, b=0.75, delta=0.5, idf=log((N+1)/(df+0.5))) on Haystack's
tokenizer (`tokenize`: lower case, NFC, word characters, one token per CJK character), so it ranks exactly like
InMemoryDocumentStore's default BM25L (up to float rounding). `fts5_query` turns free text into a safe query for
the store's other engine, SQLite's FTS5.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
from haystack.document_stores.errors import DocumentStoreError

try:
    import scipy.sparse as _sparse
except ImportError:  # pragma: no cover - scipy comes with sentence-transformers
    _sparse = None

# Haystack 3.4's default InMemoryDocumentStore BM25 tokenization: word characters, CJK one character per token.
_CJK = (
    r"\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff\u3130-\u318f\uac00-\ud7af\u3041-\u3096\u30a1-\u30fa\u30fc"
    r"\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\uffa0-\uffdc"
)
_TOKEN = re.compile(rf"[^\W{_CJK}]+|[{_CJK}]")
_FTS_TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """BM25 tokens exactly as InMemoryDocumentStore makes them (lower case, NFC, its default regex)."""
    return _TOKEN.findall(unicodedata.normalize("NFC", text.lower()))


def fts5_query(text: str) -> str:
    """A safe FTS5 query for free text: its words, each quoted, OR-ed; '' when it has none.

    Quoting makes every word a plain string token, so quotes, `*`, `-`, `:`, parentheses, NEAR, AND/OR/NOT
    in user text are never FTS5 syntax.
    """
    words = dict.fromkeys(word.lower() for word in _FTS_TOKEN.findall(text))
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in words)


def _argsort_small_ints(keys: np.ndarray) -> np.ndarray:
    """An ordering that sorts non-negative integer keys: LSD radix passes of 16 bits (numpy's stable sort)."""
    keys = keys.astype(np.uint32, copy=False)
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = keys >> 16
    if high.any():
        order = order[np.argsort(high[order].astype(np.uint16), kind="stable")]
    return order


class _Segment:
    """BM25 postings of some rows, grouped by term: term t has slots[ptr[t]:ptr[t+1]] and tfs[...].

    Built with scipy.sparse's CSR->CSC conversion (a C counting sort, ~0.2 s for 10M postings) when scipy is
    installed (sentence-transformers requires it), else with numpy radix passes (~1.2 s for 10M).
    """

    __slots__ = ("ptr", "slots", "tfs")

    def __init__(self, ptr: np.ndarray, slots: np.ndarray, tfs: np.ndarray) -> None:
        self.ptr = ptr
        self.slots = slots.astype(np.int32, copy=False)
        self.tfs = tfs  # uint32 counts; scoring promotes them to float64

    @classmethod
    def from_postings(cls, slots: np.ndarray, terms: np.ndarray, tfs: np.ndarray) -> _Segment:
        """From postings in any order: slot, term id and term frequency of each."""
        vocabulary = int(terms.max()) + 1 if len(terms) else 0
        if _sparse is not None and len(terms):
            shape = (int(slots.max()) + 1, vocabulary)
            matrix = _sparse.csc_matrix((tfs, (slots, terms.astype(np.int64))), shape=shape)
            return cls(matrix.indptr, matrix.indices, matrix.data)
        order = _argsort_small_ints(terms)
        ptr = np.zeros(vocabulary + 1, dtype=np.int64)
        np.cumsum(np.bincount(terms, minlength=vocabulary), out=ptr[1:])
        return cls(ptr, slots[order], tfs[order])

    @classmethod
    def from_rows(cls, first_slot: int, sizes: np.ndarray, terms: np.ndarray, tfs: np.ndarray) -> _Segment:
        """From consecutive rows' postings (row-major): sizes[i] postings belong to slot first_slot + i."""
        if _sparse is not None and len(terms):
            indptr = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=indptr[1:])
            shape = (len(sizes), int(terms.max()) + 1)
            # term ids are far below 2**31: read them as int32, scipy's index type, to avoid a copy
            matrix = _sparse.csr_matrix((tfs, terms.view(np.int32), indptr), shape=shape).tocsc()
            slots = matrix.indices.astype(np.int32, copy=False)
            if first_slot:
                slots += np.int32(first_slot)
            return cls(matrix.indptr, slots, matrix.data)
        slots = np.repeat(np.arange(first_slot, first_slot + len(sizes), dtype=np.int32), sizes)
        return cls.from_postings(slots, terms, tfs)

    def __len__(self) -> int:
        return len(self.slots)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray] | None:
        if term + 1 >= len(self.ptr):
            return None
        start, end = self.ptr[term], self.ptr[term + 1]
        return (self.slots[start:end], self.tfs[start:end]) if end > start else None

    def expanded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(slots, terms, tfs) per posting."""
        terms = np.repeat(np.arange(len(self.ptr) - 1, dtype=np.uint32), np.diff(self.ptr))
        return self.slots, terms, self.tfs


class SearchIndex:
    """Dense matrix and BM25 postings of the rows in the database; slot i is the i-th row by rid."""

    MAX_SEGMENTS = 8

    def __init__(self, dim: int | None) -> None:
        self.dim = dim
        self.n = 0  # slots used
        self.rids = np.zeros(0, dtype=np.int64)  # ascending: rows are appended in rid order
        self.alive = np.zeros(0, dtype=bool)
        self.has_embedding = np.zeros(0, dtype=bool)
        self.has_content = np.zeros(0, dtype=bool)
        self.lengths = np.zeros(0, dtype=np.float64)
        self.matrix = np.zeros((0, dim or 0), dtype=np.float32)
        self.segments: list[_Segment] = []
        self.dead = 0
        self.content_count = 0  # alive rows with content: BM25's N
        self.content_tokens = 0.0  # their total length: N * avgdl

    # -- building -------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, dim: int | None, count: int, batches: Iterable[Sequence[tuple]]) -> SearchIndex:
        """A fresh index of `count` rows (rid, embedding, n_tokens, term_ids, term_freqs), read in batches in rid
        order; their BM25 postings become one segment."""
        index = cls(dim)
        index._grow(count)
        sizes, terms, tfs = [], [], []
        for rows in batches:
            found = index.add_rows(rows)
            sizes.append(found[0])
            terms.append(found[1])
            tfs.append(found[2])
        if any(terms):
            joined = _u32(b"".join(terms)), _u32(b"".join(tfs))
            index.segments = [_Segment.from_rows(0, np.concatenate(sizes), *joined)]
        return index

    def _grow(self, extra: int) -> None:
        need = self.n + extra
        capacity = len(self.alive)
        if need <= capacity:
            return
        capacity = max(need, int(capacity * 1.25) + 1024)
        for name, dtype in (("rids", np.int64), ("alive", bool), ("has_embedding", bool), ("has_content", bool),
                            ("lengths", np.float64)):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        if self.dim:
            matrix = np.zeros((capacity, self.dim), dtype=np.float32)
            matrix[: self.n] = self.matrix[: self.n]
            self.matrix = matrix

    def append(self, rows: Sequence[tuple]) -> None:
        """Add rows (rid, embedding, n_tokens, term_ids, term_freqs), rids ascending and above every known rid;
        their BM25 postings become a new segment."""
        first = self.n
        sizes, terms, tfs = self.add_rows(rows)
        if terms:
            self.segments.append(_Segment.from_rows(first, sizes, _u32(terms), _u32(tfs)))
            self._maybe_merge()

    def add_rows(self, rows: Sequence[tuple]) -> tuple[np.ndarray, bytes, bytes]:
        """Add rows everywhere but in the postings; returns their postings: the number per row, and the term
        ids and frequencies of all rows as uint32 bytes."""
        if not rows:
            return np.zeros(0, dtype=np.int64), b"", b""
        first = self.n
        count = len(rows)
        dims = {len(row[1]) // 4 for row in rows if row[1] is not None}
        if dims:
            if len(dims) > 1 or (self.dim and self.dim not in dims):
                raise DocumentStoreError(f"stored embeddings have different sizes: {sorted(dims | {self.dim or 0})}")
            if not self.dim:
                self.dim = dims.pop()
                self.matrix = np.zeros((len(self.alive), self.dim), dtype=np.float32)
        self._grow(count)
        end = first + count
        self.rids[first:end] = np.fromiter((row[0] for row in rows), dtype=np.int64, count=count)
        self.alive[first:end] = True
        has_content = np.fromiter((row[2] is not None for row in rows), dtype=bool, count=count)
        lengths = np.fromiter((row[2] or 0 for row in rows), dtype=np.float64, count=count)
        self.has_content[first:end] = has_content
        self.lengths[first:end] = lengths
        self.content_count += int(has_content.sum())
        self.content_tokens += float(lengths.sum())
        has_embedding = np.fromiter((row[1] is not None for row in rows), dtype=bool, count=count)
        self.has_embedding[first:end] = has_embedding
        if has_embedding.any():
            vectors = np.frombuffer(b"".join(row[1] for row in rows if row[1] is not None), dtype="<f4")
            vectors = vectors.reshape(-1, self.dim)
            if has_embedding.all():
                block = self.matrix[first:end]
                block[:] = vectors
            else:
                block = vectors.copy()
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
            if np.abs(norms - 1.0).max() > 1e-6:  # Loupe's embedders already normalise: usually nothing to do
                norms[norms == 0] = 1.0
                block /= norms[:, None]
            if not has_embedding.all():
                self.matrix[first + np.flatnonzero(has_embedding)] = block
        self.n = end
        sizes = np.fromiter((len(row[3]) // 4 if row[3] else 0 for row in rows), dtype=np.int64, count=count)
        terms = b"".join(row[3] for row in rows if row[3])
        tfs = b"".join(row[4] for row in rows if row[4])
        return sizes, terms, tfs

    def kill(self, rids: np.ndarray) -> None:
        """Mark the rows with these rids dead (compacting when dead rows pile up)."""
        slots = self.slots_of(rids)
        slots = slots[self.alive[slots]]
        self.alive[slots] = False
        self.dead += len(slots)
        content = slots[self.has_content[slots]]
        self.content_count -= len(content)
        self.content_tokens -= float(self.lengths[content].sum())
        if self.dead > max(1024, self.n // 4):
            self.compact()

    def slots_of(self, rids: np.ndarray) -> np.ndarray:
        """Slots of those rids that are here (dead or alive); ascending when the rids are."""
        rids = np.asarray(rids, dtype=np.int64)
        known = self.rids[: self.n]
        positions = np.searchsorted(known, rids)
        inside = positions < self.n
        positions, rids = positions[inside], rids[inside]
        return positions[known[positions] == rids]

    def _merge(self, segments: list[_Segment], remap: np.ndarray | None = None) -> _Segment:
        parts = [segment.expanded() for segment in segments]
        slots = np.concatenate([part[0] for part in parts])
        terms = np.concatenate([part[1] for part in parts])
        tfs = np.concatenate([part[2] for part in parts])
        keep = self.alive[slots]
        slots, terms, tfs = slots[keep], terms[keep], tfs[keep]
        if remap is not None:
            slots = remap[slots]
        return _Segment.from_postings(slots, terms, tfs)

    def _maybe_merge(self) -> None:
        if len(self.segments) <= self.MAX_SEGMENTS:
            return
        base, rest = self.segments[0], self.segments[1:]
        if sum(map(len, rest)) * 4 > len(base):
            self.segments = [self._merge(self.segments)]
        else:
            self.segments = [base, self._merge(rest)]

    def compact(self) -> None:
        """Drop dead rows: renumber slots, shrink the matrix, rebuild the postings."""
        keep = self.alive[: self.n].copy()
        remap = np.cumsum(keep) - 1
        segments = [self._merge(self.segments, remap)] if self.segments else []
        count = int(keep.sum())
        for name in ("rids", "alive", "has_embedding", "has_content", "lengths"):
            setattr(self, name, getattr(self, name)[: self.n][keep].copy())
        if self.dim:
            self.matrix = np.ascontiguousarray(self.matrix[: self.n][keep])
        self.segments = segments
        self.n = count
        self.dead = 0

    # -- searching ------------------------------------------------------------------------------------------

    def bm25_scores(self, term_ids: list[int], k1: float, b: float, delta: float) -> np.ndarray:
        """BM25L scores of every slot (0 where no query term occurs), as InMemoryDocumentStore computes them."""
        scores = np.zeros(self.n, dtype=np.float64)
        if not self.content_count:
            return scores
        average = self.content_tokens / self.content_count
        for term in term_ids:
            found = [postings for segment in self.segments if (postings := segment.postings(term)) is not None]
            if not found:
                continue
            slots = np.concatenate([p[0] for p in found]) if len(found) > 1 else found[0][0]
            tfs = np.concatenate([p[1] for p in found]) if len(found) > 1 else found[0][1]
            live = self.alive[slots]
            if not live.all():
                slots, tfs = slots[live], tfs[live]
            if not len(slots):
                continue
            idf = math.log((self.content_count + 1.0) / (len(slots) + 0.5))
            ctd = tfs / (1.0 - b + b * self.lengths[slots] / average)
            scores[slots] += idf * (1.0 + k1) * (ctd + delta) / (k1 + ctd + delta)
        return scores

    def dense_scores(self, query: np.ndarray, slots: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(slots, cosine scores) of the alive rows with embeddings, among `slots` when given."""
        if slots is None:
            candidates = np.flatnonzero(self.alive[: self.n] & self.has_embedding[: self.n])
            if len(candidates) * 4 >= self.n * 3:
                scores = self.matrix[: self.n] @ query
                return candidates, scores[candidates]
        else:
            candidates = slots[self.alive[slots] & self.has_embedding[slots]]
        return candidates, self.matrix[candidates] @ query


def _u32(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4")


def top_k_slots(slots: np.ndarray, scores: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best top_k by score, ties broken by slot (insertion order), best first. `slots` must be ascending."""
    if len(scores) > top_k:
        threshold = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
        above = np.flatnonzero(scores > threshold)
        ties = np.flatnonzero(scores == threshold)[: top_k - len(above)]
        chosen = np.concatenate([above, ties])
    else:
        chosen = np.arange(len(scores))
    order = np.lexsort((slots[chosen], -scores[chosen]))
    chosen = chosen[order]
    return slots[chosen], scores[chosen]
