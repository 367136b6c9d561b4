"""The Overview page: verdicts per question and per document in a run, and two runs side by side."""

from __future__ import annotations

import altair as alt
import streamlit as st

from review.overview import COUNT_COLUMNS, by, compare_runs, question_chart, status_counts
from review.queue import annotator_choices, annotator_label, queue_facets
from review.scorecard import run_scorecard
from ui.app_state import app_sessions, app_settings, current_principal

sessions, settings, principal = app_sessions(), app_settings(), current_principal()
annotator = principal.name
st.title("Overview")

with sessions() as session:
    runs = queue_facets(session, actor=principal).runs
if not runs:
    st.info("No runs yet: import RAG outputs on the Import page, or run a batch.")
    st.stop()

left, right = st.columns(2)
run = left.selectbox("Run", runs, key="overview_run")
with sessions() as session:
    choices = annotator_choices(session, [run], actor=principal)
viewer = right.selectbox("Verdicts of", choices, format_func=annotator_label, key="overview_viewer",
                         help="Whose verdicts are counted: everyone's (a record is reviewed when anyone judged it, "
                              "by its latest verdict) or one annotator's (imported verdicts are under the name "
                              "given at import)", disabled=not principal.sees_everyone)
with sessions() as session:
    counts = status_counts(session, [run], viewer, actor=principal)

total = int(counts["records"].sum())
reviewed = int(counts.loc[counts["status"] != "unreviewed", "records"].sum())
accepted = int(counts.loc[counts["status"] == "accepted", "records"].sum())
metrics = st.columns(3)
metrics[0].metric("Records", total)
metrics[1].metric("Reviewed", reviewed)
metrics[2].metric("Accepted", f"{accepted / reviewed:.0%}" if reviewed else "–")

colours = alt.Scale(domain=COUNT_COLUMNS, range=["#ced4da", "#2f9e44", "#f59f00", "#e03131"])
per_question = by(counts, "question")
st.subheader("Per question")
chart_data, labels = question_chart(counts)
st.altair_chart(
    alt.Chart(chart_data).mark_bar().encode(
        y=alt.Y("label:N", title=None, sort=labels), x=alt.X("sum(records):Q", title="records"),
        color=alt.Color("status:N", scale=colours), tooltip=["question", "status", "records"],
    ),
    width="stretch",
)
with sessions() as session:  # each question's estimate with its interval, as the Scorecard computes it
    cells = {cell["label"]: cell for cell in run_scorecard(session, settings, run, actor=principal,
                                                           annotator=viewer)["per_question"]}


def interval(question: str) -> str:
    cell = cells.get(question)
    if not cell or cell["ci"] is None:
        return "–"
    return f"{cell['estimate']:.0%} ({cell['ci'][0]:.0%}–{cell['ci'][1]:.0%})" + (" ⚠ small" if cell["small"] else "")


per_question["estimate (95% CI)"] = per_question["question"].map(interval)
st.dataframe(per_question, hide_index=True, width="stretch",
             column_config={"acceptance": st.column_config.ProgressColumn("acceptance", min_value=0, max_value=1),
                            "estimate (95% CI)": st.column_config.TextColumn(
                                help="Prediction-powered estimate from every judged record and every record's "
                                     "suggestion (see the Scorecard page); ⚠ small: under 10 verdicts")})
st.subheader("Per document")
st.dataframe(by(counts, "doc_id"), hide_index=True, width="stretch",
             column_config={"acceptance": st.column_config.ProgressColumn("acceptance", min_value=0, max_value=1)})

st.subheader("Compare two runs")
others = [name for name in runs if name != run]
if not others:
    st.caption("Import or run a second set of answers to compare pipeline settings on the same questions.")
    st.stop()
second = st.selectbox("Compare with", others, key="overview_second")
with sessions() as session:
    comparison = compare_runs(session, run, second, viewer, actor=principal)
if comparison.empty:
    st.info("These two runs share no question on the same document.")
    st.stop()
long = comparison.melt(id_vars="question", value_vars=[f"acceptance ({run})", f"acceptance ({second})"],
                       var_name="run", value_name="acceptance").dropna()
st.altair_chart(
    alt.Chart(long).mark_bar().encode(
        y=alt.Y("question:N", title=None, axis=alt.Axis(labelLimit=320), sort=list(comparison["question"])), x=alt.X("acceptance:Q", scale=alt.Scale(domain=[0, 1])),
        color="run:N", yOffset="run:N", tooltip=["question", "run", "acceptance"],
    ),
    width="stretch",
)
st.dataframe(comparison, hide_index=True, width="stretch")
