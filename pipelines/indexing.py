"""The indexing pipeline: clean -> chunk by sentences -> embed -> write."""

from __future__ import annotations

from typing import Any

from haystack import Pipeline
from haystack.components.preprocessors import DocumentCleaner
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersDocumentEmbedder

from components.sentence_chunker import SentenceChunker
from configuration.model_paths import resolve_embedding_model
from configuration.settings import Settings

# PDF text breaks words at line ends ("classifi-\ncation") and pads with runs of spaces.
_CLEANING_RULES = {r"(\w)-\n(\w)": r"\1\2", r"[ \t]+": " "}


def build_indexing_pipeline(settings: Settings, store: Any) -> Pipeline:
    """Documents in (from components.file_loader.FileLoader), chunks with embeddings written to `store`.

    Run it with `{"cleaner": {"documents": docs}}`; the writer overwrites chunks with the same id.
    """
    pipeline = Pipeline()
    pipeline.add_component(
        "cleaner",
        DocumentCleaner(
            remove_empty_lines=False,
            remove_extra_whitespaces=False,
            unicode_normalization="NFKC",
            replace_regexes=_CLEANING_RULES,
            keep_id=True,
        ),
    )
    pipeline.add_component(
        "chunker", SentenceChunker(chunk_words=settings.chunk_words, overlap_words=settings.chunk_overlap_words)
    )
    pipeline.add_component(
        "embedder",
        SentenceTransformersDocumentEmbedder(
            model=resolve_embedding_model(settings.embedding_model),
            meta_fields_to_embed=["title"],
            progress_bar=False,
            normalize_embeddings=True,
            local_files_only=not settings.allow_downloads,
        ),
    )
    pipeline.add_component("writer", DocumentWriter(document_store=store, policy=DuplicatePolicy.OVERWRITE))
    pipeline.connect("cleaner.documents", "chunker.documents")
    pipeline.connect("chunker.documents", "embedder.documents")
    pipeline.connect("embedder.documents", "writer.documents")
    return pipeline
