"""Answer again: the same question from the same stored passages, with the generator configured now (or another
one), so that two generators are compared on identical evidence. No retrieval: the passages are the record's."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from haystack import Document

from configuration.settings import Settings
from loupe.generators import GeneratorChoice, answer_with_fallback
from loupe.qa import Answer, generator_context
from loupe.support import analyze_support
from pipelines.answer import answer_inputs, build_answer_pipeline

PASSAGE_META = ("doc_id", "title", "page", "chunk_index", "char_start", "char_end", "source", "ranks",
                "retriever_scores")


def passage_document(passage: dict[str, Any]) -> Document:
    """A stored passage (loupe.qa.passage_record's shape) as the Document the prompt template reads."""
    meta = {name: passage.get(name) for name in PASSAGE_META if passage.get(name) is not None}
    return Document(id=passage.get("id") or None, content=passage.get("text") or "", meta=meta,
                    score=passage.get("score"))


def answer_from_passages(
    settings: Settings, choice: GeneratorChoice, question: str, passages: list[dict[str, Any]], *,
    mode: str = "stored", doc_ids: list[str] | None = None,
    streaming_callback: Callable[[Any], None] | None = None, on_fallback: Callable[[str], None] | None = None,
    with_support: bool = True, pipeline: Any = None,
) -> Answer:
    """Answer `question` from these passages with `choice` (falling back as any answer does), keeping the passages
    exactly as given; with `with_support`, the answer's support map against them. The generator is given them
    within the same bounds as Ask (`loupe.qa.generator_context`), and the answer's `context_note` says what was cut.

    :param pipeline: the answer pipeline `choice.component` is already part of (a component belongs to one
        pipeline; loupe.qa.Asker has one for its generator); None: the one it is in, else a new one."""
    if not question or not question.strip():
        raise ValueError("the record has no question to answer again")
    if not passages:
        raise ValueError("the record has no passages to answer from")
    context = generator_context(settings, choice.kind, [passage_document(passage) for passage in passages])
    started = time.perf_counter()

    def run(current: GeneratorChoice, pipeline: Any) -> dict:
        return pipeline.run(answer_inputs(current.component, question, context.documents, streaming_callback),
                            include_outputs_from={"prompt_builder"})

    # a component belongs to one pipeline: reuse the one it is in (the asker's, an earlier answer again's)
    pipeline = pipeline or getattr(choice.component, "__haystack_added_to_pipeline__", None) or build_answer_pipeline(
        settings.prompt_template, choice.component)
    used, result = answer_with_fallback(settings, choice, pipeline, run, on_fallback)
    reply = result["generator"]["replies"][0]
    answer = Answer(
        question=question.strip(), answer=(reply.text or "").strip(), generator=used.describe(),
        passages=[dict(passage) for passage in passages], prompt=result["prompt_builder"]["prompt"][0].text,
        mode=mode, doc_ids=list(doc_ids or []),
        timings={"retrieval_ms": 0.0, "generation_ms": round((time.perf_counter() - started) * 1000, 1)},
        context_note=context.note,
    )
    if with_support:
        answer.support = analyze_support(settings, answer.answer, [passage.get("text") or "" for passage in passages])
    return answer
