"""The Scorecard page: each run's acceptance rate with its 95% interval, how to narrow it, and two runs compared."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from review.analysis import analyze_pending
from review.errors import ReviewError
from review.queue import EVERYONE, annotator_choices, annotator_label, queue_facets, sample_sort
from review.sampling import draw_sample, samples_of
from review.scorecard import compare_runs, run_scorecard
from ui.app_state import app_sessions, app_settings, current_principal
from ui.text_safety import md

sessions, settings, principal = app_sessions(), app_settings(), current_principal()
st.title("Scorecard")
st.caption("How often each run's answers are acceptable (accepted / judged; a corrected answer was not acceptable "
           "as it stood), with a 95% interval by prediction-powered inference: every record's suggested p_accept, "
           "corrected by the verdicts people gave (ppi_py). Beside it the human-only interval from the same "
           "verdicts, and the suggestions' own mean, which nobody calibrated.")

with sessions() as session:
    all_runs = queue_facets(session, actor=principal).runs
if not all_runs:
    st.info("No runs yet: import RAG outputs on the Import page, or run a batch.")
    st.stop()

left, right = st.columns([3, 1])
runs = left.multiselect("Runs", all_runs, default=all_runs[:4], key="scorecard_runs")
with sessions() as session:
    choices = annotator_choices(session, runs, actor=principal)
viewer = right.selectbox("Verdicts of", choices, format_func=annotator_label, key="scorecard_viewer")
if not runs:
    st.info("Choose one or more runs.")
    st.stop()

with sessions() as session:
    samples = {run: samples_of(session, [run]) for run in runs}
designs = {}
for run, column in zip(runs, st.columns(len(runs))):
    options = [None, *(sample.name for sample in samples[run])]
    designs[run] = column.selectbox(md("Design for {}", run), options, key=f"scorecard_sample_{run}",
                                    format_func=lambda name: "every judged record" if name is None else f"sample {name}")


cards = []
with st.spinner("Estimating…"), sessions() as session:
    for run in runs:
        try:
            cards.append(run_scorecard(session, settings, run, actor=principal, annotator=viewer or EVERYONE,
                                       sample=designs[run]))
        except ReviewError as error:
            st.error(md("{}: {}", run, error))


def _percent(value) -> str:
    return "–" if value is None else f"{value:.1%}"


def _with_ci(figures) -> str:
    """"41.3% (37.5–45.1%)", or – without an estimate."""
    if not figures or figures.get("ci") is None:
        return "–"
    return f"{figures['estimate']:.1%} ({figures['ci'][0]:.1%}–{figures['ci'][1]:.1%})"


rows = pd.DataFrame([{
    "run": card["run"], "records": card["records"], "human n": card["human_n"],
    "acceptance (95% CI)": _with_ci(card), "method": card["method"] or "none",
    "human only (95% CI)": _with_ci(card["human_only"]),
    "suggestions only (uncalibrated)": _percent(card["suggestion_only"]),
    "verdicts more for ±5 points": card["more_for_5_points"],
} for card in cards])
if rows.empty:
    st.stop()
st.dataframe(rows, hide_index=True, width="stretch")

chart = pd.DataFrame([
    {"run": card["run"], "kind": kind, "estimate": figures["estimate"], "low": figures["ci"][0],
     "high": figures["ci"][1]}
    for card in cards
    for kind, figures in (("prediction-powered", card if card["ci"] else None), ("human only", card["human_only"]))
    if figures and figures.get("ci")
])
if not chart.empty:
    kinds = alt.Scale(domain=["prediction-powered", "human only"], range=["#1c7ed6", "#adb5bd"])
    base = alt.Chart(chart).encode(y=alt.Y("run:N", title=None), yOffset="kind:N",
                                   color=alt.Color("kind:N", title=None, scale=kinds))
    st.altair_chart(
        base.mark_errorbar(ticks=True).encode(x=alt.X("low:Q", title="acceptance", scale=alt.Scale(domain=[0, 1]),
                                                      axis=alt.Axis(format="%")), x2="high:Q")
        + base.mark_point(filled=True, size=60).encode(x="estimate:Q", tooltip=["run", "kind", "estimate", "low", "high"]),
        width="stretch",
    )

def analyze_with_progress(run: str) -> None:
    bar = st.progress(0.0, text="Analysing…")
    analyze_pending(sessions, settings, run=run, progress=lambda done, total, _: bar.progress(
        done / max(total, 1), text=md("Analysed {} of {} records", done, total)))
    st.rerun()


for card in cards:
    for note in card["notes"]:
        st.caption(md("{}: {}", card["run"], note))
    if card["unanalysed"]:
        st.warning(md("{}: {} records have no suggestion yet and count as 50%: analyse them (here, or `python "
                      "cli.py analyze --run {}`) to give the estimate their power.", card["run"], card["unanalysed"],
                      card["run"]))
        if st.button(md("Analyse the {} records of {} now", card["unanalysed"], card["run"]),
                     key=f"scorecard_analyse_{card['run']}"):
            analyze_with_progress(card["run"])

st.subheader("Review a sample")
with st.form("draw_sample"):
    columns = st.columns([2, 1, 1, 1, 2])
    sample_run = columns[0].selectbox("Run", runs)
    budget = columns[1].number_input("Budget", min_value=1, value=60, step=10)
    seed = columns[2].number_input("Seed", min_value=0, value=1, step=1)
    method = columns[3].selectbox("Design", ["active", "uniform"],
                                  help="Active: uncertain suggestions are likelier to be drawn (narrower intervals "
                                       "for the same budget); uniform: a simple random sample")
    name = columns[4].text_input("Name", value="")
    drawn = st.form_submit_button("Draw the sample")
if drawn:
    try:
        with sessions() as session:
            result = draw_sample(session, actor=principal, run=sample_run, budget=int(budget), seed=int(seed),
                                 name=name or f"{sample_run}-{method}-{int(budget)}-seed{int(seed)}", method=method)
        st.success(md("{}", result.summary()))
    except (ReviewError, ValueError) as error:
        st.error(md("{}", error))

with sessions() as session:  # read again: the form above may have drawn one
    startable = [(sample.run, sample.name) for sample in samples_of(session, runs)]
if startable:
    chosen = st.selectbox("Sample to review", startable, format_func=lambda item: f"{item[1]} ({item[0]})",
                          key="scorecard_review_sample")
    if st.button("Review this sample in the Queue", type="primary"):
        st.session_state["queue_runs"] = [chosen[0]]
        st.session_state["queue_sort"] = sample_sort(chosen[1])
        st.switch_page("app_pages/queue.py")



def cell_table(cells: list[dict], name: str) -> None:
    """Per question or per document; a cell under 10 verdicts is flagged, not hidden."""
    table = pd.DataFrame([{name: cell["label"], "records": cell["records"], "human n": cell["human_n"],
                           "acceptance (95% CI)": _with_ci(cell),
                           "small": "⚠ under 10 verdicts" if cell["small"] else ""} for cell in cells])
    st.dataframe(table, hide_index=True, width="stretch")


st.subheader("Per question and per document")
for card in cards:
    with st.expander(md("{}: {} questions, {} documents", card["run"], len(card["per_question"]),
                        len(card["per_document"]))):
        cell_table(card["per_question"], "question")
        cell_table(card["per_document"], "document")

if len(cards) >= 2:
    st.subheader("Compare two runs")
    first, second = st.columns(2)
    a = first.selectbox("Run", runs, key="scorecard_compare_a")
    b = second.selectbox("against", [run for run in runs if run != a], key="scorecard_compare_b")
    try:
        with sessions() as session:
            difference = compare_runs(session, a, b, actor=principal, annotators=(viewer, viewer),
                                      samples=(designs[a], designs[b]))
        st.markdown(md("**{}**", difference["sentence"]))
        st.caption(md("{} questions on the same documents in both runs, {} of them judged in both; {}.",
                      difference["pairs"], difference["human_pairs"], difference["method"]))
    except ReviewError as error:
        st.info(md("{}", error))
