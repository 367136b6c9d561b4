"""The Queue page: work through many records, filtered and sorted, one verdict after another."""

from __future__ import annotations

import time

import streamlit as st

from review.analysis import ensure_support
from review.asking import can_retrieve_passages, retrieve_passages
from review.errors import ReviewError
from review.queue import SORTS, STATUSES, SUPPORT_FILTERS, QueueFilter, next_unreviewed, queue_entries, queue_facets
from review.records import open_record
from ui.answer_again import answer_again_panel
from ui.app_state import app_asker, app_sessions, app_settings, current_principal, document_ids, evidence_search
from ui.review_panel import show_record, verdict_controls
from ui.text_safety import md, md_joined

sessions, asker, settings, principal = app_sessions(), app_asker(), app_settings(), current_principal()
annotator = principal.name

st.title("Queue")
with sessions() as session:
    facets = queue_facets(session, tuple(st.session_state.get("queue_runs") or ()), actor=principal)

with st.expander("Filters and order", expanded=not st.session_state.get("queue_record")):
    left, middle, right = st.columns(3)
    runs = left.multiselect("Run", facets.runs, key="queue_runs", placeholder="All runs")
    questions = middle.multiselect("Question", facets.questions, key="queue_questions", placeholder="All questions")
    doc_ids = right.multiselect("Document", facets.doc_ids, key="queue_docs", placeholder="All documents")
    statuses = left.multiselect("Status", list(STATUSES), key="queue_statuses", placeholder="Any status")
    generators = middle.multiselect("Generator", facets.generators, key="queue_generators", placeholder="Any generator")
    support = right.selectbox("Support", list(SUPPORT_FILTERS), format_func=SUPPORT_FILTERS.get, key="queue_support")
    search = left.text_input("Search question, answer and passages", key="queue_search")
    sort = middle.selectbox("Order", list(SORTS), format_func=SORTS.get, key="queue_sort", index=1)
    viewer = right.text_input("Status as judged by", value=annotator, key="queue_viewer",
                              help="Whose verdicts decide what counts as reviewed", disabled=not principal.sees_everyone)

if facets.unanalysed:
    st.caption(md("{} records are not analysed for support yet: each is analysed when first shown, or all at once "
                  "with `python cli.py analyze`. Support filters and the riskiest-first order only see analysed "
                  "records.", facets.unanalysed))

flt = QueueFilter(annotator=(viewer or annotator) if principal.sees_everyone else annotator, runs=tuple(runs),
                  questions=tuple(questions), doc_ids=tuple(doc_ids),
                  statuses=tuple(statuses), generators=tuple(generators), support=support, search=search, sort=sort)
REFRESH_S = 30  # others' verdicts show up within this long; one's own at once


def current_entries() -> list[tuple[str, str]]:
    """The queue's (id, status) list, re-read when the filters change, after a verdict, or every REFRESH_S
    seconds: with 100k records reading it costs a few hundred ms, so stepping through it reuses it."""
    cached = st.session_state.get("queue_cache")
    if cached and cached[0] == flt and time.monotonic() - cached[1] < REFRESH_S:
        return cached[2]
    with sessions() as session:
        fresh = queue_entries(session, flt, actor=principal)
    st.session_state["queue_cache"] = (flt, time.monotonic(), fresh)
    return fresh


entries = current_entries()
if not entries:
    if principal.sees_everyone:
        st.info("No record matches these filters." if facets.runs else
                "No records yet: import RAG outputs on the Import page, or run a batch.")
    else:
        st.info("No record assigned to you matches these filters. Records reach your queue when an admin assigns "
                "them to you (Progress page, or `cli.py assign`).")
    st.stop()

ids = [record_id for record_id, _ in entries]
if st.session_state.get("queue_filter") != flt:  # new filters or order: start from the top of the new queue
    st.session_state["queue_filter"] = flt
    st.session_state.pop("queue_record", None)
current = st.session_state.get("queue_record")
position = ids.index(current) if current in ids else 0
if current not in ids:
    first = next_unreviewed(entries, -1)
    position = first if first is not None else 0


def go_to(new_position: int) -> None:
    st.session_state["queue_record"] = ids[new_position % len(ids)]
    st.rerun()


unreviewed = sum(1 for _, status in entries if status == "unreviewed")
nav = st.columns([2, 1, 1, 1.4])
nav[0].markdown(md("**{} of {}** · {} unreviewed by {}", position + 1, len(entries), unreviewed, flt.annotator))
if nav[1].button("Previous", key="queue_previous", shortcut="Alt+Left", width="stretch"):
    go_to(position - 1)
if nav[2].button("Next", key="queue_next", shortcut="Alt+Right", width="stretch"):
    go_to(position + 1)
if nav[3].button("Next unreviewed", key="queue_next_unreviewed", shortcut="Alt+N", width="stretch",
                 disabled=not unreviewed):
    target = next_unreviewed(entries, position)
    if target is not None:
        go_to(target)

try:
    with sessions() as session:
        record, _visible = open_record(session, actor=principal, record_id=ids[position])
except ReviewError as error:  # deleted or unassigned since the queue was read
    st.session_state.pop("queue_cache", None)
    st.error(md("{}", error))
    st.stop()
st.session_state["queue_record"] = record.id
status = entries[position][1]
st.caption(md_joined(f"run {record.run}" if record.run else "", f"document {record.doc_id}" if record.doc_id else "",
                     record.question_id or "", f"record {record.external_id or record.id}", status))
st.markdown(md("#### {}", record.question) if record.question
            else "#### *(no question text: import the question set with --questions)*")

if not record.passages and not (record.meta or {}).get("context_recorded", True):
    st.warning("No context recorded: this answer was imported without the passages it was given.")
    if can_retrieve_passages(record, document_ids(asker)):
        if st.button(md("Retrieve passages from {}", record.doc_id), key="queue_retrieve"):
            retrieve_passages(sessions, asker, actor=principal, record_id=record.id)
            st.rerun()
    elif record.doc_id:
        st.caption(md("Ingest document {} to retrieve passages for this answer.", record.doc_id))

with st.spinner("Checking which passages support the answer…"):
    record = ensure_support(sessions, settings, record)
show_record(record)
answer_again_panel(record, asker, sessions, principal, key="queue")


def moved_on(verdict: str) -> None:
    """After a verdict: the next unreviewed record after this one (the queue is re-read on the rerun)."""
    st.session_state.pop("queue_cache", None)
    fresh = current_entries()
    fresh_ids = [record_id for record_id, _ in fresh]
    here = fresh_ids.index(record.id) if record.id in fresh_ids else position - 1
    target = next_unreviewed(fresh, here) if fresh else None
    st.session_state["queue_saved"] = f"Saved: {verdict} on record {record.external_id or record.id}."
    st.session_state["queue_record"] = fresh_ids[target] if target is not None else (fresh_ids[here] if fresh_ids else None)
    st.rerun()


saved = st.session_state.pop("queue_saved", None)
if saved:
    st.success(md("{}", saved))
verdict_controls(record, sessions, principal, key="queue_panel", on_saved=moved_on, search=evidence_search(asker))
