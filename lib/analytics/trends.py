"""Seats, utilization and spend over time, from the stored snapshots."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from lib.analytics.labels import TREND_MEASURES
from lib.analytics.metrics import MetricOptions, add_metrics
from lib.analytics.pricing import validate_price_book
from lib.analytics.views import Filters
from lib.schema import (
    LICENSE_COLUMNS,
    TREND_CLASS_COLUMNS,
    TREND_CLASS_PRICE_COLUMNS,
    TREND_PRICE_COLUMNS,
)
from lib.truto.normalize import seat_arithmetic

MEASURES = TREND_MEASURES  # the words live in lib.analytics.labels


def measure_labels(currency: str | None) -> dict[str, str]:
    """:data:`MEASURES` with the reporting currency's code, for the picker, the axis and the messages."""
    from lib.analytics.labels import in_currency

    return {k: in_currency(v, currency) for k, v in MEASURES.items()}


GROUPS = {"integration": ["integration_label"], "license": ["integration_label", "license_name"]}


def trend_frame(history: pd.DataFrame, group: str = "integration") -> pd.DataFrame:
    """One row per snapshot date and group with assigned, bought, utilization and spend.

    Utilization is seat-weighted over the rows reporting both counts at that
    date; a sum is empty (not 0) when no row of the group reports it, and the
    annual cost is empty when any row's cost is not known (no price, seats
    bought not reported, no exchange rate).
    """
    by = GROUPS[group]
    cols = [
        "taken_at",
        *by,
        "utilization_pct",
        "assigned_seats",
        "total_seats",
        "annual_cost_reporting",
        "licenses",
    ]
    if history.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    df = history.copy()
    df["taken_at"] = df["taken_at"].dt.floor("D")
    both = df["assigned_seats"].notna() & df["total_seats"].notna()
    df["_a_both"] = df["assigned_seats"].where(both)
    df["_t_both"] = df["total_seats"].where(both)
    if "annual_cost_reporting" not in df:
        df["annual_cost_reporting"] = pd.array([pd.NA] * len(df), dtype="Float64")
    keys = ["taken_at", *by]
    g = df.groupby(keys, dropna=False, observed=True, sort=True)
    out = g.agg(
        assigned_seats=("assigned_seats", lambda s: s.sum() if s.notna().any() else pd.NA),
        total_seats=("total_seats", lambda s: s.sum() if s.notna().any() else pd.NA),
        annual_cost_reporting=(
            "annual_cost_reporting",
            # not known (empty) when any row's cost is: never the known part as the whole
            lambda s: round(float(s.sum()), 2) if len(s) and s.notna().all() else pd.NA,
        ),
        _a=("_a_both", "sum"),
        _t=("_t_both", "sum"),
        licenses=("license_id", "size"),
    ).reset_index()
    # the same exact half-up rounding as every other utilization figure
    out["utilization_pct"] = seat_arithmetic(out["_a"].astype("Int64"), out["_t"].astype("Int64"))[
        "utilization_pct"
    ]
    out["assigned_seats"] = out["assigned_seats"].astype("Int64")
    out["total_seats"] = out["total_seats"].astype("Int64")
    out["annual_cost_reporting"] = out["annual_cost_reporting"].astype("Float64")
    return _finish(out, group)


_COLUMNS = [
    "taken_at",
    "utilization_pct",
    "assigned_seats",
    "total_seats",
    "annual_cost_reporting",
    "licenses",
]


def _finish(out: pd.DataFrame, group: str) -> pd.DataFrame:
    """The label, and the columns in order."""
    by = GROUPS[group]
    cols = [_COLUMNS[0], *by, *_COLUMNS[1:]]
    if group == "license":
        out["label"] = (
            out["license_name"].fillna("(no name)") + " (" + out["integration_label"] + ")"
        )
    else:
        out["label"] = out["integration_label"]
    return out[[*cols, "label"]]


def trend_prices(metrics: pd.DataFrame, options: MetricOptions) -> pd.DataFrame:
    """Today's annual price per license (TREND_PRICE_COLUMNS), for the trends the database adds up
    (:meth:`lib.store.Store.trend_sums`): each license row of ``metrics`` (with metrics) keyed by
    account, license, organization and product, with its annual unit price (empty: no price) and
    the exchange rate of its currency into the reporting currency (empty: no rate)."""
    if metrics.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TREND_PRICE_COLUMNS.items()})
    currencies = metrics["currency"].astype("string")
    rates = {c: options.rate(c) for c in currencies.dropna().unique()}
    out = pd.DataFrame(
        {
            "account_id": metrics["account_id"],
            "license_id": metrics["license_id"],
            "organization_id": metrics["organization_id"],
            "product": metrics["product"],
            "annual_unit_price": metrics["annual_unit_price"],
            "rate": pd.array(
                [rates.get(c) if c is not pd.NA else None for c in currencies], dtype="Float64"
            ),
        }
    )
    return out.astype(TREND_PRICE_COLUMNS).reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class TrendPricing:
    """Prices per license class for the trend rollup (:class:`lib.store.rollup.TrendPricing`): the
    price book and rates priced by :func:`lib.analytics.metrics.add_metrics`, as
    :func:`trend_frame`'s history is. ``token``: a hash of what the prices depend on."""

    book: pd.DataFrame
    options: MetricOptions
    token: str

    def price(self, classes: pd.DataFrame) -> pd.DataFrame:
        n = len(classes)
        frame = pd.DataFrame(
            {
                c: (
                    classes[c].astype(t).reset_index(drop=True)
                    if c in TREND_CLASS_COLUMNS
                    else pd.Series(pd.array([None] * n, dtype=t))
                )
                for c, t in LICENSE_COLUMNS.items()
            }
        )
        priced = add_metrics(frame, self.book, self.options)
        currencies = priced["currency"].astype("string")
        rates = {c: self.options.rate(c) for c in currencies.dropna().unique()}
        return pd.DataFrame(
            {
                "annual_unit_price": priced["annual_unit_price"].astype("Float64").array,
                "rate": pd.array(
                    [rates.get(c) if c is not pd.NA else None for c in currencies],
                    dtype="Float64",
                ),
            }
        ).astype(TREND_CLASS_PRICE_COLUMNS)


def trend_pricing(book: pd.DataFrame | None, options: MetricOptions) -> TrendPricing:
    """:class:`TrendPricing` for the price book ``book`` (checked) and ``options``' rates."""
    checked = validate_price_book(book)
    what = {
        "book": [
            [None if v is pd.NA else v for v in row]
            for row in checked.astype(object).itertuples(index=False, name=None)
        ],
        "reporting_currency": options.reporting_currency,
        "fx_rates": sorted((k, repr(float(v))) for k, v in options.fx_rates.items()),
        "vendor_price_period": options.vendor_price_period,
        # how a day's cost is added up: a rollup built under another rule is built again
        "cost_rule": "empty when any row's cost is not known",
    }
    token = hashlib.sha256(json.dumps(what, default=repr).encode()).hexdigest()[:32]
    return TrendPricing(checked, options, token)


def filter_arguments(filters: Filters) -> dict:
    """The sidebar filters as :meth:`lib.store.Store.trend_sums` takes them (the same rules as
    :func:`lib.analytics.views.apply_filters`)."""
    return {
        "tenants": tuple(filters.tenants),
        "integrations": tuple(filters.integrations),
        "accounts": tuple(filters.accounts),
        "paid_only": bool(filters.paid_only),
        "active_only": bool(filters.active_only),
        "search": filters.search,
    }


def trend_from_sums(sums: pd.DataFrame, group: str = "integration") -> pd.DataFrame:
    """:func:`trend_frame`'s table from the sums the database made (TREND_SUM_COLUMNS per day and
    group, :meth:`lib.store.Store.trend_sums` grouped by ``GROUPS[group]``): the same figures,
    rounded the same way, in the same order."""
    by = GROUPS[group]
    if sums.empty:
        return trend_frame(sums.iloc[0:0], group)
    out = pd.DataFrame(
        {
            "taken_at": sums["day"],
            **{c: sums[c] for c in by},
            "assigned_seats": sums["assigned_seats"].astype("Int64"),
            "total_seats": sums["total_seats"].astype("Int64"),
            "annual_cost_reporting": pd.array(
                [
                    pd.NA if c is pd.NA else round(int(c) / 100, 2)
                    for c in sums["cost_cents"].astype("Int64")
                ],
                dtype="Float64",
            ),
            "licenses": sums["licenses"].astype("Int64"),
        }
    )
    out["utilization_pct"] = seat_arithmetic(
        sums["assigned_both"].astype("Int64").reset_index(drop=True),
        sums["total_both"].astype("Int64").reset_index(drop=True),
    )["utilization_pct"].array
    out = out.sort_values(["taken_at", *by], kind="stable", na_position="last")
    return _finish(out.reset_index(drop=True), group)


SEAT_MEASURES = ("active_seats", "reclaimable_seats", "reclaimable_annual_cost_reporting")


def with_seat_trends(
    frame: pd.DataFrame, priced_history: pd.DataFrame, group: str = "integration"
) -> pd.DataFrame:
    """:func:`trend_frame`'s rows plus :data:`SEAT_MEASURES` per date and group, from seat rows over
    time classified and priced by :func:`lib.analytics.activity.reclaim` (each row relative to its
    own snapshot, at today's prices). Empty (not 0) on dates and groups without seat rows, and
    active seats empty where no seat of the group reports activity."""
    out = frame.copy()
    for c in SEAT_MEASURES:
        out[c] = pd.array([pd.NA] * len(out), dtype="Float64" if "cost" in c else "Int64")
    if priced_history.empty or out.empty:
        return out
    by = GROUPS[group]
    df = pd.DataFrame(
        {
            "taken_at": priced_history["taken_at"].dt.floor("D"),
            **{c: priced_history[c].astype("string") for c in by},
            "_active": (priced_history["activity_class"] == "active").to_numpy(dtype=bool),
            "_reported": priced_history["activity_reported"].fillna(False).to_numpy(dtype=bool),
            "_rec": priced_history["reclaimable"].fillna(False).to_numpy(dtype=bool),
            "_cost": priced_history["annual_cost_reporting"].where(
                priced_history["reclaimable"].fillna(False)
            ),
        }
    )
    g = df.groupby(["taken_at", *by], dropna=False, sort=False)
    agg = g.agg(
        active_seats=("_active", "sum"),
        _any=("_reported", "any"),
        reclaimable_seats=("_rec", "sum"),
        reclaimable_annual_cost_reporting=(
            "_cost",
            lambda x: round(float(x.sum()), 2) if x.notna().any() else pd.NA,
        ),
    ).reset_index()
    agg["active_seats"] = agg["active_seats"].astype("Int64").where(agg["_any"], pd.NA)
    agg["reclaimable_seats"] = agg["reclaimable_seats"].astype("Int64")
    agg["reclaimable_annual_cost_reporting"] = agg["reclaimable_annual_cost_reporting"].astype(
        "Float64"
    )
    keys = ["taken_at", *by]
    left = out.drop(columns=list(SEAT_MEASURES))
    for c in by:
        left[c] = left[c].astype("string")
    merged = left.merge(agg.drop(columns="_any"), on=keys, how="left")
    return merged[list(out.columns)]


def snapshot_dates(history: pd.DataFrame) -> list[pd.Timestamp]:
    if history.empty:
        return []
    return sorted(history["taken_at"].dt.floor("D").unique())
