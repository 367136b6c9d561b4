"""One shared SentenceTransformer per model path for Loupe's own components (answerer, support analysis)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4)
def load_sentence_model(model: str):
    """Load (once per process) the sentence-transformers model at `model`, a local path or hub id."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model, device="cpu")


def embed(model: str, texts: list[str]) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text, so that a dot product is the cosine similarity."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    vectors = load_sentence_model(model).encode(
        texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
    )
    return vectors.astype(np.float32, copy=False)
