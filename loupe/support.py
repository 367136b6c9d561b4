"""Support analysis of an answer against its passages, through the SupportAligner component."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from components.support_aligner import SupportAligner
from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings

# What one analysis looks at: a record beyond these (10,000 passages; an answer of 30,000 dots) held the shared
# worker, or the page, for tens of seconds. Real answers are a few thousand characters and the Ask page retrieves
# at most 50 passages; the rest is cut, and the support map says so (`cut`).
MAX_ANSWER_CHARS = 50_000
MAX_PASSAGES = 50
MAX_PASSAGE_CHARS = 100_000  # all analysed passages together


@lru_cache(maxsize=2)
def _aligner(model: str) -> SupportAligner:
    """One warmed-up aligner per model path, so that its cache of passage-sentence embeddings serves every answer
    (a load failure raises and is not cached)."""
    aligner = SupportAligner(model=model)
    aligner.warm_up()
    return aligner


def bounded(answer: str, passage_texts: list[str]) -> tuple[str, list[str], dict[str, int] | None]:
    """The answer and passages one analysis looks at (the first MAX_ANSWER_CHARS of the answer, the first
    MAX_PASSAGES passages, MAX_PASSAGE_CHARS of them together), and what was cut (None when nothing was):
    `answer_chars`, `passages`, `passage_chars`, each with its `_total`, only for what was cut."""
    cut: dict[str, int] = {}
    if len(answer) > MAX_ANSWER_CHARS:
        cut |= {"answer_chars": MAX_ANSWER_CHARS, "answer_chars_total": len(answer)}
    if len(passage_texts) > MAX_PASSAGES:
        cut |= {"passages": MAX_PASSAGES, "passages_total": len(passage_texts)}
    kept, budget = [], MAX_PASSAGE_CHARS
    for text in passage_texts[:MAX_PASSAGES]:
        kept.append(text[:budget])
        budget -= len(kept[-1])
    total = sum(len(text) for text in passage_texts[:MAX_PASSAGES])
    if total > MAX_PASSAGE_CHARS:
        cut |= {"passage_chars": MAX_PASSAGE_CHARS, "passage_chars_total": total}
    return answer[:MAX_ANSWER_CHARS], kept, cut or None


def describe_cut(cut: dict[str, int] | None) -> str | None:
    """One line for the page: what of the record its support map did not look at, and why."""
    if not cut:
        return None
    parts = []
    if "answer_chars" in cut:
        parts.append(f"the first {cut['answer_chars']:,} of the answer's {cut['answer_chars_total']:,} characters")
    if "passages" in cut:
        parts.append(f"the first {cut['passages']:,} of its {cut['passages_total']:,} passages")
    if "passage_chars" in cut:
        parts.append(f"{cut['passage_chars']:,} of those passages' {cut['passage_chars_total']:,} characters")
    return "Support was checked on " + "; ".join(parts) + " (the most one analysis looks at): the rest is not marked."


def analyze_support(settings: Settings, answer: str, passage_texts: list[str],
                    deadline: float | None = None) -> dict[str, Any]:
    """The per-sentence support map of an answer in its stored JSON form (`SupportMap.to_dict()`, see
    components.support_aligner for its shape), of the bounded answer and passages (`bounded`); what was cut is
    under `cut`.

    :param deadline: a `time.monotonic()` time by which the analysis must end, or None for no limit.
    :raises OSError: when the embedding model cannot be loaded.
    :raises TimeLimitExceeded: when the deadline passed first.
    """
    aligner = _aligner(resolve_embedding_model(settings.embedding_model))
    answer, passage_texts, cut = bounded(answer, passage_texts)
    support = aligner.run(answer=answer, passages=passage_texts, deadline=deadline)["support"].to_dict()
    return {**support, "cut": cut} if cut else support


def prepare_support(settings: Settings, items: list[tuple[str, list[str]]], deadline: float | None = None) -> int:
    """Embed together what `analyze_support` will need for these (answer, passage texts) pairs, so that each of
    their analyses then embeds nothing (SupportAligner.prepare: several records per encoder call are faster
    than one at a time; the support maps are the same). Returns how many texts were embedded.

    :raises OSError: when the embedding model cannot be loaded.
    :raises TimeLimitExceeded: when the deadline (as in `analyze_support`) passed first.
    """
    items = [bounded(answer, texts)[:2] for answer, texts in items]
    return _aligner(resolve_embedding_model(settings.embedding_model)).prepare(items, deadline=deadline)
