"""Column contracts shared by the fetch layer, the analytics, the store and the pages."""

from __future__ import annotations

from typing import Any

# One row per license per organization/product per integrated account.
LICENSE_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "integration": "string",  # Truto's machine name, as sent in integration.name
    "integration_label": "string",  # display name ("GitHub", "Microsoft 365")
    "tenant_id": "string",
    "organization_id": "string",
    "organization_name": "string",
    "product": "string",  # Microsoft 365 product the listing was asked for
    "license_id": "string",
    "license_name": "string",
    "is_paid": "boolean",
    "status": "string",
    "assigned_seats": "Int64",
    "total_seats": "Int64",
    "unassigned_seats": "Int64",
    "utilization_pct": "Float64",
    "over_allocated_seats": "Int64",
    "vendor_unit_amount": "Float64",  # DocuSign only
    "vendor_currency": "string",  # DocuSign only
    "fetched_at": "datetime64[us, UTC]",
}

# One row per integrated account: what happened when it was fetched.
ACCOUNT_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "integration": "string",
    "integration_label": "string",
    "tenant_id": "string",
    "account_status": "string",  # Truto's status: active, needs_reauth, ...
    "outcome": "string",  # ok, failed, needs_reauth, inactive, not_supported
    "message": "string",  # what went wrong, in words
    "action": "string",  # what a person should do about it
    "organizations": "Int64",
    "license_rows": "Int64",
    "problems": "Int64",
    "requests": "Int64",
    "retries": "Int64",
    "rate_limited": "Int64",  # 429 answers received
    "wait_seconds": "Float64",
    "elapsed_seconds": "Float64",
    "fetched_at": "datetime64[us, UTC]",
}

# One row per record the validator could not take as it was.
PROBLEM_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "integration_label": "string",
    "resource": "string",
    "record_id": "string",
    "field": "string",
    "kind": "string",  # missing_id, duplicate_id, negative_quantity, ...
    "detail": "string",
}

# One row per seat assignment: (account, license, user), from the users listing (seat activity).
SEAT_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "integration": "string",
    "integration_label": "string",
    "tenant_id": "string",
    "organization_id": "string",  # the license's organization, as the user's licenses[] entry names it
    "license_id": "string",
    "license_name": "string",
    "license_known": "boolean",  # the licenses listing has this license id for the account
    "user_id": "string",
    "user_name": "string",  # personal data: shown only to those allowed
    "user_email": "string",  # personal data: shown only to those allowed
    "user_status": "string",  # active, inactive, deleted, invited, or the vendor's own word
    "user_type": "string",
    "user_created_at": "datetime64[us, UTC]",
    "user_last_login_at": "datetime64[us, UTC]",
    "user_last_active_at": "datetime64[us, UTC]",
    "license_last_active_at": "datetime64[us, UTC]",  # per-license last activity, when sent
    "activity_reported": "boolean",  # this account's users listing carries any activity time
    "fetched_at": "datetime64[us, UTC]",
}

# One row per integrated account: what happened when its users (seat activity) were listed.
ACTIVITY_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "activity": "string",  # ok, not_supported, failed, off (see ACTIVITY_OUTCOMES); empty: no licenses
    "activity_message": "string",
    "users": "Int64",
    "seat_rows": "Int64",
    "activity_problems": "Int64",
}
ACTIVITY_OUTCOMES = ("ok", "not_supported", "failed", "off")

OUTCOMES = ("ok", "failed", "needs_reauth", "inactive", "not_supported")
# Fetch outcomes that leave the account's data good (current) or failed (showing older data, or none).
GOOD_OUTCOMES = ("ok", "not_supported")
FAILED_OUTCOMES = ("failed", "needs_reauth", "inactive")

# The price book as the analytics and the store both hold it.
PRICE_BOOK_DTYPES: dict[str, str] = {
    "integration": "string",
    "license_id": "string",
    "license_name": "string",
    "unit_price": "Float64",
    "currency": "string",
    "billing_period": "string",
}
PRICE_BOOK_COLUMNS = list(PRICE_BOOK_DTYPES)


def price_row_label(integration, license_id, license_name) -> str:
    """How a price-book row is named in the audit log: integration · name (ID)."""
    name = license_name if isinstance(license_name, str) and license_name else "(no name)"
    return f"{integration} · {name}" + (
        f" ({license_id})" if isinstance(license_id, str) and license_id else ""
    )


# What a price-book row says, beside which license it names: the audit log records these old -> new.
PRICE_VALUE_COLUMNS = ("unit_price", "currency", "billing_period")


def _row_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def price_book_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """What a price-book save changes, row by row, for the audit log; empty lists when nothing does.

    ``old`` / ``new``: the rows (dicts of :data:`PRICE_BOOK_COLUMNS`). A row is named by
    :func:`price_row_label`. Rows are matched by that name; a row left over is matched to one of the same
    integration and name whose license ID differs (an ID filled in, changed or cleared). Returns:

    - ``changes``: one entry per row added, removed or changed: ``row`` (its name now, or when removed its
      old name), ``was`` (its old name, when the ID changed), ``from`` / ``to``: only the values that
      differ (``None`` for a row added / removed: then the other side holds all its values);
    - ``ids_filled``: rows whose only change is an empty license ID filled in (``from`` / ``to``: their
      old and new names): the row prices the same licenses, so it is not a change of price;
    - ``changed``: the names of the rows in ``changes`` (what each row's "last changed" reads).

    The order of the rows is not a change.
    """

    def label(r: dict[str, Any]) -> str:
        return price_row_label(r.get("integration"), r.get("license_id"), r.get("license_name"))

    def values(r: dict[str, Any]) -> dict[str, Any]:
        return {c: r.get(c) for c in PRICE_VALUE_COLUMNS}

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return float(a) == float(b)
        return a == b

    left = {label(r): r for r in old}
    pairs: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
    unmatched_new = []
    for r in new:
        o = left.pop(label(r), None)
        if o is None:
            unmatched_new.append(r)
        else:
            pairs.append((o, r))

    def name_key(r: dict[str, Any]) -> tuple:
        name = _row_text(r.get("license_name"))
        return (r.get("integration"), name.casefold() if name else None)

    for r in unmatched_new:
        match = next(
            (k for k, o in left.items() if name_key(o)[1] and name_key(o) == name_key(r)), None
        )
        pairs.append((None if match is None else left.pop(match), r))
    pairs += [(o, None) for o in left.values()]

    changes: list[dict[str, Any]] = []
    ids_filled: list[dict[str, str]] = []
    for was_row, now_row in pairs:
        if was_row is None or now_row is None:
            row = now_row if now_row is not None else was_row
            assert row is not None
            changes.append(
                {
                    "row": label(row),
                    "from": None if was_row is None else values(was_row),
                    "to": None if now_row is None else values(now_row),
                }
            )
            continue
        cols = [*PRICE_VALUE_COLUMNS, "license_name", "license_id"]
        differ = [c for c in cols if not same(was_row.get(c), now_row.get(c))]
        if not differ:
            continue
        if differ == ["license_id"] and _row_text(was_row.get("license_id")) is None:
            ids_filled.append({"from": label(was_row), "to": label(now_row)})
            continue
        entry: dict[str, Any] = {"row": label(now_row)}
        if label(was_row) != label(now_row):
            entry["was"] = label(was_row)
        entry["from"] = {c: was_row.get(c) for c in differ}
        entry["to"] = {c: now_row.get(c) for c in differ}
        changes.append(entry)
    changes.sort(key=lambda e: e["row"])
    ids_filled.sort(key=lambda e: e["to"])
    return {
        "changes": changes,
        "ids_filled": ids_filled,
        "changed": [e["row"] for e in changes],
    }


# Contracts (renewals) as the analytics and the store both hold them (lib.analytics.contracts checks them).
CONTRACT_DTYPES: dict[str, str] = {
    "integration": "string",
    "account_id": "string",
    "license_id": "string",
    "license_name": "string",
    "contract_start": "datetime64[s]",
    "contract_end": "datetime64[s]",
    "term": "string",
    "auto_renew": "boolean",
    "notice_days": "Int64",
    "committed_seats": "Int64",
    "true_up_date": "datetime64[s]",
    "contract_value": "Float64",
    "currency": "string",
    "source": "string",
}
CONTRACT_COLUMNS = list(CONTRACT_DTYPES)
CONTRACT_DATE_COLUMNS = ("contract_start", "contract_end", "true_up_date")


BILLING_PERIODS = ("monthly", "annual")

# ISO 4217 List One (currencies and funds) as published by the maintenance
# agency (SIX) for 1 January 2026. Shipped here so validation needs no network;
# update it when a new list is published.
ISO_4217_LIST_ONE = frozenset(
    """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD
BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK
DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF
IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD
SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD
TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAD XAF XAG XAU XBA
XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR ZMW ZWG
""".split()
)

# In the list, but not something a price can be in.
NOT_MONEY = {
    "XTS": "the ISO 4217 code reserved for testing",
    "XXX": "the ISO 4217 code for 'no currency'",
}

# The codes the dashboard accepts for prices and rates.
CURRENCY_CODES = frozenset(ISO_4217_LIST_ONE - set(NOT_MONEY))

DEFAULT_KEEP_DAYS = 730
# Bounds of the settings and flags typed by people (beyond them a value is a typing error): snapshot
# retention in days (``retention_days``, ``sync --keep-days``) and the right-sizing buffer as a fraction.
MAX_KEEP_DAYS = 36500
MAX_BUFFER = 10.0

# The dashboard's settings and their defaults: the one place (the store's settings and
# lib.analytics.metrics.MetricOptions both take them from here).
SETTINGS_DEFAULTS: dict[str, object] = {
    "reporting_currency": "USD",
    "buffer": 0.10,
    "under_used_pct": 70.0,
    "at_capacity_pct": 95.0,
    "vendor_price_period": "monthly",
    "retention_days": DEFAULT_KEEP_DAYS,
}

# Today's annual price per license, sent to the database for trends (lib.analytics.trends.trend_prices
# builds it, lib.store.trends reads it): one row per license key; ``annual_unit_price`` empty when the
# license has no price, ``rate`` (reporting-currency units per unit of the price's currency) empty when
# there is no exchange rate for it.
TREND_PRICE_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "license_id": "string",
    "organization_id": "string",
    "product": "string",
    "annual_unit_price": "Float64",
    "rate": "Float64",
}
# A license class: what prices a license row (lib.analytics.metrics.add_metrics looks only at these).
# The trend rollup (lib.store.rollup) prices each class once, through a TrendPricing (below).
TREND_CLASS_COLUMNS: dict[str, str] = {
    "integration": "string",
    "license_id": "string",
    "license_name": "string",
    "is_paid": "boolean",
    "vendor_unit_amount": "Float64",
    "vendor_currency": "string",
}
# What a TrendPricing's ``price`` returns for each class, in order: the annual price of one seat
# (empty: no price) and the rate into the reporting currency (empty: none).
TREND_CLASS_PRICE_COLUMNS: dict[str, str] = {"annual_unit_price": "Float64", "rate": "Float64"}
# What the database adds up per snapshot date and group (lib.store.trends.TrendMixin.trend_sums).
TREND_SUM_COLUMNS: dict[str, str] = {
    "day": "datetime64[us, UTC]",
    "assigned_seats": "Int64",  # empty when no row reports it
    "total_seats": "Int64",
    "assigned_both": "Int64",  # over the rows reporting both counts (0 when none)
    "total_both": "Int64",
    "cost_cents": "Int64",  # Σ each row's annual cost in cents, rounded per row; empty: one not known
    "licenses": "Int64",
}
