"""The sentence-embedding backend of Loupe's own components (extractive answerer, support aligner), and the factory
that loads one per model path, like Haystack's `_SentenceTransformersEmbeddingBackendFactory`.

Components take an optional `SentenceEncoder` (tests inject a stand-in) or get one from
`SentenceEncoderFactory.get_encoder(model)` in `warm_up()`; components sharing a model share its weights.

Usage:
```python
encoder = SentenceEncoderFactory.get_encoder("/path/to/all-MiniLM-L6-v2")
vectors = encoder.encode(["A first sentence.", "A second one."])  # shape (2, 384), rows of unit length
```
"""

from __future__ import annotations

import threading
from typing import ClassVar

import numpy as np

# Intra-op threads of one encode (torch's per-thread setting, restored afterwards). What Loupe embeds at a time is
# a handful of short sentences; on the 2-core machine, with the cores busy, one thread analysed 7-10 study records
# per second and torch's default of two 1.0-1.7 (bench/README.md, "analyze.py"): the two threads wait on each other
# for every small matrix product. One thread also leaves the other core to the page while the background analysis
# runs.
ENCODE_THREADS = 1


class SentenceEncoder:
    """
    A sentence-transformers model on the CPU that turns texts into unit-length float32 rows, so that a dot product
    is the cosine similarity.

    Usage:
    ```python
    encoder = SentenceEncoder("/path/to/all-MiniLM-L6-v2")
    first, second = encoder.encode(["Seeds were fixed.", "The seed was fixed."])
    similarity = float(first @ second)
    ```
    """

    def __init__(self, model: str, threads: int = ENCODE_THREADS) -> None:
        """
        Loads the model (this takes seconds; use `SentenceEncoderFactory.get_encoder` to load it once).

        :param model: the sentence-transformers model, a local path or hub id.
        :param threads: torch's intra-op threads while encoding (0: leave the calling thread's setting).
        :raises OSError: when the model cannot be found or read (the error sentence-transformers raises).
        """
        from sentence_transformers import SentenceTransformer

        self.model = model
        self.threads = threads
        self._model = SentenceTransformer(model, device="cpu")
        # One encode at a time: the app's pages and its background analysis share this encoder from several
        # threads, a fast tokenizer must not be used by two threads at once, and two forward passes side by side
        # on the same cores are no faster than one after the other.
        self._lock = threading.Lock()

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """
        :param texts: the texts to embed.
        :param batch_size: texts per forward pass (the model pads a batch to its longest text).
        :returns: an array of shape (len(texts), dimension), float32, each row of unit length.
        """
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension() or 1), dtype=np.float32)
        import torch

        with self._lock:
            before = torch.get_num_threads()
            if self.threads and self.threads != before:
                torch.set_num_threads(self.threads)  # this thread's setting (and the default of new threads)
            try:
                vectors = self._model.encode(
                    list(texts), batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False,
                    convert_to_numpy=True,
                )
            finally:
                if torch.get_num_threads() != before:
                    torch.set_num_threads(before)
        return np.asarray(vectors, dtype=np.float32)


class SentenceEncoderFactory:
    """One `SentenceEncoder` per model path in this process, loaded on first request (thread-safe: Streamlit
    sessions ask from several threads, and a model is loaded once)."""

    _instances: ClassVar[dict[str, SentenceEncoder]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def get_encoder(cls, model: str) -> SentenceEncoder:
        """
        :param model: the sentence-transformers model, a local path or hub id.
        :returns: the process's encoder for that model, loaded now if it is the first request.
        :raises OSError: when the model cannot be loaded (nothing is cached then; the next request tries again).
        """
        with cls._lock:
            encoder = cls._instances.get(model)
            if encoder is None:
                encoder = cls._instances[model] = SentenceEncoder(model)
            return encoder
