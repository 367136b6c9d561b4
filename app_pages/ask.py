"""The Ask page: a question, its streamed answer beside the passages it came from, and the verdict."""

from __future__ import annotations

import streamlit as st

from configuration.settings import RETRIEVAL_MODES
from loupe.qa import QuestionError
from review.asking import ask_and_record
from review.models import Record
from review.records import get_record
from ui.answer_again import answer_again_panel
from ui.app_state import app_asker, app_sessions, app_settings, current_principal, document_ids
from ui.review_panel import correction_diff_html, review_panel
from ui.streaming import stream_into_page
from ui.text_safety import md

asker, sessions, settings, principal = app_asker(), app_sessions(), app_settings(), current_principal()

if st.session_state.pop("ask_reset", False):
    st.session_state["ask_question"] = ""

st.title("Ask")
with st.form("ask_form", border=False):
    question = st.text_input("Question", key="ask_question",
                             placeholder="What strategies are employed to handle randomness in the deep learning pipeline?")
    with st.expander("Scope and retrieval"):
        scope = st.multiselect("Documents", document_ids(asker), key="ask_scope", placeholder="All documents")
        mode = st.radio("Mode", RETRIEVAL_MODES, horizontal=True, key="ask_mode",
                        format_func=lambda m: {"hybrid": "Hybrid", "bm25": "BM25", "dense": "Dense"}[m])
        top_k = st.number_input("Top-k", min_value=1, max_value=50, value=settings.top_k, key="ask_top_k")
    asked = st.form_submit_button("Ask", type="primary")


def ask_and_store(question: str, scope: list[str], mode: str, top_k: int) -> Record:
    """Answer (streamed into the page), analyse support, and store the record: it is committed before it is
    shown."""
    return stream_into_page(lambda stream, on_fallback: ask_and_record(
        sessions, asker, actor=principal, question=question, doc_ids=scope, mode=mode, top_k=top_k,
        streaming_callback=stream, on_fallback=on_fallback))


if asked:
    if not question.strip():
        st.error("Type a question first.")
    else:
        try:
            with st.spinner("Retrieving passages, generating, checking which passages support the answer…"):
                st.session_state["ask_record_id"] = ask_and_store(question, scope, mode, int(top_k)).id
        except QuestionError as error:
            st.error(md("{}", error))
        except Exception as error:
            st.error(md("The question could not be answered: {}: {}", type(error).__name__, error))

saved = st.session_state.pop("ask_saved", None)
if saved:
    st.success(md("Saved: {} on “{}”. Ready for the next question.", saved["verdict"], saved["question"]))
    if saved.get("corrected"):
        with st.expander("Your correction", expanded=True):
            st.html(correction_diff_html(saved["answer"], saved["corrected"]))

record_id = st.session_state.get("ask_record_id")
if record_id is None:
    if not saved:
        st.info("Ask a question about the ingested documents. Answers show beside the passages they came from.")
    st.stop()

with sessions() as session:
    record = get_record(session, record_id=record_id)


def moved_on(verdict: str) -> None:
    """After a verdict (in the button's callback): the page is ready for the next question."""
    with sessions() as session:
        stored = get_record(session, record_id=record_id)
    mine = next(a for a in stored.annotations if a.annotator == principal.name)
    st.session_state["ask_saved"] = {
        "verdict": verdict, "question": stored.question, "answer": stored.answer, "corrected": mine.corrected_answer,
    }
    st.session_state.pop("ask_record_id", None)
    st.session_state["ask_reset"] = True


def undone(undone_id: str) -> None:
    """After an undo: the record whose verdict was undone is shown again."""
    st.session_state["ask_record_id"] = undone_id
    st.session_state.pop("ask_saved", None)


if (record.meta or {}).get("context_cut"):  # the record keeps every passage; say which the answer could use
    st.caption(md("The answer was generated from part of the passages: {}.", record.meta["context_cut"]))
review_panel(record, sessions, principal, key="ask_panel", on_saved=moved_on, on_undone=undone,
             search=asker.search_evidence)
answer_again_panel(record, asker, sessions, principal, key="ask")
