"""The Adjudicate page: reviewers work through the records on which annotators disagree and settle each one."""

from __future__ import annotations

from itertools import combinations

import streamlit as st

from review.access import require_role
from review.adjudication import STATUSES, adjudicate, disagreements, open_case
from review.errors import PermissionDeniedError, ReviewError
from review.models import REJECT_REASONS, VERDICTS
from review.queue import queue_facets
from ui.app_state import app_sessions, current_principal
from ui.review_panel import correction_diff_html, show_record
from ui.text_safety import md, md_joined, visible_html

sessions, principal = app_sessions(), current_principal()

st.title("Adjudicate")
try:
    require_role(principal, "reviewer", "adjudicate")
except PermissionDeniedError as error:
    st.error(md("{}", error))
    st.stop()

with sessions() as session:
    runs = queue_facets(session, actor=principal).runs
left, right = st.columns(2)
run = left.selectbox("Run", runs, index=None, key="adjudicate_run", placeholder="All runs")
status = right.radio("Status", STATUSES, horizontal=True, key="adjudicate_status")
with sessions() as session:
    ids = disagreements(session, actor=principal, run=run, status=status)

saved, failed = st.session_state.pop("adjudicate_saved", None), st.session_state.pop("adjudicate_error", None)
if saved:
    st.success(md("{}", saved))
if failed:
    st.error(md("{}", failed[1]))
    if failed[0] not in ids:
        st.caption("That record has left this list: the Status filter \"adjudicated\" lists the settled records.")
if not ids:
    st.info("No disagreement to adjudicate here." if status == "pending" else "No record matches.")
    st.stop()

if st.session_state.get("adjudicate_filter") != (run, status):  # another list: start from its top
    st.session_state["adjudicate_filter"] = (run, status)
    st.session_state.pop("adjudicate_record", None)
current = st.session_state.get("adjudicate_record")
position = ids.index(current) if current in ids else 0


def go_to(new_position: int) -> None:
    st.session_state["adjudicate_record"] = ids[new_position % len(ids)]
    st.rerun()


nav = st.columns([2, 1, 1])
nav[0].markdown(md("**{} of {}** · {}", position + 1, len(ids), status))
if nav[1].button("Previous", key="adjudicate_previous", shortcut="Alt+Left", width="stretch"):
    go_to(position - 1)
if nav[2].button("Next", key="adjudicate_next", shortcut="Alt+Right", width="stretch"):
    go_to(position + 1)

with sessions() as session:
    case = open_case(session, actor=principal, record_id=ids[position])
record, adjudication = case.record, case.adjudication
st.session_state["adjudicate_record"] = record.id

st.caption(md_joined(f"run {record.run}" if record.run else "", f"document {record.doc_id}" if record.doc_id else "",
                     record.question_id or "", f"record {record.external_id or record.id}"))
st.markdown(md("#### {}", record.question) if record.question else "#### *(no question text)*")
show_record(record)

st.subheader("Verdicts")
for revision in case.revised:  # blind review: a verdict changed once colleagues' were shown
    st.warning(md("{} changed their verdict after saving it (first {}, now {}), when colleagues' verdicts were "
                  "shown to them: agreement counts the first.", revision["annotator"], revision["first"],
                  revision["current"]))
columns = st.columns(min(len(case.annotations), 4) or 1)
for index, annotation in enumerate(case.annotations):
    with columns[index % len(columns)], st.container(border=True):
        st.markdown(md("**{}** · {}", annotation.annotator, annotation.verdict))
        if annotation.reason:
            st.caption(md("Reason: {}", REJECT_REASONS.get(annotation.reason, annotation.reason)))
        if annotation.comment:
            st.text(annotation.comment)
        if annotation.corrected_answer:
            st.caption("Correction of the answer")
            st.html(correction_diff_html(record.answer, annotation.corrected_answer))

corrections = [a for a in case.annotations if a.corrected_answer]
if len(corrections) > 1:
    st.subheader("Between the corrections")
    for first, second in combinations(corrections, 2):
        st.html(f"<b>{visible_html(first.annotator)} → {visible_html(second.annotator)}</b>")
        st.html(correction_diff_html(first.corrected_answer, second.corrected_answer))

st.subheader("Final verdict")
if adjudication:
    st.info(md("Adjudicated by {}: {} (version {}, {}). Saving again keeps it in the history.",
               adjudication.adjudicator, adjudication.verdict, adjudication.version,
               f"{adjudication.updated_at:%Y-%m-%d %H:%M}"))
    for version in adjudication.history:
        st.caption(md("earlier: version {} · {} by {} · {}", version.version, version.verdict, version.adjudicator,
                      f"{version.recorded_at:%Y-%m-%d %H:%M}"))


def save(record_id: str, label: str, expected_version: int | None, run: str | None, following: list[str]) -> None:
    """Form callback, run before the page reruns: checked against the version the reviewer saw when the form was
    drawn; then on to the first of the `following` records still pending in the run."""
    state = st.session_state
    verdict = state[f"adjudicate_verdict_{record_id}"]
    try:
        with sessions() as session:
            adjudicate(session, actor=principal, record_id=record_id, verdict=verdict,
                       final_answer=state[f"adjudicate_answer_{record_id}"],
                       comment=state[f"adjudicate_comment_{record_id}"], expected_version=expected_version)
            pending = set(disagreements(session, actor=principal, run=run, status="pending"))
    except ReviewError as error:
        state["adjudicate_error"] = (record_id, f"Record {label} was not saved: {error}")
        return
    state["adjudicate_record"] = next((rid for rid in following if rid in pending), record_id)
    state["adjudicate_saved"] = f"Saved: {verdict} on record {label}."


with st.form(key=f"adjudicate_form_{record.id}"):
    st.radio("Final verdict", VERDICTS, horizontal=True, key=f"adjudicate_verdict_{record.id}",
             index=VERDICTS.index(adjudication.verdict) if adjudication else None)
    prefill = (adjudication and adjudication.final_answer) or (corrections[0].corrected_answer if corrections
                                                               else record.answer)
    st.text_area("Final answer", value=prefill, key=f"adjudicate_answer_{record.id}", height=160,
                 help="Accept keeps the answer as it is; for reject the final answer is optional.")
    st.text_area("Comment", value=(adjudication.comment if adjudication else None) or "",
                 key=f"adjudicate_comment_{record.id}", height=68)
    st.form_submit_button("Save final verdict", type="primary", key="adjudicate_save", on_click=save, kwargs=dict(
        record_id=record.id, label=record.external_id or record.id,
        expected_version=adjudication.version if adjudication else None, run=run,
        following=ids[position + 1:] + ids[:position]))
