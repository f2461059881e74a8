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
- ``flag``: ``not_reported`` (assigned or total seats not reported) >
  ``over_allocated`` > ``under_used`` (utilization_pct below the threshold) >
  ``at_capacity`` (utilization_pct at or above the threshold) > ``ok``. The
  thresholds are compared with the table's ``utilization_pct`` (one decimal).

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
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .integrations import integration_key
from .pricing import BILLING_PERIODS, CURRENCY_CODES, PERIODS_PER_YEAR, validate_price_book

PRICE_SOURCES = ("price_book", "vendor", "free", "unpriced")
FLAGS = ("over_allocated", "under_used", "at_capacity", "not_reported", "ok")

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
    "currency": "string",
    "billing_period": "string",
    "price_source": "string",
    "annual_unit_price": "Float64",
    "annual_cost": "Float64",
    "idle_annual_cost": "Float64",
    "true_up_exposure": "Float64",
    "annual_cost_reporting": "Float64",
    "idle_annual_cost_reporting": "Float64",
    "true_up_exposure_reporting": "Float64",
    "reporting_currency": "string",
    "recommended_seats": "Int64",
    "potential_annual_savings": "Float64",
    "potential_annual_savings_reporting": "Float64",
    "flag": "string",
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
    "part": "Spend on",
    "amount": "Annual amount",
}

FLAG_LABELS = {
    "over_allocated": "Over-allocated (more seats assigned than bought)",
    "under_used": "Under-used (few of the seats bought are assigned)",
    "at_capacity": "At capacity (nearly all seats bought are assigned)",
    "not_reported": "Seat counts not reported by the vendor",
    "ok": "OK",
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

    reporting_currency: str = "USD"
    fx_rates: Mapping[str, float] = field(default_factory=FrozenRates)
    buffer: float = 0.10
    under_used_pct: float = 70.0
    at_capacity_pct: float = 95.0
    vendor_price_period: str = "monthly"

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
    """(values with NA as 0, NA mask) as numpy arrays."""
    arr = series.array
    if str(arr.dtype) != dtype:
        arr = pd.array(series, dtype=dtype)
    na_value = False if np_dtype is bool else 0
    return arr.to_numpy(dtype=np_dtype, na_value=na_value), np.asarray(arr.isna())


def _arrow_strings(series: pd.Series) -> pa.Array:
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


def _encode(series: pd.Series) -> tuple[np.ndarray, list]:
    """(int64 codes, -1 for NA; the distinct values) of a text column."""
    if len(series) == 0:
        return np.zeros(0, dtype=np.int64), []
    enc = pc.dictionary_encode(_arrow_strings(series))
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return codes, enc.dictionary.to_pylist()


def _strings_from_codes(codes: np.ndarray, labels: Sequence[str]) -> pd.api.extensions.ExtensionArray:
    """A text column from codes into ``labels`` (-1: NA), without a Python loop per row."""
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask if mask.any() else None)
    dictionary = pa.array(list(labels) or [""], type=pa.string())
    arr = pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string())
    return pd.array(arr, dtype="string")


def _float(values: np.ndarray, mask: np.ndarray) -> pd.arrays.FloatingArray:
    return pd.arrays.FloatingArray(np.where(mask, 0.0, values), mask.copy())


def _cents(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


def _buffer_fraction(buffer: float) -> Fraction:
    return Fraction(str(buffer)).limit_denominator(10**6)


# ---------------------------------------------------------------- matching

def match_price_book(licenses: pd.DataFrame, book: pd.DataFrame) -> np.ndarray:
    """For each license row, the position of its price-book entry in ``book``, or -1.

    ``book`` must be checked (:func:`lib.pricing.validate_price_book`). An entry
    with a ``license_id`` matches that id; an entry with only a
    ``license_name`` matches that exact name, else that name ignoring case.
    The integration must match too (``integration_key``).
    """
    n = len(licenses)
    entry = np.full(n, -1, dtype=np.int64)
    if n == 0 or len(book) == 0:
        return entry
    icodes, inames = _encode(licenses["integration"])
    if not inames:
        return entry
    row_keys = [integration_key(x) for x in inames]
    book_keys = [integration_key(x) for x in book["integration"].tolist()]
    book_ids = book["license_id"].tolist()
    book_names = book["license_name"].tolist()

    # By id: only rows whose id is in the book at all are looked at.
    by_id = {(k, i): pos for pos, (k, i) in enumerate(zip(book_keys, book_ids)) if i is not pd.NA and i is not None}
    if by_id:
        cand = np.flatnonzero(licenses["license_id"].isin([i for _, i in by_id]).to_numpy(dtype=bool, na_value=False))
        if len(cand):
            ids = licenses["license_id"].to_numpy(dtype=object)[cand]
            ik = icodes[cand]
            entry[cand] = [by_id.get((row_keys[c] if c >= 0 else None, i), -1) for c, i in zip(ik.tolist(), ids.tolist())] \
                if len(cand) <= 50_000 else _lookup_pairs(ik, ids, row_keys, by_id)

    # By name: exact, then ignoring case; looked up once per distinct (integration, name).
    exact = {}
    folded = {}
    for pos, (k, i, name) in enumerate(zip(book_keys, book_ids, book_names)):
        if (i is pd.NA or i is None) and name is not pd.NA and name is not None:
            exact[(k, name)] = pos
            folded[(k, name.casefold())] = pos
    if exact:
        todo = np.flatnonzero(entry < 0)
        if len(todo):
            ncodes, names = _encode(licenses["license_name"])
            ik = icodes[todo]
            nk = ncodes[todo]
            ok = (ik >= 0) & (nk >= 0)
            todo, ik, nk = todo[ok], ik[ok], nk[ok]
            if len(todo):
                pair = ik * len(names) + nk
                pcodes, uniques = pd.factorize(pair)
                found = np.empty(len(uniques), dtype=np.int64)
                folds: dict[int, str] = {}
                for j, u in enumerate(uniques.tolist()):
                    key = row_keys[u // len(names)]
                    name = names[u % len(names)]
                    pos = exact.get((key, name))
                    if pos is None:
                        pos = folded.get((key, name.casefold()), -1)
                    found[j] = pos
                entry[todo] = found[pcodes]
    return entry


def _lookup_pairs(ik: np.ndarray, ids: np.ndarray, row_keys: list[str], by_id: dict) -> np.ndarray:
    pairs = pd.MultiIndex.from_arrays([ik, ids])
    codes, uniques = pd.factorize(pairs)
    found = np.array([by_id.get((row_keys[c] if c >= 0 else None, i), -1) for c, i in uniques.tolist()], dtype=np.int64)
    return found[codes]


# ----------------------------------------------------------------- per row

def add_metrics(licenses: pd.DataFrame, price_book: pd.DataFrame | None = None,
                options: MetricOptions | None = None) -> pd.DataFrame:
    """The tidy table plus :data:`METRIC_COLUMNS` (in that order, after the table's own columns).

    ``price_book`` is checked with :func:`lib.pricing.validate_price_book`
    (a book with problems raises ``PriceBookError``; None: no book). Metric
    columns already present are replaced.
    """
    options = options or MetricOptions()
    book = validate_price_book(price_book)
    df = licenses.drop(columns=[c for c in METRIC_COLUMNS if c in licenses.columns])
    n = len(df)

    entry = match_price_book(df, book)
    has_entry = entry >= 0
    e = np.where(has_entry, entry, 0)

    # Currencies, as codes into one list of names.
    vcodes, vnames = _encode(df["vendor_currency"])
    book_currency = book["currency"].tolist()
    currencies = sorted(set(book_currency) | {str(c).upper() for c in vnames})
    cindex = {c: i for i, c in enumerate(currencies)}
    book_ccode = np.array([cindex[c] for c in book_currency] or [-1], dtype=np.int64)
    vmap = np.array([cindex[str(c).upper()] for c in vnames] + [-1], dtype=np.int64)   # -1 (NA) -> last
    v_ccode = vmap[vcodes]

    # Which price each row gets.
    vamount, vamount_na = _masked(df["vendor_unit_amount"], "Float64", np.float64)
    paid, paid_na = _masked(df["is_paid"], "boolean", bool)
    vendor = ~has_entry & ~vamount_na & (v_ccode >= 0)
    free = ~has_entry & ~vendor & ~paid_na & ~paid
    source = np.full(n, 3, dtype=np.int64)
    source[free] = 2
    source[vendor] = 1
    source[has_entry] = 0
    priced = source != 3

    book_price = np.append(book["unit_price"].to_numpy(dtype=np.float64, na_value=np.nan), np.nan)
    book_period = np.append(np.array([BILLING_PERIODS.index(p) for p in book["billing_period"].tolist()], dtype=np.int64), -1)
    unit_price = np.where(has_entry, book_price[e] if len(book) else np.nan, np.where(vendor, vamount, 0.0))
    ccode = np.where(has_entry, book_ccode[e], np.where(vendor, v_ccode, -1))
    vendor_period = BILLING_PERIODS.index(options.vendor_price_period)
    period = np.where(has_entry, book_period[e] if len(book) else -1, np.where(vendor, vendor_period, -1))
    per_year = np.array([PERIODS_PER_YEAR[p] for p in BILLING_PERIODS] + [0], dtype=np.float64)
    annual_unit = unit_price * per_year[period]    # free: 0 x 0
    annual_unit = np.where(priced, annual_unit, 0.0)
    no_price = ~priced

    # Seats.
    assigned, assigned_na = _masked(df["assigned_seats"], "Int64", np.int64)
    total, total_na = _masked(df["total_seats"], "Int64", np.int64)
    unassigned, unassigned_na = _masked(df["unassigned_seats"], "Int64", np.int64)
    over, over_na = _masked(df["over_allocated_seats"], "Int64", np.int64)

    cost = annual_unit * total
    cost_na = no_price | total_na
    idle = annual_unit * unassigned
    idle_na = no_price | unassigned_na
    true_up = annual_unit * over
    true_up_na = no_price | over_na

    frac = _buffer_fraction(options.buffer)
    p, q = frac.numerator, frac.denominator
    recommended = (assigned * (q + p) + q - 1) // q
    savings = np.maximum(total - recommended, 0) * annual_unit
    savings_na = no_price | total_na | assigned_na

    # Conversion: a rate per currency code; a zero amount is zero in any currency.
    rates = np.array([options.fx_rates.get(c, np.nan) for c in currencies] + [np.nan], dtype=np.float64)
    row_rate = rates[ccode]
    no_rate = np.isnan(row_rate)

    def convert(values: np.ndarray, na: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        zero = values == 0
        out_na = na | (no_rate & ~zero)
        return np.where(zero | out_na, 0.0, values * np.where(no_rate, 0.0, row_rate)), out_na

    cost_r, cost_r_na = convert(cost, cost_na)
    idle_r, idle_r_na = convert(idle, idle_na)
    true_up_r, true_up_r_na = convert(true_up, true_up_na)
    savings_r, savings_r_na = convert(savings, savings_na)

    # Flags, by precedence.
    util, util_na = _masked(df["utilization_pct"], "Float64", np.float64)
    not_reported = assigned_na | total_na
    flag = np.select(
        [not_reported, over > 0, ~util_na & (util < options.under_used_pct), ~util_na & (util >= options.at_capacity_pct)],
        [FLAGS.index("not_reported"), FLAGS.index("over_allocated"), FLAGS.index("under_used"), FLAGS.index("at_capacity")],
        FLAGS.index("ok"),
    )

    metrics = {
        "unit_price": _float(unit_price, no_price),
        "currency": _strings_from_codes(ccode, currencies),
        "billing_period": _strings_from_codes(period, BILLING_PERIODS),
        "price_source": _strings_from_codes(source, PRICE_SOURCES),
        "annual_unit_price": _float(annual_unit, no_price),
        "annual_cost": _float(_cents(cost), cost_na),
        "idle_annual_cost": _float(_cents(idle), idle_na),
        "true_up_exposure": _float(_cents(true_up), true_up_na),
        "annual_cost_reporting": _float(_cents(cost_r), cost_r_na),
        "idle_annual_cost_reporting": _float(_cents(idle_r), idle_r_na),
        "true_up_exposure_reporting": _float(_cents(true_up_r), true_up_r_na),
        "reporting_currency": _strings_from_codes(np.zeros(n, dtype=np.int64), [options.reporting_currency]),
        "recommended_seats": pd.arrays.IntegerArray(np.where(assigned_na, 0, recommended), assigned_na.copy()),
        "potential_annual_savings": _float(_cents(savings), savings_na),
        "potential_annual_savings_reporting": _float(_cents(savings_r), savings_r_na),
        "flag": _strings_from_codes(flag, FLAGS),
    }
    out = df.copy(deep=False)
    for name in METRIC_COLUMNS:
        out[name] = pd.Series(metrics[name], index=df.index)
    return out


# -------------------------------------------------------------- aggregates

_PAID_RULE = ("paid = the vendor says paid, or the vendor does not say and the license has a price above 0; "
              "the vendor saying not paid always counts as free")


def paid_mask(df: pd.DataFrame) -> np.ndarray:
    """Rows counted as paid licenses (see ``Summary.paid_rule``)."""
    paid, paid_na = _masked(df["is_paid"], "boolean", bool)
    price, price_na = _masked(df["annual_unit_price"], "Float64", np.float64)
    return (~paid_na & paid) | (paid_na & ~price_na & (price > 0))


class _Prepared:
    """The numeric arrays the totals are computed from, once per call."""

    SEATS = ("total_seats", "assigned_seats", "unassigned_seats", "over_allocated_seats")
    MONEY = {
        "annual_spend": "annual_cost_reporting",
        "idle_annual_spend": "idle_annual_cost_reporting",
        "potential_annual_savings": "potential_annual_savings_reporting",
        "true_up_exposure": "true_up_exposure_reporting",
    }

    def __init__(self, df: pd.DataFrame, rows: np.ndarray | None = None):
        missing = [c for c in METRIC_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"run add_metrics first: the table lacks {', '.join(missing)}")
        if rows is not None:
            df = df[rows]
        self.df = df
        self.n = len(df)
        self.seats = {c: _masked(df[c], "Int64", np.int64) for c in self.SEATS}
        self.money = {}
        for name, col in self.MONEY.items():
            v, m = _masked(df[col], "Float64", np.float64)
            self.money[name] = (np.rint(v * 100), m)   # whole cents, exact in float64
        own, own_na = _masked(df["annual_cost"], "Float64", np.float64)
        cost_r_na = self.money["annual_spend"][1]
        # Known spend left out of the totals for want of an exchange rate.
        self.excluded = ~own_na & cost_r_na & (own != 0)
        self.own_cents = np.rint(own * 100)
        flag_idx = pc.index_in(_arrow_strings(df["flag"]), value_set=pa.array(FLAGS)).fill_null(FLAGS.index("ok"))
        self.flag = flag_idx.to_numpy(zero_copy_only=False).astype(np.int64)
        source = _arrow_strings(df["price_source"])
        self.unpriced = pc.fill_null(pc.equal(source, "unpriced"), True).to_numpy(zero_copy_only=False)
        paid, paid_na = _masked(df["is_paid"], "boolean", bool)
        self.paid_said = ~paid_na & paid


def _sum(codes: np.ndarray | None, ngroups: int, weights: np.ndarray | None) -> np.ndarray:
    if codes is None:
        return np.array([float(weights.sum()) if weights is not None else 0.0])
    return np.bincount(codes, weights=weights, minlength=ngroups).astype(np.float64)


def _count(codes: np.ndarray | None, ngroups: int, where: np.ndarray) -> np.ndarray:
    if codes is None:
        return np.array([int(np.count_nonzero(where))])
    return np.bincount(codes, weights=where.astype(np.float64), minlength=ngroups).astype(np.int64)


def _aggregate(prep: _Prepared, codes: np.ndarray | None, ngroups: int) -> dict[str, Any]:
    """The figures per group (codes None: one group of all rows), as arrays and value masks."""
    out: dict[str, Any] = {}
    out["licenses"] = (_count(codes, ngroups, np.ones(prep.n, dtype=bool)) if codes is not None
                       else np.array([prep.n]))
    known: dict[str, np.ndarray] = {}
    for col, (values, na) in prep.seats.items():
        known[col] = ~na
        total = _sum(codes, ngroups, np.where(na, 0, values).astype(np.float64))
        count = _count(codes, ngroups, ~na)
        out[col] = (np.rint(total).astype(np.int64), count == 0)
    # Seat-weighted utilization over rows reporting both counts (unassigned is known exactly then).
    both = known["unassigned_seats"]
    a = _sum(codes, ngroups, np.where(both, prep.seats["assigned_seats"][0], 0).astype(np.float64))
    t = _sum(codes, ngroups, np.where(both, prep.seats["total_seats"][0], 0).astype(np.float64))
    a_i, t_i = np.rint(a).astype(np.int64), np.rint(t).astype(np.int64)
    safe_t = np.where(t_i > 0, t_i, 1)
    out["utilization_pct"] = ((2000 * a_i + safe_t) // (2 * safe_t) / 10.0, t_i <= 0)
    out["rows_without_seat_counts"] = out["licenses"] - _count(codes, ngroups, both)

    for name, (cents, na) in prep.money.items():
        total = _sum(codes, ngroups, np.where(na, 0.0, cents))
        count = _count(codes, ngroups, ~na)
        out[name] = (total / 100.0, count == 0)
    spend_cents, spend_na = prep.money["annual_spend"]
    idle_cents, idle_na = prep.money["idle_annual_spend"]
    split = ~spend_na & ~idle_na
    used = _sum(codes, ngroups, np.where(split, spend_cents - idle_cents, 0.0))
    out["used_annual_spend"] = (used / 100.0, _count(codes, ngroups, split) == 0)
    unsplit = ~spend_na & idle_na
    out["unsplit_annual_spend"] = (_sum(codes, ngroups, np.where(unsplit, spend_cents, 0.0)) / 100.0,
                                   _count(codes, ngroups, unsplit) == 0)
    out["rows_without_spend"] = _count(codes, ngroups, spend_na)
    out["rows_not_converted"] = _count(codes, ngroups, prep.excluded)
    out["unpriced_licenses"] = _count(codes, ngroups, prep.unpriced)
    out["unpriced_paid_licenses"] = _count(codes, ngroups, prep.unpriced & prep.paid_said)
    if codes is None:
        flags = np.bincount(prep.flag, minlength=len(FLAGS)).reshape(1, len(FLAGS))
    else:
        flags = np.bincount(codes * len(FLAGS) + prep.flag, minlength=ngroups * len(FLAGS)).reshape(ngroups, len(FLAGS))
    for j, f in enumerate(FLAGS):
        out[f"flag_{f}"] = flags[:, j].astype(np.int64)
    out["over_allocated_licenses"] = out["flag_over_allocated"]

    # Left out of the totals, per group and currency, in the rows' own currency.
    excluded: list[dict[str, tuple[float, int]]] = [dict() for _ in range(ngroups)]
    rows = np.flatnonzero(prep.excluded)
    if len(rows):
        cur = prep.df["currency"].to_numpy(dtype=object)[rows]
        grp = codes[rows] if codes is not None else np.zeros(len(rows), dtype=np.int64)
        frame = pd.DataFrame({"g": grp, "c": cur, "cents": prep.own_cents[rows]})
        sums = frame.groupby(["g", "c"], sort=True)["cents"].agg(["sum", "size"])
        for (g, c), s, k in zip(sums.index, sums["sum"].tolist(), sums["size"].tolist()):
            excluded[g][c] = (round(s / 100.0, 2), int(k))
    out["_excluded"] = excluded
    return out


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
    rows' ``*_reporting`` figures in whole cents; ``excluded_by_currency`` is
    the annual spend left out of them because its currency has no exchange
    rate, in that currency (their idle spend, savings and true-up are left out too).
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
    measure: str = MEASURE
    paid_rule: str = _PAID_RULE

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (None for not reported)."""
        return asdict(self)


def _filtered(df: pd.DataFrame, paid_only: bool) -> np.ndarray | None:
    return paid_mask(df) if paid_only else None


def _value(arr, mask, i, kind):
    if mask is not None and bool(mask[i]):
        return None
    return kind(arr[i])


def summarize(df: pd.DataFrame, options: MetricOptions | None = None, paid_only: bool = False) -> Summary:
    """Totals over all rows of a table from :func:`add_metrics`, or over the paid licenses only."""
    currency = _reporting_currency(df, options)
    prep = _Prepared(df, _filtered(df, paid_only))
    agg = _aggregate(prep, None, 1)

    def opt(name, kind):
        arr, mask = agg[name]
        return _value(arr, mask, 0, kind)

    excluded = agg["_excluded"][0]
    return Summary(
        reporting_currency=currency,
        paid_only=bool(paid_only),
        licenses=int(agg["licenses"][0]),
        total_seats=opt("total_seats", int),
        assigned_seats=opt("assigned_seats", int),
        unassigned_seats=opt("unassigned_seats", int),
        over_allocated_seats=opt("over_allocated_seats", int),
        utilization_pct=opt("utilization_pct", float),
        rows_without_seat_counts=int(agg["rows_without_seat_counts"][0]),
        annual_spend=opt("annual_spend", lambda x: round(float(x), 2)),
        used_annual_spend=opt("used_annual_spend", lambda x: round(float(x), 2)),
        idle_annual_spend=opt("idle_annual_spend", lambda x: round(float(x), 2)),
        unsplit_annual_spend=opt("unsplit_annual_spend", lambda x: round(float(x), 2)),
        potential_annual_savings=opt("potential_annual_savings", lambda x: round(float(x), 2)),
        true_up_exposure=opt("true_up_exposure", lambda x: round(float(x), 2)),
        rows_without_spend=int(agg["rows_without_spend"][0]),
        excluded_by_currency={c: v for c, (v, _) in sorted(excluded.items())},
        excluded_rows_by_currency={c: k for c, (_, k) in sorted(excluded.items())},
        flag_counts={f: int(agg[f"flag_{f}"][0]) for f in FLAGS},
        unpriced_licenses=int(agg["unpriced_licenses"][0]),
        unpriced_paid_licenses=int(agg["unpriced_paid_licenses"][0]),
        over_allocated_licenses=int(agg["over_allocated_licenses"][0]),
    )


GROUP_FIGURES = [
    "licenses", "total_seats", "assigned_seats", "unassigned_seats", "over_allocated_seats",
    "utilization_pct", "rows_without_seat_counts",
    "annual_spend", "used_annual_spend", "idle_annual_spend", "unsplit_annual_spend",
    "potential_annual_savings", "true_up_exposure", "reporting_currency",
    "rows_without_spend", "rows_not_converted", "not_converted",
    "unpriced_licenses", "unpriced_paid_licenses", "over_allocated_licenses",
    "flag_over_allocated", "flag_under_used", "flag_at_capacity", "flag_not_reported", "flag_ok",
]


def _group_codes(df: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, list[pd.api.extensions.ExtensionArray]]:
    """Dense group codes over ``by`` (an empty key is a group of its own) and each key column per group."""
    codes = np.zeros(len(df), dtype=np.int64)
    key_codes: list[np.ndarray] = []
    key_values: list[pd.api.extensions.ExtensionArray] = []
    for col in by:
        c, values = _encode(df[col]) if _is_text(df[col]) else _factorize(df[col])
        width = len(values) + 1                   # the last code is "empty"
        c = np.where(c < 0, width - 1, c)
        codes, uniques = pd.factorize(codes * width + c, sort=False)
        uniques = np.asarray(uniques, dtype=np.int64)
        key_codes = [k[uniques // width] for k in key_codes] + [uniques % width]
        key_values.append(pd.array(list(values) + [None], dtype=df[col].dtype))
    keys = [vals.take(k) for vals, k in zip(key_values, key_codes)]
    return codes.astype(np.int64), keys


def _is_text(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) or series.dtype == object


def _factorize(series: pd.Series) -> tuple[np.ndarray, list]:
    codes, uniques = pd.factorize(series)
    return codes.astype(np.int64), list(uniques)


def group_summary(df: pd.DataFrame, by: str | Sequence[str], options: MetricOptions | None = None,
                  paid_only: bool = False) -> pd.DataFrame:
    """:func:`summarize`'s figures per group of ``by`` (columns, or a name in :data:`GROUPINGS`).

    One row per group (rows with an empty key form a group of their own),
    sorted by the key; the columns are ``by`` then :data:`GROUP_FIGURES`.
    Figures nobody reported are NA. ``not_converted`` says, in words, what was
    left out of the group's totals for want of an exchange rate ("GBP 1200.00").
    """
    if isinstance(by, str):
        by = GROUPINGS.get(by, [by])
    by = list(by)
    missing = [c for c in by if c not in df.columns]
    if missing:
        raise ValueError(f"cannot group by {', '.join(missing)}: no such column")
    currency = _reporting_currency(df, options)
    rows = _filtered(df, paid_only)
    sub = df[rows] if rows is not None else df
    codes, keys = _group_codes(sub, by)
    ngroups = len(keys[0]) if len(sub) else 0
    prep = _Prepared(sub)
    agg = _aggregate(prep, codes, ngroups)

    data: dict[str, Any] = {}
    for j, col in enumerate(by):
        data[col] = keys[j] if ngroups else pd.array([], dtype=df[col].dtype)
    for name in GROUP_FIGURES:
        if name == "reporting_currency":
            data[name] = pd.array([currency] * ngroups, dtype="string")
        elif name == "not_converted":
            data[name] = pd.array(
                ["; ".join(f"{c} {v:.2f}" for c, (v, _) in sorted(ex.items())) or None for ex in agg["_excluded"]],
                dtype="string")
        elif isinstance(agg[name], tuple):
            values, mask = agg[name]
            kind = "Float64" if values.dtype.kind == "f" else "Int64"
            if kind == "Float64" and name != "utilization_pct":
                values = np.round(values, 2)
            data[name] = (pd.arrays.FloatingArray(values.astype(np.float64), mask.copy()) if kind == "Float64"
                          else pd.arrays.IntegerArray(values.astype(np.int64), mask.copy()))
        else:
            data[name] = pd.array(agg[name], dtype="Int64")
    out = pd.DataFrame(data)
    if ngroups:
        out = out.sort_values(by, na_position="last", kind="stable").reset_index(drop=True)
    return out


# -------------------------------------------------------------- chart data

def top_idle_spend(df: pd.DataFrame, n: int = 10, options: MetricOptions | None = None,
                   by: Sequence[str] = ("integration_label", "license_name"),
                   paid_only: bool = False) -> pd.DataFrame:
    """The ``n`` licenses (integration + license name, over all accounts) with the most idle annual spend.

    Only groups with idle spend above 0; largest first, ties by key.
    """
    groups = group_summary(df, list(by), options, paid_only=paid_only)
    idle = groups["idle_annual_spend"]
    groups = groups[idle.fillna(0).to_numpy(dtype=np.float64) > 0]
    return groups.sort_values(["idle_annual_spend", *by], ascending=[False] + [True] * len(by),
                              kind="stable").head(n).reset_index(drop=True)


def utilization_by_integration(df: pd.DataFrame, options: MetricOptions | None = None,
                               paid_only: bool = False) -> pd.DataFrame:
    """Seat-weighted utilization per integration (allocation, not activity), lowest first; NA last."""
    groups = group_summary(df, ["integration_label"], options, paid_only=paid_only)
    cols = ["integration_label", "utilization_pct", "assigned_seats", "total_seats", "unassigned_seats",
            "over_allocated_seats", "licenses", "rows_without_seat_counts"]
    return groups[cols].sort_values(["utilization_pct", "integration_label"], na_position="last",
                                    kind="stable").reset_index(drop=True)


def spend_by_integration(df: pd.DataFrame, options: MetricOptions | None = None,
                         paid_only: bool = False) -> pd.DataFrame:
    """Annual spend per integration in the reporting currency, long form for a stacked bar.

    Columns: ``integration_label``, ``part`` (``used``: assigned seats,
    ``idle``: unassigned seats, ``not_reported``: spend of rows whose assigned
    seats are not reported, so it cannot be split), ``amount``,
    ``reporting_currency``. The parts of an integration add up to its
    ``annual_spend``. Integrations without any spend figure are left out.
    """
    groups = group_summary(df, ["integration_label"], options, paid_only=paid_only)
    currency = _reporting_currency(df, options)
    parts = (("used", "used_annual_spend"), ("idle", "idle_annual_spend"), ("not_reported", "unsplit_annual_spend"))
    frames = []
    for part, col in parts:
        has = groups[col].notna().to_numpy(dtype=bool)
        if part == "not_reported":
            has = has & (groups[col].fillna(0).to_numpy(dtype=np.float64) > 0)
        frames.append(pd.DataFrame({
            "integration_label": groups["integration_label"][has].to_numpy(dtype=object),
            "part": part,
            "amount": groups[col][has].to_numpy(dtype=np.float64),
        }))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["integration_label", "part", "amount"])
    order = {p: i for i, (p, _) in enumerate(parts)}
    out["_o"] = out["part"].map(order)
    out = out.sort_values(["integration_label", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
    out = out.astype({"integration_label": "string", "part": "string", "amount": "Float64"})
    out["reporting_currency"] = pd.array([currency] * len(out), dtype="string")
    return out


def all_group_summaries(df: pd.DataFrame, options: MetricOptions | None = None,
                        paid_only: bool = False) -> dict[str, pd.DataFrame]:
    """:func:`group_summary` for every entry of :data:`GROUPINGS`."""
    return {name: group_summary(df, cols, options, paid_only=paid_only) for name, cols in GROUPINGS.items()}
