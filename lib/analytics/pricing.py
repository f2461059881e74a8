"""The price book and the exchange rates, read and checked before anything uses them.

Truto sends a price only for DocuSign, so prices come from a price book the
user keeps. Its exchange format is a CSV file with the columns
:data:`PRICE_BOOK_COLUMNS`::

    integration,license_id,license_name,unit_price,currency,billing_period
    GitHub,,GitHub Enterprise,21,USD,monthly
    Microsoft 365,c42b9cae-ea4f-4ab7-9717-81576235ccac,Microsoft 365 E5,684,EUR,annual

- ``integration``: the integration's display or machine name; it is matched
  tolerantly (``integration_key``), so "Microsoft 365" matches "microsoft365".
- ``license_id`` / ``license_name``: at least one is needed. An entry with a
  ``license_id`` prices the license with that id only (its name is a label for
  people). An entry with only a ``license_name`` prices every license of that
  integration with that name: the exact name first, else the name ignoring case.
- ``unit_price``: the price of one seat for one billing period, a number >= 0.
- ``currency``: an active ISO 4217 code (case does not matter).
- ``billing_period``: ``monthly`` or ``annual`` (case does not matter).

Exchange rates are a CSV file ``currency,rate``: one unit of ``currency`` buys
``rate`` units of the reporting currency (EUR,1.08 with USD reporting: 1 EUR =
1.08 USD).

A file with any problem is rejected as a whole: the error lists every problem
with its row (as a spreadsheet shows it: the header is row 1, the first entry
row 2) and column, so nothing is ever half applied. One exception, for a partly
filled template (:func:`read_price_table`, :func:`check_price_table`: the Price
book page): a row whose price is blank is left out, and that license stays
unpriced; the strict readers (:func:`load_price_book`) refuse it.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lib.analytics.rules import WITHDRAWN_CODES
from lib.export import FORMULA_PREFIXES, LINE_END, safe_cell
from lib.integrations import integration_key, integration_label
from lib.schema import (
    BILLING_PERIODS,
    CURRENCY_CODES,
    PRICE_BOOK_COLUMNS,
    PRICE_BOOK_DTYPES,
    price_row_label,
)
from lib.schema import NOT_MONEY as _NOT_MONEY
from lib.truto.text import unsafe_character
from lib.truto.values import MAX_FX_RATE, MAX_UNIT_PRICE

FX_COLUMNS = ["currency", "rate"]
PERIODS_PER_YEAR = {"monthly": 12, "annual": 1}


# A file of bad rows can hold a million problems: the first ones are listed, the rest only counted, so the
# message (and what a page shows) stays small however large the file.
MAX_LISTED_PROBLEMS = 100


class ProblemList(list):
    """Problems as they are found: the first ``limit`` kept, the ones after only counted (``more``)."""

    def __init__(self, limit: int = MAX_LISTED_PROBLEMS):
        super().__init__()
        self.limit = limit
        self.more = 0

    def append(self, problem: str) -> None:
        if len(self) < self.limit:
            super().append(problem)
        else:
            self.more += 1

    def extend(self, problems: Iterable[str]) -> None:
        for problem in problems:
            self.append(problem)


class _ListedProblems(ValueError):
    """An error that carries the problems found, each a sentence with its row and column: the first
    :data:`MAX_LISTED_PROBLEMS` in ``.problems``, how many more there were in ``.more``."""

    what = "file"

    def __init__(self, problems: list[str], more: int = 0):
        listed = list(problems)
        more += getattr(problems, "more", 0) + max(0, len(listed) - MAX_LISTED_PROBLEMS)
        self.problems = listed[:MAX_LISTED_PROBLEMS]
        self.more = more
        self.count = len(self.problems) + more
        head = f"The {self.what} was not applied: {self.count:,} problem{'s' if self.count != 1 else ''}"
        if more:
            head += f" (the first {len(self.problems)} listed)"
        lines = [f"- {p}" for p in self.problems]
        if more:
            lines.append(f"- and {more:,} more problem{'s' if more != 1 else ''}")
        super().__init__(head + ":\n" + "\n".join(lines))


class PriceBookError(_ListedProblems):
    """A price book with problems; ``.problems`` lists them all."""

    what = "price book"


class FxRatesError(_ListedProblems):
    """An exchange-rate table with problems; ``.problems`` lists them all."""

    what = "exchange-rate table"


# ---------------------------------------------------------------- reading CSV


def _read_bytes(source: Any) -> bytes | None:
    if source is None:
        return None
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return fh.read()
    if hasattr(source, "getvalue"):  # streamlit's UploadedFile, BytesIO, StringIO
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read()
    else:
        raise TypeError(f"cannot read a table from {type(source).__name__}")
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _csv_records(
    source: Any, columns: list[str], required: Iterable[str], error
) -> list[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, {column: trimmed text}) for every non-blank row; header problems raise."""
    data = _read_bytes(source)
    if data is None:
        return []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            [f"the file is not UTF-8 text (byte {exc.start + 1}); save it as CSV UTF-8"]
        ) from None
    if not text.strip():
        return []
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:  # e.g. an unclosed quote that swallows the rest of the file
        raise error(
            [f"the file is not readable as CSV ({exc}); check for an unclosed quote"]
        ) from None
    # The first non-blank row is the header.
    start = 0
    while start < len(rows) and not any(c.strip() for c in rows[start]):
        start += 1
    if start == len(rows):
        return []  # only blank cells: an empty file
    header = [h.strip().lower() for h in rows[start]]
    header_row = start + 1
    problems = []
    seen: dict[str, int] = {}
    for pos, name in enumerate(header):
        if name and name in seen:
            problems.append(
                f"row {header_row}, column {name}: the column appears twice (columns {seen[name] + 1} and {pos + 1})"
            )
        seen.setdefault(name, pos)
    for name in required:
        if name not in seen:
            problems.append(
                f"row {header_row}, column {name}: the column is missing (expected columns: {', '.join(columns)})"
            )
    if problems:
        raise error(problems)
    records = []
    for offset, cells in enumerate(rows[start + 1 :]):
        rownum = header_row + 1 + offset
        broken = next((pos for pos, c in enumerate(cells) if "\n" in c or "\r" in c), None)
        if broken is not None:
            # No cell may hold a line break: one that does is a quote left open, which swallows the lines
            # after it (every later row) into one cell. Say so, instead of whatever else that row now lacks.
            column = (
                header[broken]
                if broken < len(header) and header[broken]
                else f"column {broken + 1}"
            )
            raise error(
                [
                    f'row {rownum}, column {column}: unclosed quote: the cell\'s opening " has no closing " '
                    "on the same line, so the lines after it were read into it; close the quote"
                ]
            )
        if not any(c.strip() for c in cells):
            continue
        extra = [c for c in cells[len(header) :] if c.strip()]
        record = {
            name: (_cell(cells[pos]) if pos < len(cells) else "")
            for name, pos in seen.items()
            if name in columns
        }
        if extra:
            record["__extra__"] = (
                f"row {rownum}: {len(cells)} cells but the header has {len(header)} columns"
            )
        records.append((rownum, record))
    return records


def _frame_records(
    df: pd.DataFrame | None, columns: list[str], required: Iterable[str], error
) -> list[tuple[int, dict[str, Any]]]:
    """The same as :func:`_csv_records` for an already-parsed table (row numbers as in its CSV form)."""
    if df is None:
        return []
    names = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in required if c not in names]
    if missing:
        raise error(
            [
                f"row 1, column {c}: the column is missing (expected columns: {', '.join(columns)})"
                for c in missing
            ]
        )
    picked = {c: df[names[c]].tolist() for c in columns if c in names}
    records = []
    for pos in range(len(df)):
        record = {c: _cell(values[pos]) for c, values in picked.items()}
        if not any(v != "" for v in record.values()):
            continue  # a blank row, e.g. the empty last row of a data editor
        records.append((pos + 2, record))
    return records


def _cell(value: Any) -> Any:
    """A cell as trimmed text, or the number it already is; empty and missing -> ''."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return _cell(value.item())
    text = str(value).strip()
    if text[:1] == "'" and text[1:2] in FORMULA_PREFIXES:
        text = text[
            1:
        ]  # our own CSV exports prefix formula-like names with ' (lib/export.py): undo it
    return text


# ------------------------------------------------------------------ checking


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip() if isinstance(value, str) else None
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _check_currency(rownum: int, column: str, raw: Any, problems: list[str]) -> str | None:
    text = str(raw).strip() if raw != "" else ""
    if not text:
        problems.append(
            f"row {rownum}, column {column}: empty; give an ISO 4217 currency code such as USD or EUR"
        )
        return None
    code = text.upper()
    if code in CURRENCY_CODES:
        return code
    if code in _NOT_MONEY:
        problems.append(
            f"row {rownum}, column {column}: {text!r} is {_NOT_MONEY[code]}, not a currency"
        )
    elif code in WITHDRAWN_CODES:
        problems.append(
            f"row {rownum}, column {column}: {text!r} is no longer an ISO 4217 currency code "
            f"(replaced by {WITHDRAWN_CODES[code]})"
        )
    else:
        problems.append(f"row {rownum}, column {column}: {text!r} is not an ISO 4217 currency code")
    return None


def _check_amount(
    rownum: int, column: str, raw: Any, problems: list[str], *, positive: bool, maximum: float
) -> float | None:
    if raw == "":
        problems.append(f"row {rownum}, column {column}: empty; give a number")
        return None
    number = _number(raw)
    if number is None or not math.isfinite(number):
        hint = " (use a dot for decimals and no thousands separator)" if "," in str(raw) else ""
        problems.append(f"row {rownum}, column {column}: {raw!r} is not a number{hint}")
        return None
    if number < 0:
        problems.append(f"row {rownum}, column {column}: {raw!r} is negative")
        return None
    if positive and number == 0:
        problems.append(
            f"row {rownum}, column {column}: {raw!r} is zero; a rate must be greater than 0"
        )
        return None
    if number > maximum:
        problems.append(
            f"row {rownum}, column {column}: {raw!r} is more than {maximum:,.0f}, so it cannot be right"
        )
        return None
    return number


def _validate_price_records(
    records: list[tuple[int, dict[str, Any]]], *, blank_price_ok: bool = False
) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The checked book, and (with ``blank_price_ok``) the rows left out because their price is blank."""
    problems = ProblemList()
    out: dict[str, list] = {c: [] for c in PRICE_BOOK_COLUMNS}
    by_id: dict[tuple[str, str], int] = {}
    by_name: dict[tuple[str, str], int] = {}
    left_unpriced: list[tuple[int, str]] = []
    for rownum, rec in records:
        blank = blank_price_ok and rec.get("unit_price", "") == ""
        if "__extra__" in rec:
            problems.append(rec["__extra__"])
        integration = str(rec.get("integration", "")).strip()
        license_id = str(rec.get("license_id", "")).strip()
        license_name = str(rec.get("license_name", "")).strip()
        if blank and not (integration or license_id or license_name):
            continue  # no price and no license named: an unused row (a currency or period at most)
        for column, text in (
            ("integration", integration),
            ("license_id", license_id),
            ("license_name", license_name),
        ):
            bad = unsafe_character(text)
            if bad:
                # A NUL cannot be stored (PostgreSQL), a line break would split the row in a spreadsheet,
                # a bidi control disguises the text: refuse them here, with where they are.
                problems.append(
                    f"row {rownum}, column {column}: holds a control character ({bad}: a line break, "
                    "tab, NUL or text-direction mark); remove it"
                )
        if not integration:
            problems.append(
                f"row {rownum}, column integration: empty; name the integration, e.g. GitHub"
            )
        if not license_id and not license_name:
            problems.append(
                f"row {rownum}, column license_id: empty, and so is license_name; give one of them"
            )
        if blank:
            # No price: the license stays unpriced. What else the row says must still be right.
            if str(rec.get("currency", "")).strip():
                _check_currency(rownum, "currency", rec.get("currency", ""), problems)
            period_text = str(rec.get("billing_period", "")).strip()
            if period_text and period_text.lower() not in BILLING_PERIODS:
                problems.append(
                    f"row {rownum}, column billing_period: {period_text!r} is not a billing period; "
                    "use monthly or annual"
                )
            left_unpriced.append(
                (
                    rownum,
                    price_row_label(
                        integration_label(integration) if integration else None,
                        license_id or None,
                        license_name,
                    ),
                )
            )
            continue
        price = _check_amount(
            rownum,
            "unit_price",
            rec.get("unit_price", ""),
            problems,
            positive=False,
            maximum=MAX_UNIT_PRICE,
        )
        currency = _check_currency(rownum, "currency", rec.get("currency", ""), problems)
        period_raw = str(rec.get("billing_period", "")).strip()
        period: str | None = period_raw.lower()
        if period not in BILLING_PERIODS:
            what = "empty" if not period_raw else f"{period_raw!r} is not a billing period"
            problems.append(f"row {rownum}, column billing_period: {what}; use monthly or annual")
            period = None
        if integration:
            ikey = integration_key(integration)
            label = integration_label(integration)
            if license_id:
                first = by_id.setdefault((ikey, license_id), rownum)
                if first != rownum:
                    problems.append(
                        f"row {rownum}, column license_id: duplicate key: {label} license id "
                        f"{license_id!r} is already priced on row {first}"
                    )
            elif license_name:
                first = by_name.setdefault((ikey, license_name.casefold()), rownum)
                if first != rownum:
                    problems.append(
                        f"row {rownum}, column license_name: duplicate key: {label} license name "
                        f"{license_name!r} (ignoring case) is already priced on row {first}"
                    )
        out["integration"].append(integration or None)
        out["license_id"].append(license_id or None)
        out["license_name"].append(license_name or None)
        out["unit_price"].append(price)
        out["currency"].append(currency)
        out["billing_period"].append(period)
    if problems:
        raise PriceBookError(problems)
    book = pd.DataFrame(
        {c: pd.array(out[c], dtype=PRICE_BOOK_DTYPES[c]) for c in PRICE_BOOK_COLUMNS}
    )
    return book, left_unpriced


_PRICE_REQUIRED = ("integration", "unit_price", "currency", "billing_period")


def empty_price_book() -> pd.DataFrame:
    return pd.DataFrame({c: pd.array([], dtype=t) for c, t in PRICE_BOOK_DTYPES.items()})


def load_price_book(source: Any) -> pd.DataFrame:
    """A checked price book from a path, a file-like object or bytes (None: an empty book).

    Raises :class:`PriceBookError` listing every problem; returns the entries
    with :data:`PRICE_BOOK_COLUMNS` (currency upper case, period lower case,
    empty text as NA). A header-only file is an empty, valid book.
    A missing ``license_id`` or ``license_name`` column is read as empty.
    """
    records = _csv_records(source, PRICE_BOOK_COLUMNS, _PRICE_REQUIRED, PriceBookError)
    return _validate_price_records(records)[0]


def validate_price_book(df: pd.DataFrame | None) -> pd.DataFrame:
    """The checks of :func:`load_price_book` on a table already in memory (e.g. from a data editor).

    Rows are numbered as in the CSV form (first entry: row 2); blank rows are skipped.
    """
    if df is None or (len(df) == 0 and len(df.columns) == 0):
        return empty_price_book()
    records = _frame_records(df, PRICE_BOOK_COLUMNS, _PRICE_REQUIRED, PriceBookError)
    return _validate_price_records(records)[0]


@dataclass(frozen=True)
class PriceTable:
    """A price table as the admin gave it: the checked ``book``, and the rows left without a price.

    ``left_unpriced``: (row number as in the CSV form, the row's name) of each row whose price cell is
    blank: a partly filled template. Those licenses stay unpriced; the rest is the book.
    """

    book: pd.DataFrame
    left_unpriced: list[tuple[int, str]]

    def unpriced_words(self) -> str:
        """The rows left without a price, said once ("" when none)."""
        n = len(self.left_unpriced)
        if not n:
            return ""
        names = ", ".join(name for _, name in self.left_unpriced[:5])
        more = f" and {n - 5} more" if n > 5 else ""
        return (
            f"{n} license{'s' if n != 1 else ''} left without a price, so "
            f"{'its' if n == 1 else 'their'} spend stays unknown: {names}{more}."
        )


def read_price_table(source: Any) -> PriceTable:
    """:func:`load_price_book`, but a row whose price cell is blank is left out (it stays unpriced)
    instead of refused: a partly filled template. Every other problem still refuses the whole file."""
    records = _csv_records(source, PRICE_BOOK_COLUMNS, _PRICE_REQUIRED, PriceBookError)
    return PriceTable(*_validate_price_records(records, blank_price_ok=True))


def check_price_table(df: pd.DataFrame | None) -> PriceTable:
    """:func:`read_price_table` on a table already in memory (the Price book's editor)."""
    if df is None or (len(df) == 0 and len(df.columns) == 0):
        return PriceTable(empty_price_book(), [])
    records = _frame_records(df, PRICE_BOOK_COLUMNS, _PRICE_REQUIRED, PriceBookError)
    return PriceTable(*_validate_price_records(records, blank_price_ok=True))


def _format_number(x: Any) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return ""
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def price_book_to_csv(df: pd.DataFrame | None) -> bytes:
    """The price book as UTF-8 CSV bytes in the exchange format (what :func:`load_price_book` reads):
    ``integration`` the machine name, then ``integration_label`` in words (the load ignores it)."""
    book = validate_price_book(df) if df is not None else empty_price_book()
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=LINE_END)
    columns = [*PRICE_BOOK_COLUMNS[:1], "integration_label", *PRICE_BOOK_COLUMNS[1:]]
    writer.writerow(columns)
    for row in book.itertuples(index=False):
        rec = row._asdict()
        named = rec["integration"] if isinstance(rec["integration"], str) else None
        rec["integration"] = integration_key(named) if named else None
        rec["integration_label"] = integration_label(named) if named else None
        writer.writerow(
            [
                ""
                if pd.isna(rec[c])
                else (_format_number(rec[c]) if c == "unit_price" else safe_cell(str(rec[c])))
                for c in columns
            ]
        )
    return buf.getvalue().encode("utf-8")


# ----------------------------------------------------------- exchange rates


def _reporting_code(reporting_currency: str) -> str:
    code = (reporting_currency or "").strip().upper()
    if code not in CURRENCY_CODES:
        raise FxRatesError(
            [f"reporting currency {reporting_currency!r} is not an ISO 4217 currency code"]
        )
    return code


def _validate_fx_records(
    records: list[tuple[int, dict[str, Any]]], reporting_currency: str
) -> dict[str, float]:
    reporting = _reporting_code(reporting_currency)
    problems = ProblemList()
    rates: dict[str, float] = {reporting: 1.0}
    first_row: dict[str, int] = {}
    for rownum, rec in records:
        if "__extra__" in rec:
            problems.append(rec["__extra__"])
        code = _check_currency(rownum, "currency", rec.get("currency", ""), problems)
        rate = _check_amount(
            rownum, "rate", rec.get("rate", ""), problems, positive=True, maximum=MAX_FX_RATE
        )
        if code is None:
            continue
        first = first_row.setdefault(code, rownum)
        if first != rownum:
            problems.append(
                f"row {rownum}, column currency: duplicate: {code} already has a rate on row {first}"
            )
            continue
        if rate is None:
            continue
        if code == reporting:
            if not math.isclose(rate, 1.0, rel_tol=0, abs_tol=1e-12):
                problems.append(
                    f"row {rownum}, column rate: {code} is the reporting currency, so its rate is 1, not {rec.get('rate')!r}"
                )
            continue
        rates[code] = rate
    if problems:
        raise FxRatesError(problems)
    return rates


def load_fx_rates(source: Any, reporting_currency: str = "USD") -> dict[str, float]:
    """{currency: rate to the reporting currency} from CSV ``currency,rate`` (None: no rates).

    The reporting currency is always in the result with rate 1; a row for it
    with any other rate is a problem. Raises :class:`FxRatesError` listing every problem.
    """
    records = _csv_records(source, FX_COLUMNS, FX_COLUMNS, FxRatesError)
    return _validate_fx_records(records, reporting_currency)


def validate_fx_rates(df: pd.DataFrame | None, reporting_currency: str = "USD") -> dict[str, float]:
    """The checks of :func:`load_fx_rates` on a table already in memory."""
    if df is None or (len(df) == 0 and len(df.columns) == 0):
        return {_reporting_code(reporting_currency): 1.0}
    records = _frame_records(df, FX_COLUMNS, FX_COLUMNS, FxRatesError)
    return _validate_fx_records(records, reporting_currency)


def fx_rates_to_csv(rates: dict[str, float], reporting_currency: str = "USD") -> bytes:
    """Rates as CSV ``currency,rate`` (the reporting currency's own rate of 1 left out)."""
    reporting = _reporting_code(reporting_currency)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=LINE_END)
    writer.writerow(FX_COLUMNS)
    for code in sorted(rates):
        if code != reporting:
            writer.writerow([code, repr(float(rates[code]))])
    return buf.getvalue().encode("utf-8")
