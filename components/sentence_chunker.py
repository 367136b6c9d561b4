"""Split documents into chunks of whole sentences, keeping each chunk's place in its document."""

from __future__ import annotations

import re
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from components.sentences import sentence_spans, word_count


@component
class SentenceChunker:
    """
    Packs consecutive sentences into chunks of at most `chunk_words` words, overlapping by whole sentences.

    Each chunk's content is the exact slice `document.content[char_start:char_end]`, so highlights computed on a
    chunk map back onto the document. Chunk metadata: the parent's meta plus `chunk_index`, `char_start`,
    `char_end`, `page` and `page_end` (1-based, where the chunk starts and ends, counted from form feeds, which
    separate PDF pages).
    Chunk ids are `<doc_id>#<chunk_index>`, stable across runs.

    Usage:
    ```python
    chunker = SentenceChunker(chunk_words=150, overlap_words=30)
    chunks = chunker.run([Document(content=text, meta={"doc_id": "paper1"})])["documents"]
    ```
    """

    def __init__(self, chunk_words: int = 150, overlap_words: int = 30) -> None:
        """
        :param chunk_words: the most words a chunk holds (a single longer sentence is cut at word boundaries).
        :param overlap_words: at most this many words of trailing sentences are repeated in the next chunk.
        :raises ValueError: when the lengths are not 0 <= overlap_words < chunk_words.
        """
        if chunk_words < 1 or not 0 <= overlap_words < chunk_words:
            raise ValueError(f"need 0 <= overlap_words < chunk_words, got {overlap_words} and {chunk_words}")
        self.chunk_words = chunk_words
        self.overlap_words = overlap_words

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, chunk_words=self.chunk_words, overlap_words=self.overlap_words)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SentenceChunker:
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """
        :param documents: documents with text content and a `doc_id` in their meta.
        :returns: `documents`: the chunks of all input documents, in order.
        """
        chunks: list[Document] = []
        for document in documents:
            text = document.content or ""
            doc_id = document.meta.get("doc_id") or document.id
            for index, (start, end) in enumerate(self._chunk_spans(text)):
                meta = {
                    **document.meta,
                    "doc_id": doc_id,
                    "chunk_index": index,
                    "char_start": start,
                    "char_end": end,
                    "page": text.count("\f", 0, start) + 1,
                    "page_end": text.count("\f", 0, end) + 1,
                }
                chunks.append(Document(id=f"{doc_id}#{index}", content=text[start:end], meta=meta))
        return {"documents": chunks}

    def _chunk_spans(self, text: str) -> list[tuple[int, int]]:
        """Group sentence spans into chunk spans."""
        units = [(start, end, word_count(text[start:end])) for start, end in self._unit_spans(text)]
        spans: list[tuple[int, int]] = []
        first = 0
        while first < len(units):
            last, words = first, units[first][2]
            while last + 1 < len(units) and words + units[last + 1][2] <= self.chunk_words:
                last += 1
                words += units[last][2]
            spans.append((units[first][0], units[last][1]))
            if last + 1 >= len(units):
                break
            first = self._overlap_start(units, first, last)
        return spans

    def _overlap_start(self, units: list[tuple[int, int, int]], first: int, last: int) -> int:
        """The first unit of the next chunk: the trailing units of this one that fit the overlap, never `first`."""
        start, words = last + 1, 0
        while start - 1 > first and words + units[start - 1][2] <= self.overlap_words:
            start -= 1
            words += units[start][2]
        return start

    def _unit_spans(self, text: str) -> list[tuple[int, int]]:
        """Sentences, with any sentence longer than a chunk cut into chunk-sized word runs."""
        units: list[tuple[int, int]] = []
        for start, end in sentence_spans(text):
            if word_count(text[start:end]) <= self.chunk_words:
                units.append((start, end))
                continue
            units.extend(_word_windows(text, start, end, self.chunk_words))
        return units


def _word_windows(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Cut text[start:end] into runs of `size` whitespace-separated words."""


    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
    return [(words[i][0], words[min(i + size, len(words)) - 1][1]) for i in range(0, len(words), size)]
