"""Loupe's Streamlit entry point: resources, who is using the app, the sidebar, then the pages their role allows."""

from __future__ import annotations

import streamlit as st

from configuration.settings import SettingsError
from review.db import auth_required
from ui.app_state import app_asker, app_sessions, app_settings
from ui.auth import logged_in_principal, login_page, single_user_principal
from ui.text_safety import escape_markdown

st.set_page_config(page_title="Loupe", page_icon="🔎", layout="wide")

try:
    settings = app_settings()
    asker = app_asker()
    sessions = app_sessions()
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

principal = logged_in_principal(sessions) if auth_required(settings) else single_user_principal()
if principal is None:
    st.navigation([st.Page(lambda: login_page(sessions), title="Log in", url_path="login")]).run()
    st.stop()
st.session_state["principal"] = principal  # read by the pages through ui.app_state.current_principal

pages = [  # every role; the data functions behind each page check the role again
    st.Page("app_pages/ask.py", title="Ask", default=True),
    st.Page("app_pages/queue.py", title="Queue"),
    st.Page("app_pages/records.py", title="Records"),
    st.Page("app_pages/progress.py", title="Progress"),
]
if principal.has("reviewer"):
    pages += [st.Page("app_pages/adjudicate.py", title="Adjudicate"), st.Page("app_pages/overview.py", title="Overview")]
if principal.has("admin"):
    pages += [st.Page("app_pages/import_records.py", title="Import"), st.Page("app_pages/batch.py", title="Batch"),
              st.Page("app_pages/users.py", title="Users")]
st.navigation(pages).run()
