"""The access gate: sign-in and the allow-list when [auth] is configured, and who is signed in."""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from lib.analytics import views as D
from lib.auth import Actor
from lib.config import ConfigError


def _secrets() -> dict:
    """st.secrets as a dict: {} only when no secrets file exists at all.

    A secrets file that exists but cannot be read stops the app (fail closed): it may hold the [auth]
    section, and reading it as "no secrets" would run the dashboard open. Streamlit's
    StreamlitSecretNotFoundError is a FileNotFoundError, so the error alone does not tell the two apart.
    """
    from streamlit import config as st_config

    try:
        return st.secrets.to_dict()
    except Exception as exc:  # noqa: BLE001 - any failure to read an existing file must stop the app
        paths = st_config.get_option("secrets.files") or []
        if isinstance(exc, FileNotFoundError) and not any(os.path.exists(p) for p in paths):
            return {}
        problem = f"{type(exc).__name__}: {exc}"
    st.error(
        "The secrets file could not be read, so sign-in cannot be checked and the dashboard stays closed. "
        f"Fix the file and reload this page. ({D.md_escape(problem)})",
        icon=":material/lock:",
    )
    st.stop()


def streamlit_user() -> dict[str, Any]:
    """What ``st.user`` holds, as a plain dict (the input of lib.auth.decide)."""
    user = st.user
    data: dict[str, Any]
    try:
        data = dict(user.to_dict())
    except AttributeError:
        data = {k: user[k] for k in user}
    data.setdefault("is_logged_in", bool(getattr(user, "is_logged_in", False)))
    return data


def gate() -> Actor:
    """Sign-in and the allow-list when [auth] is configured; open for local use otherwise."""
    from lib.auth import decide, load_access_config

    secrets = _secrets()
    try:
        config = load_access_config(secrets)  # an [auth] that sign-in cannot use is an error here
    except ConfigError as exc:
        st.error(
            f"The access settings have a problem, so the dashboard stays closed: {D.md_escape(str(exc))}",
            icon=":material/lock:",
        )
        st.stop()
    if config.open:
        return decide({}, config).allowed_actor
    decision = decide(streamlit_user(), config)
    if decision.allowed:
        return decision.allowed_actor
    st.title("License utilization")
    if not st.user.is_logged_in:
        st.write("Sign in with your company account to see the dashboard.")
        st.button(
            "Sign in", type="primary", on_click=st.login, icon=":material/login:", key="sign-in"
        )
    else:
        st.warning(
            f"You are signed in as {D.md_escape(decision.shown_as)}, which does not have access to this "
            f"dashboard: {D.md_escape(decision.reason)}.",
            icon=":material/lock:",
        )
        st.button("Sign out", on_click=st.logout, icon=":material/logout:", key="sign-out")
    st.stop()


def sidebar_access(actor: Actor) -> None:
    sb = st.sidebar
    if actor.role == "open":
        sb.caption(
            ":material/lock_open: Open access: no sign-in is configured, so anyone who can reach this "
            "address can see and change everything. Configure `[auth]` for a shared deployment."
        )
        return
    who = D.md_escape(actor.email or actor.name or "you")
    sb.caption(f":material/person: Signed in as {who} ({'admin' if actor.can_edit else 'viewer'}).")
    sb.button("Sign out", on_click=st.logout, key="sign-out")
