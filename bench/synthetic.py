"""Seeded synthetic text for the benchmarks: English words drawn with a Zipf-like distribution.

The vocabulary is the whole-word part of the MiniLM tokenizer's vocab.txt, which is ordered roughly by corpus
frequency ("the", "of", "and", ...), so rank 1 is a real stop word and each word is one word piece for the
embedding model. Without the model package installed, seeded pseudo-words stand in.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

# A period after these does not end a sentence for components.sentences, so no sentence may end on one.
_NO_SENTENCE_END = {"approx", "etc", "figs", "refs", "resp", "sect", "eqs", "nos", "spp", "inc", "mrs", "viz"}


def load_vocabulary(size: int = 20000) -> list[str]:
    """Up to `size` lowercase words, most frequent first."""
    try:
        from configuration.model_paths import MINILM_ID, resolve_embedding_model

        vocab_file = Path(resolve_embedding_model(MINILM_ID)) / "vocab.txt"
        lines = vocab_file.read_text(encoding="utf-8").split("\n")
    except (ImportError, OSError):
        lines = []
    words = [line for line in lines if line.isascii() and line.isalpha() and line.islower()]
    if len(words) >= 1000:
        return words[:size]
    return _pseudo_words(size)


def _pseudo_words(size: int) -> list[str]:
    rng = np.random.default_rng(12345)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    words: dict[str, None] = {}
    while len(words) < size:
        parts = rng.integers(0, len(syllables), size=rng.integers(1, 4))
        words.setdefault("".join(syllables[i] for i in parts), None)
    return list(words)


class ZipfText:
    """Words, sentences and queries from one seeded generator."""

    def __init__(self, seed: int = 0, vocab_size: int = 20000, exponent: float = 1.0, shift: float = 2.7) -> None:
        """
        :param seed: the random seed; the same seed gives the same text.
        :param vocab_size: how many distinct words.
        :param exponent: the Zipf-Mandelbrot exponent s in p(rank) ~ 1 / (rank + shift) ** s.
        :param shift: the Zipf-Mandelbrot shift, which flattens the head of the distribution.
        """
        self.rng = np.random.default_rng(seed)
        self.vocab = load_vocabulary(vocab_size)
        weights = 1.0 / (np.arange(1, len(self.vocab) + 1) + shift) ** exponent
        self._cdf = np.cumsum(weights / weights.sum())
        self._cdf[-1] = 1.0

    def words(self, count: int, skip: int = 0) -> list[str]:
        """`count` words drawn by frequency, never one of the `skip` most frequent."""
        low = self._cdf[skip - 1] if skip else 0.0
        draws = low + (1.0 - low) * self.rng.random(count)
        indexes = np.minimum(np.searchsorted(self._cdf, draws, side="right"), len(self.vocab) - 1)
        return [self.vocab[i] for i in indexes.tolist()]

    def sentences(self, word_count: int, min_len: int = 8, max_len: int = 20) -> list[str]:
        """Sentences of min_len..max_len words (the last may be shorter) holding `word_count` words in all."""
        words = self.words(word_count)
        lengths: list[int] = []
        total = 0
        while total < word_count:
            lengths.append(min(int(self.rng.integers(min_len, max_len + 1)), word_count - total))
            total += lengths[-1]
        sentences = []
        start = 0
        for length in lengths:
            part = words[start : start + length]
            start += length
            while len(part[-1]) < 3 or part[-1] in _NO_SENTENCE_END:
                part[-1] = self.words(1)[0]
            sentences.append(part[0].capitalize() + (" " if len(part) > 1 else "") + " ".join(part[1:]) + ".")
        return sentences

    def text(self, word_count: int) -> str:
        """A paragraph of `word_count` words in sentences."""
        return " ".join(self.sentences(word_count))

    def query(self, min_words: int = 3, max_words: int = 6, skip: int = 100) -> str:
        """A keyword query: a few words, none of them among the `skip` most frequent (stop-word-like) words."""
        return " ".join(self.words(int(self.rng.integers(min_words, max_words + 1)), skip=skip))

    def unit_vectors(self, count: int, dim: int) -> np.ndarray:
        """`count` random float32 vectors of length 1."""
        vectors = self.rng.standard_normal((count, dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors


class Progress:
    """One status line on stderr: rewritten in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.tty = sys.stderr.isatty()
        self.every_s = every_s
        self._last = 0.0
        self._width = 0

    def update(self, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if force or now - self._last >= 0.1:
                sys.stderr.write("\r" + message.ljust(self._width))
                sys.stderr.flush()
                self._width = len(message)
                self._last = now
        elif force or now - self._last >= self.every_s:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
            self._last = now

    def done(self) -> None:
        if self.tty and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()
            self._width = 0
