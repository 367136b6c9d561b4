"""Who is using this browser session: a logged-in user (LOUPE_AUTH=password) or the local user (single-user mode).

Streamlit keeps `st.session_state` per browser tab, so a login lasts as long as the tab's session, with the
account's credentials version at login. The user's role is re-read from the database on every step, so disabling
an account or changing a role takes effect at the user's next click; a password set (or the account disabled)
since the login ends the session.
"""

from __future__ import annotations

import streamlit as st

from configuration.network import is_loopback
from review.access import Principal, local_user_name
from review.errors import AuthenticationError
from review.users import authenticate, load_principal, principal_for_email, user_count
from ui.text_safety import md

_USER_KEY, _CREDENTIALS_KEY = "auth_user", "auth_credentials_version"


def exposure_refusal(address: str | None, logins: bool) -> str | None:
    """Why the app must not serve, or None: without logins every visitor is an admin, so single-user mode serves
    the loopback address only."""
    if logins or is_loopback(address):
        return None
    where = f"the address {address}" if (address or "").strip() else "every network interface"
    return (f"Loupe refuses to serve {where} without logins (LOUPE_AUTH=off, single-user mode): every visitor "
            "would act as an admin. Either serve this machine only (make run, or streamlit run app.py "
            "--server.address 127.0.0.1, the default in .streamlit/config.toml), or turn logins on: set "
            "LOUPE_AUTH=password and create accounts with: python cli.py users add NAME --role admin.")


def single_user_principal() -> Principal:
    """Authentication off: whoever runs the app owns its data, under the name in the sidebar."""
    name = st.sidebar.text_input("Your name", value=local_user_name(), key="annotator",
                                 help="Single-user mode: your verdicts are recorded under this name.")
    st.sidebar.caption("Single-user mode (LOUPE_AUTH=off): no login; set LOUPE_AUTH=password for team review.")
    return Principal(name.strip() or local_user_name(), "admin")


def logged_in_principal(sessions) -> Principal | None:
    """The logged-in user as the database has them now; None (logged out) when nobody is, or their session has
    ended (the account disabled or removed, or its password set since they logged in)."""
    name = st.session_state.get(_USER_KEY)
    if not name:
        return None
    try:
        with sessions() as session:
            principal = load_principal(session, name, st.session_state.get(_CREDENTIALS_KEY, 0))
    except AuthenticationError as error:
        st.session_state.pop(_USER_KEY, None)
        st.session_state["auth_notice"] = f"You are logged out: {error}."
        return None
    with st.sidebar:
        st.caption(md("Logged in as **{}** ({})", principal.name, principal.role))
        if st.button("Log out", key="auth_logout"):
            st.session_state.clear()
            if _single_sign_on_configured() and st.user.is_logged_in:
                st.logout()  # else the identity provider's session would log the user straight back in
            st.rerun()
    return principal


def login_page(sessions) -> None:
    """The only page a visitor who is not logged in sees."""
    st.title("Log in to Loupe")
    notice = st.session_state.pop("auth_notice", None)
    if notice:
        st.warning(md("{}", notice))
    with sessions() as session:
        if user_count(session) == 0:
            st.warning("There are no user accounts yet. An admin creates the first one on the server with "
                       "`python cli.py users add NAME --role admin`.")
    if _single_sign_on_configured():
        _single_sign_on(sessions)
    with st.form("login_form"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        return
    try:
        with sessions() as session:
            principal = authenticate(session, name=name, password=password, client=_client_address())
    except AuthenticationError as error:
        st.error(md("{}", error))
        return
    _remember(principal)
    st.session_state.pop("login_password", None)
    st.rerun()


def _single_sign_on_configured() -> bool:
    """OIDC through st.login when `.streamlit/secrets.toml` has an [auth] section (see the README)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all
        return False


def _single_sign_on(sessions) -> None:
    """Log in through the identity provider, then map its verified e-mail address to a Loupe user."""
    if not st.user.is_logged_in:
        st.button("Log in with single sign-on", key="auth_sso", on_click=st.login)
        st.caption("or with a Loupe password:")
        return
    try:
        with sessions() as session:
            principal = principal_for_email(session, st.user.get("email") or "")
    except AuthenticationError as error:
        st.error(md("{}", error))
        st.button("Log out of single sign-on", key="auth_sso_logout", on_click=st.logout)
        return
    _remember(principal)
    st.rerun()


def _remember(principal: Principal) -> None:
    """Keep the login in the tab's session: the name, and the credentials version it was made under."""
    st.session_state[_USER_KEY] = principal.name
    st.session_state[_CREDENTIALS_KEY] = principal.credentials_version


def _client_address() -> str | None:
    """The browser's address, for the login log; None where Streamlit has none (AppTest, some proxies)."""
    address = getattr(st.context, "ip_address", None)
    return address if isinstance(address, str) else None
