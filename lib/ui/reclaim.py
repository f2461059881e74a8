"""Widgets of the Reclaim page: the threshold and reason filters (bound to the URL) and the
exemption editor. What the page shows is computed in :mod:`lib.analytics.reclaim_views`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from lib.analytics import views as D
from lib.analytics.activity import (
    DEFAULT_INACTIVE_DAYS,
    THRESHOLD_CHOICES,
    validate_threshold,
)
from lib.analytics.reclaim_views import REASON_FILTER, REASON_LABELS
from lib.ui.state import View
from lib.ui.workflows import _saved as done
from lib.ui.workflows import saved_note

__all__ = [
    "exemption_editor",
    "exemptions_table",
    "reason_filter",
    "saved_note",
    "seat_columns",
    "threshold",
]


def threshold() -> int:
    """Days without activity after which a seat is inactive: 30, 60, 90 or any whole number."""
    raw = st.selectbox(
        "Inactive for more than (days)",
        THRESHOLD_CHOICES,
        index=THRESHOLD_CHOICES.index(DEFAULT_INACTIVE_DAYS),
        key="days",
        bind="query-params",
        accept_new_options=True,
        help="Pick 30, 60 or 90 days, or type any whole number of days.",
    )
    try:
        return validate_threshold(raw if raw is not None else DEFAULT_INACTIVE_DAYS)
    except ValueError as exc:
        st.error(f"{D.md_escape(exc)}: showing {DEFAULT_INACTIVE_DAYS} days.")
        return DEFAULT_INACTIVE_DAYS


def reason_filter() -> list[str]:
    picked = st.multiselect(
        "Why reclaimable",
        list(REASON_FILTER),
        key="reason",
        bind="query-params",
        placeholder="Every reason",
        help="; ".join(f"{k}: {REASON_LABELS[v]}" for k, v in REASON_FILTER.items()),
    )
    return list(picked)


def seat_columns(currency: str) -> dict:
    """The reclaimable-seat table's formats: dates as dates, the reason short, the cost in focus."""
    return {
        "last_active_at": st.column_config.DatetimeColumn(
            "Last active (UTC)", format="YYYY-MM-DD", help="Empty: never, or not reported."
        ),
        "reclaim_reason": st.column_config.TextColumn(
            "Why reclaimable",
            help="; ".join(f"{k}: {REASON_LABELS[v]}" for k, v in REASON_FILTER.items()),
        ),
        "reclaimable_annual_cost_reporting": st.column_config.NumberColumn(
            f"Annual cost ({currency})",
            format="accounting",
            help="What the seat costs a year at the license's price, converted; empty: no price "
            "or no exchange rate. Free licenses cost 0.",
        ),
    }


def exemptions_table(view: View) -> None:
    ex = view.exemptions
    if ex.empty:
        st.caption("No exemptions: every user and license can be reclaimable.")
        return
    shown = ex.rename(columns={"reason": "exemption_reason"})
    if not view.actor.can_see_people:  # a user exemption names a person
        shown = shown.assign(
            value=shown["value"].where(shown["kind"] != "user", "(hidden: admins only)")
        )
    from lib.ui.widgets import table

    table(shown.drop(columns=["id"]), key="exemptions-table")


def exemption_editor(view: View, candidates: pd.DataFrame) -> None:
    """Admins exempt a user (by email or id) or a license from reclaim, with a reason; or remove one.
    ``candidates``: the reclaimable seats shown, to pick from."""
    with st.form("exempt-form", clear_on_submit=True, border=True):
        st.markdown("**Exempt from reclaim**")
        kind = st.radio(
            "What",
            ("user", "license"),
            format_func=lambda k: {
                "user": "A user (service account, break-glass admin)",
                "license": "A license",
            }[k],
            horizontal=True,
            key="exempt-kind",
        )
        users = sorted({e for e in candidates.get("user_email", pd.Series()).dropna()})
        value = st.selectbox(
            "User email or id, or license id",
            users,
            index=None,
            accept_new_options=True,
            placeholder="Pick a reclaimable user's email, or type an email, user id or license id",
            key="exempt-value",
        )
        integration = st.text_input(
            "Integration (licenses only; empty: any integration)",
            key="exempt-integration",
            placeholder="e.g. slack",
        )
        reason = st.text_input("Reason", key="exempt-reason", placeholder="e.g. CI service account")
        if st.form_submit_button("Exempt", icon=":material/shield:"):
            from lib.store import ExemptionError

            try:
                view.store.add_exemption(
                    kind, value or "", reason, view.actor, integration=integration or None
                )
            except (ExemptionError, PermissionError) as exc:
                st.error(f"Not saved: {D.md_escape(exc)}.", icon=":material/error:")
            else:
                done("Exemption saved; the figures above leave it out.")
    ex = view.exemptions
    if len(ex):
        labels = {
            int(r.id): f"{r.kind}: {r.value}"
            + (f" ({r.integration})" if isinstance(r.integration, str) else "")
            for r in ex.itertuples(index=False)
        }
        col1, col2 = st.columns([3, 1], vertical_alignment="bottom")
        with col1:
            gone = st.selectbox(
                "Remove an exemption",
                list(labels),
                index=None,
                format_func=lambda i: labels[i],
                key="exempt-remove",
            )
        with col2:
            if st.button("Remove", disabled=gone is None, key="exempt-remove-btn") and gone:
                view.store.remove_exemption(int(gone), view.actor)
                done("Exemption removed.")
