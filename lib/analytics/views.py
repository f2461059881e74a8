"""What the pages show, computed without Streamlit.

Pages only draw what these functions return, so every figure on screen can
be pinned by a unit test: filters, data freshness, KPI tiles, the attention
list, the per-page tables and their CSV exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lib.analytics.attention import Attention, attention  # noqa: F401  (re-exported: D.attention(...))
from lib.analytics.labels import (  # noqa: F401  (the words: re-exported for the pages, D.headers(...))
    FLAG_DISPLAY,
    LEFT_OUT_REASONS,
    NOT_REPORTED,
    NOTHING_NEEDS_ATTENTION,
    OUTCOME_LABELS,
    PRICE_SOURCE_LABELS,
    account_label,
    account_names,
    amount_words,
    fmt_pct,
    fmt_seats,
    headers,
    humanize_age,
    name_accounts,
    spend_words,
)
from lib.analytics.price_book_views import (  # noqa: F401  (re-exported for the pages: D.fx_table(...))
    PRICE_EDITOR_HEADERS,
    SETTING_LABELS,
    currencies_without_rate,
    fx_change_words,
    fx_table,
    not_converted,
    price_book_change_words,
    price_book_changes,
    price_book_rows_for,
    price_book_with_ids,
    price_table,
    replace_preview,
    savings_by_license,
    setting_words,
    settings_change_words,
    table_problem_words,
    unpriced_paid,
)
from lib.analytics.price_book_views import change_history as _change_history
from lib.analytics.rules import FLAG_SEVERITY, paid_mask
from lib.analytics.spend_gaps import (  # noqa: F401  (re-exported: D.spend_gaps(...))
    SpendGaps,
    idle_spend_empty_text,
    savings_empty_text,
    spend_chart_empty_text,
    spend_chart_rows,
    spend_gaps,
)
from lib.analytics.totals import Summary
from lib.integrations import SEAT_FIELDS, unreported_license_fields
from lib.schema import FAILED_OUTCOMES
from lib.truto.users import RESOURCE as USERS_RESOURCE
from lib.truto.users import user_reference


def no_licenses_text(accounts: pd.DataFrame) -> str:
    """Why there is no license at all although accounts were fetched (not every one failed), true of
    ``accounts`` (their latest fetch outcomes)."""
    outcome = accounts["outcome"].astype("string")
    n = len(accounts)
    parts = [
        f"{k} {words}"
        for k, words in (
            (int(outcome.eq("ok").sum()), "listed none"),
            (
                int(outcome.eq("not_supported").sum()),
                "belong to integrations that do not offer licenses in Truto",
            ),
            (int(outcome.isin(list(FAILED_OUTCOMES)).sum()), "could not be fetched"),
        )
        if k
    ]
    return (
        f"No licenses yet: of the {n} integrated account(s), {'; '.join(parts)}. The Accounts page "
        "shows each account's result; connect an account whose integration lists licenses, then press "
        "**Refresh from Truto**."
    )


# ------------------------------------------------------------------ filters


@dataclass(frozen=True)
class Filters:
    tenants: tuple[str, ...] = ()
    integrations: tuple[str, ...] = ()  # display labels
    accounts: tuple[str, ...] = ()  # account ids
    paid_only: bool = False
    active_only: bool = False
    search: str = ""

    @property
    def active(self) -> bool:
        return bool(
            self.tenants
            or self.integrations
            or self.accounts
            or self.paid_only
            or self.active_only
            or self.search.strip()
        )

    def describe(self) -> str:
        """The filters in words, Markdown-safe: tenant, integration and search text come from vendors and URLs."""
        parts = []
        if self.tenants:
            parts.append("tenant " + ", ".join(self.tenants))
        if self.integrations:
            parts.append("integration " + ", ".join(self.integrations))
        if self.accounts:
            parts.append(f"{len(self.accounts)} account(s)")
        if self.paid_only:
            parts.append("paid licenses only")
        if self.active_only:
            parts.append("active licenses only")
        if self.search.strip():
            parts.append(f"name contains “{self.search.strip()}”")
        return md_escape("; ".join(parts)) if parts else "no filters"


def filter_choices(accounts: pd.DataFrame) -> dict[str, list[str]]:
    """Options for the sidebar filters, from the accounts table (so failed accounts can be picked too)."""
    return {
        "tenants": sorted({t for t in accounts["tenant_id"].dropna()}),
        "integrations": sorted({t for t in accounts["integration_label"].dropna()}),
        "accounts": list(accounts["account_id"]),
    }


def _scope_mask(df: pd.DataFrame, filters: Filters) -> np.ndarray:
    mask = np.ones(len(df), dtype=bool)
    if filters.tenants:
        mask &= df["tenant_id"].isin(filters.tenants).fillna(False).to_numpy(dtype=bool)
    if filters.integrations:
        mask &= (
            df["integration_label"].isin(filters.integrations).fillna(False).to_numpy(dtype=bool)
        )
    if filters.accounts:
        mask &= df["account_id"].isin(filters.accounts).fillna(False).to_numpy(dtype=bool)
    return mask


def apply_filters(df: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """License rows (with metrics) that the filters keep.

    Paid only: the vendor says paid, or it does not say and the license has a
    price above 0. Active only: hides licenses the vendor marks inactive (a
    license whose status is not reported stays). Search: case-insensitive, in
    the license, integration and organization names and the license id.
    """
    if not filters.active or df.empty:
        return df
    mask = _scope_mask(df, filters)
    if filters.paid_only:
        mask &= paid_mask(df)
    if filters.active_only:
        mask &= ~(df["status"].str.lower() == "inactive").fillna(False).to_numpy(dtype=bool)
    text = filters.search.strip().lower()
    if text:
        hit = np.zeros(len(df), dtype=bool)
        for col in ("license_name", "integration_label", "organization_name", "license_id"):
            hit |= (
                df[col]
                .str.lower()
                .str.contains(text, regex=False)
                .fillna(False)
                .to_numpy(dtype=bool)
            )
        mask &= hit
    return df.loc[mask]


def filter_accounts(accounts: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    return accounts.loc[_scope_mask(accounts, filters)]


# ------------------------------------------------------------------ freshness


@dataclass
class Freshness:
    headline: str  # "fetched 12 minutes ago"
    per_account: list[tuple[str, str]]  # (account name, "fetched 2 hours ago") when they differ
    stale: list[str] = field(default_factory=list)


def freshness(
    accounts: pd.DataFrame, now: datetime | None = None, names: dict[str, str] | None = None
) -> Freshness:
    now = now or datetime.now(UTC)
    times = accounts.dropna(subset=["fetched_at"])
    if times.empty:
        return Freshness("not fetched yet", [])
    names = names or account_names(accounts)
    ages = {
        row.account_id: (now - row.fetched_at.to_pydatetime()).total_seconds()
        for row in times.itertuples(index=False)
    }
    newest, oldest = min(ages.values()), max(ages.values())
    if humanize_age(newest) == humanize_age(oldest):
        headline, per = f"fetched {humanize_age(newest)}", []
    else:
        headline = f"fetched {humanize_age(oldest)} to {humanize_age(newest)}"
        per = [
            (names.get(a, a), f"fetched {humanize_age(age)}")
            for a, age in sorted(ages.items(), key=lambda kv: -kv[1])
        ]
    stale = []
    if "stale" in accounts.columns:
        stale = [
            names.get(a, a) for a, s in zip(accounts["account_id"], accounts["stale"]) if s is True
        ]
    return Freshness(headline, per, stale)


def priced_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The Spend page's "All priced rows": rows with a price from the price book or the vendor, with
    "Price from" in words (``price_source_label``; ``price_source`` keeps the machine name)."""
    src = df["price_source"].astype("string")
    cols = [c for c in SPEND_COLUMNS if c != "price_source_label"] + ["price_source"]
    rows = df.loc[src.isin(["price_book", "vendor"]).fillna(False).to_numpy(dtype=bool), cols]
    words = rows["price_source"].astype("string").map(PRICE_SOURCE_LABELS).astype("string")
    return rows.assign(price_source_label=words)[[*SPEND_COLUMNS, "price_source"]]


def change_history(audit: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """The audit log as a table (:func:`lib.analytics.price_book_views.change_history`), each account
    in it named as the dashboard names it (``names``: :func:`account_names`), never by its whole
    UUID (the audit log keeps the ID)."""
    out = _change_history(audit)
    return out.assign(
        what=pd.array([name_accounts(str(w), names) for w in out["what"]], dtype="string")
    )


# ------------------------------------------------------------------ KPI tiles


def tile_value(text: str) -> str:
    """A figure short enough for a tile: "at least USD 1,234" reads "≥ USD 1,234" (the note and help say
    "at least" in words)."""
    return "≥ " + text[len("at least ") :] if text.startswith("at least ") else text


def tile_note(value_text: str, note: str | None) -> str | None:
    if not value_text.startswith("at least "):
        return note
    return "at least" + (f": {note}" if note else "")


@dataclass
class Tile:
    label: str
    value: str
    help: str
    note: str | None = None  # shown under the value, e.g. what the figure leaves out


# Which license counts as paid on the tiles: the one rule (lib.analytics.rules.paid_rule), in words.
PAID_WORDS = (
    "A license is paid when the vendor marks it paid, or when the vendor does not say and its price "
    "is above 0"
)


def kpi_tiles(summary: Summary, gaps: SpendGaps | None = None) -> list[Tile]:
    """The Overview's tiles over ``summary``'s rows (the paid licenses by default, see ``Summary.paid_only``).

    Seats bought, seats assigned and utilization are over the same rows (those reporting both counts), so
    assigned ÷ bought on the tiles gives the utilization shown; what is left out is said in the note.
    """
    cur = summary.reporting_currency
    scope = "paid license rows" if summary.paid_only else "license rows (paid and free)"
    a, t = summary.utilization_assigned_seats, summary.utilization_total_seats
    left = summary.rows_without_seat_counts
    bought_extra = (summary.total_seats or 0) - (t or 0)
    assigned_extra = (summary.assigned_seats or 0) - (a or 0)
    base = (
        f"Over the {summary.utilization_rows:,} {scope} that report both seats assigned and seats "
        f"bought; {left:,} row(s) without both are left out"
    )
    if summary.paid_only:
        base += f". {PAID_WORDS}"
        if summary.not_known_licenses:
            base += (
                f"; {summary.not_known_licenses:,} license(s) whose vendor does not say and that "
                f"have no price are not known and counted apart ({fmt_seats(summary.not_known_seats)} "
                "seats bought): give each a price (0 for a free one) to count it"
            )
    scope_note = (
        "paid licenses (marked paid, or priced above 0)"
        + (
            f"; {summary.not_known_licenses:,} not known (counted apart)"
            if summary.not_known_licenses
            else ""
        )
        if summary.paid_only
        else "all licenses"
    )
    gaps = (
        gaps
        if gaps is not None
        else SpendGaps(0.0, pd.DataFrame({"reason": pd.Series(dtype="string")}), cur)
    )
    spend_value, spend_note, spend_help = spend_words(summary, gaps)
    money_note = (
        "; ".join(p for p in (spend_note or "").split("; ") if not p.endswith("at seats assigned"))
        or None
    )
    left_out = ""
    if summary.excluded_by_currency:
        left_out = (
            " Not included (no exchange rate): "
            + ", ".join(f"{c} {v:,.2f}" for c, v in summary.excluded_by_currency.items())
            + "."
        )
    return [
        Tile(
            "Seats bought",
            fmt_seats(t),
            f"Seats the vendors report as bought (Truto's available_quantity). {base}.",
            f"+{bought_extra:,} where seats assigned are not reported" if bought_extra else None,
        ),
        Tile(
            "Seats assigned",
            fmt_seats(a),
            f"Seats given to users, as the vendors report them. Allocation, not activity. {base}.",
            f"+{assigned_extra:,} where seats bought are not reported" if assigned_extra else None,
        ),
        Tile(
            "Seat utilization",
            fmt_pct(summary.utilization_pct),
            f"{fmt_seats(a)} seats assigned ÷ {fmt_seats(t)} seats bought = {fmt_pct(summary.utilization_pct)}. "
            f"{base}.",
            scope_note,
        ),
        Tile(
            "Over-allocated licenses",
            f"{summary.over_allocated_licenses:,}",
            "Paid licenses with more seats assigned than bought: a true-up risk at renewal.",
        ),
        money_tile(f"Annual spend ({cur})", spend_value, spend_help, spend_note),
        money_tile(
            f"Idle spend ({cur})",
            amount_words(summary.idle_annual_spend, cur, gaps),
            "The annual cost of seats bought but not assigned." + left_out,
            money_note,
        ),
        money_tile(
            f"Potential savings ({cur})",
            amount_words(summary.potential_annual_savings, cur, gaps),
            "What dropping to the recommended seat count (assigned + buffer) would save per year. Free "
            "licenses cost nothing and are never in it.",
            money_note,
        ),
    ]


def money_tile(label: str, value_text: str, help_text: str, note: str | None) -> Tile:
    """A money tile: "≥ …" with "at least" in the note when the amount is a lower bound."""
    return Tile(label, tile_value(value_text), help_text, tile_note(value_text, note))


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def md_escape(text: object) -> str:
    """Vendor text made inert for st.markdown: no links, images, emphasis or HTML from it."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))


# ------------------------------------------------------------------ page tables

# Most important first: name, the bar and the seats it is made of, the flag, the money, the seats to
# keep; IDs and machine names last. At 1440 px the first ~1,000 px of a table are in view: the seats
# assigned and bought sit beside the bar (tests/test_dashboard.py pins it).
UTILIZATION_COLUMNS = [
    "license_name",
    "integration_label",
    "utilization_pct",
    "assigned_seats",
    "total_seats",
    "flag",
    "idle_annual_cost_reporting",
    "recommended_seats",
    "unassigned_seats",
    "over_allocated_seats",
    "account_id",
    "organization_name",
    "tenant_id",
    "product",
    "license_id",
]

# Columns a person rarely needs to read a table: shown under "More columns" (the CSV always has them).
PLUMBING_COLUMNS = (
    "integration",
    "price_source",  # the machine name; the words are in price_source_label
    "source",  # a contract's, machine name; the words are in source_label
    "user_id",
    "product",
    "license_id",
    "organization_id",
    "account_uuid",
    "reporting_currency",
    "requests",
    "retries",
    "rate_limited",
    "elapsed_seconds",
    "account_status",
    "stale",
    "data_as_of",
    "stale_for",
)

SPEND_COLUMNS = [
    "license_name",
    "integration_label",
    "annual_cost_reporting",
    "idle_annual_cost_reporting",
    "potential_annual_savings_reporting",
    "price_source_label",
    "unit_price",
    "currency",
    "billing_period",
    "total_seats",
    "assigned_seats",
    "unassigned_seats",
    "recommended_seats",
    "true_up_exposure_reporting",
    "annual_cost",
    "idle_annual_cost",
    "account_id",
    "organization_name",
    "tenant_id",
    "reporting_currency",
]

# The account, its fetch result and what to do first ("What happened" is long: after it); the
# integration is in the account's name already.
ACCOUNT_VIEW_COLUMNS = [
    "account_id",
    "outcome",
    "action",
    "message",
    "fetched_at",
    "last_attempt_at",
    "integration_label",
    "tenant_id",
    "license_rows",
    "organizations",
    "problems",
    "fields_not_reported",
    "account_status",
    "requests",
    "retries",
    "rate_limited",
    "elapsed_seconds",
]


def utilization_table(df: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per license, worst first: over-allocated, then lowest utilization; not reported last.
    ``extra``: more of ``df``'s columns to keep (e.g. seat activity), after the usual ones."""
    order = {flag: i for i, flag in enumerate(FLAG_SEVERITY)}
    out = df[[*UTILIZATION_COLUMNS, *(c for c in extra if c in df.columns)]].copy()
    out["_o"] = out["flag"].astype("string").map(order).astype("Int64")
    out["_c"] = -out["idle_annual_cost_reporting"].astype("Float64")
    out = out.sort_values(
        ["_o", "_c", "utilization_pct", "integration_label", "license_name"],
        na_position="last",
        kind="stable",
    ).drop(columns="_c")
    return out.drop(columns="_o").reset_index(drop=True)


def fields_not_reported(integration: str | None) -> str:
    fields = unreported_license_fields(integration)
    if fields is None:
        return "unknown integration: fields not listed by Truto"
    if not fields:
        return "none"
    return ", ".join(SEAT_FIELDS[f] for f in fields)


def accounts_view(accounts: pd.DataFrame) -> pd.DataFrame:
    """One row per account, failed ones first. ``fetched_at`` is when the data shown was fetched (a failed
    account's last good fetch; empty if it never had one); ``last_attempt_at`` is the latest attempt."""
    out = accounts.copy()
    out["fields_not_reported"] = pd.array(
        [fields_not_reported(i) for i in out["integration"]], dtype="string"
    )
    out["last_attempt_at"] = out["fetched_at"]
    if "data_as_of" in out.columns:
        out["fetched_at"] = out["data_as_of"]
    for col in ACCOUNT_VIEW_COLUMNS:
        if col not in out.columns:
            out[col] = pd.NA
    extra = [c for c in ("stale",) if c in out.columns]
    failed = out["outcome"].isin(FAILED_OUTCOMES).fillna(False).to_numpy(dtype=bool)
    out = out.assign(_o=np.where(failed, 0, 1)).sort_values(
        ["_o", "integration_label"], kind="stable"
    )
    return out[ACCOUNT_VIEW_COLUMNS + extra].reset_index(drop=True)


def problems_view(problems: pd.DataFrame, show_people: bool) -> pd.DataFrame:
    """The malformed records as the Accounts page shows them (and its CSV).

    A problem of a user record names the user by :func:`lib.truto.users.user_reference` in its
    detail, and keeps the user's id (often an email: personal data) in ``record_id``. Those who may
    see people (admins; everyone in open mode) read the id in both; everyone else reads the
    reference in both."""
    out = problems.reset_index(drop=True).copy()
    users = (out["resource"] == USERS_RESOURCE).fillna(False) & out["record_id"].notna()
    rows = np.flatnonzero(users.to_numpy(dtype=bool))
    if not len(rows):
        return out
    ids = out["record_id"].iloc[rows].astype(str).tolist()
    refs = [user_reference(a, u) for a, u in zip(out["account_id"].iloc[rows].astype(str), ids)]
    details = out["detail"].iloc[rows].astype(str).tolist()
    if show_people:
        shown = [d.replace(f"user {r}", f"user {u}") for d, r, u in zip(details, refs, ids)]
    else:  # and a snapshot stored before details named the reference: its id replaced too
        shown = [d.replace(f"user {u}", f"user {r}") for d, r, u in zip(details, refs, ids)]
        out.loc[out.index[rows], "record_id"] = refs
    out.loc[out.index[rows], "detail"] = shown
    return out.astype(problems.dtypes.to_dict())
