"""The rules: what is paid, free or unpriced; the flags and their order; how utilization rounds;
which fetch outcomes failed; which currency codes a price can be in.

Each rule is defined here once and used by the metrics, the totals, the pages and the command
line alike. docs/metrics.md states them for a finance reader.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lib.analytics._engine import _codes_of, _masked
from lib.schema import CURRENCY_CODES

# ------------------------------------------------------------------ currencies

# The ISO 4217 list itself lives in the base layer (lib.schema): the store checks currencies too.

# Withdrawn codes people still type, and what replaced them.
WITHDRAWN_CODES = {
    "ANG": "XCG",
    "BGN": "EUR",
    "CUC": "CUP",
    "EEK": "EUR",
    "HRK": "EUR",
    "LTL": "EUR",
    "LVL": "EUR",
    "MRO": "MRU",
    "SKK": "EUR",
    "SLL": "SLE",
    "STD": "STN",
    "VEF": "VES",
    "ZWL": "ZWG",
    "BYR": "BYN",
}


def is_currency_code(code: Any) -> bool:
    return isinstance(code, str) and code.strip().upper() in CURRENCY_CODES


def currency_code(value: Any) -> str | None:
    """``value`` as an ISO 4217 code a price can be in ("usd " -> "USD"), or None when it is not one."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    return code if code in CURRENCY_CODES else None


# ------------------------------------------------------------------ price sources and flags

PRICE_SOURCES = ("price_book", "vendor", "free", "unpriced")

# The flags, as stored (categorical order). A row's flag is the first that applies in
# FLAG_PRECEDENCE; tables list rows worst first, in FLAG_SEVERITY.
# ``not_known``: the vendor does not say whether the license is paid and it has no price, so it is
# neither paid nor free (:func:`not_known_rule`): never under-used, over-allocated or at capacity
# until someone gives it a price (0 for a free one). The seat tiles count paid licenses, so a flag
# that calls for action (over-allocated, under-used, at capacity) is only ever on a paid license.
FLAGS = ("over_allocated", "under_used", "at_capacity", "not_reported", "not_known", "ok", "free")
FLAG_PRECEDENCE = (
    "free",
    "not_reported",
    "not_known",
    "over_allocated",
    "under_used",
    "at_capacity",
    "ok",
)
FLAG_SEVERITY = (
    "over_allocated",
    "under_used",
    "at_capacity",
    "ok",
    "not_known",
    "not_reported",
    "free",
)


# ------------------------------------------------------------------ paid, free, unpriced

PAID_RULE = (
    "paid = the vendor says paid, or the vendor does not say and the license has a price above 0; "
    "the vendor saying not paid always counts as free; the vendor not saying and no price is "
    "not known (neither paid nor free), counted apart"
)


def paid_rule(
    paid: np.ndarray, paid_na: np.ndarray, price: np.ndarray, price_na: np.ndarray
) -> np.ndarray:
    """Paid: the vendor says paid, or it does not say and the annual price is known and above 0."""
    return (~paid_na & paid) | (paid_na & ~price_na & (price > 0))


def free_rule(
    paid: np.ndarray, paid_na: np.ndarray, price: np.ndarray, price_na: np.ndarray
) -> np.ndarray:
    """Free: the vendor says not paid, or it does not say and the annual price is known to be 0.

    Neither paid nor free: the vendor does not say and there is no price (its cost is unknown).
    """
    return (~paid_na & ~paid) | (paid_na & ~price_na & (price == 0))


def not_known_rule(
    paid: np.ndarray, paid_na: np.ndarray, price: np.ndarray, price_na: np.ndarray
) -> np.ndarray:
    """Not known: the vendor does not say whether it is paid and there is no price (neither
    :func:`paid_rule` nor :func:`free_rule`). Counted apart from paid and free everywhere; a price
    (0 for a free one) moves it to paid or free."""
    return paid_na & price_na


def needs_price_rule(unpriced: np.ndarray, paid: np.ndarray, paid_na: np.ndarray) -> np.ndarray:
    """ "Paid licenses without a price": no price, and the vendor says paid or does not say (Microsoft 365,
    Cisco Meraki never say). One rule for the pages, the summary and the command line."""
    return unpriced & (paid_na | paid)


def _paid_and_price(df: pd.DataFrame):
    paid, paid_na = _masked(df["is_paid"], "boolean", bool)
    price, price_na = _masked(df["annual_unit_price"], "Float64", np.float64)
    return paid, paid_na, price, price_na


def paid_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows of a table with metrics counted as paid licenses (:func:`paid_rule`, :data:`PAID_RULE`)."""
    return paid_rule(*_paid_and_price(df))


def free_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows of a table with metrics known to be free (:func:`free_rule`)."""
    return free_rule(*_paid_and_price(df))


def not_known_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows whose paid status is not known (:func:`not_known_rule`)."""
    return not_known_rule(*_paid_and_price(df))


def unpriced_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows without a price: ``price_source`` is ``unpriced`` (or missing)."""
    source = _codes_of(df["price_source"], PRICE_SOURCES)
    return (source < 0) | (source == PRICE_SOURCES.index("unpriced"))


def needs_price(df: pd.DataFrame) -> np.ndarray:
    """Paid (or paid-status-not-reported) licenses without a price (:func:`needs_price_rule`)."""
    paid, paid_na = _masked(df["is_paid"], "boolean", bool)
    return needs_price_rule(unpriced_mask(df), paid, paid_na)


def priced_paid(df: pd.DataFrame) -> np.ndarray:
    """Paid licenses with a price above 0 (price book or vendor)."""
    price = df["annual_unit_price"].to_numpy(dtype=np.float64, na_value=np.nan)
    return paid_mask(df) & (np.nan_to_num(price, nan=0.0) > 0)


# ------------------------------------------------------------------ utilization


def utilization_tenths(assigned: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(100 x assigned / bought in percent, rounded half up to one decimal, exactly in integers; NA mask).

    NA where nothing was bought (total <= 0). The same rounding as each row's ``utilization_pct``
    (``lib.truto.normalize.seat_arithmetic``).
    """
    safe = np.where(total > 0, total, 1)
    return (2000 * assigned + safe) // (2 * safe) / 10.0, total <= 0
