"""Contracts prefilled from Truto's ``billing`` records, and vendor vs edited contracts merged."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from lib.analytics.contracts import (
    _check_record,
    _frame,
    clean_text,
    contract_key,
    empty_contracts,
)
from lib.integrations import integration_key, integration_label
from lib.schema import CONTRACT_COLUMNS, CONTRACT_DTYPES

# ------------------------------------------------------------ vendor billing


@dataclass
class BillingPrefill:
    """Contracts prefilled from Truto's ``billing`` records, and the records that could not be
    used."""

    contracts: pd.DataFrame
    skipped: list[str] = field(default_factory=list)
    # records that name another account or integration than the listing's (read as the listing's)
    mismatched: list[str] = field(default_factory=list)


_FREQUENCIES = {
    "monthly": "monthly",
    "month": "monthly",
    "yearly": "annual",
    "annual": "annual",
    "annually": "annual",
    "year": "annual",
}

_DATE_START = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]|\Z)", re.ASCII)


def _vendor_date(value: Any) -> Any:
    """A billing date (ISO 8601 date, or date and time) as YYYY-MM-DD text, or the raw value to be
    reported. The whole value must read: ``2026-12-31T99:99`` or ``2026-12-31 junk`` is not a date,
    whatever its first ten characters say. A date and time keeps its own calendar date (the day
    the vendor wrote, not the UTC one)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    if _DATE_START.match(value) is None:
        return value
    if len(value) == 10:
        return value  # a date: checked as the contracts' dates are
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return value
    return value[:10]


def _shown(value: Any) -> str:
    """A value a record claims, for a message: short, quoted, without control characters."""
    if isinstance(value, str):
        text = clean_text(value).strip()
        return repr(text if len(text) <= 60 else text[:60] + "…")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return f"a {type(value).__name__}"


def _other_claims(record: Mapping[str, Any], integration: str | None, account_id: str) -> list[str]:
    """What a billing record says of its account that is not the listing's, in words."""
    claims = []
    for key in ("account_id", "integrated_account_id"):
        said = record.get(key)
        if said is None or said == "":
            continue
        if (
            not isinstance(said, (str, int))
            or isinstance(said, bool)
            or (str(said).strip() != account_id.strip())
        ):
            claims.append(f"{key} {_shown(said)}")
    said = record.get("integration")
    if said is not None and said != "":
        if not isinstance(said, str) or integration_key(said) != integration_key(integration):
            claims.append(f"integration {_shown(said)}")
    return claims


def contracts_from_billing(
    billing_records: Iterable[Mapping[str, Any]],
    *,
    integration: str | None = None,
    account_id: str | None = None,
) -> BillingPrefill:
    """Contracts (source ``vendor``) from Truto ``GET /unified/user-directory/billing`` records.

    Only ClickUp, DocuSign and Zoom report billing. A record has ``billing_frequency``
    (monthly / yearly), ``currency``, ``total_amount``, ``tax_amount``, ``start_date``,
    ``end_date`` and ``description``. Each account gets one contract covering all its
    licenses: the billing period that ends last. ``contract_value`` is
    ``total_amount`` as billed. Auto-renewal, notice period and committed seats are
    not reported by the vendor, so they stay empty. A record that cannot be used
    (no end date, dates out of order, a bad amount) is skipped and said in ``skipped``.

    A record belongs to the account whose listing returned it (``integration`` and
    ``account_id``, the fetch's): an ``account_id``, ``integrated_account_id`` or
    ``integration`` it carries never moves it to another account, and one that names another
    is said in ``mismatched`` (the record is still read as the listing's). Without those
    arguments (records assembled by a trusted caller), the record's own fields say which
    account it is about.
    """
    latest: dict[tuple[str, str], tuple[date, dict]] = {}
    skipped: list[str] = []
    mismatched: list[str] = []
    for pos, record in enumerate(billing_records, 1):
        if not isinstance(record, Mapping):
            skipped.append(f"billing record {pos}: not an object")
            continue
        integ: Any
        acct: Any
        if account_id is not None:
            integ, acct = integration, account_id
            claims = _other_claims(record, integration, account_id)
            if claims and isinstance(integ, str) and isinstance(acct, str):
                mismatched.append(
                    f"{integration_label(integ)} account {clean_text(acct)}, billing record {pos}: "
                    f"says {' and '.join(claims)}; read as this account's, whose listing "
                    "returned it"
                )
        else:
            integ = record.get("integration") or integration
            acct = record.get("account_id") or record.get("integrated_account_id")
        if (
            not isinstance(integ, str)
            or not isinstance(acct, str)
            or not integ.strip()
            or not acct.strip()
        ):
            skipped.append(f"billing record {pos}: no integration or integrated account")
            continue
        frequency = record.get("billing_frequency")
        term = _FREQUENCIES.get(frequency.strip().lower()) if isinstance(frequency, str) else None
        start_text, end_text = (
            _vendor_date(record.get("start_date")),
            _vendor_date(record.get("end_date")),
        )
        amount = record.get("total_amount")
        currency = record.get("currency")
        rec = {
            "integration": integ,
            "account_id": acct,
            "license_id": "",
            "license_name": "",
            "contract_start": start_text,
            "contract_end": end_text,
            "term": term or "",
            "auto_renew": "",
            "notice_days": "",
            "committed_seats": "",
            "true_up_date": "",
            "contract_value": amount
            if isinstance(amount, (int, float, str)) and amount != ""
            else "",
            "currency": currency if isinstance(currency, str) and amount not in (None, "") else "",
            "source": "vendor",
        }
        if isinstance(amount, bool):
            rec["contract_value"] = "not a number"
        out, problems = _check_record(pos, rec, "vendor")
        if problems:
            what = "; ".join(p.split(", column ", 1)[-1] for p in problems)
            skipped.append(
                f"{integration_label(integ)} account {clean_text(acct)}, billing record {pos}: "
                f"{what}"
            )
            continue
        start, end = out["contract_start"], out["contract_end"]
        if out["term"] is None and start is not None:
            span = (end - start).days
            out["term"] = (
                "monthly"
                if span <= 31
                else "annual"
                if 334 <= span <= 400
                else ("multi_year" if span > 400 else None)
            )
        elif out["term"] == "annual" and start is not None and (end - start).days > 400:
            out["term"] = "multi_year"
        key = (integration_key(integ), acct)
        if key not in latest or end > latest[key][0]:
            latest[key] = (end, out)
    rows = [out for _, (_, out) in sorted(latest.items())]
    return BillingPrefill(contracts=_frame(rows), skipped=skipped, mismatched=mismatched)


def _keys(df: pd.DataFrame) -> list[str]:
    return [
        contract_key(*t)
        for t in zip(
            df["integration"].tolist(),
            df["account_id"].tolist(),
            df["license_id"].tolist(),
            df["license_name"].tolist(),
        )
    ]


def merge_contracts(vendor: pd.DataFrame | None, edited: pd.DataFrame | None) -> pd.DataFrame:
    """One table: every edited contract, and the vendor contracts no edited contract has the key
    of."""
    vendor = vendor if vendor is not None else empty_contracts()
    edited = edited if edited is not None else empty_contracts()
    taken = set(_keys(edited))
    keep = pd.Series([k not in taken for k in _keys(vendor)], index=vendor.index, dtype=bool)
    vendor = vendor.loc[keep].copy()  # a boolean mask even when empty (a list [] picks columns)
    vendor["source"] = pd.array(["vendor"] * len(vendor), dtype="string")
    edited = edited.copy()
    edited["source"] = pd.array(["edited"] * len(edited), dtype="string")
    out = pd.concat([edited[CONTRACT_COLUMNS], vendor[CONTRACT_COLUMNS]], ignore_index=True)
    return out.astype(CONTRACT_DTYPES)
