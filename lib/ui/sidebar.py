"""The sidebar: the shared filters (bound to the URL) and how fresh the data is."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.analytics import views as D
from lib.ui.state import View, refresh


def sidebar_filters(accounts: pd.DataFrame) -> D.Filters:
    """The shared filters, bound to the URL so a copied link opens the same view."""
    choices = D.filter_choices(accounts)
    names = D.account_names(accounts)
    sb = st.sidebar
    sb.subheader("Filters")
    tenants = sb.multiselect(
        "Tenant", choices["tenants"], key="tenant", bind="query-params", placeholder="All tenants"
    )
    integrations = sb.multiselect(
        "Integration",
        choices["integrations"],
        key="integration",
        bind="query-params",
        placeholder="All integrations",
    )
    account_ids = sb.multiselect(
        "Account",
        choices["accounts"],
        key="account",
        bind="query-params",
        format_func=lambda a: names.get(a, a),
        placeholder="All accounts",
    )
    paid = sb.toggle(
        "Paid licenses only",
        key="paid",
        bind="query-params",
        help="Licenses the vendor marks paid, or whose price is above 0 when the vendor does not "
        "say. A license the vendor does not mark and that has no price is not known: left out.",
    )
    active = sb.toggle(
        "Active licenses only",
        key="active",
        bind="query-params",
        help="Hides licenses the vendor marks inactive; licenses without a status stay.",
    )
    search = sb.text_input(
        "Search licenses",
        key="q",
        bind="query-params",
        placeholder="License, integration or organization",
    )
    return D.Filters(
        tuple(tenants),
        tuple(integrations),
        tuple(account_ids),
        bool(paid),
        bool(active),
        search or "",
    )


def sidebar_status(view: View) -> None:
    sb = st.sidebar
    sb.divider()
    if view.demo:
        sb.info(
            "**Demo data.** No Truto API token is configured, so this shows a built-in sample. "
            "Set `TRUTO_API_TOKEN` to see your own accounts.",
            icon=":material/science:",
        )
    fresh = D.freshness(view.accounts, names=view.names)
    sb.caption(f"Data {fresh.headline}.")
    if fresh.per_account:
        with sb.expander("Fetched per account"):
            for name, text in fresh.per_account:
                st.caption(D.md_escape(f"{name}: {text}"))
    if fresh.stale:
        sb.warning(
            f"Showing older data for {len(fresh.stale)} account(s) whose last fetch failed; "
            "see Accounts.",
            icon=":material/history:",
        )
    if sb.button(
        "Refresh from Truto",
        icon=":material/refresh:",
        width="stretch",
        help="Fetch every account anew. Other users share the result.",
    ):
        refresh(view.store, view.settings, view.config_key)
        st.rerun()
    note = st.session_state.pop("_refresh_note", None)
    if note:
        sb.caption(D.md_escape(note))
