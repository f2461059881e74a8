"""Spend, idle spend, savings and flags per license row, and their totals.

What is measured is *allocation*: seats assigned against seats bought, as the
vendors report them through Truto. Nobody's activity is measured here; a seat
assigned to someone who never logs in counts as used.

Per row (:func:`add_metrics`, columns :data:`METRIC_COLUMNS`):

- ``unit_price`` / ``currency`` / ``billing_period`` / ``price_source``: the
  price-book entry for the license (``price_book``); else the vendor's
  ``unit_amount`` in its currency, for ``MetricOptions.vendor_price_period``
  (``vendor``; only DocuSign sends one); else 0 when the vendor says the
  license is not paid (``free``); else nothing (``unpriced``).
- ``annual_unit_price`` = unit price x 12 for monthly prices, x 1 for annual.
- ``annual_cost`` = annual unit price x total seats; ``idle_annual_cost`` = x
  unassigned seats; ``true_up_exposure`` = x over-allocated seats (seats in use
  beyond what was bought, which a vendor may bill at true-up), all in the
  row's own currency.
- ``*_reporting``: the same converted to ``reporting_currency`` with the
  row's exchange rate; empty when there is no rate for the row's currency
  (a zero amount is zero in any currency).
- ``recommended_seats`` = ceil(assigned x (1 + buffer)), computed exactly;
  ``potential_annual_savings`` = max(total - recommended, 0) x annual unit price.
- ``flag``: ``free`` (a free license, see :func:`free_mask`: it costs nothing,
  so it is never under-used, over-allocated or a saving) > ``not_reported``
  (assigned or total seats not reported) > ``over_allocated`` > ``under_used``
  (utilization_pct below the threshold) > ``at_capacity`` (utilization_pct at
  or above the threshold) > ``ok``. The thresholds are compared with the
  table's ``utilization_pct`` (one decimal). A free license has no
  ``recommended_seats`` (there is nothing to cut).

Empty, never 0: a figure whose inputs are not known is NA. A free license is
known to cost 0.

Rounding: everything is computed at full float precision; each money amount
(``annual_cost`` to ``potential_annual_savings_reporting``) is then rounded to
cents, halves to even (numpy's ``round``). ``unit_price`` and
``annual_unit_price`` are rates, kept as given. Totals are sums of the rounded
row amounts, added in whole cents, so a total always equals the sum of the
rows shown.

Totals never mix currencies: they add the ``*_reporting`` figures only. A
row with a known amount in a currency without a rate is left out of them, and
:attr:`Summary.excluded_by_currency` says how much was left out, per currency.

Types (:data:`METRIC_DTYPES`): money and prices are ``Float64``,
``recommended_seats`` is ``Int64``, and the five text columns (``currency``,
``billing_period``, ``price_source``, ``reporting_currency``, ``flag``) are
categoricals of their few values, which keeps a million rows fast and small;
compare them with strings as usual (``df["flag"] == "ok"``).

Totals (:func:`summarize`, :func:`group_summary`, the chart helpers) accept
the table, or a :class:`PreparedMetrics` from :func:`prepare`, which reads the
table once for any number of totals: prefer it when drawing several.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.integrations import integration_key
from lib.analytics.pricing import BILLING_PERIODS, CURRENCY_CODES, PERIODS_PER_YEAR, validate_price_book
from lib.schema import SETTINGS_DEFAULTS

PRICE_SOURCES = ("price_book", "vendor", "free", "unpriced")
FLAGS = ("over_allocated", "under_used", "at_capacity", "not_reported", "ok", "free")

METRIC_COLUMNS: list[str] = [
    "unit_price",
    "currency",
    "billing_period",
    "price_source",
    "annual_unit_price",
    "annual_cost",
    "idle_annual_cost",
    "true_up_exposure",
    "annual_cost_reporting",
    "idle_annual_cost_reporting",
    "true_up_exposure_reporting",
    "reporting_currency",
    "recommended_seats",
    "potential_annual_savings",
    "potential_annual_savings_reporting",
    "flag",
]

METRIC_DTYPES: dict[str, str] = {
    "unit_price": "Float64",
    "currency": "category",          # the currencies present, sorted
    "billing_period": "category",    # BILLING_PERIODS
    "price_source": "category",      # PRICE_SOURCES
    "annual_unit_price": "Float64",
    "annual_cost": "Float64",
    "idle_annual_cost": "Float64",
    "true_up_exposure": "Float64",
    "annual_cost_reporting": "Float64",
    "idle_annual_cost_reporting": "Float64",
    "true_up_exposure_reporting": "Float64",
    "reporting_currency": "category",
    "recommended_seats": "Int64",
    "potential_annual_savings": "Float64",
    "potential_annual_savings_reporting": "Float64",
    "flag": "category",              # FLAGS
}

# Money amounts, rounded to cents per row.
MONEY_COLUMNS = (
    "annual_cost", "idle_annual_cost", "true_up_exposure",
    "annual_cost_reporting", "idle_annual_cost_reporting", "true_up_exposure_reporting",
    "potential_annual_savings", "potential_annual_savings_reporting",
)

MEASURE = "allocation: seats assigned against seats bought, as the vendor reports them; not activity"

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
    "price_source": "Price from",
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
    "ok": "OK",
    "free": "Free (costs nothing: nothing to act on)",
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

# Ready-made group-bys: name -> columns.
GROUPINGS: dict[str, list[str]] = {
    "integration": ["integration_label"],
    "account": ["integration_label", "account_id"],
    "tenant": ["tenant_id"],
    "organization": ["integration_label", "organization_name"],
    "license": ["integration_label", "license_name"],
}


# ------------------------------------------------------------------ options

class FrozenRates(Mapping[str, float]):
    """An immutable, hashable {currency: rate to the reporting currency}."""

    def __init__(self, rates: Mapping[str, float] | Sequence[tuple[str, float]] | None = None):
        items = rates.items() if isinstance(rates, Mapping) else (rates or ())
        clean: dict[str, float] = {}
        for code, rate in items:
            code = str(code).strip().upper()
            if code not in CURRENCY_CODES:
                raise ValueError(f"exchange rate for {code!r}: not an ISO 4217 currency code")
            rate = float(rate)
            if not math.isfinite(rate) or rate <= 0:
                raise ValueError(f"exchange rate for {code}: {rate!r} is not a positive number")
            clean[code] = rate
        self._items = tuple(sorted(clean.items()))
        self._dict = dict(self._items)

    def __getitem__(self, key: str) -> float:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenRates({dict(self._items)!r})"

    def __reduce__(self):
        return (FrozenRates, (self._items,))


@dataclass(frozen=True)
class MetricOptions:
    """How to price, convert and flag. Hashable, so it can key a cache.

    ``fx_rates``: {currency: units of the reporting currency one unit buys};
    the reporting currency's own rate (1) is added. ``buffer``: headroom for
    ``recommended_seats`` as a fraction (0.10 = 10%). ``under_used_pct`` /
    ``at_capacity_pct``: thresholds on ``utilization_pct``.
    ``vendor_price_period``: the period a vendor's ``unit_amount`` is taken to cover.
    """

    reporting_currency: str = str(SETTINGS_DEFAULTS["reporting_currency"])
    fx_rates: Mapping[str, float] = field(default_factory=FrozenRates)
    buffer: float = float(SETTINGS_DEFAULTS["buffer"])  # type: ignore[arg-type]
    under_used_pct: float = float(SETTINGS_DEFAULTS["under_used_pct"])  # type: ignore[arg-type]
    at_capacity_pct: float = float(SETTINGS_DEFAULTS["at_capacity_pct"])  # type: ignore[arg-type]
    vendor_price_period: str = str(SETTINGS_DEFAULTS["vendor_price_period"])

    def __post_init__(self):
        code = str(self.reporting_currency or "").strip().upper()
        if code not in CURRENCY_CODES:
            raise ValueError(f"reporting currency {self.reporting_currency!r} is not an ISO 4217 currency code")
        rates = FrozenRates(self.fx_rates)
        if code in rates and rates[code] != 1.0:
            raise ValueError(f"{code} is the reporting currency, so its rate is 1, not {rates[code]!r}")
        rates = FrozenRates({**dict(rates), code: 1.0})
        for name in ("buffer", "under_used_pct", "at_capacity_pct"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        period = str(self.vendor_price_period).strip().lower()
        if period not in BILLING_PERIODS:
            raise ValueError(f"vendor_price_period must be one of {', '.join(BILLING_PERIODS)}, not {self.vendor_price_period!r}")
        object.__setattr__(self, "reporting_currency", code)
        object.__setattr__(self, "fx_rates", rates)
        object.__setattr__(self, "buffer", float(self.buffer))
        object.__setattr__(self, "under_used_pct", float(self.under_used_pct))
        object.__setattr__(self, "at_capacity_pct", float(self.at_capacity_pct))
        object.__setattr__(self, "vendor_price_period", period)

    def rate(self, currency: str | None) -> float | None:
        """Units of the reporting currency per unit of ``currency``; None when there is no rate."""
        if currency is None:
            return None
        return self.fx_rates.get(str(currency).strip().upper())


# ------------------------------------------------------------------ helpers

def _masked(series: pd.Series, dtype: str, np_dtype) -> tuple[np.ndarray, np.ndarray]:
    """(values with NA as 0, NA mask) as numpy arrays. May share the column's memory: do not modify."""
    arr = series.array
    if str(arr.dtype) != dtype:
        arr = pd.array(series, dtype=dtype)
    na_value = False if np_dtype is bool else 0
    return arr.to_numpy(dtype=np_dtype, na_value=na_value), np.asarray(arr.isna())


def _raw(series: pd.Series, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, NA mask) of a nullable column without copying when possible.

    The values under the mask are unspecified (not necessarily 0): use only
    where every result computed from them is masked by the same NA mask.
    """
    arr = series.array
    if str(arr.dtype) != dtype:
        arr = pd.array(series, dtype=dtype)
    data, mask = getattr(arr, "_data", None), getattr(arr, "_mask", None)
    if isinstance(data, np.ndarray) and isinstance(mask, np.ndarray) and len(data) == len(arr):
        return data, mask
    return _masked(series, dtype, np.float64 if dtype == "Float64" else np.int64)


def _arrow_strings(series: pd.Series) -> pa.Array:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("string")
    arr = series.array
    try:
        out = pa.array(arr)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        out = pa.array(pd.array(series, dtype="string"))
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    if not pa.types.is_string(out.type) and not pa.types.is_large_string(out.type):
        out = pa.array(pd.array(series.astype("string"), dtype="string"))
    return out


def _encode(series: pd.Series, na_last: bool = False) -> tuple[np.ndarray, list]:
    """(int32 codes, the distinct values) of a text column; NA is -1, or len(values) with ``na_last``."""
    if len(series) == 0:
        return np.zeros(0, dtype=np.int32), []
    enc = pc.dictionary_encode(_arrow_strings(series))
    indices = enc.indices
    if indices.null_count:
        indices = indices.fill_null(len(enc.dictionary) if na_last else -1)
    return indices.to_numpy(zero_copy_only=False).astype(np.int32, copy=False), enc.dictionary.to_pylist()


def _categorical(codes: np.ndarray, labels: Sequence[str]) -> pd.Categorical:
    """A categorical text column from codes into ``labels`` (-1: NA); no Python work per row."""
    return pd.Categorical.from_codes(codes.astype(np.int8 if len(labels) < 127 else np.int32, copy=False),
                                     dtype=pd.CategoricalDtype(list(labels)))


def _codes_of(series: pd.Series, labels: Sequence[str]) -> np.ndarray:
    """int codes of a text column's values in ``labels`` (-1: NA or not one of them)."""
    if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == list(labels):
        return series.cat.codes.to_numpy()
    found = pc.index_in(_arrow_strings(series.astype("string")), value_set=pa.array(list(labels)))
    return found.fill_null(-1).to_numpy(zero_copy_only=False)


def _float(values: np.ndarray, mask: np.ndarray) -> pd.arrays.FloatingArray:
    """A nullable float column; ``values`` must be finite (0 where masked), ``mask`` is copied."""
    return pd.arrays.FloatingArray(values, mask.copy())


def _round_cents(values: np.ndarray) -> np.ndarray:
    """Round to cents in place (halves to even, as numpy's round) and return the array."""
    values *= 100
    np.rint(values, out=values)
    values /= 100
    return values


def _buffer_fraction(buffer: float) -> Fraction:
    return Fraction(str(buffer)).limit_denominator(10**6)


# ---------------------------------------------------------------- matching

def match_price_book(licenses: pd.DataFrame, book: pd.DataFrame) -> np.ndarray:
    """For each license row, the position (int32) of its price-book entry in ``book``, or -1.

    ``book`` must be checked (:func:`lib.pricing.validate_price_book`). An entry
    with a ``license_id`` matches that id only; an entry with only a
    ``license_name`` matches that exact name, else that name ignoring case.
    The integration must match too (``integration_key``). Lookups are made
    once per distinct (integration, id) or (integration, name), not per row.
    """
    n = len(licenses)
    entry = np.full(n, -1, dtype=np.int32)
    if n == 0 or len(book) == 0:
        return entry
    icodes, inames = _encode(licenses["integration"], na_last=True)
    row_keys = [integration_key(x) for x in inames] + [None]      # the last code: no integration
    book_keys = [integration_key(x) for x in book["integration"].tolist()]
    book_ids = book["license_id"].tolist()
    book_names = book["license_name"].tolist()

    def missing(x) -> bool:
        return x is None or x is pd.NA

    # By id: only the rows whose id is in the book at all are looked at.
    by_id = {(k, i): pos for pos, (k, i) in enumerate(zip(book_keys, book_ids)) if not missing(i)}
    if by_id:
        ids = licenses["license_id"]
        cand = np.flatnonzero(ids.isin([i for _, i in by_id]).to_numpy(dtype=bool, na_value=False))
        if len(cand):
            cand_ids = pd.Series(ids.array.take(cand))
            entry[cand] = _lookup(icodes[cand], cand_ids, row_keys, lambda key, value: by_id.get((key, value), -1))

    # By name: exact, then ignoring case.
    exact: dict[tuple[str, str], int] = {}
    folded: dict[tuple[str, str], int] = {}
    for pos, (k, i, name) in enumerate(zip(book_keys, book_ids, book_names)):
        if missing(i) and not missing(name):
            exact[(k, name)] = pos
            folded[(k, name.casefold())] = pos
    if exact:
        def by_name(key, value):
            pos = exact.get((key, value))
            return folded.get((key, value.casefold()), -1) if pos is None else pos

        unmatched = entry < 0
        if unmatched.all():
            entry = _lookup(icodes, licenses["license_name"], row_keys, by_name)
        elif unmatched.any():
            todo = np.flatnonzero(unmatched)
            entry[todo] = _lookup(icodes[todo], pd.Series(licenses["license_name"].array.take(todo)), row_keys, by_name)
    return entry


def _lookup(ikey_codes: np.ndarray, values: pd.Series, row_keys: list, find) -> np.ndarray:
    """``find(integration key, value)`` once per distinct (integration, value) pair (int32; -1 for NA)."""
    vcodes, uniques = _encode(values, na_last=True)
    width = len(uniques) + 1
    size = len(row_keys) * width
    dtype = np.int32 if size < 2**31 else np.int64
    pair = ikey_codes.astype(dtype)
    pair *= width
    pair += vcodes
    if size <= 4 * len(pair) + 4096:
        pairs = np.flatnonzero(np.bincount(pair, minlength=size))
        table = np.full(size, -1, dtype=np.int32)
    else:
        codes, pairs = pd.factorize(pair)
        pairs = np.asarray(pairs, dtype=np.int64)
        pair, table = codes, np.full(len(pairs), -1, dtype=np.int32)
    uniques = list(uniques) + [None]
    found = np.array([-1 if uniques[p % width] is None or row_keys[p // width] is None
                      else find(row_keys[p // width], uniques[p % width]) for p in pairs.tolist()], dtype=np.int32)
    if len(table) == size:
        table[pairs] = found
    else:
        table[:] = found
    return table[pair]


# ----------------------------------------------------------------- per row

def add_metrics(licenses: pd.DataFrame, price_book: pd.DataFrame | None = None,
                options: MetricOptions | None = None) -> pd.DataFrame:
    """The tidy table plus :data:`METRIC_COLUMNS` (in that order, after the table's own columns).

    ``price_book`` is checked with :func:`lib.pricing.validate_price_book`
    (a book with problems raises ``PriceBookError``; None: no book). Metric
    columns already present are replaced. Vectorized: no Python work per row,
    only per price-book entry and per distinct (integration, license) pair.
    """
    options = options or MetricOptions()
    book = validate_price_book(price_book)
    df = licenses.drop(columns=[c for c in METRIC_COLUMNS if c in licenses.columns])
    n = len(df)
    nb = len(book)

    # Each row gets a price "slot": a book entry (0..nb-1), or VENDOR, FREE, UNPRICED.
    VENDOR, FREE, UNPRICED = nb, nb + 1, nb + 2
    slot = match_price_book(df, book)
    has_entry = slot >= 0

    # Currencies, as codes into one sorted list.
    vcodes, vnames = _encode(df["vendor_currency"])
    book_currency = book["currency"].tolist()
    currencies = sorted(set(book_currency) | {str(c).upper() for c in vnames})
    cindex = {c: i for i, c in enumerate(currencies)}
    vmap = np.array([cindex[str(c).upper()] for c in vnames] + [-1], dtype=np.int16)   # code -1 (NA) -> last
    vamount, vamount_na = _masked(df["vendor_unit_amount"], "Float64", np.float64)
    vendor = ~has_entry & ~vamount_na & (vcodes >= 0)
    paid, paid_na = _masked(df["is_paid"], "boolean", bool)
    free = ~has_entry & ~vendor & ~paid_na & ~paid
    slot[vendor] = VENDOR
    slot[free] = FREE
    slot[~has_entry & ~vendor & ~free] = UNPRICED

    vendor_period = BILLING_PERIODS.index(options.vendor_price_period)
    per_year = [PERIODS_PER_YEAR[p] for p in BILLING_PERIODS]
    book_price = book["unit_price"].to_numpy(dtype=np.float64, na_value=np.nan)
    book_period = np.array([BILLING_PERIODS.index(p) for p in book["billing_period"].tolist()], dtype=np.int8)
    price_tab = np.concatenate([book_price, [np.nan, 0.0, 0.0]])
    annual_tab = np.concatenate([book_price * np.array(per_year, dtype=np.float64)[book_period].reshape(-1)
                                 if nb else np.zeros(0), [np.nan, 0.0, 0.0]])
    currency_tab = np.array([cindex[c] for c in book_currency] + [-1, -1, -1], dtype=np.int16)
    period_tab = np.concatenate([book_period, np.array([vendor_period, -1, -1], dtype=np.int8)]).astype(np.int8)
    source_tab = np.array([0] * nb + [1, 2, 3], dtype=np.int8)

    unit_price = price_tab[slot]
    annual_unit = annual_tab[slot]
    currency = currency_tab[slot]
    period = period_tab[slot]
    source = source_tab[slot]
    if vendor.any():
        unit_price[vendor] = vamount[vendor]
        annual_unit[vendor] = vamount[vendor] * per_year[vendor_period]
        currency[vendor] = vmap[vcodes[vendor]]
    no_price = slot == UNPRICED
    unit_price[no_price] = 0.0
    annual_unit[no_price] = 0.0

    # Seats. Values under an NA mask are unspecified here: every figure made
    # from them is masked by the same NA, and is set to 0 at the end.
    assigned, assigned_na = _raw(df["assigned_seats"], "Int64")
    total, total_na = _raw(df["total_seats"], "Int64")
    unassigned, unassigned_na = _raw(df["unassigned_seats"], "Int64")
    over, over_na = _raw(df["over_allocated_seats"], "Int64")

    frac = _buffer_fraction(options.buffer)
    p, q = frac.numerator, frac.denominator
    recommended = assigned * (q + p)
    recommended += q - 1
    recommended //= q                      # ceil(assigned x (1 + buffer)), exactly
    np.copyto(recommended, 0, where=assigned_na)
    spare = total - recommended
    np.maximum(spare, 0, out=spare)

    # Conversion: a rate per currency code (0 when there is none; that row's
    # converted figure is then NA unless the amount is 0, which is 0 in any currency).
    rates = np.array([options.fx_rates.get(c, 0.0) for c in currencies] + [0.0], dtype=np.float64)
    row_rate = rates[currency]             # code -1 (no currency: free or unpriced) -> the 0 at the end
    no_rate = row_rate == 0

    money: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, seats, seats_na in (("annual_cost", total, total_na),
                                  ("idle_annual_cost", unassigned, unassigned_na),
                                  ("true_up_exposure", over, over_na),
                                  ("potential_annual_savings", spare, total_na | assigned_na)):
        values = annual_unit * seats
        na = no_price | seats_na
        np.copyto(values, 0.0, where=na)
        converted = values * row_rate
        converted_na = na | (no_rate & (values != 0))
        money[name] = (_round_cents(values), na)
        money[name + "_reporting"] = (_round_cents(converted), converted_na)
    del spare, row_rate

    # Flags, lowest precedence first so higher ones overwrite.
    util, util_na = _raw(df["utilization_pct"], "Float64")
    flag = np.full(n, FLAGS.index("ok"), dtype=np.int8)
    flag[~util_na & (util >= options.at_capacity_pct)] = FLAGS.index("at_capacity")
    flag[~util_na & (util < options.under_used_pct)] = FLAGS.index("under_used")
    flag[over > 0] = FLAGS.index("over_allocated")
    flag[assigned_na | total_na] = FLAGS.index("not_reported")
    # Free: the vendor says not paid, or it does not say and the price is 0 (the paid rule, _PAID_RULE).
    is_free = (~paid_na & ~paid) | (paid_na & ~no_price & (annual_unit == 0))
    flag[is_free] = FLAGS.index("free")
    recommended_na = assigned_na | is_free

    metrics = {
        "unit_price": _float(unit_price, no_price),
        "currency": _categorical(currency, currencies),
        "billing_period": _categorical(period, BILLING_PERIODS),
        "price_source": _categorical(source, PRICE_SOURCES),
        "annual_unit_price": _float(annual_unit, no_price),
        **{name: _float(values, na) for name, (values, na) in money.items()},
        "reporting_currency": _categorical(np.zeros(n, dtype=np.int8), [options.reporting_currency]),
        "recommended_seats": pd.arrays.IntegerArray(recommended, recommended_na),
        "flag": _categorical(flag, FLAGS),
    }
    columns = {c: df[c] for c in df.columns}
    columns.update({c: pd.Series(metrics[c], index=df.index, copy=False) for c in METRIC_COLUMNS})
    return pd.DataFrame(columns, index=df.index, copy=False)


# -------------------------------------------------------------- aggregates

_PAID_RULE = ("paid = the vendor says paid, or the vendor does not say and the license has a price above 0; "
              "the vendor saying not paid always counts as free")


def paid_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows counted as paid licenses (see ``Summary.paid_rule``)."""
    paid, paid_na = _masked(df["is_paid"], "boolean", bool)
    price, price_na = _masked(df["annual_unit_price"], "Float64", np.float64)
    return (~paid_na & paid) | (paid_na & ~price_na & (price > 0))


def free_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows known to be free: the vendor says not paid, or it does not say and the price is 0.

    Neither paid nor free: the vendor does not say and there is no price (its cost is unknown).
    """
    paid, paid_na = _masked(df["is_paid"], "boolean", bool)
    price, price_na = _masked(df["annual_unit_price"], "Float64", np.float64)
    return (~paid_na & ~paid) | (paid_na & ~price_na & (price == 0))


# Row properties counted per group, as bits of one small code per row.
_BITS = ("total_known", "assigned_known", "spend_known", "idle_known", "savings_known", "true_up_known",
         "not_converted", "unpriced", "paid_said")
_BIT = {name: j for j, name in enumerate(_BITS)}
_FLAG_SHIFT = len(_BITS)

# Sums per group: name -> how it is made (see PreparedMetrics.__init__).
_SUMS = ("total_seats", "assigned_seats", "unassigned_seats", "over_allocated_seats", "both_assigned",
         "annual_spend", "idle_annual_spend", "potential_annual_savings", "true_up_exposure",
         "unsplit_annual_spend")

_MONEY_SOURCES = {
    "annual_spend": "annual_cost_reporting",
    "idle_annual_spend": "idle_annual_cost_reporting",
    "potential_annual_savings": "potential_annual_savings_reporting",
    "true_up_exposure": "true_up_exposure_reporting",
}


class _Grouping:
    """Row -> group codes, with the runs of equal codes when rows come in long runs (faster sums)."""

    def __init__(self, codes: np.ndarray | None, ngroups: int, rows: np.ndarray | None = None):
        # codes None: one group of all rows (rows: the rows in it, as a 0/1 float vector, or None for all).
        self.codes = codes
        self.ngroups = ngroups
        self.rows = rows
        self.starts = self.run_codes = None
        if codes is not None and len(codes) > 1:
            change = codes[1:] != codes[:-1]
            if np.count_nonzero(change) < len(codes) // 8:
                self.starts = np.concatenate([[0], np.flatnonzero(change) + 1])
                self.run_codes = codes[self.starts]

    def sum(self, weights: np.ndarray) -> np.ndarray:
        if self.codes is None:
            return np.array([weights.sum() if self.rows is None else weights @ self.rows])
        if self.starts is not None:
            return np.bincount(self.run_codes, np.add.reduceat(weights, self.starts),
                               minlength=self.ngroups + 1)[:self.ngroups]
        return np.bincount(self.codes, weights, minlength=self.ngroups + 1)[:self.ngroups]


class PreparedMetrics:
    """A table from :func:`add_metrics`, read once into arrays for any number of totals.

    Make one with :func:`prepare` and pass it instead of the DataFrame to
    :func:`summarize`, :func:`group_summary` and the chart helpers: the table
    is then read once, and each grouping is computed once. It is a snapshot:
    changing the DataFrame afterwards does not change it.
    """

    def __init__(self, df: pd.DataFrame, options: MetricOptions | None = None):
        missing = [c for c in METRIC_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"run add_metrics first: the table lacks {', '.join(missing)}")
        self.df = df = df.copy(deep=False)     # copy-on-write: later edits of the caller's table do not reach it
        self.n = len(df)
        self.reporting_currency = _reporting_currency(df, options)
        t, t_na = _masked(df["total_seats"], "Int64", np.float64)
        a, a_na = _masked(df["assigned_seats"], "Int64", np.float64)
        u, u_na = _masked(df["unassigned_seats"], "Int64", np.float64)
        o, o_na = _masked(df["over_allocated_seats"], "Int64", np.float64)
        both = ~a_na & ~t_na
        money = {}
        for name, col in _MONEY_SOURCES.items():
            v, m = _masked(df[col], "Float64", np.float64)
            v = v * 100                      # a new array: to_numpy may share the table's memory
            np.rint(v, out=v)                # whole cents, exact in float64
            money[name] = (v, m)
        spend, spend_na = money["annual_spend"]
        idle, idle_na = money["idle_annual_spend"]
        # Spend that cannot be split into used and idle (assigned seats not reported).
        # A row with idle spend known and spend unknown has idle 0 (see add_metrics), so
        # used = spend - idle - unsplit, group by group.
        unsplit_spend = spend.copy()
        np.copyto(unsplit_spend, 0.0, where=~(~spend_na & idle_na))
        both_assigned = a.copy()
        np.copyto(both_assigned, 0.0, where=~both)
        self.weights = {
            "total_seats": t, "assigned_seats": a, "unassigned_seats": u, "over_allocated_seats": o,
            "both_assigned": both_assigned,
            **{name: values for name, (values, _) in money.items()},
            "unsplit_annual_spend": unsplit_spend,
        }

        # Known spend left out of the totals for want of an exchange rate.
        own = df["annual_cost"].array
        candidates = np.flatnonzero(spend_na & ~np.asarray(own.isna()))
        own_values = own.take(candidates).to_numpy(dtype=np.float64, na_value=0.0)
        keep = own_values != 0
        self.nc_rows = candidates[keep]
        self.nc_cents = np.rint(own_values[keep] * 100)
        not_converted = np.zeros(self.n, dtype=bool)
        not_converted[self.nc_rows] = True
        self.nc_codes, self.nc_names = _encode(df["currency"].iloc[self.nc_rows].astype("string").reset_index(drop=True))

        flag = _codes_of(df["flag"], FLAGS).astype(np.int16)
        flag[flag < 0] = FLAGS.index("ok")
        unpriced = _codes_of(df["price_source"], PRICE_SOURCES)
        unpriced = (unpriced < 0) | (unpriced == PRICE_SOURCES.index("unpriced"))
        paid, paid_na = _masked(df["is_paid"], "boolean", bool)
        bits = {
            "total_known": ~t_na, "assigned_known": ~a_na, "spend_known": ~spend_na, "idle_known": ~idle_na,
            "savings_known": ~money["potential_annual_savings"][1], "true_up_known": ~money["true_up_exposure"][1],
            "not_converted": not_converted, "unpriced": unpriced, "paid_said": ~paid_na & paid,
        }
        raw = flag << _FLAG_SHIFT
        for name, j in _BIT.items():
            raw |= bits[name].astype(np.int16) << j
        present = np.bincount(raw, minlength=len(FLAGS) << _FLAG_SHIFT) > 0
        self.patterns = np.flatnonzero(present)                 # the row codes that occur
        self.pattern = (np.cumsum(present) - 1).astype(np.int16)[raw]        # fewer than 2**15 codes
        price, price_na = _masked(df["annual_unit_price"], "Float64", np.float64)
        self.paid = (~paid_na & paid) | (paid_na & ~price_na & (price > 0))
        self._encoded: dict[str, tuple[np.ndarray, Any]] = {}
        self._groups: dict[tuple, tuple[np.ndarray, list]] = {}
        self._groupings: dict[tuple, _Grouping] = {}
        self._results: dict[tuple, Any] = {}

    # -- group codes

    def _column_codes(self, col: str) -> tuple[np.ndarray, Any]:
        """int64 codes of one column, NA last, and the values they stand for (with NA)."""
        if col not in self._encoded:
            series = self.df[col]
            if _is_text(series):
                codes, values = _encode(series, na_last=True)
                codes = codes.astype(np.int64)
            else:
                codes, values = pd.factorize(series)
                codes = codes.astype(np.int64)
                codes[codes < 0] = len(values)
            self._encoded[col] = (codes, pd.array(list(values) + [None], dtype=series.dtype))
        return self._encoded[col]

    def group_codes(self, by: tuple[str, ...]) -> tuple[np.ndarray, list]:
        """Codes per row (int64), and per code the value of each key column (an empty key is a value).

        Some codes may have no rows; the figures drop them.
        """
        if by not in self._groups:
            codes, values = self._column_codes(by[0])
            key_codes = [np.arange(len(values))]
            values_list = [values]
            ngroups = len(values)
            for col in by[1:]:
                c, values = self._column_codes(col)
                width = len(values)
                combined = codes * width
                combined += c
                size = ngroups * width
                if size <= 4 * self.n + 4096:
                    present = np.bincount(combined, minlength=size) > 0
                    uniques = np.flatnonzero(present)
                    codes = (np.cumsum(present) - 1)[combined]
                else:
                    codes, uniques = pd.factorize(combined, sort=True)
                    uniques = np.asarray(uniques, dtype=np.int64)
                ngroups = len(uniques)
                key_codes = [k[uniques // width] for k in key_codes] + [uniques % width]
                values_list.append(values)
            keys = [vals.take(k) for vals, k in zip(values_list, key_codes)]
            self._groups[by] = (codes, keys)
        return self._groups[by]

    def grouping(self, by: tuple[str, ...] | None, paid_only: bool) -> _Grouping:
        key = (by, paid_only)
        if key not in self._groupings:
            if by is None:
                rows = self.paid.astype(np.float64) if paid_only else None
                self._groupings[key] = _Grouping(None, 1, rows)
            else:
                codes, keys = self.group_codes(by)
                ngroups = len(keys[0]) if self.n else 0
                if paid_only:
                    codes = np.where(self.paid, codes, ngroups)      # the rest goes to a bin that is dropped
                self._groupings[key] = _Grouping(codes, ngroups)
        return self._groupings[key]

    # -- figures

    def aggregate(self, by: tuple[str, ...] | None, paid_only: bool) -> dict[str, Any]:
        """The figures per group of ``by`` (None: all rows are one group), as (values, NA mask) arrays."""
        g = self.grouping(by, paid_only)
        ngroups = g.ngroups
        sums = {name: g.sum(self.weights[name]) for name in _SUMS}

        # Counts of every row property at once: rows per (group, row code).
        npat = len(self.patterns)
        if g.codes is None:
            per = np.bincount(self.pattern, weights=g.rows, minlength=npat).reshape(1, npat)
            per = np.rint(per).astype(np.int64)
        elif (ngroups + 1) * npat <= 8 * self.n + 65536:
            combined = g.codes * npat
            combined += self.pattern
            per = np.bincount(combined, minlength=(ngroups + 1) * npat)
            del combined
            per = per.reshape(ngroups + 1, npat)[:ngroups]
        else:
            per = np.stack([np.bincount(g.codes[self.pattern == p], minlength=ngroups + 1)[:ngroups]
                            for p in range(npat)], axis=1)
        pbits = {name: (self.patterns >> j) & 1 for name, j in _BIT.items()}
        pflag = self.patterns >> _FLAG_SHIFT

        def count(selector: np.ndarray) -> np.ndarray:
            return per @ selector.astype(np.int64)

        out: dict[str, Any] = {}
        out["licenses"] = per.sum(axis=1).astype(np.int64)
        known = {name: count(pbits[name]) for name in _BITS}
        both = count(pbits["total_known"] & pbits["assigned_known"])
        for col, bit in (("total_seats", "total_known"), ("assigned_seats", "assigned_known")):
            out[col] = (np.rint(sums[col]).astype(np.int64), known[bit] == 0)
        for col in ("unassigned_seats", "over_allocated_seats"):
            out[col] = (np.rint(sums[col]).astype(np.int64), both == 0)
        # Seat-weighted utilization over the rows reporting both counts: bought = assigned + unassigned - over.
        a_i = np.rint(sums["both_assigned"]).astype(np.int64)
        t_i = a_i + out["unassigned_seats"][0] - out["over_allocated_seats"][0]
        safe_t = np.where(t_i > 0, t_i, 1)
        out["utilization_pct"] = ((2000 * a_i + safe_t) // (2 * safe_t) / 10.0, t_i <= 0)
        # Its numerator and denominator: the same rows (those reporting both counts).
        out["utilization_assigned_seats"] = (a_i, both == 0)
        out["utilization_total_seats"] = (t_i, both == 0)
        out["utilization_rows"] = both
        out["rows_without_seat_counts"] = out["licenses"] - both
        for name, bit in (("annual_spend", "spend_known"), ("idle_annual_spend", "idle_known"),
                          ("potential_annual_savings", "savings_known"), ("true_up_exposure", "true_up_known")):
            out[name] = (np.round(sums[name] / 100.0, 2), known[bit] == 0)
        split = count(pbits["spend_known"] & pbits["idle_known"])
        unsplit = count(pbits["spend_known"] & (1 - pbits["idle_known"]))
        used = sums["annual_spend"] - sums["idle_annual_spend"] - sums["unsplit_annual_spend"]
        out["used_annual_spend"] = (np.round(used / 100.0, 2), split == 0)
        out["unsplit_annual_spend"] = (np.round(sums["unsplit_annual_spend"] / 100.0, 2), unsplit == 0)
        out["rows_without_spend"] = out["licenses"] - known["spend_known"]
        out["rows_not_converted"] = known["not_converted"]
        out["unpriced_licenses"] = known["unpriced"]
        out["unpriced_paid_licenses"] = count(pbits["unpriced"] & pbits["paid_said"])
        for j, f in enumerate(FLAGS):
            out[f"flag_{f}"] = count(pflag == j)
        out["over_allocated_licenses"] = out["flag_over_allocated"]

        # Left out of the totals, per group and currency, in the rows' own currency.
        excluded: list[dict[str, tuple[float, int]]] = [dict() for _ in range(ngroups)]
        if len(self.nc_rows):
            if g.codes is not None:
                grp = g.codes[self.nc_rows]
            elif g.rows is not None:
                grp = np.where(g.rows[self.nc_rows] > 0, 0, 1)
            else:
                grp = np.zeros(len(self.nc_rows), dtype=np.int64)
            ncur = len(self.nc_names)
            combined = grp * ncur + self.nc_codes
            nbins = (ngroups + 1) * ncur
            cents = np.bincount(combined, weights=self.nc_cents, minlength=nbins)[:ngroups * ncur]
            rows = np.bincount(combined, minlength=nbins)[:ngroups * ncur]
            for pos in np.flatnonzero(rows).tolist():
                excluded[pos // ncur][self.nc_names[pos % ncur]] = (round(cents[pos] / 100.0, 2), int(rows[pos]))
        out["_excluded"] = excluded
        return out


def prepare(df: pd.DataFrame | PreparedMetrics, options: MetricOptions | None = None) -> PreparedMetrics:
    """Read a table from :func:`add_metrics` once, for any number of totals (see :class:`PreparedMetrics`)."""
    if isinstance(df, PreparedMetrics):
        if options is not None and options.reporting_currency != df.reporting_currency:
            raise ValueError(f"the metrics were computed in {df.reporting_currency}, not {options.reporting_currency}")
        return df
    return PreparedMetrics(df, options)


def _reporting_currency(df: pd.DataFrame, options: MetricOptions | None) -> str:
    found = df["reporting_currency"].iat[0] if len(df) else None
    if options is None:
        return found if isinstance(found, str) else MetricOptions().reporting_currency
    if isinstance(found, str) and found != options.reporting_currency:
        raise ValueError(f"the metrics were computed in {found}, not {options.reporting_currency}; run add_metrics again")
    return options.reporting_currency


@dataclass
class Summary:
    """Totals over a table with metrics, in the reporting currency.

    Seat figures add what the vendors report; a figure is None when no row
    reports it (not reported, never 0). ``utilization_pct`` is seat-weighted
    (100 x assigned / bought, one decimal) over the rows reporting both counts;
    ``rows_without_seat_counts`` were left out of it. Money totals add the
    rows' ``*_reporting`` figures in whole cents. ``excluded_by_currency`` is
    the annual spend left out of them because its currency has no exchange
    rate, in that currency (their idle spend, savings and true-up are left
    out too); ``excluded_rows_by_currency`` counts those rows.
    ``used_annual_spend`` + ``idle_annual_spend`` + ``unsplit_annual_spend``
    (rows whose assigned seats are not reported) = ``annual_spend``.
    ``utilization_assigned_seats`` / ``utilization_total_seats`` are the seats
    behind ``utilization_pct``: over the ``utilization_rows`` rows that report
    both counts, so the ratio can be checked from them.
    """

    reporting_currency: str
    paid_only: bool
    licenses: int
    total_seats: int | None
    assigned_seats: int | None
    unassigned_seats: int | None
    over_allocated_seats: int | None
    utilization_pct: float | None
    rows_without_seat_counts: int
    annual_spend: float | None
    used_annual_spend: float | None
    idle_annual_spend: float | None
    unsplit_annual_spend: float | None
    potential_annual_savings: float | None
    true_up_exposure: float | None
    rows_without_spend: int
    excluded_by_currency: dict[str, float]
    excluded_rows_by_currency: dict[str, int]
    flag_counts: dict[str, int]
    unpriced_licenses: int
    unpriced_paid_licenses: int
    over_allocated_licenses: int
    # Seat utilization's numerator and denominator, over the same rows (those reporting both counts).
    utilization_assigned_seats: int | None = None
    utilization_total_seats: int | None = None
    utilization_rows: int = 0
    measure: str = MEASURE
    paid_rule: str = _PAID_RULE

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (None for not reported)."""
        return asdict(self)


def summarize(df: pd.DataFrame | PreparedMetrics, options: MetricOptions | None = None,
              paid_only: bool = False) -> Summary:
    """Totals over all rows of a table from :func:`add_metrics`, or over the paid licenses only.

    ``df`` may be a :class:`PreparedMetrics` (from :func:`prepare`), to read the table once for many totals.
    """
    prep = prepare(df, options)
    key = ("summary", bool(paid_only))
    if key not in prep._results:
        agg = prep.aggregate(None, bool(paid_only))

        def opt(name, kind):
            values, mask = agg[name]
            return None if bool(mask[0]) else kind(values[0])

        def money(x):
            return round(float(x), 2)

        excluded = agg["_excluded"][0]
        prep._results[key] = Summary(
            reporting_currency=prep.reporting_currency,
            paid_only=bool(paid_only),
            licenses=int(agg["licenses"][0]),
            total_seats=opt("total_seats", int),
            assigned_seats=opt("assigned_seats", int),
            unassigned_seats=opt("unassigned_seats", int),
            over_allocated_seats=opt("over_allocated_seats", int),
            utilization_pct=opt("utilization_pct", float),
            rows_without_seat_counts=int(agg["rows_without_seat_counts"][0]),
            annual_spend=opt("annual_spend", money),
            used_annual_spend=opt("used_annual_spend", money),
            idle_annual_spend=opt("idle_annual_spend", money),
            unsplit_annual_spend=opt("unsplit_annual_spend", money),
            potential_annual_savings=opt("potential_annual_savings", money),
            true_up_exposure=opt("true_up_exposure", money),
            rows_without_spend=int(agg["rows_without_spend"][0]),
            excluded_by_currency={c: v for c, (v, _) in sorted(excluded.items())},
            excluded_rows_by_currency={c: k for c, (_, k) in sorted(excluded.items())},
            flag_counts={f: int(agg[f"flag_{f}"][0]) for f in FLAGS},
            unpriced_licenses=int(agg["unpriced_licenses"][0]),
            unpriced_paid_licenses=int(agg["unpriced_paid_licenses"][0]),
            over_allocated_licenses=int(agg["over_allocated_licenses"][0]),
            utilization_assigned_seats=opt("utilization_assigned_seats", int),
            utilization_total_seats=opt("utilization_total_seats", int),
            utilization_rows=int(agg["utilization_rows"][0]),
        )
    return copy.deepcopy(prep._results[key])


GROUP_FIGURES = [
    "licenses", "total_seats", "assigned_seats", "unassigned_seats", "over_allocated_seats",
    "utilization_pct", "rows_without_seat_counts",
    "annual_spend", "used_annual_spend", "idle_annual_spend", "unsplit_annual_spend",
    "potential_annual_savings", "true_up_exposure", "reporting_currency",
    "rows_without_spend", "rows_not_converted", "not_converted",
    "unpriced_licenses", "unpriced_paid_licenses", "over_allocated_licenses",
    "flag_over_allocated", "flag_under_used", "flag_at_capacity", "flag_not_reported", "flag_ok", "flag_free",
    "utilization_assigned_seats", "utilization_total_seats",
]


def _is_text(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) or series.dtype == object


def _by_columns(by: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(by, str):
        return tuple(GROUPINGS.get(by, [by]))
    return tuple(by)


def group_summary(df: pd.DataFrame | PreparedMetrics, by: str | Sequence[str],
                  options: MetricOptions | None = None, paid_only: bool = False) -> pd.DataFrame:
    """:func:`summarize`'s figures per group of ``by`` (columns, or a name in :data:`GROUPINGS`).

    One row per group (rows with an empty key form a group of their own;
    with ``paid_only``, groups without paid licenses are left out), sorted by
    the key; the columns are ``by`` then :data:`GROUP_FIGURES`. Figures nobody
    reported are NA. ``not_converted`` says, in words, what was left out of
    the group's totals for want of an exchange rate ("GBP 1200.00").
    """
    prep = prepare(df, options)
    by = _by_columns(by)
    missing = [c for c in by if c not in prep.df.columns]
    if missing:
        raise ValueError(f"cannot group by {', '.join(missing)}: no such column")
    if not by:
        raise ValueError("group by at least one column")
    key = ("groups", by, bool(paid_only))
    if key not in prep._results:
        prep._results[key] = _group_frame(prep, by, bool(paid_only))
    return prep._results[key].copy()


def _group_frame(prep: PreparedMetrics, by: tuple[str, ...], paid_only: bool) -> pd.DataFrame:
    codes, keys = prep.group_codes(by)
    ngroups = len(keys[0]) if prep.n else 0
    agg = prep.aggregate(by, paid_only)
    data: dict[str, Any] = {}
    for j, col in enumerate(by):
        data[col] = keys[j] if ngroups else pd.array([], dtype=prep.df[col].dtype)
    for name in GROUP_FIGURES:
        if name == "reporting_currency":
            data[name] = pd.array([prep.reporting_currency] * ngroups, dtype="string")
        elif name == "not_converted":
            data[name] = pd.array(
                [("; ".join(f"{c} {v:.2f}" for c, (v, _) in sorted(ex.items())) if ex else None)
                 for ex in agg["_excluded"]],
                dtype="string")
        elif isinstance(agg[name], tuple):
            values, mask = agg[name]
            if values.dtype.kind == "f":
                data[name] = pd.arrays.FloatingArray(values.astype(np.float64), mask.copy())
            else:
                data[name] = pd.arrays.IntegerArray(values.astype(np.int64), mask.copy())
        else:
            data[name] = pd.arrays.IntegerArray(np.asarray(agg[name], dtype=np.int64), np.zeros(ngroups, dtype=bool))
    out = pd.DataFrame(data)
    if ngroups:
        out = out[out["licenses"].to_numpy(dtype=np.int64) > 0]
    if len(out):
        out = out.sort_values(list(by), na_position="last", kind="stable")
    return out.reset_index(drop=True)


def all_group_summaries(df: pd.DataFrame | PreparedMetrics, options: MetricOptions | None = None,
                        paid_only: bool = False) -> dict[str, pd.DataFrame]:
    """:func:`group_summary` for every entry of :data:`GROUPINGS`, reading the table once."""
    prep = prepare(df, options)
    return {name: group_summary(prep, cols, paid_only=paid_only) for name, cols in GROUPINGS.items()}


# -------------------------------------------------------------- chart data

def top_idle_spend(df: pd.DataFrame | PreparedMetrics, n: int = 10, options: MetricOptions | None = None,
                   by: str | Sequence[str] = "license", paid_only: bool = False) -> pd.DataFrame:
    """The ``n`` licenses (integration + license name, over all accounts) with the most idle annual spend.

    Only groups with idle spend above 0; largest first, ties by key.
    """
    cols = list(_by_columns(by))
    groups = group_summary(df, cols, options, paid_only=paid_only)
    idle = groups["idle_annual_spend"].fillna(0).to_numpy(dtype=np.float64)
    groups = groups[idle > 0]
    return groups.sort_values(["idle_annual_spend", *cols], ascending=[False] + [True] * len(cols),
                              na_position="last", kind="stable").head(n).reset_index(drop=True)


def utilization_by_integration(df: pd.DataFrame | PreparedMetrics, options: MetricOptions | None = None,
                               paid_only: bool = False) -> pd.DataFrame:
    """Seat-weighted utilization per integration (allocation, not activity), lowest first; NA last."""
    groups = group_summary(df, ["integration_label"], options, paid_only=paid_only)
    cols = ["integration_label", "utilization_pct", "assigned_seats", "total_seats", "unassigned_seats",
            "over_allocated_seats", "licenses", "rows_without_seat_counts"]
    return groups[cols].sort_values(["utilization_pct", "integration_label"], na_position="last",
                                    kind="stable").reset_index(drop=True)


SPEND_PARTS = (("used", "used_annual_spend"), ("idle", "idle_annual_spend"), ("not_reported", "unsplit_annual_spend"))


def spend_by_integration(df: pd.DataFrame | PreparedMetrics, options: MetricOptions | None = None,
                         paid_only: bool = False) -> pd.DataFrame:
    """Annual spend per integration in the reporting currency, long form for a stacked bar.

    Columns: ``integration_label``, ``part`` (``used``: assigned seats;
    ``idle``: unassigned seats; ``not_reported``: spend of rows whose assigned
    seats are not reported, so it cannot be split; only when above 0),
    ``amount``, ``reporting_currency``. The parts of an integration add up to
    its ``annual_spend``. Integrations without any spend figure are left out.
    """
    prep = prepare(df, options)
    groups = group_summary(prep, ["integration_label"], paid_only=paid_only)
    frames = []
    for order, (part, col) in enumerate(SPEND_PARTS):
        values = groups[col]
        has = values.notna().to_numpy(dtype=bool)
        if part == "not_reported":
            has = has & (values.fillna(0).to_numpy(dtype=np.float64) > 0)
        frames.append(pd.DataFrame({
            "integration_label": groups["integration_label"].array[has],
            "part": pd.array([part] * int(has.sum()), dtype="string"),
            "amount": values.array[has],
            "_order": order,
        }))
    out = pd.concat(frames, ignore_index=True)
    out = out.sort_values(["integration_label", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    out["reporting_currency"] = pd.array([prep.reporting_currency] * len(out), dtype="string")
    return out
