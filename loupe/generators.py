"""Choose the configured generator, and fall back to the extractive answerer, loudly, when it cannot load."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from haystack.dataclasses import ChatMessage
from haystack.utils import Secret

from components.extractive_answerer import ExtractiveAnswerer
from configuration.model_paths import is_bundled_generator, resolve_embedding_model
from configuration.settings import DECODING, Settings
from loupe.bundled_model import Progress, local_generator_model
from loupe.degeneration import degeneration, finished_answer
from pipelines.answer import build_answer_pipeline

API_KEY_VARIABLES = ["LOUPE_GENERATOR_API_KEY", "OPENAI_API_KEY"]


@dataclass
class GeneratorChoice:
    """The generator in use, what to call it in the UI and records, and why it is not the configured one."""

    component: Any
    kind: str
    model: str
    fallback_reason: str | None = None
    path: str | None = None  # the local folder a transformers model was loaded from
    generation: dict[str, Any] | None = None  # the decoding settings sent with every answer
    raw_output: str | None = None  # the model's own output, when the answer shown is not exactly it
    answer_cut: str | None = None  # what of the model's output the answer leaves out, and why

    def describe(self) -> dict[str, Any]:
        """The `generator` field of answers and records."""
        return {"kind": self.kind, "model": self.model, "path": self.path, "fallback_reason": self.fallback_reason,
                "generation": dict(self.generation) if self.generation is not None else None} | {
            name: value for name, value in (("raw_output", self.raw_output), ("answer_cut", self.answer_cut)) if value}


def extractive_answerer(settings: Settings) -> ExtractiveAnswerer:
    """The offline answerer, using the same sentence model as retrieval."""
    return ExtractiveAnswerer(
        model=resolve_embedding_model(settings.embedding_model), min_similarity=settings.extractive_min_similarity
    )


def choose_generator(settings: Settings, progress: Progress | None = None) -> GeneratorChoice:
    """Build and warm up the configured generator; on failure, the extractive answerer with the reason.

    Transformers models are loaded here, so a missing model is found before the first question (the bundled
    model, or a GGUF file, is first prepared as a model folder, once: loupe.bundled_model; `progress` hears of
    it); an OpenAI-compatible server is only contacted when asked (see loupe.qa for failures then).
    """
    if settings.generator_kind == "extractive":
        return GeneratorChoice(extractive_answerer(settings), "extractive", "extractive")
    if settings.generator_kind == "openai":
        generator = openai_generator(settings)
        return GeneratorChoice(generator, "openai", settings.generator_model,
                               generation=dict(generator.generation_kwargs))
    try:
        model, folder = local_generator_model(settings, progress)
        generator = transformers_generator(settings, model)
        generator.warm_up()
    except Exception as error:  # any load failure (no weights, no network, bad path) means: fall back
        return fallback_choice(settings, _load_failure_reason(settings, error))
    return GeneratorChoice(generator, "transformers", settings.generator_model,
                           path=str(folder) if folder is not None else None,
                           generation=dict(generator.generation_kwargs))


class GenerationCancelled(Exception):
    """The user stopped an answer while it streamed: no fallback answers instead, and nothing is stored."""


def cancellable(callback: Callable[[Any], None] | None, cancel: threading.Event) -> Callable[[Any], None]:
    """The streaming callback, raising `GenerationCancelled` at the first chunk after `cancel` is set: local
    models stream from inside their decoding loop and servers chunk by chunk, so either stops between tokens."""

    def checked(chunk: Any) -> None:
        if cancel.is_set():
            raise GenerationCancelled("the answer was cancelled while it streamed")
        if callback is not None:
            callback(chunk)

    return checked


def _cancelled(error: BaseException | None) -> bool:
    """Whether `error` is, or was caused by (the pipeline wraps what a component raises), a cancellation."""
    while error is not None:
        if isinstance(error, GenerationCancelled):
            return True
        error = error.__cause__ or error.__context__
    return False


def answer_with_fallback(
    settings: Settings, choice: GeneratorChoice, pipeline: Any, run: Callable[[GeneratorChoice, Any], dict],
    on_fallback: Callable[[str], None] | None = None,
) -> tuple[GeneratorChoice, dict]:
    """`run(choice, pipeline)`, the answer pipeline of the generator chosen at start; a generator that fails now
    (an unreachable server) is replaced for this answer by the extractive answerer, and `on_fallback` is told why;
    so is a reply that degenerates (loupe.degeneration), and a reply cut at its token limit ends at its last sentence.

    This and `choose_generator` are the two moments a fallback is decided: at load and at answer time.
    :returns: the generator that answered and the pipeline's result."""
    try:
        result = run(choice, pipeline)
    except Exception as error:
        if _cancelled(error):
            raise GenerationCancelled("the answer was cancelled while it streamed") from None
        if choice.kind == "extractive":
            raise
        fallback = fallback_choice(settings, f"{choice.kind} generator failed: {_failure(settings, choice, error)}")
        return _fall_back(settings, fallback, run, on_fallback)
    if choice.kind == "extractive":
        return choice, result
    return _checked_output(settings, choice, result, run, on_fallback)


def _checked_output(
    settings: Settings, choice: GeneratorChoice, result: dict, run: Callable[[GeneratorChoice, Any], dict],
    on_fallback: Callable[[str], None] | None,
) -> tuple[GeneratorChoice, dict]:
    """The model's reply ended where an answer ends (loupe.degeneration.finished_answer), or, when what is left is
    degenerate or empty, the extractive answer instead, the model's output and the reason kept with it."""
    reply = result["generator"]["replies"][0]
    raw = reply.text or ""
    finished = finished_answer(raw, at_limit=reply.meta.get("finish_reason") == "length")
    problem = degeneration(finished.text) or (None if finished.text else "gave no complete sentence")
    if problem:
        reason = f"{_model_label(choice)} {problem}; showing the extractive answer"
        return _fall_back(settings, fallback_choice(settings, reason, raw_output=raw), run, on_fallback)
    if finished.cut is None:
        return choice, result
    shown = ChatMessage.from_assistant(finished.text, meta=reply.meta)
    result = {**result, "generator": {**result["generator"], "replies": [shown]}}
    return dataclasses.replace(choice, raw_output=raw, answer_cut=finished.cut), result


def _fall_back(
    settings: Settings, fallback: GeneratorChoice, run: Callable[[GeneratorChoice, Any], dict],
    on_fallback: Callable[[str], None] | None,
) -> tuple[GeneratorChoice, dict]:
    """The extractive answerer's answer, after telling `on_fallback` why it stands in."""
    if on_fallback is not None:
        on_fallback(fallback.fallback_reason)
    return fallback, run(fallback, build_answer_pipeline(settings.prompt_template, fallback.component))


def _model_label(choice: GeneratorChoice) -> str:
    """How notices name the model: "the bundled model", or by its name."""
    return "the bundled model" if is_bundled_generator(choice.model) else f"the model {choice.model}"


def fallback_choice(settings: Settings, reason: str, raw_output: str | None = None) -> GeneratorChoice:
    """The extractive answerer standing in for the configured generator, with the reason (and the output it
    replaces, if any) recorded."""
    return GeneratorChoice(extractive_answerer(settings), "extractive", "extractive", fallback_reason=reason,
                           raw_output=raw_output)


def generation_kwargs(settings: Settings) -> dict[str, Any]:
    """The decoding of a local model: the measured settings (configuration.settings.DECODING), this length."""
    return {"max_new_tokens": settings.generator_max_new_tokens, **DECODING}


def transformers_generator(settings: Settings, model: str | None = None) -> Any:
    """A local chat model by hub id or local path (`model`, default the configured one, as it is); `task` is
    given so that nothing asks the hub for it. The answer ends at the model's end-of-turn token."""
    from haystack_integrations.components.generators.transformers import TransformersChatGenerator

    return TransformersChatGenerator(
        model=model or settings.generator_model,
        task="text-generation",
        generation_kwargs=generation_kwargs(settings),
    )


def openai_generator(settings: Settings) -> Any:
    """Any OpenAI-compatible server. Local servers ignore the key, so a placeholder stands in when none is set."""
    from haystack.components.generators.chat import OpenAIChatGenerator

    if not any(os.environ.get(name) for name in API_KEY_VARIABLES):
        os.environ["LOUPE_GENERATOR_API_KEY"] = "no-key-set"
    return OpenAIChatGenerator(
        api_key=Secret.from_env_var(API_KEY_VARIABLES),
        model=settings.generator_model,
        api_base_url=settings.generator_base_url,
        generation_kwargs={"max_tokens": settings.generator_max_new_tokens, "temperature": 0},
        timeout=settings.generator_timeout_s,
        max_retries=0,  # a retry would double the wait before the fallback; the next question tries again
    )


def _failure(settings: Settings, choice: GeneratorChoice, error: Exception) -> str:
    """What went wrong when answering, in words, for the fallback notice and the record."""
    import openai

    cause: BaseException = error
    while not isinstance(cause, openai.OpenAIError) and cause.__cause__ is not None:  # through PipelineRuntimeError
        cause = cause.__cause__
    if not isinstance(cause, openai.OpenAIError):
        return f"{type(error).__name__}: {error}"
    error = cause
    where = settings.generator_base_url or "the server"
    if isinstance(error, openai.APITimeoutError):
        return f"no answer from {where} within {settings.generator_timeout_s:g} s (APITimeoutError)"
    if isinstance(error, openai.APIConnectionError):
        return f"cannot connect to {where}: is the server running? (APIConnectionError: {error})"
    if isinstance(error, openai.APIStatusError):
        return f"{where} answered HTTP {error.status_code}: {_server_message(error)}"
    return f"{type(error).__name__}: {error}"


def _load_failure_reason(settings: Settings, error: Exception) -> str:
    reason = f"could not load transformers model {settings.generator_model!r}: "
    if isinstance(error, OSError) and not settings.allow_downloads:
        return reason + ("it is neither a local folder nor in the local model cache, and downloads are off "
                         "(LOUPE_ALLOW_DOWNLOADS=1 allows them)")
    return reason + _first_line(error)


def _server_message(error: Any) -> str:
    """What the server said about a refused request: `detail` or `error.message` of a JSON body, else its text."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error")
        message = body.get("detail") or body.get("message") or (inner.get("message") if isinstance(inner, dict) else inner)
        if message:
            return " ".join(str(message).split())[:300]
    try:
        text = " ".join(error.response.text.split())
    except Exception:  # a streamed body already consumed
        text = ""
    return text[:300] or _first_line(error)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
