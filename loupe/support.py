"""Support analysis of an answer against its passages, through the SupportAligner component."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from components.support_aligner import SupportAligner
from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings


@lru_cache(maxsize=2)
def _aligner(model: str) -> SupportAligner:
    return SupportAligner(model=model)


def analyze_support(settings: Settings, answer: str, passage_texts: list[str]) -> dict[str, Any]:
    """The per-sentence support map of an answer (see components.support_aligner for its shape)."""
    aligner = _aligner(resolve_embedding_model(settings.embedding_model))
    return aligner.run(answer=answer, passages=passage_texts)["support"]
