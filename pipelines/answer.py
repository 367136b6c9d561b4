"""The answer pipeline: the prompt template over question and passages, then the generator."""

from __future__ import annotations

import dataclasses
from typing import Any

from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage

from components.extractive_answerer import ExtractiveAnswerer


def build_answer_pipeline(prompt_template: str, generator: Any) -> Pipeline:
    """`prompt_builder` renders the Jinja template; `generator` answers from it (or, for the extractive
    answerer, from the question and passages directly, since it has no use for a prompt)."""
    pipeline = Pipeline()
    pipeline.add_component(
        "prompt_builder",
        ChatPromptBuilder(template=[ChatMessage.from_user(prompt_template)], required_variables=["question", "documents"]),
    )
    pipeline.add_component("generator", generator)
    if not isinstance(generator, ExtractiveAnswerer):
        pipeline.connect("prompt_builder.prompt", "generator.messages")
    return pipeline


def answer_inputs(
    generator: Any, question: str, documents: list, streaming_callback: Any = None
) -> dict[str, dict[str, Any]]:
    """The run() inputs of an answer pipeline for this generator."""
    inputs: dict[str, dict[str, Any]] = {
        "prompt_builder": {"question": question, "documents": documents},
        "generator": {"streaming_callback": _without_special_tokens(generator, streaming_callback)},
    }
    if isinstance(generator, ExtractiveAnswerer):
        inputs["generator"].update(query=question, documents=documents)
    return inputs


def _without_special_tokens(generator: Any, callback: Any) -> Any:
    """The callback, given chunks without the tokenizer's special tokens: a local model's streamer decodes them
    (the end-of-turn `<|im_end|>` would show in the streamed answer), its final reply does not."""
    tokenizer = getattr(getattr(generator, "pipeline", None), "tokenizer", None)
    tokens = [token for token in getattr(tokenizer, "all_special_tokens", None) or [] if token]
    if callback is None or not tokens:
        return callback

    def clean(chunk: Any) -> None:
        content = chunk.content
        for token in tokens:
            content = content.replace(token, "")
        callback(chunk if content == chunk.content else dataclasses.replace(chunk, content=content))

    return clean
