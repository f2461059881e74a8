"""Reading vendor values (seat counts, flags, amounts, currencies) column by column, each problem reported."""

from __future__ import annotations

import math
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_INT_TEXT = re.compile(r"^\s*\+?(\d+)(?:\.0*)?\s*$")
_NUM_TEXT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")

MAX_SEATS = 10**9  # more seats than that is a corrupt value, not a license
MAX_UNIT_PRICE = (
    10_000_000.0  # per seat and billing period, in any currency: more is a typo or a corrupt value
)
MAX_FX_RATE = 1_000_000.0  # units of the reporting currency per unit of another


def _read_quantity(value: Any) -> tuple[int | None, str | None]:
    """(seats, problem kind) for one value that is not a plain, plausible int."""
    seats, kind = _read_quantity_raw(value)
    if seats is not None and seats > MAX_SEATS:
        return None, "implausible_quantity"
    return seats, kind


def _read_quantity_raw(value: Any) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bool):
        return None, "non_numeric_quantity"
    if isinstance(value, int):
        return (value, None) if value >= 0 else (None, "negative_quantity")
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, "non_numeric_quantity"
        if value < 0:
            return None, "negative_quantity"
        if not value.is_integer():
            return None, "fractional_quantity"
        return int(value), None
    if isinstance(value, str):
        m = _INT_TEXT.match(value)
        if m:
            return int(m.group(1)), None
        if _NUM_TEXT.match(value):
            number = float(value)
            if number < 0:
                return None, "negative_quantity"
            return None, "fractional_quantity"
        if value.strip() == "":
            return None, None
        return None, "non_numeric_quantity"
    return None, "non_numeric_quantity"


_QUANTITY_WORDS = {
    "negative_quantity": "is negative",
    "fractional_quantity": "is not a whole number of seats",
    "non_numeric_quantity": "is not a number",
    "implausible_quantity": f"is more than {MAX_SEATS:,} seats, so it cannot be right",
}


def _quantities(raw: list, ids: list, fieldname: str, report) -> pa.Array:
    """Parse one quantity column into an int64 arrow array (null: not reported)."""
    if set(map(type, raw)) <= {int, type(None)}:  # the clean case, converted in C
        try:
            arr = pa.array(raw, type=pa.int64())
        except (pa.ArrowInvalid, OverflowError):  # beyond 64 bits: checked one by one below
            arr = None
        if (
            arr is not None
            and not pc.any(pc.or_(pc.less(arr, 0), pc.greater(arr, MAX_SEATS))).as_py()
        ):
            return arr
    values: list[int | None] = []
    for i, v in enumerate(raw):
        if type(v) is int and 0 <= v <= MAX_SEATS:
            values.append(v)
            continue
        number, kind = _read_quantity(v)
        if kind:
            report(
                ids[i],
                fieldname,
                kind,
                f"{fieldname} {v!r} {_QUANTITY_WORDS[kind]}; shown as not reported",
            )
        values.append(number)
    return pa.array(values, type=pa.int64())


def _booleans(raw: list, ids: list, report) -> list:
    if set(map(type, raw)) <= {bool, type(None)}:
        return raw
    out = []
    for i, v in enumerate(raw):
        if v is None or isinstance(v, bool):
            out.append(v)
        elif isinstance(v, str) and v.strip().lower() in ("true", "false"):
            out.append(v.strip().lower() == "true")
        else:
            report(
                ids[i],
                "is_paid",
                "not_boolean",
                f"is_paid {v!r} is not true or false; shown as not reported",
            )
            out.append(None)
    return out


def _amounts(raw: list, ids: list, report) -> list[float | None]:
    out: list[float | None] = []
    for i, v in enumerate(raw):
        if v is None:
            out.append(None)
            continue
        number: float | None = None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            number = float(v)
        elif isinstance(v, str) and _NUM_TEXT.match(v):
            number = float(v)
        if number is None or not math.isfinite(number):
            report(
                ids[i],
                "unit_amount",
                "non_numeric_amount",
                f"unit_amount {v!r} is not a number; shown as not reported",
            )
            out.append(None)
        elif number > MAX_UNIT_PRICE:
            report(
                ids[i],
                "unit_amount",
                "implausible_amount",
                f"unit_amount {v!r} is more than {MAX_UNIT_PRICE:,.0f} "
                "per seat, so it cannot be right; shown as not reported",
            )
            out.append(None)
        elif number < 0:
            report(
                ids[i],
                "unit_amount",
                "negative_amount",
                f"unit_amount {v!r} is negative; shown as not reported",
            )
            out.append(None)
        else:
            out.append(number)
    return out


def _currencies(raw: list, ids: list, report) -> list[str | None]:
    out: list[str | None] = []
    for i, v in enumerate(raw):
        if v is None or v == "":
            out.append(None)
        elif isinstance(v, str) and _CURRENCY.match(v.strip()):
            out.append(v.strip().upper())
        else:
            report(
                ids[i],
                "currency",
                "bad_currency",
                f"currency {v!r} is not an ISO 4217 code; shown as not reported",
            )
            out.append(None)
    return out


def _amount_array(raw: list, ids: list, report) -> pa.Array:
    """:func:`_amounts` as a float64 Arrow array.

    The clean case (every value an int, a float or None, each finite, 0 to MAX_UNIT_PRICE) is converted
    in C: those are exactly the values :func:`_amounts` takes as they are, without a word. Anything else
    (text, a bool, NaN, a negative or huge amount, an int a double cannot hold exactly) is read value by
    value by :func:`_amounts`, so each problem is reported as before.
    """
    if set(map(type, raw)) <= {float, int, type(None)}:
        try:
            arr = pa.array(raw, type=pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            arr = None
        if arr is not None and (
            arr.null_count == len(arr)
            or pc.all(
                pc.and_(
                    pc.is_finite(arr),
                    pc.and_(pc.greater_equal(arr, 0.0), pc.less_equal(arr, MAX_UNIT_PRICE)),
                )
            ).as_py()
        ):
            return arr
    return pa.array(_amounts(raw, ids, report), type=pa.float64())


_CURRENCY_RE2 = r"^[A-Za-z]{3}$"


def _currency_array(raw: list, ids: list, report) -> pa.Array:
    """:func:`_currencies` as a large_string Arrow array.

    The clean case (every value None or exactly three ASCII letters, no space around them) is checked
    and upper-cased in C; anything else (an empty string, spaces, another length or alphabet, a value
    that is not text) is read value by value by :func:`_currencies`, so each problem is reported as before.
    """
    if set(map(type, raw)) <= {str, type(None)}:
        try:
            arr = pa.array(raw, type=pa.large_string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
            arr = None
        if arr is not None and (
            arr.null_count == len(arr)
            or pc.all(pc.match_substring_regex(arr, _CURRENCY_RE2)).as_py()
        ):
            return pc.ascii_upper(arr)
    return pa.array(_currencies(raw, ids, report), type=pa.large_string())
