"""The Ask page: a question, its streamed answer, and the passages it came from."""

from __future__ import annotations

import queue
import threading
from typing import Any

import streamlit as st

from loupe.app_state import app_asker, document_ids
from loupe.qa import Answer, QuestionError
from loupe.settings import RETRIEVAL_MODES
from loupe.text_safety import escape_markdown

asker = app_asker()

st.title("Ask")
with st.form("ask_form", border=False):
    question = st.text_input("Question", key="ask_question", placeholder="What strategies are employed to handle randomness?")
    with st.expander("Scope and retrieval"):
        scope = st.multiselect("Documents", document_ids(asker), key="ask_scope", placeholder="All documents")
        mode = st.radio("Mode", RETRIEVAL_MODES, horizontal=True, key="ask_mode",
                        format_func=lambda m: {"hybrid": "Hybrid", "bm25": "BM25", "dense": "Dense"}[m])
        top_k = st.number_input("Top-k", min_value=1, max_value=50, value=asker.settings.top_k, key="ask_top_k")
    asked = st.form_submit_button("Ask", type="primary")


def stream_answer(question: str, scope: list[str], mode: str, top_k: int) -> Answer:
    """Run the question in a worker thread and show the answer as it streams in."""
    chunks: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["answer"] = asker.ask(
                question, doc_ids=scope, mode=mode, top_k=top_k,
                streaming_callback=lambda chunk: chunks.put(chunk.content),
                on_fallback=lambda reason: chunks.put(("fallback", reason)),
            )
        except Exception as error:  # shown to the user below, never as a traceback
            outcome["error"] = error
        finally:
            chunks.put(None)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    placeholder, text = st.empty(), ""
    while (item := chunks.get()) is not None:
        if isinstance(item, tuple):
            st.warning(f"The generator failed, so the extractive answerer answered instead: {escape_markdown(item[1])}")
            text = ""
            continue
        text += item
        placeholder.markdown(escape_markdown(text) + " ▌")
    worker.join()
    placeholder.empty()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


if asked:
    if not question.strip():
        st.error("Type a question first.")
    else:
        try:
            with st.spinner("Retrieving passages and generating…"):
                st.session_state["ask_answer"] = stream_answer(question, scope, mode, int(top_k))
        except QuestionError as error:
            st.error(escape_markdown(str(error)))
        except Exception as error:
            st.error(escape_markdown(f"The question could not be answered: {type(error).__name__}: {error}"))

answer: Answer | None = st.session_state.get("ask_answer")
if answer is None:
    st.info("Ask a question about the ingested documents. Answers show beside the passages they came from.")
    st.stop()

answer_column, passages_column = st.columns([2, 3], gap="large")
with answer_column:
    st.subheader("Answer")
    st.markdown(escape_markdown(answer.answer), unsafe_allow_html=False)
    generator = answer.generator
    st.caption(f"Generator: {escape_markdown(generator['kind'])} · {escape_markdown(generator['model'])} · "
               f"retrieval {answer.timings['retrieval_ms']:.0f} ms · generation {answer.timings['generation_ms']:.0f} ms")
    if generator.get("fallback_reason"):
        st.warning(f"Answered by the extractive fallback: {escape_markdown(generator['fallback_reason'])}")
with passages_column:
    st.subheader(f"Passages ({len(answer.passages)})")
    if not answer.passages:
        st.info("No passage matched within this scope.")
    for number, passage in enumerate(answer.passages, start=1):
        with st.container(border=True):
            page = f" · page {passage['page']}" if passage.get("page") else ""
            st.markdown(f"**[{number}] {escape_markdown(passage['title'] or passage['doc_id'])}**{escape_markdown(page)}")
            badges = [f"score {passage['score']:.4f}"]
            badges += [f"{'BM25' if name == 'bm25' else 'dense'} #{rank}"
                       for name, rank in passage["ranks"].items() if rank is not None]
            st.caption(" · ".join(escape_markdown(badge) for badge in badges))
            st.text(passage["text"])
