"""Loupe's Streamlit entry point: shared sidebar and session defaults, then the chosen page."""

from __future__ import annotations

import streamlit as st

from loupe.app_state import app_asker, app_sessions, app_settings, default_annotator
from loupe.settings import SettingsError
from loupe.text_safety import escape_markdown

st.set_page_config(page_title="Loupe", page_icon="🔎", layout="wide")

try:
    settings = app_settings()
    asker = app_asker()
    app_sessions()
except (SettingsError, ValueError, OSError) as error:
    st.error(f"Loupe cannot start: {error}")
    st.stop()

with st.sidebar:
    st.markdown("### Loupe")
    generator = asker.generator
    st.caption(f"Generator: **{escape_markdown(generator.kind)}** · {escape_markdown(generator.model)}")
    if generator.fallback_reason:
        st.warning(f"Using the offline extractive answerer: {escape_markdown(generator.fallback_reason)}")
    st.caption(f"Store: {settings.backend} · data: {escape_markdown(str(settings.data_dir))}")
    st.text_input("Your name", value=default_annotator(), key="annotator",
                  help="Single-user mode: your verdicts are recorded under this name.")

page = st.navigation([
    st.Page("app_pages/ask.py", title="Ask", default=True),
    st.Page("app_pages/queue.py", title="Queue"),
    st.Page("app_pages/records.py", title="Records"),
    st.Page("app_pages/import_records.py", title="Import"),
    st.Page("app_pages/batch.py", title="Batch"),
    st.Page("app_pages/overview.py", title="Overview"),
])
page.run()
