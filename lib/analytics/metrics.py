"""Spend, idle spend, savings and flags per license row (:func:`add_metrics`).

What each figure means, with its formula, is specified for a finance reader in docs/metrics.md; the
rules (paid, free, unpriced, flags, rounding) are in :mod:`lib.analytics.rules`, the words in
:mod:`lib.analytics.labels`, and the totals in :mod:`lib.analytics.totals`.

Types (:data:`METRIC_DTYPES`): money and prices are ``Float64``, ``recommended_seats`` is ``Int64``,
and the five text columns are categoricals of their few values; compare them with strings as usual
(``df["flag"] == "ok"``).

The totals' names (``summarize``, ``group_summary``, ``prepare``, ...) and the words (``LABELS``, ...)
are still importable from here, for code written before the split.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib.analytics._engine import (
    _buffer_fraction,
    _categorical,
    _encode,
    _float,
    _masked,
    _raw,
    _round_cents,
)
from lib.analytics.pricing import PERIODS_PER_YEAR, validate_price_book
from lib.analytics.rules import (
    FLAGS,
    PRICE_SOURCES,
    currency_code,
    free_rule,
    not_known_rule,
)
from lib.integrations import integration_key
from lib.schema import BILLING_PERIODS, SETTINGS_DEFAULTS

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
    "currency": "category",  # the currencies present, sorted
    "billing_period": "category",  # BILLING_PERIODS
    "price_source": "category",  # PRICE_SOURCES
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
    "flag": "category",  # FLAGS
}


class FrozenRates(Mapping[str, float]):
    """An immutable, hashable {currency: rate to the reporting currency}."""

    def __init__(self, rates: Mapping[str, float] | Sequence[tuple[str, float]] | None = None):
        items = rates.items() if isinstance(rates, Mapping) else (rates or ())
        clean: dict[str, float] = {}
        for code, rate in items:
            found = currency_code(str(code))
            if found is None:
                raise ValueError(
                    f"exchange rate for {str(code).strip().upper()!r}: not an ISO 4217 currency code"
                )
            code = found
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
        code = currency_code(str(self.reporting_currency or ""))
        if code is None:
            raise ValueError(
                f"reporting currency {self.reporting_currency!r} is not an ISO 4217 currency code"
            )
        rates = FrozenRates(self.fx_rates)
        if code in rates and rates[code] != 1.0:
            raise ValueError(
                f"{code} is the reporting currency, so its rate is 1, not {rates[code]!r}"
            )
        rates = FrozenRates({**dict(rates), code: 1.0})
        for name in ("buffer", "under_used_pct", "at_capacity_pct"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        period = str(self.vendor_price_period).strip().lower()
        if period not in BILLING_PERIODS:
            raise ValueError(
                f"vendor_price_period must be one of {', '.join(BILLING_PERIODS)}, not {self.vendor_price_period!r}"
            )
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
    row_keys = [integration_key(x) for x in inames] + [None]  # the last code: no integration
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
            entry[cand] = _lookup(
                icodes[cand], cand_ids, row_keys, lambda key, value: by_id.get((key, value), -1)
            )

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
            entry[todo] = _lookup(
                icodes[todo],
                pd.Series(licenses["license_name"].array.take(todo)),
                row_keys,
                by_name,
            )
    return entry


def _lookup(ikey_codes: np.ndarray, values: pd.Series, row_keys: list, find) -> np.ndarray:
    """``find(integration key, value)`` once per distinct (integration, value) pair (int32; -1 for NA)."""
    vcodes, uniques = _encode(values, na_last=True)
    width = len(uniques) + 1
    size = len(row_keys) * width
    dtype = np.int32 if size < 2**31 else np.int64
    pair: np.ndarray = ikey_codes.astype(dtype)
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
    found = np.array(
        [
            -1
            if uniques[p % width] is None or row_keys[p // width] is None
            else find(row_keys[p // width], uniques[p % width])
            for p in pairs.tolist()
        ],
        dtype=np.int32,
    )
    if len(table) == size:
        table[pairs] = found
    else:
        table[:] = found
    return table[pair]


# ----------------------------------------------------------------- per row


def recommended_for(seats: np.ndarray, buffer: float) -> np.ndarray:
    """Recommended seats: ceil(seats x (1 + buffer)), exactly (the buffer read as a fraction)."""
    frac = _buffer_fraction(buffer)
    p, q = frac.numerator, frac.denominator
    out = np.asarray(seats, dtype=np.int64) * (q + p)
    out += q - 1
    out //= q
    return out


def add_metrics(
    licenses: pd.DataFrame,
    price_book: pd.DataFrame | None = None,
    options: MetricOptions | None = None,
) -> pd.DataFrame:
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
    vmap = np.array(
        [cindex[str(c).upper()] for c in vnames] + [-1], dtype=np.int16
    )  # code -1 (NA) -> last
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
    book_period = np.array(
        [BILLING_PERIODS.index(p) for p in book["billing_period"].tolist()], dtype=np.int8
    )
    price_tab = np.concatenate([book_price, [np.nan, 0.0, 0.0]])
    annual_tab = np.concatenate(
        [
            book_price * np.array(per_year, dtype=np.float64)[book_period].reshape(-1)
            if nb
            else np.zeros(0),
            [np.nan, 0.0, 0.0],
        ]
    )
    currency_tab = np.array([cindex[c] for c in book_currency] + [-1, -1, -1], dtype=np.int16)
    period_tab = np.concatenate(
        [book_period, np.array([vendor_period, -1, -1], dtype=np.int8)]
    ).astype(np.int8)
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

    recommended = recommended_for(assigned, options.buffer)
    np.copyto(recommended, 0, where=assigned_na)
    spare = total - recommended
    np.maximum(spare, 0, out=spare)

    # Conversion: a rate per currency code (0 when there is none; that row's
    # converted figure is then NA unless the amount is 0, which is 0 in any currency).
    rates = np.array([options.fx_rates.get(c, 0.0) for c in currencies] + [0.0], dtype=np.float64)
    row_rate = rates[currency]  # code -1 (no currency: free or unpriced) -> the 0 at the end
    no_rate = row_rate == 0

    money: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, seats, seats_na in (
        ("annual_cost", total, total_na),
        ("idle_annual_cost", unassigned, unassigned_na),
        ("true_up_exposure", over, over_na),
        ("potential_annual_savings", spare, total_na | assigned_na),
    ):
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
    flag[not_known_rule(paid, paid_na, annual_unit, no_price)] = FLAGS.index("not_known")
    flag[assigned_na | total_na] = FLAGS.index("not_reported")
    is_free = free_rule(paid, paid_na, annual_unit, no_price)
    flag[is_free] = FLAGS.index("free")
    recommended_na = assigned_na | is_free

    metrics = {
        "unit_price": _float(unit_price, no_price),
        "currency": _categorical(currency, currencies),
        "billing_period": _categorical(period, BILLING_PERIODS),
        "price_source": _categorical(source, PRICE_SOURCES),
        "annual_unit_price": _float(annual_unit, no_price),
        **{name: _float(values, na) for name, (values, na) in money.items()},
        "reporting_currency": _categorical(
            np.zeros(n, dtype=np.int8), [options.reporting_currency]
        ),
        "recommended_seats": pd.arrays.IntegerArray(recommended, recommended_na),
        "flag": _categorical(flag, FLAGS),
    }
    columns = {c: df[c] for c in df.columns}
    columns.update({c: pd.Series(metrics[c], index=df.index, copy=False) for c in METRIC_COLUMNS})
    return pd.DataFrame(columns, index=df.index, copy=False)
