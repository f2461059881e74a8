"""Renewals: the next renewal of each contract, opt-out deadlines, and what to do at renewal."""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from lib.analytics.contracts import (
    contract_key,
    validate_contracts,
)
from lib.analytics.metrics import match_price_book
from lib.analytics.rules import free_mask, paid_mask
from lib.integrations import integration_key, integration_label

# ------------------------------------------------------------------ renewals


def opt_out_deadline(contract_end: date | None, notice_days: int | None) -> date | None:
    """The last day to give notice: contract_end - notice_days (None when either is not known)."""
    if contract_end is None or notice_days is None or notice_days is pd.NA:
        return None
    return contract_end - timedelta(days=int(notice_days))


def _add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _period_months(term: str | None, start: date | None, end: date) -> int | None:
    """Months one renewal adds: 1 (monthly), 12 (annual), else the contract's own length."""
    if term in ("monthly", "annual"):
        return {"monthly": 1, "annual": 12}[term]
    if start is None:
        return None
    months = (
        (end.year - start.year) * 12 + end.month - start.month + (1 if end.day >= start.day else 0)
    )
    return months if months >= 1 else None


def next_renewal(
    contract_end: date,
    today: date,
    term: str | None,
    auto_renew: bool | None,
    contract_start: date | None = None,
) -> date | None:
    """The next renewal on or after ``today``: the end date, else (auto-renewing) the end rolled on
    by whole terms; None for a contract that has ended (or whose term is not known)."""
    if contract_end >= today:
        return contract_end
    if auto_renew is not True:
        return None
    months = _period_months(term, contract_start, contract_end)
    if not months:
        return None
    k = 1
    while True:
        renewal = _add_months(contract_end, months * k)
        if renewal >= today:
            return renewal
        k += 1


RENEWAL_COLUMNS = [
    "contract_key",
    "integration",
    "integration_label",
    "account_id",
    "license_id",
    "license_name",
    "organization_name",
    "term",
    "auto_renew",
    "renewal_date",
    "opt_out_deadline",
    "days_to_renewal",
    "days_to_opt_out",
    "notice_days",
    "total_seats",
    "assigned_seats",
    "recommended_seats",
    "seat_change",
    "committed_seats",
    "potential_annual_savings_reporting",
    "true_up_exposure_reporting",
    "true_up_date",
    "reporting_currency",
    "contract_value",
    "currency",
    "source",
    "what_to_do",
]
RENEWAL_LABELS = {
    "renewal_date": "Renews on",
    "opt_out_deadline": "Opt-out deadline (notice due)",
    "days_to_renewal": "Days to renewal",
    "days_to_opt_out": "Days to opt-out deadline",
    "notice_days": "Notice period (days)",
    "seat_change": "Seats to add (+) or cut (-) at renewal",
    "committed_seats": "Committed seats",
    "true_up_date": "True-up date",
    "contract_value": "Contract value",
    "term": "Term",
    "auto_renew": "Auto-renews",
    "source": "Contract from (machine name)",
    "source_label": "Contract from",
    "what_to_do": "What to do",
}
HORIZONS = (30, 60, 90, 120)


def _opt(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_date(value: Any) -> date | None:
    value = _opt(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def renewal_day(value: Any) -> date:
    """A renewal row's ``renewal_date`` as a date: every row :func:`renewals` gives has one."""
    day = _as_date(value)
    assert day is not None, "a renewal row without a renewal date"
    return day


def _seats(n: int) -> str:
    return f"{n} seat" if n == 1 else f"{n} seats"


def what_to_do(
    *,
    renewal: date,
    deadline: date | None,
    today: date,
    auto_renew: bool | None,
    total: int | None,
    recommended: int | None,
    matched: bool = True,
    paid: bool = True,
    assigned: int | None = None,
    free: bool | None = None,
) -> str:
    """The one-line advice for one license at one renewal.

    ``free``: the license is known to cost nothing (:func:`lib.analytics.rules.free_rule`; default:
    not ``paid``); neither paid nor free is "not known" (:func:`lib.analytics.rules.not_known_rule`).
    Seats are bought only when more are assigned than bought (:func:`advised_seats`): while seats
    are unassigned, the buffer above the seats assigned is no reason to buy more.
    """
    if free is None:
        free = not paid
    if deadline is None:
        before = f"before the renewal on {renewal.isoformat()} (notice period not entered)"
    elif deadline >= today:
        before = f"before {deadline.isoformat()} (opt-out deadline)"
    else:
        before = None
    if not matched:
        when = before or f"before the renewal on {renewal.isoformat()}"
        return f"No license in the latest data matches this contract: check it {when}"
    if free:
        return f"Free license: renews at no cost on {renewal.isoformat()}"
    if not paid:
        when = before or f"before the renewal on {renewal.isoformat()}"
        return (
            "Paid or free not known (the vendor does not say, no price): give it a price in the "
            f"price book {when}"
        )
    if total is None or recommended is None:
        when = before or f"before the renewal on {renewal.isoformat()}"
        return f"Seat counts not reported by the vendor: count the seats in use {when}"
    advised = advised_seats(total, assigned, recommended)
    assert advised is not None
    within = ""
    if advised == total and recommended > total:
        spare = total - assigned if assigned is not None else 0
        within = (
            f" ({_seats(spare)} still unassigned: the recommended {recommended:,} is the "
            f"{assigned:,} assigned plus the buffer, so none to buy)"
        )
    recommended, change = advised, advised - total
    if auto_renew is False:
        size = (
            f"{_seats(-change)} fewer than now"
            if change < 0
            else f"{_seats(change)} more than now"
            if change > 0
            else "as now"
        )
        return (
            f"Does not auto-renew: renew with {_seats(recommended)} ({size}) "
            f"by {renewal.isoformat()} or let it end{within}"
        )
    if change < 0:
        if before is None:
            assert deadline is not None  # no "before" only once the opt-out deadline has passed
            return (
                f"Opt-out deadline passed on {deadline.isoformat()}: renews on "
                f"{renewal.isoformat()} "
                f"with {_seats(-change)} more than recommended"
            )
        return f"Cut {_seats(-change)} {before}"
    if change > 0:
        return f"Buy {_seats(change)} at the renewal on {renewal.isoformat()}"
    return f"Renews as is on {renewal.isoformat()}{within}"


def _account_in_scope(contract: Mapping[str, Any], accounts: pd.DataFrame | None) -> bool:
    """A contract no license matches is in scope when its integration, and its account when it
    names one, are among ``accounts`` (None: every contract is)."""
    if accounts is None:
        return True
    keys = {
        integration_key(i)
        for col in ("integration", "integration_label")
        if col in accounts.columns
        for i in accounts[col].dropna().astype(str)
    }
    if integration_key(str(contract["integration"])) not in keys:
        return False
    account = _opt(contract["account_id"])
    return account is None or account in set(accounts["account_id"].astype(str))


def advised_seats(total: int | None, assigned: int | None, recommended: int | None) -> int | None:
    """The seats to renew at: the recommended seats (assigned + buffer) when that cuts seats or when
    more seats are assigned than bought; else the seats bought (seats are still unassigned, and the
    buffer alone is no reason to buy). None when seats bought or recommended are not reported."""
    if total is None or recommended is None:
        return None
    if recommended <= total or (assigned is not None and assigned > total):
        return recommended
    return total


def _contract_matches(licenses: pd.DataFrame, contracts: pd.DataFrame) -> list[tuple[int, int]]:
    """(license row position, contract position) pairs: each license gets its most specific
    contract.

    Most specific first: this account and this license; all accounts and this license; this
    account, all licenses; all accounts, all licenses. Licenses are matched by
    :func:`lib.analytics.metrics.match_price_book` (id, else exact name, else name ignoring case).
    """
    n = len(licenses)
    best = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(contracts) == 0:
        return []
    acct = ~contracts["account_id"].isna().to_numpy(dtype=bool)
    has_lic = (contracts["license_id"].notna() | contracts["license_name"].notna()).to_numpy()
    lic_accounts = licenses["account_id"].astype("string").fillna("").to_numpy(dtype=object)
    lic_ikeys = [
        integration_key(x if isinstance(x, str) else "") for x in licenses["integration"].tolist()
    ]
    book_cols = ["integration", "license_id", "license_name"]

    def by_license(rows: np.ndarray, subset: np.ndarray) -> None:
        book = contracts.iloc[subset][book_cols].reset_index(drop=True)
        found = match_price_book(licenses.iloc[rows].reset_index(drop=True), book)
        hit = found >= 0
        take = rows[hit]
        free = best[take] < 0
        best[take[free]] = subset[found[hit]][free]

    # 1. this account, this license
    tier = np.flatnonzero(acct & has_lic)
    for account in sorted(set(contracts["account_id"].iloc[tier].tolist())):
        subset = tier[contracts["account_id"].iloc[tier].to_numpy(dtype=object) == account]
        rows = np.flatnonzero(lic_accounts == account)
        if len(rows):
            by_license(rows, subset)
    # 2. all accounts, this license
    tier = np.flatnonzero(~acct & has_lic)
    if len(tier):
        by_license(np.arange(n), tier)
    # 3 and 4: whole accounts, whole integrations
    whole_account: dict[tuple[str, str], int] = {}
    whole_integration: dict[str, int] = {}
    for pos in np.flatnonzero(~has_lic).tolist():
        ikey = integration_key(contracts["integration"].iat[pos])
        if acct[pos]:
            whole_account.setdefault((ikey, contracts["account_id"].iat[pos]), pos)
        else:
            whole_integration.setdefault(ikey, pos)
    for row in np.flatnonzero(best < 0).tolist():
        found = whole_account.get((lic_ikeys[row], lic_accounts[row]))
        if found is None:
            found = whole_integration.get(lic_ikeys[row])
        if found is not None:
            best[row] = found
    return [(row, int(best[row])) for row in np.flatnonzero(best >= 0).tolist()]


def renewals(
    licenses_with_metrics: pd.DataFrame,
    contracts: pd.DataFrame,
    today: date,
    horizon_days: int = 120,
    *,
    shown: pd.DataFrame | None = None,
    accounts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per license at each contract renewal whose renewal or opt-out deadline is within
    ``horizon_days`` of ``today`` (columns :data:`RENEWAL_COLUMNS`), soonest deadline first.

    A contract covering several licenses gives one row per license (each has its own seats
    and advice); a contract no license matches gives one row without seats. The seat and
    money figures are the license's from :func:`lib.analytics.metrics.add_metrics`: seats bought
    (``total_seats``), assigned, ``recommended_seats``, the saving at recommended seats and the
    true-up exposure, in the reporting currency. ``seat_change`` = the seats to renew at
    (:func:`advised_seats`) - bought.
    Figures not reported stay empty, and ``what_to_do`` says so.

    The sidebar's scope: contracts are matched against every license of
    ``licenses_with_metrics``, then only the rows of ``shown`` (the licenses the filters keep, a
    subset by index) are listed; a contract no license matches at all is listed when its
    integration (and account, when it names one) is among ``accounts`` (the accounts the filters
    keep). ``None``: no filter.
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 0:
        raise ValueError(f"horizon_days must be a whole number >= 0, not {horizon_days!r}")
    contracts = validate_contracts(contracts)
    visible = (
        np.ones(len(licenses_with_metrics), dtype=bool)
        if shown is None
        else np.asarray(licenses_with_metrics.index.isin(shown.index), dtype=bool)
    )
    lic = licenses_with_metrics.reset_index(drop=True)
    paid = paid_mask(lic) if len(lic) else np.zeros(0, dtype=bool)
    free = free_mask(lic) if len(lic) else np.zeros(0, dtype=bool)
    pairs = _contract_matches(lic, contracts)
    by_contract: dict[int, list[int]] = {}
    for row, pos in pairs:
        by_contract.setdefault(pos, []).append(row)
    reporting = None
    if "reporting_currency" in lic.columns and len(lic):
        reporting = _opt(lic["reporting_currency"].iat[0])
    limit = today + timedelta(days=horizon_days)
    out: list[dict[str, Any]] = []
    crecs = contracts.to_dict("records")
    for pos, c in enumerate(crecs):
        end = _as_date(c["contract_end"])
        start = _as_date(c["contract_start"])
        term, auto = _opt(c["term"]), _opt(c["auto_renew"])
        notice = _opt(c["notice_days"])
        if end is None:
            continue
        renewal = next_renewal(end, today, term, auto, start)
        if renewal is None:
            continue
        deadline = opt_out_deadline(renewal, notice)
        first = deadline if deadline is not None and deadline >= today else renewal
        if first > limit and renewal > limit:
            continue
        key = contract_key(c["integration"], c["account_id"], c["license_id"], c["license_name"])
        matched_rows = by_contract.get(pos, [])
        rows: list[int | None] = [r for r in matched_rows if visible[r]]
        if not matched_rows and _account_in_scope(c, accounts):
            rows = [None]  # None: no license matched
        for matched in rows:
            r = lic.iloc[matched] if matched is not None else None

            def get(col: str, r: pd.Series | None = r) -> Any:
                return _opt(r[col]) if r is not None and col in lic.columns else None

            total, recommended = get("total_seats"), get("recommended_seats")
            advised = advised_seats(total, get("assigned_seats"), recommended)
            integ = get("integration") or c["integration"]
            rec = {
                "contract_key": key,
                "integration": integ,
                "integration_label": get("integration_label")
                or integration_label(c["integration"]),
                "account_id": get("account_id") or _opt(c["account_id"]),
                "license_id": get("license_id") if r is not None else _opt(c["license_id"]),
                "license_name": get("license_name") if r is not None else _opt(c["license_name"]),
                "organization_name": get("organization_name"),
                "term": term,
                "auto_renew": auto,
                "renewal_date": renewal,
                "opt_out_deadline": deadline,
                "days_to_renewal": (renewal - today).days,
                "days_to_opt_out": (deadline - today).days if deadline is not None else None,
                "notice_days": notice,
                "total_seats": total,
                "assigned_seats": get("assigned_seats"),
                "recommended_seats": recommended,
                "seat_change": (advised - total)
                if advised is not None and total is not None
                else None,
                "committed_seats": _opt(c["committed_seats"]),
                "potential_annual_savings_reporting": get("potential_annual_savings_reporting"),
                "true_up_exposure_reporting": get("true_up_exposure_reporting"),
                "true_up_date": _as_date(c["true_up_date"]),
                "reporting_currency": reporting,
                "contract_value": _opt(c["contract_value"]),
                "currency": _opt(c["currency"]),
                "source": _opt(c["source"]),
                "what_to_do": what_to_do(
                    renewal=renewal,
                    deadline=deadline,
                    today=today,
                    auto_renew=auto,
                    total=total,
                    recommended=recommended,
                    matched=r is not None,
                    paid=bool(paid[matched]) if matched is not None else True,
                    assigned=get("assigned_seats"),
                    free=bool(free[matched]) if matched is not None else False,
                ),
            }
            out.append(rec)
    out.sort(
        key=lambda x: (
            (
                x["opt_out_deadline"]
                if x["opt_out_deadline"] is not None and x["opt_out_deadline"] >= today
                else x["renewal_date"]
            ),
            x["renewal_date"],
            x["contract_key"],
            str(x["license_id"] or ""),
        )
    )
    return _renewal_frame(out)


_RENEWAL_DTYPES = {
    "contract_key": "string",
    "integration": "string",
    "integration_label": "string",
    "account_id": "string",
    "license_id": "string",
    "license_name": "string",
    "organization_name": "string",
    "term": "string",
    "auto_renew": "boolean",
    "renewal_date": "datetime64[s]",
    "opt_out_deadline": "datetime64[s]",
    "days_to_renewal": "Int64",
    "days_to_opt_out": "Int64",
    "notice_days": "Int64",
    "total_seats": "Int64",
    "assigned_seats": "Int64",
    "recommended_seats": "Int64",
    "seat_change": "Int64",
    "committed_seats": "Int64",
    "potential_annual_savings_reporting": "Float64",
    "true_up_exposure_reporting": "Float64",
    "true_up_date": "datetime64[s]",
    "reporting_currency": "string",
    "contract_value": "Float64",
    "currency": "string",
    "source": "string",
    "what_to_do": "string",
}


def _renewal_frame(rows: list[dict]) -> pd.DataFrame:
    data = {}
    for c in RENEWAL_COLUMNS:
        values = [r[c] for r in rows]
        dtype = _RENEWAL_DTYPES[c]
        if dtype.startswith("datetime"):
            data[c] = pd.Series(
                [pd.Timestamp(v) if v is not None else pd.NaT for v in values], dtype=dtype
            )
        else:
            data[c] = pd.Series(pd.array(values, dtype=dtype))
    return pd.DataFrame(data)


# -------------------------------------------------------------------- iCal


def renewal_row_label(r: Mapping[str, Any]) -> str:
    """A renewal row's license for people: its name (else id), and its organization when known."""
    name = _opt(r.get("license_name")) or _opt(r.get("license_id")) or "all licenses"
    org = _opt(r.get("organization_name"))
    return f"{name} ({org})" if org else str(name)
