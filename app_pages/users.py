"""The Users page (admins): accounts, their roles, and disabling or enabling them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from review.access import ROLES
from review.errors import ReviewError
from review.users import add_user, list_users, set_disabled, set_role
from ui.app_state import app_sessions, current_principal
from ui.text_safety import md

sessions, principal = app_sessions(), current_principal()
st.title("Users")


def attempt(action, done: str) -> None:
    """Run a data function; its refusal (role, last admin, bad password…) is shown, never raised."""
    try:
        with sessions() as session:
            action(session)
    except ReviewError as error:
        st.error(md("{}", error))
        return
    st.session_state["users_notice"] = done
    st.rerun()


try:
    with sessions() as session:
        users = list_users(session, actor=principal)
except ReviewError as error:
    st.error(md("{}", error))
    st.stop()

notice = st.session_state.pop("users_notice", None)
if notice:
    st.success(md("{}", notice))

st.dataframe(pd.DataFrame([{"name": u.name, "role": u.role, "e-mail": u.email or "", "disabled": u.disabled,
                            "created": u.created_at} for u in users], columns=["name", "role", "e-mail", "disabled",
                                                                              "created"]),
             hide_index=True, width="stretch")

with st.form("users_add", clear_on_submit=True):
    st.subheader("Add a user")
    left, right = st.columns(2)
    name = left.text_input("Name", key="users_new_name")
    role = right.selectbox("Role", ROLES, key="users_new_role")
    password = left.text_input("Password", type="password", key="users_new_password")
    repeated = right.text_input("Repeat the password", type="password", key="users_new_repeat")
    if st.form_submit_button("Add user", type="primary"):
        if password != repeated:
            st.error("The two passwords differ.")
        else:
            attempt(lambda s: add_user(s, actor=principal, name=name, role=role, password=password),
                    f"Added {name} as {role}.")

if users:
    st.subheader("Change a user")
    left, middle, right = st.columns(3)
    chosen = left.selectbox("User", [u.name for u in users], key="users_chosen")
    user = next(u for u in users if u.name == chosen)
    new_role = middle.selectbox("Role", ROLES, index=ROLES.index(user.role), key=f"users_role_{chosen}")
    if middle.button("Set role", key="users_set_role"):
        attempt(lambda s: set_role(s, actor=principal, name=chosen, role=new_role), f"{chosen} is now {new_role}.")
    if right.button("Enable" if user.disabled else "Disable", key="users_toggle"):
        attempt(lambda s: set_disabled(s, actor=principal, name=chosen, disabled=not user.disabled),
                f"{chosen} is {'enabled' if user.disabled else 'disabled'}.")
