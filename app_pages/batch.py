"""The Batch page: every question of a set asked of every selected document; cancel, then resume later."""

from __future__ import annotations

import streamlit as st

from configuration.settings import RETRIEVAL_MODES
from review.batch import batch_runs, run_batch
from review.errors import ReviewError
from review.record_files import RecordParseError, parse_question_set
from ui.app_state import app_asker, app_sessions, app_settings, current_principal, document_ids
from ui.text_safety import md

sessions, asker, settings, principal = app_sessions(), app_asker(), app_settings(), current_principal()
st.title("Batch")
st.caption("Each question is asked of each document, with retrieval scoped to that document. Every answer is "
           "stored as soon as it exists: a cancelled run resumes where it stopped when started again.")

documents = document_ids(asker)
if not documents:
    st.info("No documents are ingested yet: `python cli.py ingest PATH`.")
    st.stop()

with st.form("batch_form"):
    questions_text = st.text_area("Questions, one per line (or JSONL {id, question})", key="batch_questions", height=160)
    chosen = st.multiselect("Documents", documents, key="batch_docs", placeholder="All documents")
    left, middle, right = st.columns(3)
    run = left.text_input("Run", key="batch_run", placeholder="e.g. hybrid-top5")
    mode = middle.selectbox("Mode", RETRIEVAL_MODES, key="batch_mode")
    top_k = right.number_input("Top-k", min_value=1, max_value=50, value=settings.top_k, key="batch_top_k")
    start = st.form_submit_button("Start or resume", type="primary")

if start:
    try:
        questions = parse_question_set(questions_text)
        if not run.strip():
            raise ReviewError("give the run a name: running the same name again resumes it")
    except (RecordParseError, ReviewError) as error:
        st.error(md("{}", error))
        st.stop()
    doc_ids = chosen or documents
    st.button("Cancel", key="batch_cancel", help="Stops after the current question; start again to resume")
    bar = st.progress(0.0, text="Starting…")

    def show(done: int, total: int, item: str, left_s: float | None) -> None:
        eta = f" · about {left_s / 60:.1f} min left" if left_s is not None else ""
        bar.progress(done / total, text=md("{} of {} · {}{}", done, total, item, eta))

    try:  # a click on Cancel reruns the page, which ends this loop between two questions
        report = run_batch(sessions, asker, settings, actor=principal, run=run.strip(), questions=questions, doc_ids=doc_ids,
                       mode=mode, top_k=int(top_k), progress=show)
    except ReviewError as error:
        st.error(md("{}", error))
        st.stop()
    (st.success if not report.failures else st.warning)(md("{}", report.summary()))
    for failure in report.failures:
        st.caption(md("failed: {}", failure))

runs = batch_runs(sessions)
if runs:
    st.subheader("Batch runs")
    for item in runs:
        st.progress(item.answered / max(item.total, 1), text=md(
            "{}: {} of {} answered · {} top-{} · {} {}", item.name, item.answered, item.total, item.settings.get("mode"),
            item.settings.get("top_k"), item.settings.get("generator_kind"), item.settings.get("generator_model")))
