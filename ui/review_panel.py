"""The review panel: a record's answer and highlighted passages, and the verdict controls. Used by every page
that shows a record, so that reviewing works the same everywhere.

Layout (built for 1366x768): the verdict bar (Accept / Correct / Reject / Undo, and the page's position line
above it) comes first, so it is on screen whatever the record; below it the answer on the left and the passages
on the right in a pane of fixed height that scrolls by itself.

Keyboard: every control carries its shortcut (`SHORTCUTS` lists them all; `?` shows them). The verdict and
navigation shortcuts are plain keys, which Streamlit ignores while the focus is in a text field; Ctrl+Enter
(save a correction or rejection) is the one meant to work from inside the text. Showing the support of answer
sentence k (Alt+k, or a click on the sentence) happens in the browser: a small script of our own (`KEYS_JS`, no
untrusted text in it) scrolls the passage pane to the supporting sentence and marks it, without a rerun.

Verdicts: every verdict button is keyed by the record it was drawn for, so a key pressed while record n was
shown can only ever judge record n: when the press reaches the server after the panel moved on, that button is
no longer drawn and the press is dropped. The verdict is committed, and the panel's next record chosen, before
anything is drawn again.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from typing import Any

import streamlit as st

from loupe.support import describe_cut
from review.access import Principal
from review.annotations import record_verdict, undo_verdict
from review.context_chunks import describe_grouping
from review.errors import ConflictError, ReviewError
from review.models import REJECT_REASONS, Record, WithdrawnVerdict
from ui.highlight import STYLE, answer_html, closest_spans, evidence_spans, passage_html
from ui.text_safety import md, visible_html

MARK_LABELS = {"relevant": "relevant", "not_relevant": "not relevant"}
# One more key after Reject (X) saves the rejection with this reason.
REASON_KEYS = {"unsupported": "U", "wrong": "W", "retrieval_missed": "M", "should_abstain": "S", "other": "O"}
PASSAGE_PANE_PX = 430  # the passages' own scrolling pane (PANEL_CSS fits it to the window: what is left below)
MARK_KEYS = 9  # passages 1-9 have mark shortcuts (1-9 relevant, Shift+1-9 not relevant)

SHORTCUTS = [  # (keys, what they do): the overlay's table; each is also shown on its control
    ("A", "Accept"),
    ("E", "Correct: edit the answer"),
    ("X", "Reject; then " + ", ".join(f"{key} {REJECT_REASONS[reason]}" for reason, key in REASON_KEYS.items())
     + " saves it with that reason"),
    ("Ctrl+Enter", "Save the correction (or the rejection), also while typing in it"),
    ("T", "Take the suggested verdict as yours (recorded as yours, marked as taken from the suggestion)"),
    ("Z", "Undo the last verdict: the earlier version is restored (the history keeps both), or a first verdict is "
          "withdrawn (kept as withdrawn; the record is unreviewed again)"),
    ("→ / ←", "Next / previous record (Queue)"),
    ("N", "Next unreviewed record (Queue)"),
    ("1 … 9", "Mark passage k relevant (again: clear the mark)"),
    ("Shift+1 … 9", "Mark passage k not relevant (again: clear the mark)"),
    ("Alt+1 … 9, or a click", "Show the support of answer sentence k in the passages"),
    ("F", "Open or close Find missing evidence"),
    ("V", "Passages as stored (raw) or re-flowed for reading"),
    ("?", "This list (Esc closes it)"),
]

# The page's own keys and clicks (trusted, constant): installed once per browser tab, listening on the document so
# that it keeps working as Streamlit redraws the panel. Never acts while the focus is in a text field.
KEYS_JS = """<script>
(() => {
  if (window.__loupeKeys) return;
  window.__loupeKeys = true;
  const editable = (node) => node && (node.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(node.tagName));
  const pane = (node) => {
    for (let up = node.parentElement; up; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (/(auto|scroll)/.test(style.overflowY) && up.scrollHeight > up.clientHeight) return up;
    }
    return null;
  };
  const show = (number) => {
    document.querySelectorAll('.loupe-focus').forEach((node) => node.classList.remove('loupe-focus'));
    const sentence = document.querySelector(`.loupe-answer [data-sentence="${number}"]`);
    const target = document.querySelector(`.loupe-support[data-supports~="${number}"]`)
      || document.querySelector(`.loupe-closest[data-closest~="${number}"]`);
    if (sentence) sentence.classList.add('loupe-focus');
    if (!target) return;
    target.classList.add('loupe-focus');
    const box = pane(target);
    if (box) {  // scroll the passage pane only: the page, and the verdict bar on it, stay where they are
      const offset = target.getBoundingClientRect().top - box.getBoundingClientRect().top;
      box.scrollTop += offset - box.clientHeight / 3;
    } else {
      target.scrollIntoView({block: 'center'});
    }
  };
  document.addEventListener('click', (event) => {
    const sentence = event.target.closest && event.target.closest('.loupe-answer [data-sentence]');
    if (sentence) show(sentence.dataset.sentence);
  });
  document.addEventListener('keydown', (event) => {
    if (editable(event.target) || event.ctrlKey || event.metaKey) return;
    if (event.altKey && /^Digit[1-9]$/.test(event.code)) {
      event.preventDefault();
      show(event.code.slice(5));
    } else if (event.key === '?' && !event.altKey) {
      const button = document.querySelector('[class*="st-key-"][class*="_shortcuts"] button');
      if (button) { event.preventDefault(); button.click(); }
    }
  }, true);
})();
</script>"""
# Layout: less empty space above the page's title; the passage pane as high as what the window has left below
# the bars (Streamlit gives a container of fixed height a wrapper with that flex basis).
PANEL_CSS = """<style>
.stMainBlockContainer{padding-top:2.2rem}
[data-testid="stLayoutWrapper"]:has(> [class*="st-key-"][class*="_passage_pane"]),
[class*="st-key-"][class*="_passage_pane"]{height:max(300px, calc(100vh - 400px)) !important;
  flex:0 0 max(300px, calc(100vh - 400px)) !important}
</style>"""


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


def install_keys() -> None:
    """The styles and the page's own keys (support jumps, `?`); drawn once per run, installed once per tab."""
    st.html(STYLE + PANEL_CSS)
    st.html(KEYS_JS, unsafe_allow_javascript=True)


def show_record(record: Record, key: str = "view", marks: dict[str, str] | None = None,
                on_mark: Callable[[int, str], None] | None = None) -> None:
    """Answer (sentence support marks) beside the passages (highlighted, in their own scrolling pane).

    :param key: prefix of this view's widgets (the raw-text toggle).
    :param marks: the passage marks to show ({"0": "relevant"}); with `on_mark`, each passage offers its mark
        buttons (1-9 relevant, Shift+1-9 not relevant), and a click calls `on_mark(index, mark)` (a callback).
    """
    install_keys()
    answer_column, passages_column = st.columns([2, 3], gap="medium")
    with answer_column:
        show_answer(record)
    with passages_column:
        show_passages(record, key, marks, on_mark)


def show_answer(record: Record) -> None:
    """The answer, sentence by sentence with its support, and what generated it."""
    st.markdown("##### Answer")
    st.html(answer_html(record.answer, record.support))
    _support_summary(record.support, has_passages=bool(record.passages))
    st.caption(md("Generator: {} · {}", record.generator_kind, record.generator_model))
    if (record.meta or {}).get("answer_cut"):  # the record keeps the whole output as meta raw_output
        st.caption(md("Cut from the model's output (the record keeps it whole): {}.", record.meta["answer_cut"]))
    if record.generator_note:
        st.warning(md("Answered by the extractive fallback: {}", record.generator_note))


def show_passages(record: Record, key: str, marks: dict[str, str] | None = None,
                  on_mark: Callable[[int, str], None] | None = None) -> None:
    """The passages in a pane of fixed height, re-flowed for reading unless the raw text is asked for (V)."""
    raw_key = f"{key}_raw_text"
    raw = bool(st.session_state.get(raw_key))
    head = st.container(horizontal=True, vertical_alignment="center", wrap=False)  # one flex row, not columns
    head.markdown(md("##### Passages ({})", len(record.passages)), width="content")
    grouping = describe_grouping((record.meta or {}).get("context_grouping"))
    head.caption(md("{}", grouping or ""), width="stretch")
    head.button("Re-flowed" if raw else "Raw text", key=f"{key}_toggle_raw", shortcut="V", width="content",
                on_click=lambda: st.session_state.update({raw_key: not raw}),
                help="Raw: the passages' text as stored, PDF line breaks included. Re-flowed: line breaks "
                     "inside a paragraph joined and hyphenation undone; highlights cover the same characters.")
    if not record.passages:
        st.info("No passage was retrieved for this question.")
        return
    with st.container(height=PASSAGE_PANE_PX, border=False, key=f"{key}_passage_pane"):
        for number, passage in enumerate(record.passages, start=1):
            with st.container(border=True):
                _passage_header(record, key, number, passage, marks, on_mark)
                text = passage.get("text") or ""
                st.html(passage_html(text, record.question, evidence_spans(record.support, number - 1), reflow=not raw,
                                     closest=closest_spans(record.support, number - 1)))


def _passage_header(record: Record, key: str, number: int, passage: dict[str, Any], marks: dict[str, str] | None,
                    on_mark: Callable[[int, str], None] | None) -> None:
    page = f" · page {passage['page']}" if passage.get("page") else ""
    score = f" · score {passage['score']:.4f}" if passage.get("score") is not None else ""
    badges = "".join(
        f" · {'BM25' if name == 'bm25' else 'dense'} #{rank}"
        for name, rank in (passage.get("ranks") or {}).items() if rank is not None
    )
    paragraphs = len(passage.get("paragraph_spans") or [])
    grouped = f" · {paragraphs} paragraphs" if paragraphs > 1 else ""
    title = (f"<b>[{number}] {visible_html(str(passage.get('title') or passage.get('doc_id') or ''))}</b>"
             f"<span style='color:#666'>{visible_html(page + score + badges + grouped)}</span>")
    if on_mark is None:
        st.html(title)
        return
    # one flex row, not columns: three elements fewer per passage for the browser to draw after every verdict
    row = st.container(horizontal=True, vertical_alignment="center", wrap=False)
    row.html(title)
    mark = (marks or {}).get(str(number - 1))
    keyed = number <= MARK_KEYS
    row.button("✓", help="relevant (press again to clear)", key=f"{key}_mark_{record.id}_{number}_relevant",
               width="content", type="primary" if mark == "relevant" else "secondary",
               shortcut=str(number) if keyed else None, on_click=on_mark, args=(number - 1, "relevant"))
    row.button("✗", help="not relevant (press again to clear)", key=f"{key}_mark_{record.id}_{number}_not_relevant",
               width="content", type="primary" if mark == "not_relevant" else "secondary",
               shortcut=f"Shift+{number}" if keyed else None, on_click=on_mark, args=(number - 1, "not_relevant"))


def _support_summary(support: dict[str, Any] | None, has_passages: bool) -> None:
    if not support:
        return
    if cut := describe_cut(support.get("cut")):
        st.warning(md("{}", cut))
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


@st.dialog("Keyboard shortcuts", width="large")
def shortcuts_dialog() -> None:
    """Every shortcut of the review panel (the `?` key, or the Shortcuts button)."""
    template = "| Keys | Does |\n|---|---|\n" + "\n".join("| {} | {} |" for _ in SHORTCUTS)
    st.markdown(md(template, *(text for row in SHORTCUTS for text in row)))
    st.caption("Plain keys never act while you type in a text field; Ctrl+Enter saves from inside it.")


def suggestion_badge(suggestion: dict[str, Any] | None) -> str | None:
    """"suggest: reject · 86 % · opens with an abstention": the suggested verdict with the probability of that
    verdict and its first reason, or None for a record not analysed."""
    if not suggestion or suggestion.get("verdict") not in ("accept", "reject"):
        return None
    p_accept = float(suggestion.get("p_accept") or 0.0)
    likely = p_accept if suggestion["verdict"] == "accept" else 1.0 - p_accept
    reasons = suggestion.get("reasons") or []
    return " · ".join([f"suggest: {suggestion['verdict']}", f"{likely:.0%}", *reasons[:1]])


def show_suggestion(record: Record) -> None:
    """The suggested verdict (loupe.suggestion), just above the verdict bar: an aid like the support map, shown in
    blind review too (it is no annotator's verdict); every reason in its tooltip, with the model's name."""
    badge = suggestion_badge(record.suggestion)
    if badge is None:
        return
    reasons = "; ".join(record.suggestion.get("reasons") or [])
    st.caption(md(":{}-badge[{}]", "red" if record.suggestion["verdict"] == "reject" else "green", badge),
               help=md("{} (model {})", reasons or "no reason given", record.suggestion.get("model") or "?"))


def review_panel(
    record: Record, sessions, principal: Principal, *, key: str, on_saved: Callable[[str], None],
    search: Callable[[str, list[str]], list[dict[str, Any]]] | None = None,
    on_undone: Callable[[str], None] | None = None,
) -> None:
    """The whole panel: the verdict bar, then the answer beside the passages, with the verdict's details
    (correction, rejection reason, comment, passage marks, missing evidence).

    :param key: prefix of the panel's widgets and state.
    :param on_saved: called with the verdict once it is committed, in the button's callback (before the rerun
        that follows the click): it sets what the page shows next, in st.session_state; no st.rerun needed.
    :param on_undone: called (in the callback too) with the record id after an undo.

    Every control acts in a callback, so the run that follows a key press draws its outcome at once: in
    st.fragment, the panel's rerun is the fragment's.
    """
    install_keys()
    panel = _Panel(record, sessions, principal, key, on_saved, search, on_undone)
    show_suggestion(record)
    panel.verdict_bar()
    answer_column, passages_column = st.columns([2, 3], gap="medium")
    with answer_column:
        panel.details()
        show_answer(record)
        panel.comment_and_evidence()
    with passages_column:
        show_passages(record, key, panel.marks, panel.toggle_mark)


def verdict_controls(
    record: Record, sessions, principal: Principal, key: str, on_saved: Callable[[str], None],
    search: Callable[[str, list[str]], list[dict[str, Any]]] | None = None,
) -> None:
    """The verdict bar and the verdict's details alone, for a page that shows the record itself."""
    install_keys()
    panel = _Panel(record, sessions, principal, key, on_saved, search, None)
    show_suggestion(record)
    panel.verdict_bar()
    panel.details()
    panel.comment_and_evidence()


class _Panel:
    """The verdict controls of one record in one run: what is shown, what is saved, and the session state."""

    def __init__(self, record: Record, sessions, principal: Principal, key: str, on_saved, search, on_undone):
        self.record, self.sessions, self.principal, self.key = record, sessions, principal, key
        self.on_saved, self.search, self.on_undone = on_saved, search, on_undone
        self.annotator = principal.name
        self.shown_key, self.version_key = f"{key}_shown_at_{record.id}", f"{key}_version_{record.id}"
        self.marks_key, self.mode_key = f"{key}_marks_{record.id}", f"{key}_mode_{record.id}"
        st.session_state.setdefault(self.shown_key, time.monotonic())
        self.current = next((a for a in record.annotations if a.annotator == self.annotator), None)
        # The version this tab showed first: a save from it after another tab saved is then a conflict, not an
        # overwrite (the click's own rerun re-reads the record, so its version cannot tell).
        st.session_state.setdefault(self.version_key, self.current.version if self.current else None)
        self.marks: dict[str, str] = st.session_state.setdefault(
            self.marks_key, dict(self.current.passage_marks) if self.current else {})

    # -- the bar ----------------------------------------------------------------------------------------------

    def verdict_bar(self) -> None:
        record, key = self.record, self.key
        suggested = (record.suggestion or {}).get("verdict")
        bar = st.container(horizontal=True, vertical_alignment="center", wrap=False)  # one flex row, not columns
        # keyed by the record: a press made while this record was shown can only judge this record
        bar.button("Accept", key=f"{key}_accept_{record.id}", shortcut="A", type="primary", width="stretch",
                   on_click=self.save, args=("accept",))
        bar.button("Correct", key=f"{key}_correct_{record.id}", shortcut="E", width="stretch",
                   on_click=self.set_mode, args=("correct",))
        bar.button("Reject", key=f"{key}_reject_{record.id}", shortcut="X", width="stretch",
                   on_click=self.set_mode, args=("reject",))
        if suggested in ("accept", "reject"):
            bar.button(md("Take {}", suggested), key=f"{key}_take_{record.id}", shortcut="T", width="stretch",
                       on_click=self.take_suggestion,
                       help="Save the suggested verdict as your own; the record notes it was the suggestion")
        last = st.session_state.get(f"{key}_last_verdict")
        bar.button("Undo", key=f"{key}_undo", shortcut="Z", width="stretch", on_click=self.undo, args=(last,),
                   disabled=last is None and self.current is None,
                   help="Undo your last verdict: the version before it is restored (the history keeps both); a "
                        "first verdict is withdrawn, and kept as withdrawn")
        if bar.button("Shortcuts", key=f"{key}_shortcuts", icon=":material/keyboard:", width="stretch",
                      help="Every keyboard shortcut (?)"):
            shortcuts_dialog()
        notice = st.session_state.pop(f"{key}_notice", None)
        if notice:
            getattr(st, notice[0])(md("{}", notice[1]))
        if self.current is not None:
            st.caption(md("Your current verdict: {} (version {}). Saving again keeps it in the history.",
                          self.current.verdict, self.current.version))

    def set_mode(self, mode: str) -> None:
        st.session_state[self.mode_key] = None if st.session_state.get(self.mode_key) == mode else mode

    # -- what a verdict holds ---------------------------------------------------------------------------------

    def details(self) -> None:
        """The correction editor or the rejection's reason, when Correct or Reject was chosen."""
        record, key = self.record, self.key
        mode = st.session_state.get(self.mode_key)
        if mode == "correct":
            corrected = st.text_area("Corrected answer", value=record.answer, key=f"{key}_corrected_{record.id}",
                                     height=160)
            st.html(_FOCUS_JS.format(selector='textarea[aria-label="Corrected answer"]'), unsafe_allow_javascript=True)
            del corrected  # read from the session state in the callback: the value sent with the click
            st.button("Save correction", key=f"{key}_save_correction", shortcut="Ctrl+Enter", type="primary",
                      on_click=self.save, args=("correct",))
        elif mode == "reject":
            st.caption("Reason — one key saves the rejection:")
            columns = st.columns(len(REASON_KEYS))
            for column, (reason, shortcut) in zip(columns, REASON_KEYS.items()):
                column.button(md("{}", REJECT_REASONS[reason]), key=f"{key}_reason_{reason}_{record.id}", shortcut=shortcut,
                              width="stretch", on_click=self.save, args=("reject",), kwargs={"reason": reason})
            st.selectbox("Reason", list(REJECT_REASONS), format_func=REJECT_REASONS.get, key=f"{key}_reason",
                         index=None, placeholder="Why is the answer rejected?")
            st.button("Save rejection", key=f"{key}_save_rejection", shortcut="Ctrl+Enter", type="primary",
                      on_click=self.save, args=("reject",), kwargs={"from_selectbox": True})

    def comment_and_evidence(self) -> None:
        key = self.key
        st.text_area("Comment", key=f"{key}_comment", height=68)
        if self.search:
            self._missing_evidence()

    def toggle_mark(self, index: int, mark: str) -> None:
        """A mark button's callback: set the mark, or clear it when it is already set."""
        if self.marks.get(str(index)) == mark:
            self.marks.pop(str(index))
        else:
            self.marks[str(index)] = mark

    def _missing_evidence(self) -> list[dict[str, Any]]:
        """Search the record's document(s) with BM25 and attach passages the retriever missed (F opens it)."""
        record, key = self.record, self.key
        attached_key, open_key = f"{key}_evidence_{record.id}", f"{key}_evidence_open"
        attached: list[dict[str, Any]] = st.session_state.setdefault(attached_key, [])
        scope = list(record.scope or ([record.doc_id] if record.doc_id else []))
        opened = bool(st.session_state.get(open_key) or st.session_state.get(f"{key}_evidence_query"))

        def toggle() -> None:
            st.session_state[open_key] = not opened
            if opened:
                st.session_state.pop(f"{key}_evidence_query", None)

        st.button(md("Find missing evidence ({} attached)", len(attached)), key=f"{key}_find_evidence", shortcut="F",
                  icon=":material/search:", type="tertiary", on_click=toggle)
        if opened:
            with st.container(border=True):
                query = st.text_input("Search the document", key=f"{key}_evidence_query",
                                      help="BM25 search within this record's document scope")
                if not query:
                    st.html(_FOCUS_JS.format(selector='input[aria-label="Search the document"]'),
                            unsafe_allow_javascript=True)
                if query.strip():
                    for hit in self.search(query, scope):
                        with st.container(border=True):
                            st.html(passage_html(hit["text"], query, [], reflow=True))
                            known = any(item["id"] == hit["id"] for item in attached)
                            item = {name: hit.get(name) for name in ("id", "doc_id", "title", "page", "text")}
                            st.button("Attached ✓" if known else "Attach as evidence", key=f"{key}_attach_{hit['id']}",
                                      disabled=known, on_click=attached.append, args=(item,))
        for item in attached:
            st.caption(md("Attached: {} · {}…", item.get("title") or item.get("doc_id") or "",
                          (item.get("text") or "")[:80]))
        return attached

    # -- saving -----------------------------------------------------------------------------------------------

    def take_suggestion(self) -> None:
        """The T key's callback: the suggested verdict saved as the annotator's own, with `suggested` set. A
        suggested rejection gets the reason "unsupported" when the suggestion found unsupported sentences, else
        "other"; its reasons go into the comment unless the annotator wrote one."""
        suggestion = self.record.suggestion or {}
        reasons = suggestion.get("reasons") or []
        if suggestion.get("verdict") == "reject":
            reason = "unsupported" if any("unsupported" in text for text in reasons) else "other"
            if not (st.session_state.get(f"{self.key}_comment") or "").strip():
                st.session_state[f"{self.key}_comment"] = "suggested: " + "; ".join(reasons)
            self.save("reject", reason=reason, suggested=True)
        elif suggestion.get("verdict") == "accept":
            self.save("accept", suggested=True)

    def save(self, verdict: str, reason: str | None = None, from_selectbox: bool = False,
             suggested: bool = False) -> None:
        """A verdict button's callback: commit the verdict, then let the page choose what it shows next. It runs
        before the rerun that draws anything, so a run never shows a record whose verdict is half saved; a press
        that reaches the server after this record's panel was done with (its state cleaned) changes nothing."""
        record, key = self.record, self.key
        if self.shown_key not in st.session_state:  # a repeated press, from before the panel moved on
            return
        fields: dict[str, Any] = {}
        if verdict == "correct":
            fields["corrected_answer"] = st.session_state.get(f"{key}_corrected_{record.id}")
        if verdict == "reject":
            fields["reason"] = st.session_state.get(f"{key}_reason") if from_selectbox else reason
        seconds = round(time.monotonic() - st.session_state[self.shown_key], 1)
        try:
            with self.sessions() as session:
                saved = record_verdict(
                    session, actor=self.principal, record_id=record.id, annotator=self.annotator, verdict=verdict,
                    comment=st.session_state.get(f"{key}_comment"), passage_marks=self.marks,
                    evidence=st.session_state.get(f"{key}_evidence_{record.id}", []), seconds=seconds,
                    expected_version=st.session_state.get(self.version_key), suggested=suggested, **fields,
                )
                version = saved.version
        except ReviewError as error:
            st.session_state[f"{key}_notice"] = ("error", str(error))
            if isinstance(error, ConflictError):
                st.session_state.pop(self.version_key, None)  # the next save starts from what is stored now
            return
        st.session_state[f"{key}_last_verdict"] = (record.id, version)
        self._clean()
        self.on_saved(verdict)

    def _clean(self) -> None:
        """The next record (or this one again) starts with a clean panel."""
        key, record = self.key, self.record
        for state in (self.shown_key, self.version_key, self.mode_key, self.marks_key, f"{key}_comment",
                      f"{key}_reason", f"{key}_evidence_query", f"{key}_evidence_open", f"{key}_evidence_{record.id}"):
            st.session_state.pop(state, None)

    def undo(self, last: tuple[str, int] | None) -> None:
        """The Undo button's callback: undo the last verdict saved here (or else this record's current one); the
        page then shows its record (`on_undone`)."""
        if last is None and self.current is None:
            return
        record_id, version = last if last is not None else (self.record.id, self.current.version)
        try:
            with self.sessions() as session:
                undone = undo_verdict(session, actor=self.principal, record_id=record_id, annotator=self.annotator,
                                      expected_version=version)
                if isinstance(undone, WithdrawnVerdict):
                    notice = ("success", f"Undone: your first verdict ({undone.verdict}) is withdrawn and the record "
                                         "is unreviewed again (the withdrawn verdict is kept).")
                else:
                    notice = ("success", f"Undone: your verdict is {undone.verdict} again (version {undone.version}; "
                                         "the undone one is kept in the history).")
        except ReviewError as error:
            notice = ("warning", str(error))
        st.session_state.pop(f"{self.key}_last_verdict", None)
        st.session_state[f"{self.key}_notice"] = notice
        for state in (f"{self.key}_version_{record_id}", f"{self.key}_marks_{record_id}",
                      f"{self.key}_shown_at_{record_id}"):
            st.session_state.pop(state, None)
        if self.on_undone is not None:
            self.on_undone(record_id)


# Puts the focus in a field drawn just now (the correction, the evidence search), so typing can start at once.
_FOCUS_JS = """<script>setTimeout(() => {{ const field = document.querySelector('{selector}'); if (field) field.focus(); }}, 60);</script>"""
