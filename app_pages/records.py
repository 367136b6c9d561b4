"""The Records page: every asked question with its verdicts and their history, and the export."""

from __future__ import annotations

import streamlit as st

from review.access import visible_annotations
from review.analysis import ensure_support
from review.annotations import withdrawn_verdicts
from review.export import FORMATS, export_producer
from review.records import open_record, recent_records
from ui.answer_again import answer_again_panel
from ui.app_state import app_asker, app_sessions, app_settings, current_principal
from ui.review_panel import correction_diff_html, review_panel
from ui.text_safety import md

sessions, asker, settings, principal = app_sessions(), app_asker(), app_settings(), current_principal()

st.title("Records")
with sessions() as session:
    records = recent_records(session, actor=principal)

if principal.has("admin"):  # the export holds everyone's verdicts
    with st.expander("Export"):  # built only when the button is clicked, never on a rerun
        fmt = st.radio("Format", FORMATS, horizontal=True, key="records_export_format")
        st.download_button(md("Download all records ({})", fmt), data=export_producer(sessions, fmt, actor=principal),
                           file_name=f"loupe-records.{fmt}", on_click="ignore", key="records_download",
                           mime={"jsonl": "application/jsonl", "csv": "text/csv"}.get(fmt, "application/octet-stream"),
                           help="The export is generated when you click: with many records that takes a while.")

if not records:
    st.info("No records yet: ask a question on the Ask page.")
    st.stop()


def label(record) -> str:
    """Unique (the record's id is in it), since the choice is kept by its label; plain text, as selectbox shows."""
    shown = visible_annotations(principal, record.annotations)
    verdicts = ", ".join(f"{a.annotator}: {a.verdict}" for a in shown) or "unreviewed"
    return f"{record.created_at:%Y-%m-%d %H:%M} · {record.question[:80]} · {record.external_id or record.id} · {verdicts}"


if st.session_state.get("records_selected") in {r.id for r in records}:
    # set again, by id: a verdict changes the record's label, and Streamlit would otherwise lose the choice
    st.session_state["records_selected"] = st.session_state["records_selected"]
record_id = st.selectbox("Record", [r.id for r in records], key="records_selected",
                         format_func=lambda rid: label(next(r for r in records if r.id == rid)))
with sessions() as session:
    record, visible = open_record(session, actor=principal, record_id=record_id)
    history = {a.annotator: list(a.history) for a in visible}
    withdrawn = withdrawn_verdicts(session, record.id, None if principal.sees_everyone
                                   else {a.annotator for a in visible} | {principal.name})

with st.spinner("Checking which passages support the answer…"):  # a record never analysed: now, as the Queue does
    record = ensure_support(sessions, settings, record)
review_panel(record, sessions, principal, key="records_panel", on_saved=lambda verdict: None,
             search=asker.search_evidence)
answer_again_panel(record, asker, sessions, principal, key="records")

st.markdown("##### Verdicts and their history")
if len(visible) < len(record.annotations):
    st.caption("Blind review: other people's verdicts on this record show once you have saved yours.")
for annotation in visible:
    with st.container(border=True):
        st.markdown(md("**{}** · {} · version {} · {}", annotation.annotator, annotation.verdict, annotation.version,
                       f"{annotation.updated_at:%Y-%m-%d %H:%M}"))
        if annotation.corrected_answer:
            st.html(correction_diff_html(record.answer, annotation.corrected_answer))
        if annotation.reason:
            st.caption(md("Reason: {}", annotation.reason))
        if annotation.comment:
            st.text(annotation.comment)
        for version in history[annotation.annotator]:
            st.caption(md("earlier: version {} · {} · {}", version.version, version.verdict,
                          f"{version.recorded_at:%Y-%m-%d %H:%M}"))
for item in withdrawn:
    st.caption(md("withdrawn with Undo: **{}** · {} · version {} · saved {} · withdrawn {}", item.annotator,
                  item.verdict, item.version, f"{item.recorded_at:%Y-%m-%d %H:%M}",
                  f"{item.withdrawn_at:%Y-%m-%d %H:%M}"))
