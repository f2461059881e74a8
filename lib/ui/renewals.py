"""Widgets of the Renewals and Alerts pages: the contract and rule editors, the CSV upload, column
formats. What they show is computed in :mod:`lib.analytics.renewal_views`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from lib.analytics import renewal_views as R
from lib.analytics.alert_rules import KIND_LABELS, KINDS, AlertRulesError
from lib.analytics.contracts import (
    SOURCES,
    TERMS,
    ContractsError,
    contracts_to_csv,
    load_contracts,
    validate_contracts,
)
from lib.analytics.labels import account_label
from lib.analytics.renewals import HORIZONS
from lib.export import dated_filename
from lib.schema import CONTRACT_COLUMNS
from lib.ui.workflows import (
    saved_note,  # noqa: F401  (re-exported: U.saved_note())
    show_problems,
)

CONTRACT_HEADERS = {
    "integration": "Integration",
    "account_id": "Account ID (empty: every account)",
    "license_id": "License ID",
    "license_name": "License name (both empty: every license)",
    "contract_start": "Contract start",
    "contract_end": "Contract end",
    "term": "Term",
    "auto_renew": "Auto-renews",
    "notice_days": "Notice period (days)",
    "committed_seats": "Committed seats",
    "true_up_date": "True-up date",
    "contract_value": "Contract value",
    "currency": "Currency",
    "source": "Contract from",
}


@st.cache_resource(show_spinner=False)
def _seed_demo_contracts(store_url: str) -> bool:
    from lib.jobs.demo import seed_demo_contracts
    from lib.ui import get_store

    return seed_demo_contracts(get_store(store_url))


def seed_demo(view) -> None:
    """On the demo data: the demo contracts, written once to a new database (as the demo prices)."""
    if view.demo:
        _seed_demo_contracts(view.store_url)


def saved(message: str) -> None:
    st.session_state["_saved"] = message
    st.rerun()


def window() -> int:
    """The renewal window in days (30, 60, 90 or 120; default 90), kept in the URL (``?horizon=``)
    like the Reclaim page's days, so a copied link opens the same window."""
    picked = st.segmented_control(
        "Within (days)",
        HORIZONS,
        default=90,
        format_func=str,  # the URL holds the label: ?horizon=30, as Reclaim's ?days=30
        key="horizon",
        bind="query-params",
    )
    return int(picked) if picked in HORIZONS else 90


def renewal_columns(currency: str) -> dict:
    """Headers (contract words) and date formats for the renewal table."""
    heads = R.renewal_headers(R.RENEWAL_SHOWN, currency)
    config = {
        c: st.column_config.DateColumn(heads[c], format="YYYY-MM-DD")
        for c in ("opt_out_deadline", "renewal_date")
    }
    for c in ("days_to_opt_out", "days_to_renewal", "seat_change", "what_to_do", "source_label"):
        config[c] = st.column_config.Column(heads[c])
    config["auto_renew"] = st.column_config.CheckboxColumn(heads["auto_renew"])
    # Short headers for the columns in view at 1440 px (the whole header is their help).
    config["opt_out_deadline"] = st.column_config.DateColumn(
        "Opt-out deadline", format="YYYY-MM-DD", help=heads["opt_out_deadline"]
    )
    config["potential_annual_savings_reporting"] = st.column_config.NumberColumn(
        f"Saving at renewal ({currency})",
        format="accounting",
        help=heads["potential_annual_savings_reporting"],
    )
    return config


def account_choices(names: dict[str, str], contracts: pd.DataFrame) -> list[str]:
    """The account IDs a contract can name: the known accounts, then any other a saved contract names
    (so it stays as it is)."""
    saved = [a for a in contracts["account_id"].dropna().astype(str) if a not in names]
    return [*names, *dict.fromkeys(saved)]


def _contract_config(names: dict[str, str], contracts: pd.DataFrame) -> dict:
    h = CONTRACT_HEADERS
    return {
        "integration": st.column_config.TextColumn(h["integration"], required=True),
        # Picked by name (integration · tenant · the start of the ID); the full ID is saved and in the CSV.
        "account_id": st.column_config.SelectboxColumn(
            "Account (empty: every account)",
            options=account_choices(names, contracts),
            format_func=lambda a: account_label(a, names),
            help="Integration · tenant · the start of the account's ID; the contracts CSV has the "
            "full ID.",
        ),
        "license_id": st.column_config.TextColumn(h["license_id"]),
        "license_name": st.column_config.TextColumn(h["license_name"]),
        "contract_start": st.column_config.DateColumn(h["contract_start"], format="YYYY-MM-DD"),
        "contract_end": st.column_config.DateColumn(
            h["contract_end"], format="YYYY-MM-DD", required=True
        ),
        "term": st.column_config.SelectboxColumn(h["term"], options=list(TERMS)),
        "auto_renew": st.column_config.CheckboxColumn(h["auto_renew"]),
        "notice_days": st.column_config.NumberColumn(h["notice_days"], min_value=0, step=1),
        "committed_seats": st.column_config.NumberColumn(h["committed_seats"], min_value=0, step=1),
        "true_up_date": st.column_config.DateColumn(h["true_up_date"], format="YYYY-MM-DD"),
        "contract_value": st.column_config.NumberColumn(
            h["contract_value"], min_value=0.0, format="%.2f"
        ),
        "currency": st.column_config.TextColumn(h["currency"], max_chars=3),
        "source": st.column_config.SelectboxColumn(
            h["source"],
            options=list(SOURCES),
            help="vendor: prefilled from the vendor's billing data by the sync; edited: entered "
            "here. Only the sync writes vendor rows: a row you add or change here is edited.",
            disabled=True,
        ),
    }


def contracts_editor(view, contracts: pd.DataFrame) -> None:
    """Admins edit the contracts in a table or replace them from a CSV; every problem by row and
    column, nothing half applied."""
    store, actor = view.store, view.actor
    vendor = int((contracts["source"] == "vendor").sum()) if len(contracts) else 0
    st.caption(
        "One row per contract: a license (by ID or name), every license of an account, or every "
        "license of an integration. The opt-out deadline is the contract end minus the notice "
        "period."
        + (
            f" {vendor} row(s) marked **vendor** were prefilled from the vendor's billing data."
            if vendor
            else ""
        )
    )
    edited = st.data_editor(
        contracts,
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key="contracts-editor",
        placeholder="—",
        column_config=_contract_config(view.names, contracts),
    )
    if st.button("Save contracts", type="primary", key="save-contracts"):
        # A vendor row someone changed here is theirs now (only the sync writes vendor rows).
        changes = st.session_state.get("contracts-editor", {}).get("edited_rows", {})
        edited = edited[CONTRACT_COLUMNS].copy()
        for row in changes:
            if int(row) < len(edited):
                edited.iloc[int(row), edited.columns.get_loc("source")] = "edited"
        try:
            checked = validate_contracts(edited)
        except ContractsError as exc:
            show_problems("The contracts have problems.", exc.problems, exc.more)
        else:
            store.save_contracts(checked, actor)
            saved(f"Saved {len(checked)} contracts.")

    st.markdown(
        "**Replace from a CSV file** — columns: "
        + ", ".join(f"`{c}`" for c in CONTRACT_COLUMNS)
        + ". Every row of the file is yours (source edited): only the sync writes vendor rows."
    )
    upload = st.file_uploader("Contracts CSV", type=["csv"], key="contracts-upload")
    if upload is not None:
        try:
            new = load_contracts(upload.getvalue())
        except ContractsError as exc:
            show_problems(f"{upload.name} was rejected.", exc.problems, exc.more)
        else:
            if new.empty:
                st.warning(
                    f"{upload.name} holds no contracts; the contracts were left as they are."
                )
            else:
                st.success(f"{upload.name}: {len(new)} contracts, all valid.")
                if st.button(
                    f"Replace the contracts with these {len(new)}", key="apply-contracts-upload"
                ):
                    store.save_contracts(new, actor)
                    saved(f"Replaced the contracts with {len(new)} from {upload.name}.")
    download_contracts(contracts)


def download_contracts(contracts: pd.DataFrame) -> None:
    st.download_button(
        "Download the contracts",
        contracts_to_csv(contracts),
        file_name=dated_filename("contracts"),
        mime="text/csv",
        icon=":material/download:",
        key="dl-contracts",
        on_click="ignore",
    )


def contracts_table(contracts: pd.DataFrame, names: dict[str, str] | None = None) -> None:
    """Viewers see the contracts read-only, accounts by name (the download keeps the IDs)."""
    ids = contracts["account_id"]
    shown = contracts.assign(
        account_id=ids.map(lambda a: account_label(a, names) if isinstance(a, str) else a).astype(
            "string"
        )
    ).rename(columns={**CONTRACT_HEADERS, "account_id": "Account (empty: every account)"})
    st.dataframe(shown, hide_index=True, width="stretch", placeholder="—", key="contracts-table")
    download_contracts(contracts)


ALERT_COLUMNS = {
    c: st.column_config.DatetimeColumn(
        R.ALERT_HEADERS[c], format="YYYY-MM-DD HH:mm", timezone="UTC"
    )
    for c in ("first_fired_at", "last_seen_at", "cleared_at", "attempted_at")
}


def alert_table(df: pd.DataFrame, key: str) -> None:
    config = {c: st.column_config.Column(h) for c, h in R.ALERT_HEADERS.items() if c in df.columns}
    config.update({c: v for c, v in ALERT_COLUMNS.items() if c in df.columns})
    with st.container(key=key):
        st.dataframe(df, hide_index=True, width="stretch", column_config=config, placeholder="—")


def kind_words(kind: object) -> str:
    """A rule kind as the Alerts page says it ("Over-allocated (more seats assigned than bought)")."""
    return KIND_LABELS.get(str(kind), str(kind))


RULE_HEADERS = {
    "id": "Rule ID",
    "kind": "Kind",
    "threshold": "Threshold (N)",
    "enabled": "On",
    "paid_only": "Paid licenses only",
    "channels": "Send by",
}


def rules_table(rules) -> None:
    """Viewers see the rules read-only, kinds in words, with the editor's headers."""
    frame = R.rules_frame(rules)
    shown = frame.assign(kind=frame["kind"].map(kind_words).astype("string"))
    with st.container(key="rules-table"):
        st.dataframe(
            shown,
            hide_index=True,
            width="stretch",
            placeholder="—",
            column_config={c: st.column_config.Column(h) for c, h in RULE_HEADERS.items()},
        )


def rules_editor(view, rules) -> None:
    """Admins edit the alert rules; every problem listed by rule, nothing half applied."""
    from lib.jobs.alerts import rule_rows

    edited = st.data_editor(
        R.rules_frame(rules),
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key="rules-editor",
        placeholder="—",
        column_config={
            "id": st.column_config.TextColumn(RULE_HEADERS["id"], required=True),
            # Kinds in words; the rule keeps its kind's machine name.
            "kind": st.column_config.SelectboxColumn(
                RULE_HEADERS["kind"],
                options=list(KINDS),
                format_func=kind_words,
                required=True,
                width="large",
            ),
            "threshold": st.column_config.NumberColumn(RULE_HEADERS["threshold"]),
            "enabled": st.column_config.CheckboxColumn(RULE_HEADERS["enabled"]),
            "paid_only": st.column_config.CheckboxColumn(RULE_HEADERS["paid_only"]),
            "channels": st.column_config.TextColumn(
                RULE_HEADERS["channels"],
                help="email, webhook, both (comma-separated) or empty: listed here only",
            ),
        },
    )
    if st.button("Save rules", type="primary", key="save-rules"):
        try:
            checked = R.rules_from_frame(edited)
        except AlertRulesError as exc:
            show_problems("The rules have problems.", exc.problems)
        else:
            view.store.save_alert_rules(rule_rows(checked), view.actor)
            saved(f"Saved {len(checked)} alert rules.")


def contracts(view):
    """The stored contracts (the page reads them here, never from the store itself)."""
    return view.store.get_contracts()


@dataclass
class AlertState:
    """What the Alerts page shows: the rules in force, alert states, deliveries, and what is not yet checked."""

    rules: list
    rule_problems: list[str]
    states: pd.DataFrame
    deliveries: pd.DataFrame
    pending: pd.DataFrame
    not_yet_checked: list
    holding: list = field(default_factory=list)  # every condition on the latest data, now
    checked_at: datetime | None = None  # when the rules last ran (None: never)


def alert_state(view) -> AlertState:
    from lib.jobs.alerts import evaluate_latest, rules_in_force

    store, key = view.store, view.config_key
    problems: list[str] = []
    try:
        rules = rules_in_force(store)
    except AlertRulesError as exc:
        problems, rules = list(exc.problems), []
    states = store.alert_states(key)
    holding = evaluate_latest(store, key, datetime.now(UTC).date(), rules).alerts
    open_keys = set(states.loc[states["open"], "key"])
    return AlertState(
        rules=rules,
        rule_problems=problems,
        states=states,
        deliveries=store.deliveries(key),
        pending=store.pending_deliveries(key),
        not_yet_checked=[a for a in holding if a.key not in open_keys],
        holding=list(holding),
        checked_at=store.alerts_checked_at(key),
    )


def open_alerts(view) -> pd.DataFrame:
    """The open alerts under the view's snapshot key, for the Overview's attention list."""
    return view.store.alert_states(view.config_key, open_only=True)
