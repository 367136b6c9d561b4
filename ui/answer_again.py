"""`Answer again` on a record: the same question from the same stored passages with the generator configured now
(or another one chosen here), stored as a new record linked to the first, and the two answers side by side with a
word diff and both support maps. Used by the Ask, Queue and Records pages."""

from __future__ import annotations

from typing import Any

import streamlit as st

from configuration.model_paths import BUNDLED_GENERATOR, is_bundled_generator
from loupe.generators import GenerationCancelled, GeneratorChoice, choose_generator
from review.asking import answer_again
from review.errors import ReviewError
from review.models import Record
from review.records import get_record
from ui.highlight import STYLE, answer_html
from ui.review_panel import correction_diff_html
from ui.streaming import stream_into_page
from ui.text_safety import md


@st.cache_resource(show_spinner="Loading the generator…")
def _other_generator(kind: str, model: str, _settings: Any) -> GeneratorChoice:
    """A generator other than the configured one, loaded once per process."""
    return choose_generator(_settings.replace(generator_kind=kind, generator_model=model))


def _choices(asker: Any) -> dict[str, tuple[str, str] | None]:
    configured = asker.generator
    options: dict[str, tuple[str, str] | None] = {f"Configured: {configured.kind} · {configured.model}": None}
    if configured.kind != "transformers" or not is_bundled_generator(asker.settings.generator_model):
        options[f"Bundled: transformers · {BUNDLED_GENERATOR}"] = ("transformers", BUNDLED_GENERATOR)
    if configured.kind != "extractive":
        options["Extractive answerer"] = ("extractive", asker.settings.generator_model)
    return options


def answer_again_panel(record: Record, asker: Any, sessions: Any, principal: Any, key: str) -> None:
    """The button and generator choice; after a run, the comparison of the record with its new answer."""
    state_key = f"{key}_again_of_{record.id}"
    # keyed, so that it stays open (or closed) as the reader left it across the reruns its own widgets cause
    with st.expander("Answer again (same passages, compare generators)", expanded=state_key in st.session_state,
                     key=f"{key}_again_open", on_change="rerun"):
        if not record.passages or not record.question:
            st.info("This record has no stored passages (or no question) to answer again from.")
            return
        options = _choices(asker)
        label = st.selectbox("Generator", list(options), key=f"{key}_again_generator")
        cancelled_key = f"{key}_again_cancelled"
        if st.session_state.pop(cancelled_key, False):
            st.info("Answer again was cancelled: the generator stopped and nothing was stored.")
        if st.button("Answer again", key=f"{key}_again_button"):
            picked = options[label]
            generator = None if picked is None else _other_generator(*picked, asker.settings)
            st.button("Cancel", key=f"{key}_again_cancel", help="Stop the generator; nothing is stored",
                      on_click=lambda: st.session_state.__setitem__(cancelled_key, True))
            try:
                st.session_state[state_key] = _run(record, asker, sessions, principal, generator)
            except GenerationCancelled:
                st.info("Answer again was cancelled: the generator stopped and nothing was stored.")
            except ReviewError as error:
                st.error(md("{}", error))
        again_id = st.session_state.get(state_key)
        if again_id:
            with sessions() as session:
                again = get_record(session, record_id=again_id)
            compare(record, again)


def _run(record: Record, asker: Any, sessions: Any, principal: Any, generator: GeneratorChoice | None) -> str:
    """Answer again, streaming into the page; the new record's id."""
    try:
        again = stream_into_page(lambda stream, on_fallback: answer_again(
            sessions, asker, actor=principal, record_id=record.id, generator=generator,
            streaming_callback=stream, on_fallback=on_fallback))
    except (ReviewError, GenerationCancelled):
        raise
    except Exception as error:  # shown by the caller, never as a traceback
        raise ReviewError(f"{type(error).__name__}: {error}") from None
    return again.id


def compare(first: Record, again: Record) -> None:
    """The two answers side by side with their support maps, and the word diff from the first to the second."""
    st.html(STYLE)
    left, right = st.columns(2, gap="large")
    for column, record, title in ((left, first, "First answer"), (right, again, "Answered again")):
        with column:
            st.markdown(md("**{}**", title))
            st.html(answer_html(record.answer, record.support))
            support = record.support or {}
            st.caption(md("Generator: {} · {} · supported {} / unsupported {}{}", record.generator_kind,
                          record.generator_model, support.get("supported_count", "?"),
                          support.get("unsupported_count", "?"), " · abstains" if support.get("abstains") else ""))
            if record.generator_note:
                st.warning(md("Answered by the extractive fallback: {}", record.generator_note))
    if (again.meta or {}).get("context_cut"):
        st.info(md("Answered again within Ask's context budget: {}.", again.meta["context_cut"]))
    st.markdown("**Word diff** (first → again)")
    st.html(correction_diff_html(first.answer or "", again.answer or ""))
    st.caption(md("Stored as record {}, linked to {} (answer_of).", again.id, first.id))
