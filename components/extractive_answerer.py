"""An answerer that needs no language model: it quotes the retrieved sentences closest to the question."""

from __future__ import annotations

from typing import Any

import numpy as np
from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage, StreamingChunk

from components.sentence_model import SentenceEncoder, SentenceEncoderFactory
from components.sentences import split_sentences

NO_ANSWER = "The provided context does not contain this information."


@component
class ExtractiveAnswerer:
    """
    Composes an answer from the passage sentences most similar to the question (MiniLM cosine similarity),
    each followed by the number of its passage, e.g. "Models were trained with PyTorch. [2]".
    When no sentence reaches `min_similarity` it abstains with a fixed sentence.

    It replies with ChatMessages like a chat generator, so the rest of Loupe treats both alike. It is the
    fallback when the configured generator cannot be loaded, and a fully offline choice of its own. The model is
    loaded by `warm_up()` through `SentenceEncoderFactory` (one per model path in the process; pipelines warm
    their components up), or by the first `run()` that has something to embed.

    Usage:
    ```python
    answerer = ExtractiveAnswerer(model="/path/to/all-MiniLM-L6-v2")
    answerer.warm_up()
    reply = answerer.run(query="Which framework was used?", documents=passages)["replies"][0].text
    ```
    """

    def __init__(
        self, model: str, min_similarity: float = 0.35, max_sentences: int = 3, encoder: SentenceEncoder | None = None
    ) -> None:
        """
        :param model: the sentence-transformers model (local path or id).
        :param min_similarity: the cosine similarity a sentence needs to be quoted.
        :param max_sentences: the most sentences quoted.
        :param encoder: the sentence encoder to use instead of the factory's for `model` (not serialised; tests
            pass a stand-in).
        :raises ValueError: when max_sentences < 1 or min_similarity is outside [-1, 1].
        """
        if max_sentences < 1 or not -1.0 <= min_similarity <= 1.0:
            raise ValueError(f"need max_sentences >= 1 and -1 <= min_similarity <= 1, got {max_sentences}, {min_similarity}")
        self.model = model
        self.min_similarity = min_similarity
        self.max_sentences = max_sentences
        self.encoder = encoder

    def warm_up(self) -> None:
        """
        Loads the sentence model, unless an encoder was given or loaded before (idempotent).

        :raises OSError: when the model cannot be loaded.
        """
        if self.encoder is None:
            self.encoder = SentenceEncoderFactory.get_encoder(self.model)

    def to_dict(self) -> dict[str, Any]:
        """The init parameters, without the encoder."""
        return default_to_dict(
            self, model=self.model, min_similarity=self.min_similarity, max_sentences=self.max_sentences
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractiveAnswerer:
        return default_from_dict(cls, data)

    @component.output_types(replies=list[ChatMessage])
    def run(self, query: str, documents: list[Document], streaming_callback: Any = None) -> dict[str, Any]:
        """
        :param query: the question.
        :param documents: the retrieved passages; citations number them from 1 in this order.
        :param streaming_callback: called once per quoted sentence with a StreamingChunk, like a generator's.
        :returns: `replies`: one ChatMessage; its meta has `model` and `citations` (passage numbers used).
        :raises OSError: when there is something to embed, the answerer was not warmed up and the model cannot
            be loaded.
        """
        candidates = [
            (number, sentence)
            for number, document in enumerate(documents, start=1)
            for sentence in split_sentences(document.content or "")
            if _is_statement(sentence)
        ]
        chosen = self._best(query, candidates)
        if chosen:
            parts = [f"{sentence} [{number}]" for number, sentence, _ in chosen]
        else:
            parts = [NO_ANSWER]
        for index, part in enumerate(parts):
            if streaming_callback is not None:
                streaming_callback(StreamingChunk(content=part if index == 0 else " " + part))
        meta = {"model": "extractive", "citations": sorted({number for number, _, _ in chosen}),
                "similarities": [round(score, 4) for _, _, score in chosen]}
        return {"replies": [ChatMessage.from_assistant(" ".join(parts), meta=meta)]}

    def _best(self, query: str, candidates: list[tuple[int, str]]) -> list[tuple[int, str, float]]:
        if not candidates or not query.strip():
            return []
        if self.encoder is None:
            self.warm_up()
        vectors = np.asarray(self.encoder.encode([query] + [sentence for _, sentence in candidates]), dtype=np.float32)
        similarities = vectors[1:] @ vectors[0]
        order = np.argsort(-similarities, kind="stable")
        chosen, seen = [], set()
        for index in order:
            score = float(similarities[index])
            number, sentence = candidates[index]
            if score < self.min_similarity or len(chosen) == self.max_sentences:
                break
            if sentence in seen:  # overlapping chunks repeat sentences
                continue
            seen.add(sentence)
            chosen.append((number, sentence, score))
        return chosen


def _is_statement(sentence: str) -> bool:
    """Headings ("## Methods") and fragments of a few words answer nothing; quote only real sentences."""
    return not sentence.lstrip().startswith("#") and len(sentence.split()) >= 4
