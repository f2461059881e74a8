"""Contracts prefilled from Truto's ``billing`` records, and vendor vs edited contracts merged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
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


_FREQUENCIES = {
    "monthly": "monthly",
    "month": "monthly",
    "yearly": "annual",
    "annual": "annual",
    "annually": "annual",
    "year": "annual",
}


def _vendor_date(value: Any) -> str:
    """A billing date (ISO date or date-time text) as YYYY-MM-DD text, or the raw value to be
    reported."""
    if (
        isinstance(value, str)
        and len(value) >= 10
        and value[4:5] == "-"
        and value[10:11] in ("", "T", " ")
    ):
        return value[:10]
    return "" if value is None else value


def contracts_from_billing(
    billing_records: Iterable[Mapping[str, Any]],
    *,
    integration: str | None = None,
    account_id: str | None = None,
) -> BillingPrefill:
    """Contracts (source ``vendor``) from Truto ``GET /unified/user-directory/billing`` records.

    Only ClickUp, DocuSign and Zoom report billing. A record has ``billing_frequency``
    (monthly / yearly), ``currency``, ``total_amount``, ``tax_amount``, ``start_date``,
    ``end_date`` and ``description``, and is about one integrated account: its
    ``integration`` and ``account_id`` come from the record (when the fetcher adds
    them) or from the arguments. Each account gets one contract covering all its
    licenses: the billing period that ends last. ``contract_value`` is
    ``total_amount`` as billed. Auto-renewal, notice period and committed seats are
    not reported by the vendor, so they stay empty. A record that cannot be used
    (no end date, dates out of order, a bad amount) is skipped and said in ``skipped``.
    """
    latest: dict[tuple[str, str], tuple[date, dict]] = {}
    skipped: list[str] = []
    for pos, record in enumerate(billing_records, 1):
        if not isinstance(record, Mapping):
            skipped.append(f"billing record {pos}: not an object")
            continue
        integ = record.get("integration") or integration
        acct = record.get("account_id") or record.get("integrated_account_id") or account_id
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
    return BillingPrefill(contracts=_frame(rows), skipped=skipped)


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
