"""Process-wide resources for the Streamlit app, built once (st.cache_resource) and shared by all sessions."""

from __future__ import annotations

import functools
import gc

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from configuration.settings import Settings, load_settings
from loupe.qa import Asker


@st.cache_resource(show_spinner="Loading settings…")
def app_settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner="Loading the embedding model and the generator…")
def app_asker() -> Asker:
    """The Asker for this process: the store, the retrieval pipelines and the generator are loaded once."""
    return Asker(app_settings())


@st.cache_resource(show_spinner="Opening the review database…")
def app_sessions() -> sessionmaker[Session]:
    """The review database's session factory (engine created and migrated once); open one session per action."""
    from review.db import open_database

    return open_database(app_settings())


@functools.cache  # once per process, even when Streamlit's resource cache is cleared (as the tests do)
def freeze_loaded_objects() -> None:
    """Once the models are loaded: put every object alive now (the imported libraries and the models, some
    600,000 objects) out of the garbage collector's way (gc.freeze). Its full collections then walk only what the
    app allocates later: tens of ms instead of the 300-400 ms that now and then stalled the redraw after a verdict
    (bench/review_loop.py)."""
    gc.collect()
    gc.freeze()


def document_ids(asker: Asker) -> list[str]:
    """Ingested document ids, for the scope selector (re-read when the store file changed)."""
    from loupe.ingest import count_by_document
    from loupe.stores import refresh

    refresh(asker.bundle.store)
    return sorted(count_by_document(asker.bundle.store))


def current_principal():
    """The acting user of this browser session, set by app.py before any page runs (see review.access)."""
    return st.session_state["principal"]


@st.cache_resource(show_spinner=False)
def analysis_worker():
    """The process's background analysis (review.analysis_worker): one thread, shared by every session, that
    analyses the next records of a queue while the current one is read. Call `.ahead(ids)` with the next few
    records, most urgent first; `.status().error` says when it crashed (the panel then computes on demand)."""
    from review.analysis_worker import AnalysisWorker

    return AnalysisWorker(app_sessions(), app_settings())
