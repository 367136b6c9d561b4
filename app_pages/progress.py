"""The Progress page: per annotator done / assigned, time per record and verdict mix; agreement for reviewers;
assigning a run's records to annotators for admins."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from review.agreement import progress_report
from review.assignment import assign_run, assigned_counts
from review.errors import ReviewError
from review.models import VERDICTS
from review.queue import natural_key, queue_facets
from review.users import list_users
from ui.app_state import app_sessions, current_principal
from ui.text_safety import md

sessions, principal = app_sessions(), current_principal()
st.title("Progress")

with sessions() as session:
    runs = queue_facets(session, actor=principal).runs
if not runs:
    st.info("No runs yet: import RAG outputs on the Import page, or run a batch."
            if principal.has("admin") else "No records are assigned to you yet.")
    st.stop()
run = st.selectbox("Run", runs, key="progress_run")
with sessions() as session:
    report = progress_report(session, actor=principal, run=run)

notice = st.session_state.pop("progress_notice", None)
if notice:
    st.success(md("{}", notice))

table = pd.DataFrame(
    [{"annotator": name, "done": figures["done"], "assigned": figures["assigned"],
      "percent": figures["done"] / figures["assigned"] if figures["assigned"] else None,
      "median seconds": figures["median_seconds"], **figures["verdicts"]}
     for name, figures in sorted(report["annotators"].items(), key=lambda item: natural_key(item[0]))],
    columns=["annotator", "done", "assigned", "percent", "median seconds", *VERDICTS])
if table.empty:
    st.info("Nobody has judged or been assigned a record of this run yet.")
else:
    st.subheader("Per annotator")
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"percent": st.column_config.ProgressColumn("percent", format="percent",
                                                                           min_value=0, max_value=1)})
    left, right = st.columns(2)
    counts = table.melt(id_vars="annotator", value_vars=["assigned", "done"], var_name="records", value_name="n")
    left.altair_chart(
        alt.Chart(counts, title="Done of assigned").mark_bar().encode(
            y=alt.Y("annotator:N", title=None, sort=list(table["annotator"])), x=alt.X("n:Q", title="records"), color=alt.Color("records:N"),
            yOffset="records:N", tooltip=["annotator", "records", "n"]),
        width="stretch",
    )
    mix = table.melt(id_vars="annotator", value_vars=list(VERDICTS), var_name="verdict", value_name="n")
    right.altair_chart(
        alt.Chart(mix, title="Verdict mix").mark_bar().encode(
            y=alt.Y("annotator:N", title=None, sort=list(table["annotator"])), x=alt.X("n:Q", title="verdicts"),
            color=alt.Color("verdict:N", scale=alt.Scale(domain=list(VERDICTS),
                                                         range=["#2f9e44", "#f59f00", "#e03131"])),
            tooltip=["annotator", "verdict", "n"]),
        width="stretch",
    )

agreement = report["agreement"]
if agreement is not None:
    st.subheader("Agreement")
    pairs = pd.DataFrame(sorted(agreement["pairs"], key=lambda pair: (natural_key(pair["a"]), natural_key(pair["b"]))),
                         columns=["a", "b", "n", "percent_agreement", "cohen_kappa"])
    st.dataframe(pairs.rename(columns={"percent_agreement": "agreement", "cohen_kappa": "Cohen's kappa"}),
                 hide_index=True, width="stretch",
                 column_config={"agreement": st.column_config.NumberColumn(format="percent")})
    fleiss, alpha = agreement["fleiss_kappa"], agreement["krippendorff_alpha"]
    metrics = st.columns(2)
    metrics[0].metric("Fleiss' kappa", "–" if fleiss["value"] is None else f"{fleiss['value']:.3f}",
                      help="Over the records judged by every annotator (three or more of them)")
    metrics[0].caption(md("n = {} records, {} annotators", fleiss["n"], fleiss["raters"]))
    metrics[1].metric("Krippendorff's alpha", "–" if alpha["value"] is None else f"{alpha['value']:.3f}",
                      help="Nominal, over the records judged by at least two annotators")
    metrics[1].caption(md("n = {} records", alpha["n"]))
    st.caption("Blind review: agreement counts each annotator's first verdict on a record, the one surely given "
               "before they could see colleagues' verdicts (a verdict changed or withdrawn with Undo and saved "
               "again does not count).")
    revised = agreement.get("revised") or []
    if revised:
        st.warning(md("{} verdict(s) were changed after saving, on records colleagues judged too: agreement counts "
                      "the first one; the Adjudicate page lists these records.", len(revised)))
        st.dataframe(pd.DataFrame(revised, columns=["record", "annotator", "first", "current"]), hide_index=True,
                     width="stretch")
    suggested = agreement.get("suggestion") or []
    if suggested:
        st.subheader("The suggested verdict against each annotator")
        st.caption("As if the suggestion were one more annotator, on the records both judged (Correct counts as "
                   "reject): whether to trust it on this run's data.")
        table = pd.DataFrame([{**row, "models": ", ".join(row["models"])} for row in suggested],
                             columns=["annotator", "n", "percent_agreement", "cohen_kappa", "models"])
        st.dataframe(table.rename(columns={"percent_agreement": "agreement", "cohen_kappa": "Cohen's kappa"}),
                     hide_index=True, width="stretch",
                     column_config={"agreement": st.column_config.NumberColumn(format="percent")})

if principal.has("admin"):
    st.subheader("Assign records")
    with sessions() as session:
        users = [user.name for user in list_users(session, actor=principal) if not user.disabled]
        current = [name for name in assigned_counts(session, run) if name in users]
    left, right = st.columns([3, 1])
    chosen = left.multiselect("Annotators", users, default=current, key=f"progress_annotators_{run}",
                              help="Each record goes to this many of them, loads balanced. Assign again after "
                                   "adding or removing someone: only what must move moves, judged records stay.")
    overlap = right.number_input("Annotators per record", min_value=1, value=1, step=1, key="progress_overlap")
    if st.button("Assign", key="progress_assign", type="primary", disabled=not chosen):
        try:
            with sessions() as session:
                summary = assign_run(session, actor=principal, run=run, annotators=chosen, overlap=int(overlap))
        except ReviewError as error:
            st.error(md("{}", error))
        else:
            loads = ", ".join(f"{name} {load}" for name, load in summary.loads.items())
            st.session_state["progress_notice"] = f"{summary.summary()}. Records per annotator: {loads}."
            st.rerun()
