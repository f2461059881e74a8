"""Drawing helpers every page uses: tables, CSV downloads, tiles, empty states, the seat scope."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Literal

import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from lib.analytics import views as D
from lib.analytics.labels import export_frame
from lib.analytics.totals import Summary
from lib.export import dated_filename, to_csv_bytes
from lib.ui.pages import page_path
from lib.ui.state import View


def tiles(items: list[D.Tile], per_row: int = 4) -> None:
    for start in range(0, len(items), per_row):
        cols = st.columns(per_row)
        for col, tile in zip(cols, items[start : start + per_row]):
            # the note wraps under the value (a metric's delta chip cuts it to one line with "…")
            with col.container(border=True, height="stretch"):
                st.metric(tile.label, tile.value, help=tile.help)
                if tile.note:
                    st.caption(tile.note)


def download(
    df: pd.DataFrame, stem: str, label: str = "Download CSV", key: str | None = None
) -> None:
    """A CSV of exactly the rows shown, with a dated file name, safe to open in a spreadsheet.

    Its columns carry the export's names (``seats_bought``, ``idle_annual_cost_reporting`` with
    ``reporting_currency``: labels.export_frame), documented in docs/export.md.
    """
    view = st.session_state.get("_view")
    currency = view.currency if view is not None else "USD"
    # Generated on click: a page with several tables does not build CSVs nobody asked for on every rerun.
    st.download_button(
        label,
        lambda: to_csv_bytes(export_frame(df, currency)),
        file_name=dated_filename(stem),
        mime="text/csv",
        icon=":material/download:",
        key=key or f"dl-{stem}",
        on_click="ignore",
    )


_MONEY_WORDS = ("cost", "spend", "savings", "exposure", "price", "amount")


MISSING = "—"
MISSING_LEGEND = (
    f"{MISSING} = not reported by the vendor, or does not apply (a free license has no recommended "
    "seats); never counted as 0."
)


def table(
    df: pd.DataFrame,
    column_config: dict[str, ColumnConfig] | None = None,
    height: int | Literal["auto", "stretch", "content"] = "auto",
    key: str | None = None,
    show: tuple[str, ...] = (),
):
    """A dataframe with IT/finance headers, money formats, account names and "—" for empty cells.

    The first column is pinned; machine names and IDs (``D.PLUMBING_COLUMNS``) wait behind "More columns".
    The CSV export (``download``) keeps the export's own columns, account UUIDs included.
    """
    view = st.session_state.get("_view")
    cur = view.currency if view is not None else None
    shown = df
    plumbing = [
        c for c in df.columns if c in D.PLUMBING_COLUMNS and c not in show
    ]  # ``show``: these stay
    if "account_id" in df.columns:
        plumbing.append("account_uuid")
    more = False
    if plumbing and key:
        names = ", ".join(D.headers([c for c in plumbing], cur).values())
        more = st.toggle("More columns", key=f"{key}-more", help=f"Also show: {names}.")
    if "account_id" in df.columns and view is not None:
        ids = df["account_id"]
        shown = shown.assign(
            account_id=ids.map(lambda a: view.names.get(a, a) if isinstance(a, str) else a).astype(
                "string"
            )
        )
        if more:
            shown = shown.assign(account_uuid=ids.astype("string"))
    if not more:
        shown = shown.drop(columns=[c for c in plumbing if c in shown.columns])
    heads = D.headers(shown.columns, cur)
    config: dict[str, ColumnConfig] = {}
    for col, header in heads.items():
        if any(w in col for w in _MONEY_WORDS) and pd.api.types.is_numeric_dtype(shown[col].dtype):
            config[col] = st.column_config.NumberColumn(header, format="accounting")
        elif col.endswith("_pct") and pd.api.types.is_numeric_dtype(shown[col].dtype):
            config[col] = st.column_config.NumberColumn(
                header, format="%.1f%%"
            )  # one decimal, like the charts
        else:
            config[col] = st.column_config.Column(header)
    if "account_id" in shown.columns:
        config["account_id"] = st.column_config.TextColumn(
            "Account",
            help="Integration · tenant · the start of the account's ID; the full ID is in the CSV "
            "and under More columns.",
        )
    if "account_uuid" in shown.columns:
        config["account_uuid"] = st.column_config.TextColumn("Account ID (Truto)")
    extra = dict(column_config or {})
    config.update({k: v for k, v in extra.items() if k in shown.columns})
    if len(shown.columns):
        first = shown.columns[0]
        pinned = config[first].copy()
        pinned["pinned"] = True
        config[first] = pinned
    # The key names a container around the table (a dataframe without selections carries no key in the page).
    with st.container(key=key) if key else nullcontext():
        out = st.dataframe(
            shown,
            hide_index=True,
            column_config=config,
            height=height,
            width="stretch",
            placeholder=MISSING,
        )
        if shown.isna().to_numpy().any():
            st.caption(MISSING_LEGEND)
    return out


def include_free() -> bool:
    """The "Include free licenses" toggle (in the URL, shared by the Overview, Utilization and
    Trends): off, the seat figures count paid licenses (lib.analytics.rules.paid_rule) only."""
    return bool(
        st.toggle(
            "Include free licenses in the seat figures",
            key="with_free",
            bind="query-params",
            help="Free tiers (thousands of free seats) can hide how well the paid seats are used, "
            "so the seat figures count paid licenses unless this is on. Paid: the vendor marks "
            "it paid, or the vendor does not say and its price is above 0. A license whose vendor "
            "does not say and that has no price is not known: only counted with this on.",
        )
    )


def seat_scope(view: View) -> Summary:
    """The summary the seat tiles lead with: paid licenses, unless the user includes free ones."""
    return view.summary(paid_only=not include_free())


def empty_state(view: View, what: str) -> bool:
    """Say what to do when there is nothing to show; True when the page should stop."""
    if view.accounts.empty:
        st.info(
            "No integrated accounts found for this Truto token. Connect an account in Truto, or check "
            "`TRUTO_INTEGRATED_ACCOUNT_IDS` and `TRUTO_TENANT_ID`, then press **Refresh from Truto**.",
            icon=":material/link_off:",
        )
        return True
    if (
        view.metrics.empty
        and view.accounts["outcome"].isin(["failed", "needs_reauth", "inactive"]).all()
    ):
        st.error(
            "Every account failed to fetch, so there is nothing to show. The Accounts page says why and "
            "what to do.",
            icon=":material/error:",
        )
        st.page_link(page_path("accounts"), label="Open Accounts", icon=":material/arrow_forward:")
        return True
    if view.metrics.empty:  # accounts fetched, none with a license: no filter is to blame
        st.info(D.no_licenses_text(view.accounts), icon=":material/inventory_2:")
        st.page_link(page_path("accounts"), label="Open Accounts", icon=":material/arrow_forward:")
        return True
    if view.filtered.empty:
        st.info(
            f"No {what} match the filters ({view.filters.describe()}). Clear a filter in the sidebar.",
            icon=":material/filter_alt_off:",
        )
        return True
    return False
