"""The review panel: a record's answer and highlighted passages, and the verdict controls. Used by every page
that shows a record, so that reviewing works the same everywhere."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from review.access import Principal
from review.annotations import record_verdict
from review.errors import ConflictError, ReviewError
from review.models import REJECT_REASONS, Record
from ui.highlight import STYLE, answer_html, evidence_spans, passage_html
from ui.text_safety import md, visible_html

MARK_LABELS = {"relevant": "relevant", "not_relevant": "not relevant"}


def correction_diff_html(original: str, corrected: str) -> str:
    """A word-level diff: removed words struck through in red, added ones in green; all text escaped."""
    before, after = original.split(), corrected.split()
    parts = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.append(visible_html(" ".join(before[i1:i2])))
            continue
        if i2 > i1:
            parts.append(f'<del style="background:#ffe3e3">{visible_html(" ".join(before[i1:i2]))}</del>')
        if j2 > j1:
            parts.append(f'<ins style="background:#d3f9d8">{visible_html(" ".join(after[j1:j2]))}</ins>')
    return f'<div class="loupe-passage">{" ".join(parts)}</div>'


def show_record(record: Record) -> None:
    """Answer (sentence support marks) beside the passages (highlighted), two columns on a wide screen."""
    st.html(STYLE)
    answer_column, passages_column = st.columns([2, 3], gap="large")
    with answer_column:
        st.subheader("Answer")
        st.html(answer_html(record.answer, record.support))
        _support_summary(record.support, has_passages=bool(record.passages))
        st.caption(md("Generator: {} · {}", record.generator_kind, record.generator_model))
        if record.generator_note:
            st.warning(md("Answered by the extractive fallback: {}", record.generator_note))
    with passages_column:
        st.subheader(md("Passages ({})", len(record.passages)))
        if not record.passages:
            st.info("No passage was retrieved for this question.")
        for number, passage in enumerate(record.passages, start=1):
            with st.container(border=True):
                page = f" · page {passage['page']}" if passage.get("page") else ""
                score = f" · score {passage['score']:.4f}" if passage.get("score") is not None else ""
                badges = "".join(
                    f" · {'BM25' if name == 'bm25' else 'dense'} #{rank}"
                    for name, rank in (passage.get("ranks") or {}).items() if rank is not None
                )
                st.html(f"<b>[{number}] {visible_html(str(passage.get('title') or passage.get('doc_id') or ''))}</b>"
                        f"<span style='color:#666'>{visible_html(page + score + badges)}</span>")
                spans = evidence_spans(record.support, number - 1)
                st.html(passage_html(passage.get("text") or "", record.question, spans))


def _support_summary(support: dict[str, Any] | None, has_passages: bool) -> None:
    if not support:
        return
    if support.get("abstains"):
        st.info("The answer says the context does not contain the information.")
    if not has_passages:
        st.warning("No passages to check the answer against: its support cannot be judged here.")
        return
    unsupported = support.get("unsupported_count", 0)
    if unsupported:
        st.error(md("{} answer sentence(s) are not supported by the passages.", unsupported))
    else:
        st.success("Every claim in the answer is supported by a passage.")


def verdict_controls(
    record: Record, sessions, principal: Principal, key: str, on_saved: Callable[[str], None],
    search: Callable[[str, list[str]], list[dict[str, Any]]] | None = None,
) -> None:
    """Accept / Correct / Reject with passage marks, a comment and attached missing evidence.

    Each verdict is committed before `on_saved` moves the page on; it is recorded under `principal`'s name.
    """
    annotator = principal.name
    shown_key, version_key = f"{key}_shown_at_{record.id}", f"{key}_version_{record.id}"
    st.session_state.setdefault(shown_key, time.monotonic())
    current = next((a for a in record.annotations if a.annotator == annotator), None)
    # The version this tab showed first: a save from it after another tab saved is then a conflict, not an
    # overwrite (the click's own rerun re-reads the record, so its version cannot tell).
    st.session_state.setdefault(version_key, current.version if current else None)
    if current is not None:
        st.info(md("Your current verdict: {} (version {}). Saving again keeps it in the history.", current.verdict,
                   current.version))

    st.subheader("Verdict")
    marks = _passage_marks(record, key)
    comment = st.text_area("Comment", key=f"{key}_comment", height=68)
    evidence = _missing_evidence(record, key, search) if search else []

    def save(verdict: str, **fields: Any) -> None:
        seconds = round(time.monotonic() - st.session_state[shown_key], 1)
        try:
            with sessions() as session:
                record_verdict(
                    session, actor=principal, record_id=record.id, annotator=annotator, verdict=verdict, comment=comment,
                    passage_marks=marks, evidence=evidence, seconds=seconds,
                    expected_version=st.session_state[version_key], **fields,
                )
        except ReviewError as error:
            st.error(md("{}", error))
            if isinstance(error, ConflictError):
                st.session_state.pop(version_key, None)  # the next save starts from what is stored now
            return
        for state in (shown_key, version_key, f"{key}_mode", f"{key}_comment", f"{key}_reason", f"{key}_evidence_query"):
            st.session_state.pop(state, None)  # the next record starts with a clean panel
        on_saved(verdict)

    accept, correct, reject = st.columns(3)
    if accept.button("Accept", key=f"{key}_accept", shortcut="Alt+1", type="primary", width="stretch"):
        save("accept")
    if correct.button("Correct", key=f"{key}_correct", shortcut="Alt+2", width="stretch"):
        st.session_state[f"{key}_mode"] = "correct"
    if reject.button("Reject", key=f"{key}_reject", shortcut="Alt+3", width="stretch"):
        st.session_state[f"{key}_mode"] = "reject"

    mode = st.session_state.get(f"{key}_mode")
    if mode == "correct":
        corrected = st.text_area("Corrected answer", value=record.answer, key=f"{key}_corrected_{record.id}", height=160)
        if st.button("Save correction", key=f"{key}_save_correction", shortcut="Ctrl+Enter", type="primary"):
            save("correct", corrected_answer=corrected)
    elif mode == "reject":
        reason = st.selectbox("Reason", list(REJECT_REASONS), format_func=REJECT_REASONS.get, key=f"{key}_reason",
                              index=None, placeholder="Why is the answer rejected?")
        if st.button("Save rejection", key=f"{key}_save_rejection", shortcut="Ctrl+Enter", type="primary"):
            save("reject", reason=reason)


def _passage_marks(record: Record, key: str) -> dict[str, str]:
    marks: dict[str, str] = {}
    if not record.passages:
        return marks
    st.caption("Passage relevance")
    columns = st.columns(min(len(record.passages), 5))
    for index, _passage in enumerate(record.passages):
        with columns[index % len(columns)]:
            choice = st.segmented_control(
                f"Passage {index + 1}", list(MARK_LABELS), format_func=MARK_LABELS.get, key=f"{key}_mark_{record.id}_{index}"
            )
        if choice:
            marks[str(index)] = choice
    return marks


def _missing_evidence(record: Record, key: str, search) -> list[dict[str, Any]]:
    """Search the record's document(s) with BM25 and attach passages the retriever missed."""
    attached_key = f"{key}_evidence_{record.id}"
    attached: list[dict[str, Any]] = st.session_state.setdefault(attached_key, [])
    scope = list(record.scope or ([record.doc_id] if record.doc_id else []))
    with st.expander(md("Find missing evidence ({} attached)", len(attached))):
        query = st.text_input("Search the document", key=f"{key}_evidence_query",
                              help="BM25 search within this record's document scope")
        if query.strip():
            for hit in search(query, scope):
                with st.container(border=True):
                    st.html(passage_html(hit["text"], query, []))
                    known = any(item["id"] == hit["id"] for item in attached)
                    if st.button("Attached ✓" if known else "Attach as evidence", key=f"{key}_attach_{hit['id']}",
                                 disabled=known):
                        attached.append({name: hit.get(name) for name in ("id", "doc_id", "title", "page", "text")})
                        st.rerun()
        for item in attached:
            st.caption(md("Attached: {} · {}…", item.get("title") or item.get("doc_id") or "", (item.get("text") or "")[:80]))
    return attached
