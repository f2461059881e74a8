"""Every user-facing word of the analytics: column headers, flag and source names, outcome names,
the money / percent / seat formatters, and the column names of CSV exports.

Rules live in :mod:`lib.analytics.rules`; this module only says them in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # types only: labels sit below the modules that compute
    from lib.analytics.spend_gaps import SpendGaps
    from lib.analytics.totals import Summary

NOT_REPORTED = "not reported"
NOTHING_NEEDS_ATTENTION = (
    "Nothing needs attention: no failed accounts, no over-allocated, under-used or unpriced "
    "paid licenses, and every license reports its seat counts."
)

MEASURE = (
    "allocation: seats assigned against seats bought, as the vendor reports them; not activity"
)

# Column headers for people in IT and finance.
LABELS: dict[str, str] = {
    "account_id": "Integrated account",
    "integration": "Integration (machine name)",
    "integration_label": "Integration",
    "tenant_id": "Tenant",
    "organization_id": "Organization ID",
    "organization_name": "Organization",
    "product": "Product",
    "license_id": "License ID",
    "license_name": "License",
    "is_paid": "Paid (as the vendor reports)",
    "status": "License status",
    "assigned_seats": "Seats assigned",
    "total_seats": "Seats bought",
    "unassigned_seats": "Seats bought, not assigned",
    "utilization_pct": "Seat utilization (assigned ÷ bought, %)",
    "over_allocated_seats": "Seats assigned beyond those bought",
    "vendor_unit_amount": "Vendor price per seat",
    "vendor_currency": "Vendor price currency",
    "fetched_at": "Fetched at (UTC)",
    "unit_price": "Price per seat per billing period",
    "currency": "Price currency",
    "billing_period": "Billing period",
    "price_source": "Price from (machine name)",
    "price_source_label": "Price from",
    "annual_unit_price": "Price per seat per year",
    "annual_cost": "Annual cost of seats bought (price currency)",
    "idle_annual_cost": "Annual cost of unassigned seats (price currency)",
    "true_up_exposure": "Annual true-up exposure: seats assigned beyond those bought (price currency)",
    "annual_cost_reporting": "Annual cost of seats bought (reporting currency)",
    "idle_annual_cost_reporting": "Annual cost of unassigned seats (reporting currency)",
    "true_up_exposure_reporting": "Annual true-up exposure (reporting currency)",
    "reporting_currency": "Reporting currency",
    "recommended_seats": "Recommended seats (assigned + buffer)",
    "potential_annual_savings": "Potential annual savings at recommended seats (price currency)",
    "potential_annual_savings_reporting": "Potential annual savings at recommended seats (reporting currency)",
    "flag": "Allocation flag",
    # Summary and group figures.
    "licenses": "License rows",
    "rows_without_seat_counts": "Rows without assigned or bought seat counts",
    "annual_spend": "Annual spend on seats bought",
    "used_annual_spend": "Annual spend on assigned seats",
    "idle_annual_spend": "Annual spend on unassigned seats",
    "unsplit_annual_spend": "Annual spend, assigned seats not reported",
    "potential_annual_savings_total": "Potential annual savings",
    "rows_without_spend": "Rows without a spend figure",
    "rows_not_converted": "Rows left out of totals: no exchange rate",
    "not_converted": "Left out of totals (no exchange rate)",
    "unpriced_licenses": "Licenses without a price",
    "unpriced_paid_licenses": "Paid licenses without a price",
    "over_allocated_licenses": "Licenses with more seats assigned than bought",
    "flag_over_allocated": "Over-allocated (assigned > bought)",
    "flag_under_used": "Under-used (few of the seats bought are assigned)",
    "flag_at_capacity": "At capacity (nearly all seats bought are assigned)",
    "flag_not_reported": "Seat counts not reported",
    "flag_not_known": "Paid or free not known (no price)",
    "flag_ok": "OK",
    "flag_free": "Free licenses (cost nothing: never flagged)",
    "utilization_assigned_seats": "Seats assigned (rows reporting both counts)",
    "utilization_total_seats": "Seats bought (rows reporting both counts)",
    "part": "Spend on",
    "amount": "Annual amount",
}

FLAG_LABELS = {
    "over_allocated": "Over-allocated (more seats assigned than bought)",
    "under_used": "Under-used (few of the seats bought are assigned)",
    "at_capacity": "At capacity (nearly all seats bought are assigned)",
    "not_reported": "Seat counts not reported by the vendor",
    "not_known": "Paid or free not known (the vendor does not say, no price): give it a price",
    "ok": "OK",
    "free": "Free (costs nothing: nothing to act on)",
}

ACTIVITY_CLASS_LABELS = {
    "departed": "Departed (user inactive or deleted, still holds the seat)",
    "invited": "Invited, never accepted",
    "active": "Active",
    "inactive": "Inactive (no activity within the threshold)",
    "never_active": "Never active",
    "not_reported": "Activity not reported",
}
ACTIVITY_OUTCOME_LABELS = {
    "ok": "Activity listed",
    "not_supported": "Activity not supported",
    "failed": "Activity could not be listed",
    "off": "Activity switched off",
}

PRICE_SOURCE_LABELS = {
    "price_book": "Price book",
    "vendor": "Vendor price",
    "free": "Free (vendor says not paid)",
    "unpriced": "No price",
}

SPEND_PART_LABELS = {
    "used": "Assigned seats",
    "idle": "Unassigned seats",
    "not_reported": "Assigned seats not reported",
}

OUTCOME_LABELS = {
    "ok": "OK",
    "failed": "Failed",
    "needs_reauth": "Needs reauthorisation",
    "inactive": "Not active",
    "not_supported": "Licenses not supported",
}

# How a flag reads in a table; over-allocation leads with a mark so it stands out in a scan.
FLAG_DISPLAY = {
    "over_allocated": "⚠ Over-allocated",
    "under_used": "▽ Under-used",
    "at_capacity": "▲ At capacity",
    "not_reported": "? Not reported",
    "not_known": "? Paid or free not known",
    "ok": "OK",
    "free": "Free (costs nothing)",
}

LEFT_OUT_REASONS = {
    "bought_not_reported": "seats bought not reported: counted at seats assigned (at least)",
    "no_seat_counts": "priced, but the vendor reports no seat counts: spend unknown",
    "no_price": "paid, no price in the price book: spend unknown",
    "no_rate": "no exchange rate: left out of the total",
}

# The measures drawn over time (Trends page).
TREND_MEASURES = {
    "utilization_pct": LABELS["utilization_pct"],
    "assigned_seats": LABELS["assigned_seats"],
    "total_seats": LABELS["total_seats"],
    "annual_cost_reporting": "Annual spend (reporting currency, at today's prices)",
    "active_seats": "Active seats (used within 90 days)",
    "reclaimable_seats": "Reclaimable seats (90 days)",
    "reclaimable_annual_cost_reporting": "Reclaimable annual cost (reporting currency, at today's prices)",
}

# Headers of the page tables' own columns (accounts, spend gaps).
EXTRA_HEADERS = {
    "fields_not_reported": "License fields this integration does not report",
    "outcome": "Fetch result",
    "account_status": "Truto account status",
    "message": "What happened",
    "action": "What to do",
    "license_rows": "License rows",
    "organizations": "Organizations",
    "problems": "Malformed records",
    "requests": "Requests",
    "retries": "Retries",
    "rate_limited": "429s received",
    "elapsed_seconds": "Fetch time (s)",
    "stale": "Showing older data",
    "data_as_of": "Data as of",
    "accounts": "Accounts",
    "reason": "Why it is not fully counted",
    "at_least": "At least (reporting currency)",
    "account_name": "Account",
    "last_attempt_at": "Last attempt (UTC)",
    "saved_at": "Rate saved (UTC)",
    "saved_by": "Saved by",
    "changed_at": "Last changed (UTC)",
    "changed_by": "Changed by",
    "at": "When (UTC)",
    # Seat activity and reclaim.
    "user_name": "User",
    "user_email": "Email",
    "user_id": "User ID",
    "user_status": "User status",
    "last_active_at": "Last active (UTC)",
    "days_inactive": "Days since last active",
    "reclaim_reason": "Why reclaimable",
    "reclaimable_seats": "Reclaimable seats",
    "inactive_reclaimable": "Inactive",
    "never_active_reclaimable": "Never active",
    "departed_reclaimable": "Departed",
    "invited_reclaimable": "Invited, never accepted",
    "reclaimable_annual_cost": "Reclaimable annual cost (price currency)",
    "reclaimable_annual_cost_reporting": "Reclaimable annual cost (reporting currency)",
    "users_assigned_seats": "Seats assigned (users listing)",
    "assigned_difference": "Users listing − seats assigned",
    "active_seats": "Active seats",
    "inactive_seats": "Inactive or never-active seats",
    "departed_seats": "Seats held by departed users",
    "invited_seats": "Seats of invitations not accepted",
    "activity_not_reported_seats": "Seats without activity data",
    "active_utilization_pct": "Active utilization (active ÷ bought, %)",
    "activity_outcome": "Seat activity",
    "users": "Users listed",
    "activity_seats": "Seat assignments",
    "activity_problems": "Malformed user records",
    "activity_message": "Seat activity: what happened",
    "seats_with_activity": "Seats with activity data",
    "activity_share_pct": "Share with activity data (%)",
    "kind": "Exempt",
    "value": "User or license",
    "set_at": "Set at (UTC)",
    "set_by": "Set by",
    "exemption_reason": "Reason",
    "recommended_seats_by_activity": "Recommended seats by activity (active + buffer)",
    "potential_annual_savings_by_activity": "Potential annual savings at seats recommended by activity (price currency)",
    "potential_annual_savings_by_activity_reporting": "Potential annual savings at seats recommended by activity (reporting currency)",
    "who": "Who",
    "what": "What changed",
}


def headers(columns: Iterable[str], currency: str | None = None) -> dict[str, str]:
    """Column -> header for display; CSV exports use :func:`export_frame`'s names.

    With ``currency``, "(reporting currency)" in a header reads as its code, e.g. "(USD)".
    """
    out = {c: EXTRA_HEADERS.get(c, LABELS.get(c, c)) for c in columns}
    if currency:
        out = {c: in_currency(h, currency) for c, h in out.items()}
    return out


def in_currency(label: str, currency: str | None) -> str:
    """A label's "(reporting currency" read as the currency's code: "Annual spend (USD, at today's prices)"."""
    return label.replace("(reporting currency", f"({currency}") if currency else label


# ------------------------------------------------------------------ formatting


def fmt_seats(value) -> str:
    return NOT_REPORTED if value is None or pd.isna(value) else f"{int(value):,}"


def fmt_pct(value) -> str:
    return NOT_REPORTED if value is None or pd.isna(value) else f"{float(value):.1f}%"


def fmt_money(value, currency: str, empty: str = NOT_REPORTED) -> str:
    if value is None or pd.isna(value):
        return empty
    return (
        f"{currency} {float(value):,.0f}"
        if abs(float(value)) >= 1000
        else f"{currency} {float(value):,.2f}"
    )


def humanize_age(seconds: float) -> str:
    if seconds < 0:
        seconds = 0
    if seconds < 60:
        return "just now"
    minutes = seconds / 60
    if minutes < 60:
        n = int(minutes)
        return f"{n} minute{'s' if n != 1 else ''} ago"
    hours = minutes / 60
    if hours < 48:
        n = int(hours)
        return f"{n} hour{'s' if n != 1 else ''} ago"
    n = int(hours / 24)
    return f"{n} days ago"


def amount_words(value, currency: str, gaps: SpendGaps) -> str:
    """An idle-spend, savings or true-up total in words: "not known" when nothing is, or when it is 0 while
    rows are left out (0 would claim what is not known); "at least …" while rows are left out."""
    if value is None or pd.isna(value) or (not gaps.complete and float(value) == 0):
        return "not known"
    return ("at least " if not gaps.complete else "") + fmt_money(value, currency)


def spend_words(summary: Summary, gaps: SpendGaps) -> tuple[str, str | None, str]:
    """The annual spend figure in words: (value, short note, why).

    The total counts the rows with a spend figure plus ``gaps.floor``; when
    anything is left out it reads "at least …", and when nothing at all could
    be counted it reads "not known" (never 0 for an unknown amount).
    """
    cur = summary.reporting_currency
    known = summary.annual_spend
    total = (
        None
        if known is None and not gaps.count("bought_not_reported")
        else (known or 0.0) + gaps.floor
    )
    parts, why = [], []
    n = gaps.count("bought_not_reported")
    if n:
        parts.append(f"{n} at seats assigned")
        why.append(
            f"{n} license(s) report seats assigned but not seats bought: counted at seats assigned × price "
            f"({fmt_money(gaps.floor, cur)}), since at least those seats are paid for"
        )
    n = gaps.count("no_seat_counts")
    if n:
        parts.append(f"{n} without seat counts")
        why.append(
            f"{n} priced license(s) report no seat counts, so their spend is unknown and left out"
        )
    n = gaps.count("no_price")
    if n:
        parts.append(f"{n} paid without a price")
        why.append(f"{n} paid license(s) have no price yet")
    if summary.excluded_by_currency:
        parts.append("excl. " + ", ".join(summary.excluded_by_currency))
        why.append(
            "no exchange rate for "
            + ", ".join(f"{c} {v:,.2f}" for c, v in summary.excluded_by_currency.items())
        )
    incomplete = bool(parts)
    if total is None or (incomplete and total == 0 and not gaps.count("bought_not_reported")):
        value = "not known"
    else:
        value = ("at least " if incomplete else "") + fmt_money(total, cur)
    note = "; ".join(parts) or None
    explain = "Price per seat per year × seats bought, converted to the reporting currency."
    if why:
        explain += " Left out or estimated: " + "; ".join(why) + ". The Spend page lists them."
    return value, note, explain


# ------------------------------------------------------------------ export column names

# What every CSV and ``--json`` holds is documented, column by column, in docs/export.md; a test
# (tests/test_export_doc.py) holds each producer to it. A column's name never depends on a
# setting: amounts in the reporting currency end in ``_reporting`` and the file says which
# currency in ``reporting_currency``. A renamed column is still written under its old name, as a
# copy, for one release (DEPRECATED_UNTIL says which release drops it).
DEPRECATED_UNTIL = "0.5.0"

# Exported CSV columns as finance people say them (the internal names stay as they are).
# Seats: seats_bought / seats_assigned; one word for idle money: idle_annual_cost.
EXPORT_SEATS = {
    "total_seats": "seats_bought",
    "assigned_seats": "seats_assigned",
    "unassigned_seats": "seats_not_assigned",
    "over_allocated_seats": "seats_assigned_beyond_bought",
    "recommended_seats": "seats_recommended",
    "utilization_total_seats": "utilization_seats_bought",
    "utilization_assigned_seats": "utilization_seats_assigned",
}
# Amounts in the reporting currency: <name>_reporting (0.3.0 wrote <name>_<currency code>).
EXPORT_REPORTING_MONEY = {
    "annual_cost_reporting": "annual_cost",
    "idle_annual_cost_reporting": "idle_annual_cost",
    "true_up_exposure_reporting": "true_up_exposure",
    "potential_annual_savings_reporting": "potential_annual_savings",
    "annual_spend": "annual_cost",
    "used_annual_spend": "used_annual_cost",
    "idle_annual_spend": "idle_annual_cost",
    "unsplit_annual_spend": "unsplit_annual_cost",
    "at_least": "at_least",
    "amount": "annual_cost",
    "reclaimable_annual_cost_reporting": "reclaimable_annual_cost",
    "potential_annual_savings_by_activity_reporting": "potential_annual_savings_by_activity",
}
# Amounts in each row's own price currency (the ``currency`` column beside them).
EXPORT_PRICE_CURRENCY_MONEY = (
    "annual_cost",
    "reclaimable_annual_cost",
    "potential_annual_savings_by_activity",
    "idle_annual_cost",
    "true_up_exposure",
    "potential_annual_savings",
)
# The names ``python -m lib export`` wrote before its columns took the names above: still written
# (deprecated copies) until DEPRECATED_UNTIL.
EXPORT_PRE_RENAME = (
    "assigned_seats",
    "total_seats",
    "unassigned_seats",
    "over_allocated_seats",
    "recommended_seats",
    "annual_cost",
    "idle_annual_cost",
    "true_up_exposure",
    "potential_annual_savings",
)
REPORTING_SUFFIX = "_reporting"


def export_columns(columns: Iterable[str]) -> dict[str, str]:
    """Internal column -> exported column name; the same whatever the reporting currency.

    An amount is in the reporting currency (``annual_cost_reporting``) unless the table has a
    ``currency`` column and the amount is one of the row's own-currency figures
    (``annual_cost_price_currency``).
    """
    columns = list(columns)
    own = "currency" in columns
    out = {}
    for c in columns:
        if c in EXPORT_SEATS:
            out[c] = EXPORT_SEATS[c]
        elif own and c in EXPORT_PRICE_CURRENCY_MONEY:
            out[c] = f"{c}_price_currency"
        elif c in EXPORT_REPORTING_MONEY:
            out[c] = EXPORT_REPORTING_MONEY[c] + REPORTING_SUFFIX
        elif c in (
            "potential_annual_savings",
            "true_up_exposure",
        ):  # group totals: reporting currency
            out[c] = c + REPORTING_SUFFIX
        else:
            out[c] = c
    return out


def deprecated_currency_name(name: str, currency: str) -> str:
    """0.3.0's name of a reporting-currency amount: ``annual_cost_reporting`` -> ``annual_cost_usd``."""
    return name.removesuffix(REPORTING_SUFFIX) + "_" + currency.strip().lower()


def export_frame(df: pd.DataFrame, currency: str, pre_rename: Iterable[str] = ()) -> pd.DataFrame:
    """``df`` with its columns named for a CSV export (:func:`export_columns`); the values are unchanged.

    A table with an amount in the reporting currency also says which (``reporting_currency``). After
    the columns come the deprecated copies (docs/export.md), kept until :data:`DEPRECATED_UNTIL`: each
    reporting amount under 0.3.0's currency-suffixed name (``annual_cost_usd``), and each column named
    in ``pre_rename`` under that internal name (``assigned_seats``).
    """
    names = export_columns(df.columns)
    out = df.rename(columns=names)
    # The amounts 0.3.0 named with the currency's code: every one now ending in _reporting.
    reporting = [
        n
        for c, n in names.items()
        if n.endswith(REPORTING_SUFFIX) and (c != n or c in EXPORT_REPORTING_MONEY)
    ]
    if reporting and "reporting_currency" not in out.columns:
        out["reporting_currency"] = pd.Series(currency, index=out.index, dtype="string")
    old = set(pre_rename)
    copies = {c: out[n] for c, n in names.items() if c in old and c != n and c not in out.columns}
    copies.update({deprecated_currency_name(n, currency): out[n] for n in reporting})
    if copies:
        out = out.assign(**copies)
    return out


def account_name(integration_label: object, tenant_id: object, account_id: object) -> str:
    """How the dashboard names an account: "GitHub · acme-corp · 1a2b3c4d" (integration · tenant ·
    the start of the ID); the full ID stays in the CSVs and under "More columns"."""
    tenant = tenant_id if isinstance(tenant_id, str) else "no tenant"
    return f"{integration_label} · {tenant} · {str(account_id)[:8]}"


def account_names(accounts: pd.DataFrame) -> dict[str, str]:
    """Account id -> "GitHub · acme-corp · 1a2b3c4d" for pickers and tables."""
    out = {}
    for row in accounts.itertuples(index=False):
        out[row.account_id] = account_name(row.integration_label, row.tenant_id, row.account_id)
    return out


def account_label(
    account_id: object, names: Mapping[str, str] | None = None, integration: object = None
) -> str:
    """An account in a sentence (an alert, a calendar event, the change history): its name from
    ``names`` (:func:`account_names`), else the integration and the start of its ID, never the
    whole UUID."""
    key = str(account_id)
    if names and key in names:
        return names[key]
    short = key[:8]
    return f"{integration} · {short}" if isinstance(integration, str) and integration else short


_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)


def name_accounts(text: str, names: Mapping[str, str] | None = None) -> str:
    """``text`` with each account UUID in it read as :func:`account_label` (a stored audit entry names
    accounts by their whole ID)."""
    keys = sorted((k for k in names or () if k), key=len, reverse=True)  # known ids, UUID or not
    if keys:  # each as a whole word: a short id ("ar") is no part of "year"
        known = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(k) for k in keys) + r")(?![\w-])")
        text = known.sub(lambda m: account_label(m.group(0), names), text)
    return _UUID.sub(lambda m: account_label(m.group(0), names), text)
