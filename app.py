"""Loupe's Streamlit entry point: resources, who is using the app, then the sidebar and the pages their role allows.

Nothing about the installation (data directory, generator) is drawn before the login check; without logins
the app serves the loopback address only (see ui.auth.exposure_refusal)."""

from __future__ import annotations

import logging

import streamlit as st

from configuration.settings import SettingsError
from loupe.suggestion import suggester_note_or_none
from review.db import auth_required
from ui.app_state import app_asker, app_sessions, app_settings, freeze_loaded_objects
from ui.auth import exposure_refusal, logged_in_principal, login_page, single_user_principal
from ui.text_safety import md

st.set_page_config(page_title="Loupe", page_icon="🔎", layout="wide")

try:
    settings = app_settings()
    logins = auth_required(settings)
except (SettingsError, ValueError, OSError) as error:
    st.error(md("Loupe cannot start: {}", error))
    st.stop()

refusal = exposure_refusal(st.get_option("server.address"), logins)
if refusal:
    logging.getLogger("loupe.auth").error(refusal)  # in the terminal too, where the server was started
    st.error(md("{}", refusal))
    st.stop()

try:
    asker = app_asker()
    sessions = app_sessions()
    freeze_loaded_objects()
except (SettingsError, ValueError, OSError) as error:
    st.error(md("Loupe cannot start: {}", error))
    st.stop()

about = st.sidebar.container()  # filled once someone is logged in: visitors learn nothing about the installation
principal = logged_in_principal(sessions) if logins else single_user_principal()
if principal is None:
    st.navigation([st.Page(lambda: login_page(sessions), title="Log in", url_path="login")]).run()
    st.stop()
st.session_state["principal"] = principal  # read by the pages through ui.app_state.current_principal

with about:
    st.markdown("### Loupe")
    generator = asker.generator
    st.caption(md("Generator: **{}** · {}", generator.kind, generator.model))
    if generator.fallback_reason:
        st.warning(md("Using the offline extractive answerer: {}", generator.fallback_reason))
    suggester_note = suggester_note_or_none(settings)
    if suggester_note:
        st.warning(md("Suggested verdicts: {}", suggester_note))
    st.caption(md("Store: {} · data: {}", settings.backend, settings.data_dir))

pages = [  # every role; the data functions behind each page check the role again
    st.Page("app_pages/ask.py", title="Ask", default=True),
    st.Page("app_pages/queue.py", title="Queue"),
    st.Page("app_pages/records.py", title="Records"),
    st.Page("app_pages/progress.py", title="Progress"),
]
if principal.has("reviewer"):
    pages += [st.Page("app_pages/adjudicate.py", title="Adjudicate"), st.Page("app_pages/overview.py", title="Overview"),
              st.Page("app_pages/scorecard.py", title="Scorecard")]
if principal.has("admin"):
    pages += [st.Page("app_pages/import_records.py", title="Import"), st.Page("app_pages/batch.py", title="Batch"),
              st.Page("app_pages/users.py", title="Users")]
st.navigation(pages).run()
