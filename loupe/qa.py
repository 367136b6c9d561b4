"""Ask a question: retrieve passages, build the prompt, generate the answer; the one entry point for CLI and UI."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haystack import Document, Pipeline

from configuration.model_paths import apply_offline_mode
from configuration.settings import RETRIEVAL_MODES, Settings
from loupe.generators import GeneratorChoice, answer_with_fallback, choose_generator
from loupe.stores import StoreBundle, build_retrievers, refresh
from loupe.suggestion import suggestion_or_none
from loupe.support import analyze_support
from pipelines.answer import answer_inputs, build_answer_pipeline
from pipelines.retrieval import build_retrieval_pipeline, retrieval_inputs


class QuestionError(ValueError):
    """The question or its options cannot be asked; the message says what to change."""


# The context any generator is given, for Ask and Answer again alike: at most the Ask page's top-k cap of passages
# and this many characters of their text (about 3,000 tokens: within the bundled model's 8,192-token window with
# the template and the answer, and about 20 s of its prompt processing on 2 cores), in their ranked order.
MAX_CONTEXT_PASSAGES = 50
MAX_CONTEXT_CHARS = 12_000


@dataclass(frozen=True)
class BoundedContext:
    """The passages a generator is given, and `note`: what was left out and why (None when nothing was)."""

    documents: list[Document]
    note: str | None = None


def bounded_context(documents: list[Document]) -> BoundedContext:
    """The leading passages within `MAX_CONTEXT_PASSAGES` and `MAX_CONTEXT_CHARS` (the first one cut to the
    characters when it alone is longer), and a note saying what was left out."""
    kept: list[Document] = []
    used = 0
    for document in documents[:MAX_CONTEXT_PASSAGES]:
        text = document.content or ""
        if used + len(text) > MAX_CONTEXT_CHARS:
            if not kept:
                kept.append(dataclasses.replace(document, content=text[:MAX_CONTEXT_CHARS]))
            break
        kept.append(document)
        used += len(text)
    cut_first = bool(kept) and kept[0].content != documents[0].content
    if len(kept) == len(documents) and not cut_first:
        return BoundedContext(kept)
    note = (f"the generator was given {len(kept)} of the {len(documents)} passages (at most {MAX_CONTEXT_PASSAGES} "
            f"passages and {MAX_CONTEXT_CHARS:,} characters of their text, in their order)")
    if cut_first:
        note += f"; passage 1 was cut to its first {MAX_CONTEXT_CHARS:,} characters"
    return BoundedContext(kept, note)


def generator_context(settings: Settings, generator_kind: str, documents: list[Document]) -> BoundedContext:
    """`bounded_context` of the passages a generator is given: a model only the `generator_passages` best ranked
    (a small model answers briefly and faster from fewer, bench/generation.py), the extractive answerer all of them
    (it ranks their sentences itself); the note also says which passages were left out for that."""
    most = len(documents) if generator_kind == "extractive" else settings.generator_passages
    context = bounded_context(documents[:most])
    if len(documents) <= most:
        return context
    note = (f"the generator was given the {most} best-ranked of the {len(documents)} passages "
            f"(LOUPE_GENERATOR_PASSAGES)")
    return BoundedContext(context.documents, note + (f"; of those, {context.note}" if context.note else ""))


@dataclass
class Answer:
    """Everything about one answered question that a reviewer needs to judge it."""

    question: str
    answer: str
    generator: dict[str, Any]
    passages: list[dict[str, Any]]
    prompt: str
    mode: str
    doc_ids: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    support: dict[str, Any] | None = None  # the support map (components.support_aligner), when asked for
    suggestion: dict[str, Any] | None = None  # the suggested verdict (loupe.suggestion), with the support map
    context_note: str | None = None  # what of the passages the generator was not given (`bounded_context`)

    def to_json(self) -> dict[str, Any]:
        """The `ask --json` object."""
        return {
            "question": self.question,
            "answer": self.answer,
            "generator": self.generator,
            "mode": self.mode,
            "scope": self.doc_ids,
            "passages": self.passages,
            "timings": self.timings,
        } | ({"support": self.support} if self.support is not None else {}) | (
            {"suggestion": self.suggestion} if self.suggestion is not None else {}) | (
            {"context_note": self.context_note} if self.context_note else {})


def passage_record(document: Document) -> dict[str, Any]:
    """A retrieved chunk as plain data: id, document, title, page, text, fused score, per-retriever ranks."""
    meta = document.meta
    return {
        "id": document.id,
        "doc_id": meta.get("doc_id"),
        "title": meta.get("title"),
        "page": meta.get("page"),
        "text": document.content,
        "score": document.score,
        "ranks": meta.get("ranks", {}),
        "retriever_scores": meta.get("retriever_scores", {}),
        "chunk_index": meta.get("chunk_index"),
        "char_start": meta.get("char_start"),
        "char_end": meta.get("char_end"),
        "source": meta.get("source"),
    }


class Asker:
    """Holds the store, retrieval pipelines (one per mode, built on first use) and the generator.

    Build one per process (it loads models); it is safe to call `ask` repeatedly.
    """

    def __init__(self, settings: Settings, bundle: StoreBundle | None = None, generator: GeneratorChoice | None = None):
        apply_offline_mode(settings)
        self.settings = settings
        self.bundle = bundle or build_retrievers(settings)
        self.generator = generator or choose_generator(settings)
        self._retrieval: dict[str, Pipeline] = {}
        self._answer_pipeline = build_answer_pipeline(settings.prompt_template, self.generator.component)

    def retrieval_pipeline(self, mode: str) -> Pipeline:
        if mode not in RETRIEVAL_MODES:
            raise QuestionError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, got {mode!r}")
        if mode not in self._retrieval:
            self._retrieval[mode] = build_retrieval_pipeline(self.settings, self.bundle, mode)
        return self._retrieval[mode]

    def retrieve(
        self, question: str, doc_ids: list[str] | None = None, mode: str | None = None, top_k: int | None = None
    ) -> list[Document]:
        """The fused top passages for the question within the scope."""
        question = _checked_question(question)
        if top_k is not None and top_k < 1:
            raise QuestionError(f"top-k must be at least 1, got {top_k}")
        refresh(self.bundle.store)
        pipeline = self.retrieval_pipeline(mode or "hybrid")
        result = pipeline.run(retrieval_inputs(pipeline, question, doc_ids, top_k))
        return result["fusion"]["documents"]

    def search_evidence(self, query: str, scope: list[str] | None = None, top_k: int = 5) -> list[dict[str, Any]]:
        """BM25 search within a document scope, as plain passages: for attaching evidence the retriever missed."""
        return [passage_record(doc) for doc in self.retrieve(query, doc_ids=scope or None, mode="bm25", top_k=top_k)]

    def ask(
        self,
        question: str,
        doc_ids: list[str] | None = None,
        mode: str = "hybrid",
        top_k: int | None = None,
        streaming_callback: Callable[[Any], None] | None = None,
        on_fallback: Callable[[str], None] | None = None,
        with_support: bool = False,
    ) -> Answer:
        """Retrieve, then answer (see loupe.generators.answer_with_fallback for a generator failing now), then,
        with `with_support`, map which passages support each sentence of the answer and suggest a verdict
        (loupe.suggestion; a model file that cannot be read leaves the suggestion out and logs why)."""
        started = time.perf_counter()
        documents = self.retrieve(question, doc_ids, mode, top_k)
        retrieved = time.perf_counter()
        context = generator_context(self.settings, self.generator.kind, documents)

        def run(choice: GeneratorChoice, pipeline: Pipeline) -> dict:
            inputs = answer_inputs(choice.component, question, context.documents, streaming_callback)
            return pipeline.run(inputs, include_outputs_from={"prompt_builder"})

        choice, result = answer_with_fallback(self.settings, self.generator, self._answer_pipeline, run, on_fallback)
        finished = time.perf_counter()
        reply = result["generator"]["replies"][0]
        answer = Answer(
            question=question.strip(),
            answer=(reply.text or "").strip(),
            generator=choice.describe(),
            passages=[passage_record(document) for document in documents],
            prompt=result["prompt_builder"]["prompt"][0].text,
            mode=mode,
            doc_ids=list(doc_ids or []),
            timings={
                "retrieval_ms": round((retrieved - started) * 1000, 1),
                "generation_ms": round((finished - retrieved) * 1000, 1),
            },
            context_note=context.note,
        )
        if with_support:
            answer.support = analyze_support(self.settings, answer.answer, [p["text"] or "" for p in answer.passages])
            answer.suggestion = suggestion_or_none(self.settings, answer.support, answer.passages, answer.answer,
                                                   answer.question)
        return answer


def _checked_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("the question is empty; type a question")
    if len(question) > 4000:
        raise QuestionError(f"the question is {len(question)} characters long; at most 4000 are accepted")
    return question.strip()
