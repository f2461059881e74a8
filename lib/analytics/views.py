"""What the pages show, computed without Streamlit.

Pages only draw what these functions return, so every figure on screen can
be pinned by a unit test: filters, data freshness, KPI tiles, the attention
list, the per-page tables and their CSV exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from lib.analytics.labels import (  # noqa: F401  (the words: re-exported for the pages, D.headers(...))
    FLAG_DISPLAY,
    LEFT_OUT_REASONS,
    NOT_REPORTED,
    NOTHING_NEEDS_ATTENTION,
    OUTCOME_LABELS,
    PRICE_SOURCE_LABELS,
    amount_words,
    fmt_pct,
    fmt_seats,
    headers,
    humanize_age,
    spend_words,
)
from lib.analytics.metrics import MetricOptions
from lib.analytics.rules import FLAG_SEVERITY, needs_price, paid_mask
from lib.analytics.spend_gaps import (  # noqa: F401  (re-exported: D.spend_gaps(...))
    SpendGaps,
    savings_empty_text,
    spend_chart_empty_text,
    spend_chart_rows,
    spend_gaps,
)
from lib.analytics.totals import Summary
from lib.integrations import SEAT_FIELDS, unreported_license_fields
from lib.schema import FAILED_OUTCOMES

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


def account_names(accounts: pd.DataFrame) -> dict[str, str]:
    """Account id -> "GitHub · acme-corp · 1a2b3c4d" for pickers and tables."""
    out = {}
    for row in accounts.itertuples(index=False):
        tenant = row.tenant_id if isinstance(row.tenant_id, str) else "no tenant"
        out[row.account_id] = f"{row.integration_label} · {tenant} · {str(row.account_id)[:8]}"
    return out


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
    "Price from" in words."""
    src = df["price_source"].astype("string")
    rows = df.loc[
        src.isin(["price_book", "vendor"]).fillna(False).to_numpy(dtype=bool), SPEND_COLUMNS
    ]
    return rows.assign(
        price_source=rows["price_source"].astype("string").map(PRICE_SOURCE_LABELS).astype("string")
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
            f"{'paid' if summary.paid_only else 'all'} licenses",
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


# ------------------------------------------------------------------ attention list


@dataclass
class Attention:
    kind: str
    text: str
    page: str  # a page key of ui.PAGE_FILES
    count: int


def attention(
    df: pd.DataFrame,
    accounts: pd.DataFrame,
    problems: pd.DataFrame,
    summary: Summary,
    options: MetricOptions,
    names: dict[str, str] | None = None,
    limit: int = 3,
    open_alerts: pd.DataFrame | None = None,
) -> list[Attention]:
    """What needs a person's attention, most urgent first, each pointing at the page that shows it.

    ``open_alerts``: the open alerts (``Store.alert_states(key, open_only=True)``: severity, title),
    listed first, critical ones named first.

    Free licenses (flag ``free``) cost nothing: they are never under-used or over-allocated here.
    Licenses without seat counts are an item of their own: "nothing needs attention" must not hide them.
    """
    names = names or account_names(accounts)
    items: list[Attention] = []

    def sample(rows: pd.DataFrame) -> str:
        labels = [
            f"{_name(r.license_name, r.license_id)} ({r.integration_label})"
            for r in rows.head(limit).itertuples()
        ]
        more = len(rows) - limit
        return ", ".join(labels) + (f" and {more} more" if more > 0 else "")

    if open_alerts is not None and len(open_alerts):
        rank = open_alerts["severity"].map({"critical": 0, "warning": 1}).fillna(2)
        ranked = open_alerts.assign(_rank=rank).sort_values("_rank", kind="stable")
        critical = int((open_alerts["severity"] == "critical").sum())
        more = len(ranked) - limit
        titles = "; ".join(str(t) for t in ranked["title"].head(limit)) + (
            f" and {more} more" if more > 0 else ""
        )
        items.append(
            Attention(
                "open_alerts",
                f"{len(open_alerts)} alert(s) open"
                + (f", {critical} critical" if critical else "")
                + f" — {titles}.",
                "alerts",
                len(open_alerts),
            )
        )
    failed = accounts[accounts["outcome"].isin(FAILED_OUTCOMES)]
    if len(failed):
        who = ", ".join(
            f"{names.get(a, a)}: {OUTCOME_LABELS.get(o, o).lower()}"
            for a, o in zip(failed["account_id"].head(limit), failed["outcome"].head(limit))
        )
        items.append(
            Attention(
                "failed_accounts",
                f"{len(failed)} account(s) could not be fetched — {who}.",
                "accounts",
                len(failed),
            )
        )
    over = df[df["flag"] == "over_allocated"].sort_values("over_allocated_seats", ascending=False)
    if len(over):
        items.append(
            Attention(
                "over_allocated",
                f"{len(over)} license(s) have more seats assigned than bought — "
                f"{sample(over)}. Buy seats or reclaim them before the vendor's true-up.",
                "utilization",
                len(over),
            )
        )
    under = df[(df["flag"] == "under_used")].sort_values(
        "idle_annual_cost_reporting", ascending=False, na_position="last"
    )
    if len(under):
        items.append(
            Attention(
                "under_used",
                f"{len(under)} license(s) have fewer than "
                f"{options.under_used_pct:g}% of their seats assigned — {sample(under)}.",
                "utilization",
                len(under),
            )
        )
    silent = df[df["flag"] == "not_reported"]
    if len(silent):
        spend = (
            "their spend is unknown"
            if silent["annual_cost"].isna().all()
            else "part of their spend is unknown"
        )
        items.append(
            Attention(
                "not_reported",
                f"{len(silent)} license(s) report no seat counts through Truto — "
                f"{sample(silent)}. Their utilization, idle seats and savings cannot be computed and "
                f"{spend}; they are not 0. The Accounts page lists which fields each integration "
                "does not report.",
                "accounts",
                len(silent),
            )
        )
    unpriced = df[needs_price(df)]
    if len(unpriced):
        items.append(
            Attention(
                "unpriced",
                f"{len(unpriced)} paid license(s) have no price, so their spend is "
                f"unknown — {sample(unpriced)}. Add them to the price book.",
                "price_book",
                len(unpriced),
            )
        )
    if summary.excluded_by_currency:
        cur = ", ".join(summary.excluded_by_currency)
        items.append(
            Attention(
                "no_rate",
                f"Spend in {cur} is left out of the {summary.reporting_currency} totals: "
                f"add an exchange rate for it.",
                "price_book",
                len(summary.excluded_by_currency),
            )
        )
    if len(problems):
        items.append(
            Attention(
                "data_problems",
                f"{len(problems)} license record(s) arrived malformed and are "
                "shown as not reported where they were unreadable.",
                "accounts",
                len(problems),
            )
        )
    return items


def _name(name, license_id) -> str:
    """A license's name for a sentence: the name, else its id (a vendor may not report names)."""
    for value in (name, license_id):
        if isinstance(value, str) and value:
            return value
    return "(unnamed license)"


# ------------------------------------------------------------------ page tables

# Most important first: name, the bar, the flag, the money, what to do; IDs and machine names last.
UTILIZATION_COLUMNS = [
    "license_name",
    "integration_label",
    "utilization_pct",
    "flag",
    "idle_annual_cost_reporting",
    "recommended_seats",
    "assigned_seats",
    "total_seats",
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
    "price_source",
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

ACCOUNT_VIEW_COLUMNS = [
    "account_id",
    "integration_label",
    "outcome",
    "message",
    "action",
    "fetched_at",
    "last_attempt_at",
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


def utilization_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per license, worst first: over-allocated, then lowest utilization; not reported last."""
    order = {flag: i for i, flag in enumerate(FLAG_SEVERITY)}
    out = df[UTILIZATION_COLUMNS].copy()
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


def unpriced_paid(df: pd.DataFrame) -> pd.DataFrame:
    """Paid (or paid-status-unknown) licenses without a price, one per integration + license name."""
    rows = df[needs_price(df)]
    grouped = (
        rows.groupby(
            ["integration", "integration_label", "license_name"], dropna=False, observed=True
        )
        .agg(
            license_id=("license_id", "first"),
            total_seats=("total_seats", lambda s: s.sum(min_count=1)),  # none reported: not 0
            accounts=("account_id", "nunique"),
        )
        .reset_index()
    )
    return grouped.sort_values(
        ["integration_label", "license_name"], na_position="last"
    ).reset_index(drop=True)


def price_book_rows_for(
    unpriced: pd.DataFrame, currency: str, period: str = "annual"
) -> pd.DataFrame:
    """Price-book rows to fill in for unpriced licenses (price left empty for the user)."""
    return pd.DataFrame(
        {
            "integration": unpriced["integration_label"].astype("string"),
            "license_id": pd.array([pd.NA] * len(unpriced), dtype="string"),
            "license_name": unpriced["license_name"].astype("string"),
            "unit_price": pd.array([pd.NA] * len(unpriced), dtype="Float64"),
            "currency": pd.array([currency] * len(unpriced), dtype="string"),
            "billing_period": pd.array([period] * len(unpriced), dtype="string"),
        }
    )


def not_converted(df: pd.DataFrame) -> pd.DataFrame:
    """Spend per currency that has no exchange rate (kept in its own currency)."""
    rows = df[df["annual_cost"].notna() & df["annual_cost_reporting"].isna()]
    if rows.empty:
        return pd.DataFrame(
            {
                "currency": pd.Series(dtype="string"),
                "licenses": pd.Series(dtype="Int64"),
                "annual_cost": pd.Series(dtype="Float64"),
                "idle_annual_cost": pd.Series(dtype="Float64"),
            }
        )
    return (
        rows.groupby("currency", observed=True)
        .agg(
            licenses=("license_name", "size"),
            annual_cost=("annual_cost", lambda s: s.sum(min_count=1)),
            idle_annual_cost=("idle_annual_cost", lambda s: s.sum(min_count=1)),
        )
        .reset_index()
    )


def savings_by_license(df: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    rows = df[df["potential_annual_savings_reporting"].fillna(0) > 0]
    cols = [
        "license_name",
        "integration_label",
        "potential_annual_savings_reporting",
        "total_seats",
        "recommended_seats",
        "assigned_seats",
        "account_id",
        "organization_name",
        "reporting_currency",
    ]
    return (
        rows.sort_values("potential_annual_savings_reporting", ascending=False)[cols]
        .head(n)
        .reset_index(drop=True)
    )


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def md_escape(text: object) -> str:
    """Vendor text made inert for st.markdown: no links, images, emphasis or HTML from it."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text))


def fx_table(
    rates: dict[str, float], reporting_currency: str, saved: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Exchange rates as an editable table, without the reporting currency's own rate of 1.

    With ``saved`` (``Store.fx_rates_saved()``): when (UTC) and by whom each rate was saved, empty when not known.
    """
    items = sorted((c, r) for c, r in rates.items() if c != reporting_currency)
    out = pd.DataFrame(
        {
            "currency": pd.array([c for c, _ in items], dtype="string"),
            "rate": pd.array([r for _, r in items], dtype="Float64"),
        }
    )
    if saved is not None:
        by = saved.drop_duplicates("currency").set_index("currency")
        out["saved_at"] = out["currency"].map(by["saved_at"]).astype("datetime64[us, UTC]")
        out["saved_by"] = out["currency"].map(by["saved_by"]).astype("string")
    return out


def price_book_with_ids(book: pd.DataFrame, licenses: pd.DataFrame) -> pd.DataFrame:
    """The price book with an empty license ID filled from the licenses the dashboard knows.

    Only where the row's integration and name (ignoring case) name licenses with exactly one ID: the row then
    prices the same licenses by ID as by name. Other rows keep an empty ID.
    """
    from lib.integrations import integration_key

    out = book.copy()
    if out.empty or licenses.empty:
        return out
    known = licenses[licenses["license_name"].notna()]
    # a name whose licenses all carry one ID (a license without an ID would no longer be priced by an ID row)
    ids = (
        known.assign(
            _k=known["integration"].astype(str).map(integration_key),
            _n=known["license_name"].astype(str).str.strip().str.casefold(),
        )
        .groupby(["_k", "_n"])["license_id"]
        .agg(lambda s: s.iloc[0] if s.notna().all() and s.nunique() == 1 else pd.NA)
    )
    ids = ids[ids.notna()].to_dict()
    empty = out["license_id"].isna() & out["license_name"].notna()
    keys = zip(
        out["integration"].astype(str).map(integration_key),
        out["license_name"].astype(str).str.strip().str.casefold(),
    )
    found = pd.array([ids.get(k, pd.NA) for k in keys], dtype="string")
    out["license_id"] = out["license_id"].astype("string").where(~empty, found)
    return out


def _audit_detail(text) -> dict:
    import json

    try:
        detail = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return detail if isinstance(detail, dict) else {}


def price_book_changes(book: pd.DataFrame, audit: pd.DataFrame) -> pd.DataFrame:
    """The price book with each row's last change: ``changed_at`` (UTC) and ``changed_by``, empty when the
    audit log does not name the row (a save before rows were named in it)."""
    from lib.schema import price_row_label

    last: dict[str, tuple] = {}
    for at, who, what in zip(audit["at"], _who(audit), audit["detail"]):
        for label in _audit_detail(what).get("changed", []):
            last.setdefault(label, (at, who))  # newest first: the first mention is the last change
    labels = [
        price_row_label(*r)
        for r in zip(book["integration"], book["license_id"], book["license_name"])
    ]
    out = book.copy()
    out["changed_at"] = pd.Series(
        [last.get(k, (pd.NaT, None))[0] for k in labels],
        index=book.index,
        dtype="datetime64[us, UTC]",
    )
    out["changed_by"] = pd.array([last.get(k, (None, None))[1] for k in labels], dtype="string")
    return out


def _who(audit: pd.DataFrame) -> list[str]:
    return [
        "open access (no sign-in)"
        if role == "open"
        else (email if isinstance(email, str) else name if isinstance(name, str) else "unknown")
        for email, name, role in zip(audit["actor_email"], audit["actor_name"], audit["actor_role"])
    ]


_ACTIONS = {"price_book": "Prices", "fx_rates": "Exchange rates", "settings": "Settings"}


def _fmt_num(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def change_history(audit: pd.DataFrame) -> pd.DataFrame:
    """The audit log as a table: at (UTC), who, what changed, newest first."""
    whats = []
    for action, text in zip(audit["action"], audit["detail"]):
        d = _audit_detail(text)
        if action == "price_book":
            what = f"Prices: {d.get('entries_before', '?')} → {d.get('entries_after', '?')} rows"
            if d.get("changed"):
                shown = d["changed"][:5]
                what += (
                    "; changed "
                    + ", ".join(shown)
                    + (f" and {len(d['changed']) - 5} more" if len(d["changed"]) > 5 else "")
                )
        elif action == "fx_rates":
            own = d.get("reporting_currency")  # its own rate of 1 is not a change anyone made
            before = {c: r for c, r in (d.get("before") or {}).items() if c != own}
            after = {c: r for c, r in (d.get("after") or {}).items() if c != own}
            moved = [
                f"{c} {_fmt_num(before[c])} → {_fmt_num(after[c])}"
                if c in before
                else f"{c} {_fmt_num(after[c])} (new)"
                for c in sorted(after)
                if before.get(c) != after[c]
            ]
            moved += [f"{c} removed" for c in sorted(set(before) - set(after))]
            what = f"Exchange rates to {d.get('reporting_currency', '?')}: " + (
                ", ".join(moved) or "saved unchanged"
            )
        elif action == "settings":
            what = "Settings: " + ", ".join(
                f"{k} {_fmt_num(v.get('from'))} → {_fmt_num(v.get('to'))}"
                for k, v in sorted(d.items())
                if isinstance(v, dict)
            )
        else:
            what = str(action)
        whats.append(what)
    return pd.DataFrame(
        {
            "at": audit["at"].astype("datetime64[us, UTC]"),
            "who": pd.array(_who(audit), dtype="string"),
            "what": pd.array(whats, dtype="string"),
        }
    )
