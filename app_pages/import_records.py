"""The Import page: upload RAG outputs made elsewhere (files or a zip) and prior verdicts, into a run."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from review.importer import Importer, default_run_name
from review.record_files import RecordParseError, decode_text, parse_question_set
from review.verdict_files import parse_label_map
from ui.app_state import app_sessions, current_principal
from ui.text_safety import md

sessions, principal = app_sessions(), current_principal()
st.title("Import")
st.caption("Prompt records (context, `Question:`, `Helpful Answer:`), answer-only records (`Answer:::`), JSONL records "
           "`{id, question, answer, contexts, doc_id, meta}`, and verdicts: a CSV with `Unique_ID` and `decision`, or "
           "JSONL `{record_id, verdict, corrected_answer, comment}`. Zip archives are opened. Importing the same "
           "files again changes nothing.")

with st.form("import_form"):
    uploads = st.file_uploader("Record and verdict files, or a zip", accept_multiple_files=True,
                               type=["txt", "jsonl", "csv", "zip"], key="import_files")
    left, right = st.columns(2)
    run = left.text_input("Run", key="import_run", placeholder="default: the first file's name")
    model = right.text_input("Generator that wrote the answers", key="import_model",
                             placeholder="default: the records' folder name, or meta.model")
    annotator = left.text_input("Verdicts are by", key="import_annotator",
                                value=principal.name,
                                help="The annotator whose verdicts the verdict files hold")
    label_map = right.text_input("Label mapping", key="import_map", placeholder="Yes=accept,No=reject:other",
                                 help="Decision labels to verdicts, on top of the default Yes=accept, No=reject:other")
    questions_file = st.file_uploader("Question set for answer-only records (line n = question CQ<n>)", type=["txt", "jsonl"],
                                      key="import_questions")
    submitted = st.form_submit_button("Import", type="primary")

if submitted:
    if not uploads:
        st.error("Choose at least one file to import.")
        st.stop()
    try:
        questions = parse_question_set(decode_text(questions_file.getvalue())) if questions_file else None
        mapping = parse_label_map(label_map)
    except (RecordParseError, ValueError) as error:
        st.error(md("Cannot import: {}", error))
        st.stop()
    with tempfile.TemporaryDirectory(prefix="loupe-import-") as folder:
        paths = []
        for upload in uploads:
            path = Path(folder) / Path(upload.name).name
            path.write_bytes(upload.getvalue())
            paths.append(path)
        run_name = run.strip() or default_run_name(paths)
        bar = st.progress(0.0, text="Reading files…")
        importer = Importer(sessions, actor=principal, run=run_name, annotator=annotator.strip() or None, questions=questions,
                            label_map=mapping, model=model.strip() or None)
        report = importer.import_paths(
            [folder], progress=lambda done, total, what: bar.progress(done / max(total, 1), text=md("{}: {} of {}", what, done, total)))
        bar.empty()
    (st.success if report.exit_code == 0 else st.warning if report.exit_code == 1 else st.error)(
        md("{}", report.summary()))
    problems = [{"file": p.source.replace(folder, "").lstrip("/"), "line": p.line, "problem": p.reason, "outcome": outcome}
                for outcome, items in (("failed", report.failures), ("skipped", report.skipped)) for p in items]
    if problems:
        st.dataframe(pd.DataFrame(problems), hide_index=True, width="stretch")
