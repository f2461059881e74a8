"""Contracts, renewals and opt-out deadlines, read and checked before anything uses them.

A contract covers one license, or every license of an integrated account, or
every license of an integration. Its exchange format is a CSV file with the
columns :data:`CONTRACT_COLUMNS`::

    integration,account_id,license_id,license_name,contract_start,contract_end,term,...
    GitHub,,,GitHub Enterprise,2026-02-01,2027-01-31,annual,true,30,40,,8400,USD,edited

- ``integration`` (required): display or machine name, matched tolerantly
  (``integration_key``) as in the price book.
- ``account_id``: the integrated account; empty = every account of the integration.
- ``license_id`` / ``license_name``: the license, matched as the price book
  matches (:func:`lib.analytics.metrics.match_price_book`: the id, else the exact name,
  else the name ignoring case, within the integration); both empty = every
  license of the account (or of the integration).
- ``contract_start`` (optional) and ``contract_end`` (required): dates, YYYY-MM-DD.
- ``term``: ``monthly``, ``annual`` or ``multi_year``; ``auto_renew``: true or false;
  ``notice_days``: whole days >= 0, so the opt-out deadline is contract_end - notice_days.
- ``committed_seats``, ``true_up_date``, ``contract_value`` + ``currency``: optional.
- ``source``: ``vendor`` (prefilled from Truto's ``billing`` resource) or ``edited``
  (entered by a person; the default). An edited contract wins over a vendor one
  for the same key (:func:`merge_contracts`).

An empty optional cell means "not entered" (NA), never 0 or false: a contract
without a notice period has no known opt-out deadline, and says so.

A file with any problem is rejected as a whole, every problem listed with its
row (as a spreadsheet shows it: the header is row 1) and column.
"""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from lib.analytics.metrics import match_price_book
from lib.analytics.pricing import (
    _check_currency,
    _csv_records,
    _frame_records,
    _ListedProblems,
    _number,
    _read_bytes,
)
from lib.analytics.rules import paid_mask
from lib.integrations import integration_key, integration_label
from lib.schema import CONTRACT_COLUMNS, CONTRACT_DTYPES
from lib.truto.values import MAX_SEATS

TERMS = ("monthly", "annual", "multi_year")
SOURCES = ("vendor", "edited")
_REQUIRED = ("integration", "contract_end")
_DATE_COLUMNS = ("contract_start", "contract_end", "true_up_date")

# Beyond these a value is a typing error, not a contract.
MIN_DATE = date(1990, 1, 1)
MAX_DATE = date(2100, 12, 31)
MAX_NOTICE_DAYS = 730
MAX_CONTRACT_VALUE = 1e12

_TERM_ALIASES = {
    "monthly": "monthly",
    "month": "monthly",
    "annual": "annual",
    "yearly": "annual",
    "annually": "annual",
    "year": "annual",
    "multi_year": "multi_year",
    "multi-year": "multi_year",
    "multiyear": "multi_year",
    "multi year": "multi_year",
}
_TRUE = ("true", "yes", "y", "1")
_FALSE = ("false", "no", "n", "0")
# Bidirectional overrides: they make a name display as something it is not.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class ContractsError(_ListedProblems):
    """A contracts table with problems; ``.problems`` lists them all."""

    what = "contracts table"


def has_control_characters(text: str) -> bool:
    """True when ``text`` holds a control character (line breaks, tabs, NUL...) or a bidi
    override."""
    return any(unicodedata.category(ch) == "Cc" or ch in _BIDI for ch in text)


def clean_text(text: Any) -> str:
    """Vendor text for a message: control characters and bidi overrides become spaces."""
    return "".join(
        " " if (unicodedata.category(ch) == "Cc" or ch in _BIDI) else ch for ch in str(text)
    )


# ---------------------------------------------------------------- reading CSV


def _check_csv_syntax(data: bytes) -> None:
    """Raise ContractsError for an unclosed quote (the lenient reader would swallow the rest)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return  # _csv_records reports it
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    row = 0
    try:
        for _ in reader:
            row += 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise ContractsError(
                [
                    (
                        f'row {row + 1}: a quote (") opened in this row is never closed, '
                        "so the rest of the file would be read as one cell; close it"
                    )
                ]
            ) from None
        raise ContractsError(
            [(f"row {row + 1}: not readable as CSV ({exc}); check the quotes in this row")]
        ) from None


def _date(rownum: int, column: str, raw: Any, problems: list[str]) -> date | None:
    if raw == "" or raw is None:
        return None
    if isinstance(raw, datetime):
        value = raw.date()
    elif isinstance(raw, date):
        value = raw
    elif isinstance(raw, pd.Timestamp):
        value = raw.date()
    else:
        text = str(raw).strip()
        try:
            if len(text) != 10:
                raise ValueError
            value = date.fromisoformat(text)
        except ValueError:
            problems.append(
                f"row {rownum}, column {column}: {text!r} is not a date; "
                "write it as YYYY-MM-DD, e.g. 2027-01-31"
            )
            return None
    if not MIN_DATE <= value <= MAX_DATE:
        problems.append(
            f"row {rownum}, column {column}: {value.isoformat()} is not a plausible "
            f"contract date (expected {MIN_DATE.year} to {MAX_DATE.year})"
        )
        return None
    return value


def _whole(
    rownum: int, column: str, raw: Any, problems: list[str], limit: int, unit: str
) -> int | None:
    if raw == "":
        return None
    number = _number(raw)
    if number is None or not math.isfinite(number):
        problems.append(f"row {rownum}, column {column}: {raw!r} is not a number")
        return None
    if number < 0:
        problems.append(f"row {rownum}, column {column}: {raw!r} is negative")
        return None
    if not number.is_integer():
        problems.append(f"row {rownum}, column {column}: {raw!r} is not a whole number of {unit}")
        return None
    if number > limit:
        problems.append(
            f"row {rownum}, column {column}: {raw!r} is more than {limit:,} {unit}, "
            "so it cannot be right"
        )
        return None
    return int(number)


def _check_record(
    rownum: int, rec: Mapping[str, Any], default_source: str
) -> tuple[dict, list[str]]:
    """One contract's values (None for not entered) and its problems."""
    problems: list[str] = []
    if "__extra__" in rec:
        problems.append(rec["__extra__"])
    for column in CONTRACT_COLUMNS:
        raw = rec.get(column, "")
        if isinstance(raw, str) and has_control_characters(raw):
            problems.append(
                f"row {rownum}, column {column}: holds a control character "
                "(line break, tab or similar); remove it"
            )
    text = {
        c: (str(rec.get(c, "")).strip() if isinstance(rec.get(c, ""), str) else rec.get(c, ""))
        for c in CONTRACT_COLUMNS
    }
    out: dict[str, Any] = {c: None for c in CONTRACT_COLUMNS}
    for c in ("integration", "account_id", "license_id", "license_name"):
        value = text[c]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(int(value)) if float(value).is_integer() else str(value)
        out[c] = (str(value).strip() or None) if value != "" else None
    if not out["integration"]:
        problems.append(
            f"row {rownum}, column integration: empty; name the integration, e.g. GitHub"
        )

    start = _date(rownum, "contract_start", text["contract_start"], problems)
    end = _date(rownum, "contract_end", text["contract_end"], problems)
    true_up = _date(rownum, "true_up_date", text["true_up_date"], problems)
    if text["contract_end"] == "":
        problems.append(
            f"row {rownum}, column contract_end: empty; give the date the contract "
            "ends or renews, e.g. 2027-01-31"
        )
    if start and end and end < start:
        problems.append(
            f"row {rownum}, column contract_end: {end.isoformat()} is before "
            f"contract_start {start.isoformat()}"
        )
    if start and true_up and true_up < start:
        problems.append(
            f"row {rownum}, column true_up_date: {true_up.isoformat()} is before "
            f"contract_start {start.isoformat()}"
        )
    out.update(contract_start=start, contract_end=end, true_up_date=true_up)

    term_raw = str(text["term"]).strip()
    if term_raw:
        term = _TERM_ALIASES.get(term_raw.lower())
        if term is None:
            problems.append(
                f"row {rownum}, column term: {term_raw!r} is not a term; "
                "use monthly, annual or multi_year"
            )
        out["term"] = term

    renew_raw = str(text["auto_renew"]).strip().lower()
    if renew_raw in _TRUE:
        out["auto_renew"] = True
    elif renew_raw in _FALSE:
        out["auto_renew"] = False
    elif renew_raw:
        problems.append(
            f"row {rownum}, column auto_renew: {text['auto_renew']!r} is not true or false"
        )

    out["notice_days"] = _whole(
        rownum, "notice_days", text["notice_days"], problems, MAX_NOTICE_DAYS, "days"
    )
    out["committed_seats"] = _whole(
        rownum, "committed_seats", text["committed_seats"], problems, MAX_SEATS, "seats"
    )
    if end and out["notice_days"] is not None:
        deadline = end - timedelta(days=out["notice_days"])
        if start and start <= end and deadline < start:
            problems.append(
                f"row {rownum}, column notice_days: {out['notice_days']} days before "
                f"{end.isoformat()} is before contract_start {start.isoformat()}"
            )

    value_raw = text["contract_value"]
    if value_raw != "":
        number = _number(value_raw)
        if number is None or not math.isfinite(number):
            hint = (
                " (use a dot for decimals and no thousands separator)"
                if "," in str(value_raw)
                else ""
            )
            problems.append(
                f"row {rownum}, column contract_value: {value_raw!r} is not a number{hint}"
            )
        elif number < 0:
            problems.append(f"row {rownum}, column contract_value: {value_raw!r} is negative")
        elif number > MAX_CONTRACT_VALUE:
            problems.append(
                f"row {rownum}, column contract_value: {value_raw!r} is more than "
                f"{MAX_CONTRACT_VALUE:,.0f}, so it cannot be right"
            )
        else:
            out["contract_value"] = number
    if text["currency"] != "":
        out["currency"] = _check_currency(rownum, "currency", text["currency"], problems)
    elif out["contract_value"] is not None:
        problems.append(
            f"row {rownum}, column currency: empty; a contract value needs its "
            "ISO 4217 currency code, e.g. USD"
        )

    source = str(text["source"]).strip().lower() or default_source
    if source not in SOURCES:
        problems.append(
            f"row {rownum}, column source: {text['source']!r} is not a source; "
            "use vendor or edited (or leave it empty)"
        )
    out["source"] = source
    return out, problems


def contract_key(
    integration: Any, account_id: Any = None, license_id: Any = None, license_name: Any = None
) -> str:
    """The key one contract is known by: integration, account (or all), license id, else name
    ignoring case."""

    def part(x: Any) -> str:
        return "" if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else str(x)

    lic = (
        f"id:{part(license_id)}"
        if part(license_id)
        else (f"name:{part(license_name).casefold()}" if part(license_name) else "")
    )
    return "|".join((integration_key(part(integration)), part(account_id), lic))


def _frame(rows: list[dict]) -> pd.DataFrame:
    data = {}
    for c in CONTRACT_COLUMNS:
        values = [r[c] for r in rows]
        if CONTRACT_DTYPES[c].startswith("datetime"):
            data[c] = pd.Series(
                [pd.Timestamp(v) if v is not None else pd.NaT for v in values],
                dtype=CONTRACT_DTYPES[c],
            )
        else:
            data[c] = pd.Series(pd.array(values, dtype=CONTRACT_DTYPES[c]))
    return pd.DataFrame(data)


def empty_contracts() -> pd.DataFrame:
    return _frame([])


def _validate_records(records: list[tuple[int, dict]]) -> pd.DataFrame:
    problems: list[str] = []
    rows: list[dict] = []
    first: dict[str, int] = {}
    for rownum, rec in records:
        out, found = _check_record(rownum, rec, "edited")
        problems.extend(found)
        if out["integration"]:
            key = contract_key(
                out["integration"], out["account_id"], out["license_id"], out["license_name"]
            )
            seen = first.setdefault(key, rownum)
            if seen != rownum:
                what = (
                    f"license id {out['license_id']!r}"
                    if out["license_id"]
                    else f"license name {out['license_name']!r} (ignoring case)"
                    if out["license_name"]
                    else "all licenses"
                )
                scope = f"account {out['account_id']!r}" if out["account_id"] else "all accounts"
                problems.append(
                    f"row {rownum}, column integration: duplicate contract: "
                    f"{integration_label(out['integration'])} {what}, {scope} "
                    f"is already on row {seen}"
                )
        rows.append(out)
    if problems:
        raise ContractsError(problems)
    return _frame(rows)


def load_contracts(source: Any) -> pd.DataFrame:
    """Checked contracts from CSV (bytes, a path or a file-like object; None: none).

    Raises :class:`ContractsError` listing every problem; nothing is half applied.
    """
    data = _read_bytes(source)
    if data is None:
        return empty_contracts()
    _check_csv_syntax(data)
    records = _csv_records(data, CONTRACT_COLUMNS, _REQUIRED, ContractsError)
    return _validate_records(records)


def validate_contracts(df: pd.DataFrame | None) -> pd.DataFrame:
    """The checks of :func:`load_contracts` on a table in memory (e.g. a data editor's).

    Rows are numbered as in the CSV form (first contract: row 2); blank rows are skipped.
    """
    if df is None or (len(df) == 0 and len(df.columns) == 0):
        return empty_contracts()
    df = df.copy()
    for c in df.columns:
        # Dates held as date-times (our own table, a data editor) are read as their day.
        if str(c).strip().lower() in _DATE_COLUMNS and pd.api.types.is_datetime64_any_dtype(df[c]):
            df[c] = pd.Series(
                [None if pd.isna(v) else _day_text(v) for v in df[c]], index=df.index, dtype=object
            )
    records = _frame_records(df, CONTRACT_COLUMNS, _REQUIRED, ContractsError)
    return _validate_records(records)


def _day_text(value: pd.Timestamp) -> str:
    """A date-time as YYYY-MM-DD, or as it is when it is not midnight (reported as not a date)."""
    if value.hour or value.minute or value.second or value.microsecond or value.nanosecond:
        return str(value)
    return value.date().isoformat()


def _csv_value(value: Any, column: str) -> str:
    from lib.export import safe_cell

    if (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    ):
        return ""
    if column in _DATE_COLUMNS:
        return pd.Timestamp(value).date().isoformat()
    if column == "auto_renew":
        return "true" if bool(value) else "false"
    if column in ("notice_days", "committed_seats"):
        return str(int(value))
    if column == "contract_value":
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return str(safe_cell(str(value)))


def contracts_to_csv(df: pd.DataFrame | None) -> bytes:
    """Contracts as UTF-8 CSV in the exchange format (what :func:`load_contracts` reads)."""
    table = validate_contracts(df) if df is not None else empty_contracts()
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CONTRACT_COLUMNS)
    for rec in table.to_dict("records"):
        writer.writerow([_csv_value(rec[c], c) for c in CONTRACT_COLUMNS])
    return buf.getvalue().encode("utf-8")


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
    keep = [k not in taken for k in _keys(vendor)]
    vendor = vendor[keep].copy()
    vendor["source"] = pd.array(["vendor"] * len(vendor), dtype="string")
    edited = edited.copy()
    edited["source"] = pd.array(["edited"] * len(edited), dtype="string")
    out = pd.concat([edited[CONTRACT_COLUMNS], vendor[CONTRACT_COLUMNS]], ignore_index=True)
    return out.astype(CONTRACT_DTYPES)


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
    "source": "Contract from",
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
) -> str:
    """The one-line advice for one license at one renewal."""
    if deadline is None:
        before = f"before the renewal on {renewal.isoformat()} (notice period not entered)"
    elif deadline >= today:
        before = f"before {deadline.isoformat()} (opt-out deadline)"
    else:
        before = None
    if not matched:
        when = before or f"before the renewal on {renewal.isoformat()}"
        return f"No license in the latest data matches this contract: check it {when}"
    if not paid:
        return f"Free license: renews at no cost on {renewal.isoformat()}"
    if total is None or recommended is None:
        when = before or f"before the renewal on {renewal.isoformat()}"
        return f"Seat counts not reported by the vendor: count the seats in use {when}"
    change = recommended - total
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
            f"by {renewal.isoformat()} or let it end"
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
    return f"Renews as is on {renewal.isoformat()}"


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
) -> pd.DataFrame:
    """One row per license at each contract renewal whose renewal or opt-out deadline is within
    ``horizon_days`` of ``today`` (columns :data:`RENEWAL_COLUMNS`), soonest deadline first.

    A contract covering several licenses gives one row per license (each has its own seats
    and advice); a contract no license matches gives one row without seats. The seat and
    money figures are the license's from :func:`lib.analytics.metrics.add_metrics`: seats bought
    (``total_seats``), assigned, ``recommended_seats``, the saving at recommended seats and the
    true-up exposure, in the reporting currency. ``seat_change`` = recommended - bought.
    Figures not reported stay empty, and ``what_to_do`` says so.
    """
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, int) or horizon_days < 0:
        raise ValueError(f"horizon_days must be a whole number >= 0, not {horizon_days!r}")
    contracts = validate_contracts(contracts)
    lic = licenses_with_metrics.reset_index(drop=True)
    paid = paid_mask(lic) if len(lic) else np.zeros(0, dtype=bool)
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
        rows: list[int | None] = [*by_contract.get(pos, [])] or [None]  # None: no license matched
        for matched in rows:
            r = lic.iloc[matched] if matched is not None else None

            def get(col: str, r: pd.Series | None = r) -> Any:
                return _opt(r[col]) if r is not None and col in lic.columns else None

            total, recommended = get("total_seats"), get("recommended_seats")
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
                "seat_change": (recommended - total)
                if total is not None and recommended is not None
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


def _ics_text(value: Any) -> str:
    """TEXT escaped as RFC 5545 3.3.11: backslash, semicolon, comma and line breaks."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    return "".join(" " if (unicodedata.category(ch) == "Cc" or ch in _BIDI) else ch for ch in text)


def _fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 character."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    limit = 75
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > limit:
            out.append("".join(current))
            current, size, limit = [" "], 1, 75
        current.append(ch)
        size += width
    out.append("".join(current))
    return "\r\n".join(out)


def _uid(kind: str, key: str, day: date) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return f"{kind}-{digest}-{day:%Y%m%d}@license-dashboard"


def to_ics(
    renewals_df: pd.DataFrame, calendar_name: str = "License renewals", now: datetime | None = None
) -> str:
    """An RFC 5545 calendar: one all-day event per contract renewal and one per opt-out deadline.

    A contract covering several licenses is one event listing each license's advice. UIDs
    depend only on the contract and the date, so a calendar that subscribes again updates the
    events instead of doubling them. ``now`` (UTC) is the DTSTAMP (default: the current time).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//License utilization dashboard//Renewals//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_ics_text(calendar_name)}",
    ]
    groups: dict[tuple[str, date], list[dict]] = {}
    for rec in renewals_df.to_dict("records"):
        groups.setdefault((rec["contract_key"], renewal_day(rec["renewal_date"])), []).append(rec)
    for (key, renewal), recs in groups.items():
        first = recs[0]
        scope = first["integration_label"] or first["integration"]
        names = sorted(
            {str(_opt(r["license_name"]) or _opt(r["license_id"]) or "") for r in recs} - {""}
        )
        what = f"{scope}: {', '.join(names)}" if names else f"{scope}"
        if _opt(first["account_id"]):
            what += f" (account {first['account_id']})"
        advice = "\n".join(f"{renewal_row_label(r)}: {r['what_to_do']}" for r in recs)
        deadline = _as_date(first["opt_out_deadline"])
        events = [("renewal", renewal, f"Renewal: {what}")]
        if deadline is not None:
            events.insert(0, ("opt-out", deadline, f"Opt-out deadline: {what}"))
        for kind, day, summary in events:
            detail = [f"Renews on {renewal.isoformat()}."]
            if deadline is not None:
                detail.append(f"Opt-out deadline (notice due): {deadline.isoformat()}.")
            else:
                detail.append("Notice period not entered.")
            detail.append(advice)
            lines += [
                "BEGIN:VEVENT",
                f"UID:{_uid(kind, key, day)}",
                f"DTSTAMP:{stamp}",
                f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
                f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
                f"SUMMARY:{_ics_text(summary)}",
                f"DESCRIPTION:{_ics_text(chr(10).join(detail))}",
                "TRANSP:TRANSPARENT",
                "END:VEVENT",
            ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
