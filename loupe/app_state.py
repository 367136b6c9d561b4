"""Process-wide resources for the Streamlit app, built once (st.cache_resource) and shared by all sessions."""

from __future__ import annotations

import streamlit as st

from loupe.qa import Asker
from loupe.settings import Settings, load_settings


@st.cache_resource(show_spinner="Loading settings…")
def app_settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner="Loading the embedding model and the generator…")
def app_asker() -> Asker:
    """The Asker for this process: the store, the retrieval pipelines and the generator are loaded once."""
    return Asker(app_settings())


def document_ids(asker: Asker) -> list[str]:
    """Ingested document ids, for the scope selector (re-read when the store file changed)."""
    from loupe.ingest import count_by_document
    from loupe.stores import refresh

    refresh(asker.bundle.store)
    return sorted(count_by_document(asker.bundle.store))
