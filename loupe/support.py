"""Support analysis of an answer against its passages, through the SupportAligner component."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from components.support_aligner import SupportAligner
from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings


@lru_cache(maxsize=2)
def _aligner(model: str) -> SupportAligner:
    """One warmed-up aligner per model path, so that its cache of passage-sentence embeddings serves every answer
    (a load failure raises and is not cached)."""
    aligner = SupportAligner(model=model)
    aligner.warm_up()
    return aligner


def analyze_support(settings: Settings, answer: str, passage_texts: list[str]) -> dict[str, Any]:
    """The per-sentence support map of an answer in its stored JSON form (`SupportMap.to_dict()`, see
    components.support_aligner for its shape).

    :raises OSError: when the embedding model cannot be loaded.
    """
    aligner = _aligner(resolve_embedding_model(settings.embedding_model))
    return aligner.run(answer=answer, passages=passage_texts)["support"].to_dict()


def prepare_support(settings: Settings, items: list[tuple[str, list[str]]]) -> int:
    """Embed together what `analyze_support` will need for these (answer, passage texts) pairs, so that each of
    their analyses then embeds nothing (SupportAligner.prepare: several records per encoder call are faster
    than one at a time; the support maps are the same). Returns how many texts were embedded.

    :raises OSError: when the embedding model cannot be loaded.
    """
    return _aligner(resolve_embedding_model(settings.embedding_model)).prepare(items)
