"""Totals over a table with metrics: the summary, group-bys and the chart tables.

Every total is in the reporting currency and adds the rows' rounded amounts in whole cents, so a
total equals the sum of the rows shown; see docs/metrics.md. Totals accept the table, or a
:class:`PreparedMetrics` from :func:`prepare`, which reads the table once for any number of totals.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from lib.analytics._engine import (
    _codes_of,
    _encode,
    _Grouping,
    _masked,
    column_codes,
    combine_codes,
)
from lib.analytics.labels import MEASURE
from lib.analytics.metrics import METRIC_COLUMNS, MetricOptions
from lib.analytics.rules import (
    FLAGS,
    PAID_RULE,
    needs_price_rule,
    not_known_rule,
    paid_rule,
    unpriced_mask,
    utilization_tenths,
)

GROUPINGS: dict[str, list[str]] = {
    "integration": ["integration_label"],
    "account": ["integration_label", "account_id"],
    "tenant": ["tenant_id"],
    "organization": ["integration_label", "organization_name"],
    "license": ["integration_label", "license_name"],
}


# Row properties counted per group, as bits of one small code per row.
_BITS = (
    "total_known",
    "assigned_known",
    "spend_known",
    "idle_known",
    "savings_known",
    "true_up_known",
    "not_converted",
    "unpriced",
    "needs_price",
)
_BIT = {name: j for j, name in enumerate(_BITS)}
_FLAG_SHIFT = len(_BITS)

# Sums per group: name -> how it is made (see PreparedMetrics.__init__).
_SUMS = (
    "total_seats",
    "assigned_seats",
    "unassigned_seats",
    "over_allocated_seats",
    "both_assigned",
    "annual_spend",
    "idle_annual_spend",
    "potential_annual_savings",
    "true_up_exposure",
    "unsplit_annual_spend",
)

_MONEY_SOURCES = {
    "annual_spend": "annual_cost_reporting",
    "idle_annual_spend": "idle_annual_cost_reporting",
    "potential_annual_savings": "potential_annual_savings_reporting",
    "true_up_exposure": "true_up_exposure_reporting",
}


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
        self.df = df = df.copy(
            deep=False
        )  # copy-on-write: later edits of the caller's table do not reach it
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
            v = v * 100  # a new array: to_numpy may share the table's memory
            np.rint(v, out=v)  # whole cents, exact in float64
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
            "total_seats": t,
            "assigned_seats": a,
            "unassigned_seats": u,
            "over_allocated_seats": o,
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
        self.nc_codes, self.nc_names = _encode(
            df["currency"].iloc[self.nc_rows].astype("string").reset_index(drop=True)
        )

        flag = _codes_of(df["flag"], FLAGS).astype(np.int16)
        flag[flag < 0] = FLAGS.index("ok")
        unpriced = unpriced_mask(df)
        paid, paid_na = _masked(df["is_paid"], "boolean", bool)
        bits = {
            "total_known": ~t_na,
            "assigned_known": ~a_na,
            "spend_known": ~spend_na,
            "idle_known": ~idle_na,
            "savings_known": ~money["potential_annual_savings"][1],
            "true_up_known": ~money["true_up_exposure"][1],
            "not_converted": not_converted,
            "unpriced": unpriced,
            "needs_price": needs_price_rule(unpriced, paid, paid_na),
        }
        raw = flag << _FLAG_SHIFT
        for name, j in _BIT.items():
            raw |= bits[name].astype(np.int16) << j
        present = np.bincount(raw, minlength=len(FLAGS) << _FLAG_SHIFT) > 0
        self.patterns = np.flatnonzero(present)  # the row codes that occur
        self.pattern = (np.cumsum(present) - 1).astype(np.int16)[raw]  # fewer than 2**15 codes
        price, price_na = _masked(df["annual_unit_price"], "Float64", np.float64)
        self.paid = paid_rule(paid, paid_na, price, price_na)
        self.not_known = not_known_rule(paid, paid_na, price, price_na)
        self.not_known_seats = (
            int(np.rint(t[self.not_known & ~t_na].sum()))
            if (self.not_known & ~t_na).any()
            else None
        )
        self._encoded: dict[str, tuple[np.ndarray, Any]] = {}
        self._groups: dict[tuple, tuple[np.ndarray, list]] = {}
        self._groupings: dict[tuple, _Grouping] = {}
        self._results: dict[tuple, Any] = {}

    # -- group codes

    def _column_codes(self, col: str) -> tuple[np.ndarray, Any]:
        """int64 codes of one column, NA last, and the values they stand for (with NA)."""
        if col not in self._encoded:
            self._encoded[col] = column_codes(self.df[col])
        return self._encoded[col]

    def group_codes(self, by: tuple[str, ...]) -> tuple[np.ndarray, list]:
        """Codes per row (int64), and per code the value of each key column (an empty key is a value).

        Some codes may have no rows; the figures drop them.
        """
        if by not in self._groups:
            self._groups[by] = combine_codes([self._column_codes(c) for c in by], self.n)
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
                    codes = np.where(
                        self.paid, codes, ngroups
                    )  # the rest goes to a bin that is dropped
                self._groupings[key] = _Grouping(codes, ngroups)
        return self._groupings[key]

    # -- figures

    def aggregate(self, by: tuple[str, ...] | None, paid_only: bool) -> dict[str, Any]:
        """The figures per group of ``by`` (None: all rows are one group), as (values, NA mask) arrays."""
        g = self.grouping(by, paid_only)
        ngroups = g.ngroups
        if g.codes is None and g.rows is not None:
            # All paid rows as one group: np.dot is many times faster than ``@`` on two long vectors
            # here, and as exact: every weight is a whole number (seats, cents) far below 2**53.
            sums = {name: np.array([np.dot(self.weights[name], g.rows)]) for name in _SUMS}
        else:
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
            per = np.stack(
                [
                    np.bincount(g.codes[self.pattern == p], minlength=ngroups + 1)[:ngroups]
                    for p in range(npat)
                ],
                axis=1,
            )
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
        out["utilization_pct"] = utilization_tenths(a_i, t_i)
        # Its numerator and denominator: the same rows (those reporting both counts).
        out["utilization_assigned_seats"] = (a_i, both == 0)
        out["utilization_total_seats"] = (t_i, both == 0)
        out["utilization_rows"] = both
        out["rows_without_seat_counts"] = out["licenses"] - both
        for name, bit in (
            ("annual_spend", "spend_known"),
            ("idle_annual_spend", "idle_known"),
            ("potential_annual_savings", "savings_known"),
            ("true_up_exposure", "true_up_known"),
        ):
            out[name] = (np.round(sums[name] / 100.0, 2), known[bit] == 0)
        split = count(pbits["spend_known"] & pbits["idle_known"])
        unsplit = count(pbits["spend_known"] & (1 - pbits["idle_known"]))
        used = sums["annual_spend"] - sums["idle_annual_spend"] - sums["unsplit_annual_spend"]
        out["used_annual_spend"] = (np.round(used / 100.0, 2), split == 0)
        out["unsplit_annual_spend"] = (
            np.round(sums["unsplit_annual_spend"] / 100.0, 2),
            unsplit == 0,
        )
        out["rows_without_spend"] = out["licenses"] - known["spend_known"]
        out["rows_not_converted"] = known["not_converted"]
        out["unpriced_licenses"] = known["unpriced"]
        out["unpriced_paid_licenses"] = known["needs_price"]
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
            cents = np.bincount(combined, weights=self.nc_cents, minlength=nbins)[: ngroups * ncur]
            rows = np.bincount(combined, minlength=nbins)[: ngroups * ncur]
            for pos in np.flatnonzero(rows).tolist():
                excluded[pos // ncur][self.nc_names[pos % ncur]] = (
                    round(cents[pos] / 100.0, 2),
                    int(rows[pos]),
                )
        out["_excluded"] = excluded
        return out


def prepare(
    df: pd.DataFrame | PreparedMetrics, options: MetricOptions | None = None
) -> PreparedMetrics:
    """Read a table from :func:`add_metrics` once, for any number of totals (see :class:`PreparedMetrics`)."""
    if isinstance(df, PreparedMetrics):
        if options is not None and options.reporting_currency != df.reporting_currency:
            raise ValueError(
                f"the metrics were computed in {df.reporting_currency}, not {options.reporting_currency}"
            )
        return df
    return PreparedMetrics(df, options)


def _reporting_currency(df: pd.DataFrame, options: MetricOptions | None) -> str:
    found = df["reporting_currency"].iat[0] if len(df) else None
    if options is None:
        return found if isinstance(found, str) else MetricOptions().reporting_currency
    if isinstance(found, str) and found != options.reporting_currency:
        raise ValueError(
            f"the metrics were computed in {found}, not {options.reporting_currency}; run add_metrics again"
        )
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
    # Licenses whose paid status is not known (the vendor does not say, no price: rules.not_known_rule)
    # and their seats bought, over every row whatever ``paid_only``: the paid figures leave them out.
    not_known_licenses: int = 0
    not_known_seats: int | None = None
    measure: str = MEASURE
    paid_rule: str = PAID_RULE

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (None for not reported)."""
        return asdict(self)


def summarize(
    df: pd.DataFrame | PreparedMetrics,
    options: MetricOptions | None = None,
    paid_only: bool = False,
) -> Summary:
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
            not_known_licenses=int(prep.not_known.sum()),
            not_known_seats=prep.not_known_seats,
        )
    return copy.deepcopy(prep._results[key])
