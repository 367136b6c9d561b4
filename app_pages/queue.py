"""The Queue page: work through many records, filtered and sorted, one verdict after another."""

from __future__ import annotations

import streamlit as st

from review.analysis import ensure_support
from review.asking import can_retrieve_passages, retrieve_passages
from review.errors import ReviewError
from review.queue import (
    SORTS,
    STATUSES,
    SUPPORT_FILTERS,
    QueueFilter,
    annotator_label,
    next_unreviewed,
    queue_entries,
    queue_facets,
    sample_sort,
    sort_label,
)
from review.records import get_record, open_record
from review.sampling import samples_of
from ui import app_state
from ui.answer_again import answer_again_panel
from ui.app_state import app_asker, app_sessions, app_settings, current_principal, document_ids
from ui.review_panel import review_panel
from ui.text_safety import md, md_joined

sessions, asker, settings, principal = app_sessions(), app_asker(), app_settings(), current_principal()
annotator = principal.name

title, filters = st.columns([1, 6], vertical_alignment="center")  # one row: the panel gets the height
title.markdown("### Queue")
with sessions() as session:
    facets = queue_facets(session, tuple(st.session_state.get("queue_runs") or ()), actor=principal)


def analysis_worker():
    """The app's background analysis worker, or None where this app has none (or it could not start)."""
    factory = getattr(app_state, "analysis_worker", None)
    if factory is None:
        return None
    try:
        return factory()
    except Exception as error:  # reported, and the page analyses on demand
        st.warning(md("The background analysis could not start ({}): records are analysed when shown.", error))
        return None


worker = analysis_worker()  # the background analysis, when the app has one (ui.app_state.analysis_worker)
with filters.expander("Filters and order"):
    left, middle, right = st.columns(3)
    runs = left.multiselect("Run", facets.runs, key="queue_runs", placeholder="All runs")
    questions = middle.multiselect("Question", facets.questions, key="queue_questions", placeholder="All questions")
    doc_ids = right.multiselect("Document", facets.doc_ids, key="queue_docs", placeholder="All documents")
    statuses = left.multiselect("Status", list(STATUSES), key="queue_statuses", placeholder="Any status")
    generators = middle.multiselect("Generator", facets.generators, key="queue_generators", placeholder="Any generator")
    support = right.selectbox("Support", list(SUPPORT_FILTERS), format_func=SUPPORT_FILTERS.get, key="queue_support")
    search = left.text_input("Search question, answer and passages", key="queue_search")
    with sessions() as session:
        sample_orders = [sample_sort(sample.name) for sample in samples_of(session, runs)]
    sort = middle.selectbox("Order", [*SORTS, *sample_orders], format_func=sort_label, key="queue_sort", index=1,
                            help="A sample (Scorecard page, `cli.py sample`) shows only its records, in the order "
                                 "they were drawn: work through it from the top")
    viewer = right.selectbox("Status as judged by", facets.annotators, format_func=annotator_label, key="queue_viewer",
                             help="Whose verdicts decide what counts as reviewed: everyone's (a record is reviewed "
                                  "when anyone judged it, by its latest verdict) or one annotator's",
                             disabled=not principal.sees_everyone)

    if facets.unanalysed:
        how = "analysed ahead, in the background, as you work" if worker is not None else "analysed when shown"
        st.caption(md("{} records are not analysed for support yet: they are " + how + ", or all at once with "
                      "`python cli.py analyze`. Support filters and the riskiest-first order only see analysed "
                      "records.", facets.unanalysed))

flt = QueueFilter(annotator=(viewer or annotator) if principal.sees_everyone else annotator, runs=tuple(runs),
                  questions=tuple(questions), doc_ids=tuple(doc_ids),
                  statuses=tuple(statuses), generators=tuple(generators), support=support, search=search, sort=sort)
AHEAD = 5  # records after the shown one that the background worker analyses while the annotator reads


def read_queue() -> list[tuple[str, str]]:
    """The queue's (id, status) list, read once per filter change (with 100k records that costs a few hundred
    ms); stepping through it and verdicts reuse it, a verdict updating its record's status in place."""
    cached = st.session_state.get("queue_cache")
    if cached and cached[0] == flt:
        return cached[1]
    with sessions() as session:
        fresh = queue_entries(session, flt, actor=principal)
    st.session_state["queue_cache"] = (flt, fresh)
    return fresh


if st.session_state.get("queue_filter") != flt:  # new filters or order: read the queue again, start from its top
    st.session_state["queue_filter"] = flt
    st.session_state.pop("queue_record", None)
    st.session_state.pop("queue_cache", None)
entries = read_queue()
if not entries:
    if principal.sees_everyone:
        st.info("No record matches these filters." if facets.runs else
                "No records yet: import RAG outputs on the Import page, or run a batch.")
    else:
        st.info("No record assigned to you matches these filters. Records reach your queue when an admin assigns "
                "them to you (Progress page, or `cli.py assign`).")
    st.stop()


@st.fragment(run_every=0.5)
def await_support(record_id: str) -> None:
    """While the worker analyses the record shown: draw the page again once its support map is stored (or the
    worker crashed, and the page computes it)."""
    if st.session_state.get("queue_record") != record_id:
        return
    with sessions() as session:
        stored = get_record(session, record_id=record_id)
    if stored.support is not None or worker.status().error or worker.over_limit(record_id):
        st.rerun()


@st.fragment
def review() -> None:
    """The panel: a verdict or a step reruns this, not the page (filters, facets and the queue are not read)."""
    try:
        entries = read_queue()
    except ReviewError as error:  # the account was disabled or demoted since the page was drawn
        st.error(md("{} (reload the page)", error))
        return
    ids = [record_id for record_id, _ in entries]
    current = st.session_state.get("queue_record")
    if current in ids:
        position = ids.index(current)
    else:
        first = next_unreviewed(entries, -1)
        position = first if first is not None else 0
    st.session_state["queue_record"] = ids[position]

    def go_to(new_position: int) -> None:
        st.session_state["queue_record"] = ids[new_position % len(ids)]

    def go_to_unreviewed() -> None:
        target = next_unreviewed(entries, position)
        if target is not None:
            go_to(target)

    unreviewed = sum(1 for _, status in entries if status == "unreviewed")
    nav = st.container(horizontal=True, vertical_alignment="center", wrap=False)  # one flex row, not columns
    nav.markdown(md("**{} of {}** · {} unreviewed by {}", position + 1, len(entries), unreviewed,
                    annotator_label(flt.annotator)), width="stretch")
    nav.button("Previous", key="queue_previous", shortcut="Left", width=150, on_click=go_to, args=(position - 1,))
    nav.button("Next", key="queue_next", shortcut="Right", width=150, on_click=go_to, args=(position + 1,))
    nav.button("Next unreviewed", key="queue_next_unreviewed", shortcut="N", width=214, disabled=not unreviewed,
               on_click=go_to_unreviewed)

    try:
        with sessions() as session:
            record, _visible = open_record(session, actor=principal, record_id=ids[position])
    except ReviewError as error:  # deleted or unassigned since the queue was read
        st.session_state.pop("queue_cache", None)
        st.error(md("{} (the queue is read again on the next step)", error))
        return
    saved = st.session_state.pop("queue_saved", None)  # the verdict just committed, said on the record's line
    st.caption(md_joined(f"run {record.run}" if record.run else "", f"document {record.doc_id}" if record.doc_id else "",
                         record.question_id or "", f"record {record.external_id or record.id}", entries[position][1],
                         f"✓ {saved}" if saved else ""))
    st.markdown(md("##### {}", record.question) if record.question
                else "##### *(no question text: import the question set with --questions)*")

    if not record.passages and not (record.meta or {}).get("context_recorded", True):
        st.warning("No context recorded: this answer was imported without the passages it was given.")
        if can_retrieve_passages(record, document_ids(asker)):
            st.button(md("Retrieve passages from {}", record.doc_id), key="queue_retrieve",
                      on_click=lambda: retrieve_passages(sessions, asker, actor=principal, record_id=record.id))
        elif record.doc_id:
            st.caption(md("Ingest document {} to retrieve passages for this answer.", record.doc_id))

    upcoming = [ids[(position + step) % len(ids)] for step in range(1, min(AHEAD, len(ids) - 1) + 1)]
    failure = worker.status().error if worker is not None else None
    if failure:
        st.warning(md("The background analysis stopped ({}): records are analysed when shown.", failure))
    if worker is not None:  # the next records are analysed while this one is read (this one first, if need be)
        worker.ahead(([record.id] if record.support is None and not failure else []) + upcoming)
    over_limit = worker.over_limit(record.id) if worker is not None else None
    if record.support is not None:  # analysed already (ahead, or before): at most the suggestion is missing
        record = ensure_support(sessions, settings, record)
    elif over_limit:  # the worker gave up on it, to go on with others' records: analysed only when asked
        st.warning(md("The background analysis stopped on this record after {} s (LOUPE_ANALYSIS_TIME_LIMIT_S) and "
                      "went on with the others.", f"{over_limit:g}"))
        if st.button("Analyse it now", key="queue_analyse_now"):
            with st.spinner("Checking which passages support the answer…"):
                record = ensure_support(sessions, settings, record)
    elif worker is not None and not failure:  # shown at once; the highlights follow when the worker is done
        st.html('<div class="loupe-support-pending" style="color:#666;font-size:0.85rem">Checking which passages '
                "support the answer, in the background: the highlights appear when it is done.</div>")
        await_support(record.id)
    else:
        with st.spinner("Checking which passages support the answer…"):
            record = ensure_support(sessions, settings, record)

    def moved_on(verdict: str) -> None:
        """After a verdict (committed): the record's status in the queue, then the next unreviewed after it."""
        here = ids.index(record.id) if record.id in ids else position
        entries[here] = (record.id, {"accept": "accepted", "correct": "corrected", "reject": "rejected"}[verdict])
        target = next_unreviewed(entries, here)
        st.session_state["queue_saved"] = f"Saved: {verdict} on {record.external_id or record.id}"
        st.session_state["queue_record"] = ids[target] if target is not None else ids[here]

    def undone(record_id: str) -> None:
        """After an undo: back to that record; its status is read again with the queue."""
        st.session_state["queue_record"] = record_id
        st.session_state.pop("queue_cache", None)

    review_panel(record, sessions, principal, key="queue_panel", on_saved=moved_on, on_undone=undone,
                 search=asker.search_evidence)
    answer_again_panel(record, asker, sessions, principal, key="queue")


review()
