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
  for the same key (:func:`lib.analytics.vendor_contracts.merge_contracts`). Only
  the sync writes vendor rows: every row of an uploaded file (:func:`load_contracts`)
  is edited, whatever its ``source`` cell says.

An empty optional cell means "not entered" (NA), never 0 or false: a contract
without a notice period has no known opt-out deadline, and says so.

A file with any problem is rejected as a whole, every problem listed with its
row (as a spreadsheet shows it: the header is row 1) and column.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from lib.analytics.pricing import (
    ProblemList,
    _check_currency,
    _csv_records,
    _frame_records,
    _ListedProblems,
    _number,
    _read_bytes,
)
from lib.integrations import integration_key, integration_label
from lib.schema import CONTRACT_COLUMNS, CONTRACT_DTYPES
from lib.truto.text import unsafe_character
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
    """True when ``text`` holds a control character (line breaks, tabs, NUL...), a bidi control or an
    unpaired surrogate: the one text rule of every input (:func:`lib.truto.text.unsafe_character`)."""
    return unsafe_character(text) is not None


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
    problems = ProblemList()
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
    """Checked contracts from CSV (bytes, a path or a file-like object; None: none): an upload.

    Raises :class:`ContractsError` listing the problems; nothing is half applied. Every row of a file is
    the admin's (source ``edited``), whatever its ``source`` cell says: only the sync writes vendor rows
    (:meth:`lib.store.Store.replace_vendor_contracts`), so a row uploaded as ``vendor`` is never replaced by
    the next fetch. The cell is still checked (``robot`` is a problem), so a downloaded file reads back.
    """
    data = _read_bytes(source)
    if data is None:
        return empty_contracts()
    _check_csv_syntax(data)
    records = _csv_records(data, CONTRACT_COLUMNS, _REQUIRED, ContractsError)
    table = _validate_records(records)
    table["source"] = pd.array(["edited"] * len(table), dtype=CONTRACT_DTYPES["source"])
    return table


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
    """Contracts as UTF-8 CSV in the exchange format (what :func:`load_contracts` reads):
    ``integration`` the machine name, then ``integration_label`` in words (the load ignores it)."""
    table = validate_contracts(df) if df is not None else empty_contracts()
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    columns = [*CONTRACT_COLUMNS[:1], "integration_label", *CONTRACT_COLUMNS[1:]]
    writer.writerow(columns)
    for rec in table.to_dict("records"):
        named = rec["integration"] if isinstance(rec["integration"], str) else None
        rec["integration"] = integration_key(named) if named else None
        rec["integration_label"] = integration_label(named) if named else None
        writer.writerow([_csv_value(rec[c], c) for c in columns])
    return buf.getvalue().encode("utf-8")
