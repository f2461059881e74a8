"""Group-bys over a table with metrics: per-group totals and the chart tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lib.analytics.metrics import MetricOptions
from lib.analytics.totals import (
    GROUPINGS,
    PreparedMetrics,
    prepare,
)

GROUP_FIGURES = [
    "licenses",
    "total_seats",
    "assigned_seats",
    "unassigned_seats",
    "over_allocated_seats",
    "utilization_pct",
    "rows_without_seat_counts",
    "annual_spend",
    "used_annual_spend",
    "idle_annual_spend",
    "unsplit_annual_spend",
    "potential_annual_savings",
    "true_up_exposure",
    "reporting_currency",
    "rows_without_spend",
    "rows_not_converted",
    "not_converted",
    "unpriced_licenses",
    "unpriced_paid_licenses",
    "over_allocated_licenses",
    "flag_over_allocated",
    "flag_under_used",
    "flag_at_capacity",
    "flag_not_reported",
    "flag_not_known",
    "flag_ok",
    "flag_free",
    "utilization_assigned_seats",
    "utilization_total_seats",
]


def _by_columns(by: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(by, str):
        return tuple(GROUPINGS.get(by, [by]))
    return tuple(by)


def group_summary(
    df: pd.DataFrame | PreparedMetrics,
    by: str | Sequence[str],
    options: MetricOptions | None = None,
    paid_only: bool = False,
) -> pd.DataFrame:
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
                [
                    ("; ".join(f"{c} {v:.2f}" for c, (v, _) in sorted(ex.items())) if ex else None)
                    for ex in agg["_excluded"]
                ],
                dtype="string",
            )
        elif isinstance(agg[name], tuple):
            values, mask = agg[name]
            if values.dtype.kind == "f":
                data[name] = pd.arrays.FloatingArray(values.astype(np.float64), mask.copy())
            else:
                data[name] = pd.arrays.IntegerArray(values.astype(np.int64), mask.copy())
        else:
            data[name] = pd.arrays.IntegerArray(
                np.asarray(agg[name], dtype=np.int64), np.zeros(ngroups, dtype=bool)
            )
    out = pd.DataFrame(data)
    if ngroups:
        out = out[out["licenses"].to_numpy(dtype=np.int64) > 0]
    if len(out):
        out = out.sort_values(list(by), na_position="last", kind="stable")
    return out.reset_index(drop=True)


def all_group_summaries(
    df: pd.DataFrame | PreparedMetrics,
    options: MetricOptions | None = None,
    paid_only: bool = False,
) -> dict[str, pd.DataFrame]:
    """:func:`group_summary` for every entry of :data:`GROUPINGS`, reading the table once."""
    prep = prepare(df, options)
    return {
        name: group_summary(prep, cols, paid_only=paid_only) for name, cols in GROUPINGS.items()
    }


# Chart data.
def top_idle_spend(
    df: pd.DataFrame | PreparedMetrics,
    n: int = 10,
    options: MetricOptions | None = None,
    by: str | Sequence[str] = "license",
    paid_only: bool = False,
) -> pd.DataFrame:
    """The ``n`` licenses (integration + license name, over all accounts) with the most idle annual spend.

    Only groups with idle spend above 0; largest first, ties by key.
    """
    cols = list(_by_columns(by))
    groups = group_summary(df, cols, options, paid_only=paid_only)
    idle = groups["idle_annual_spend"].fillna(0).to_numpy(dtype=np.float64)
    groups = groups[idle > 0]
    return (
        groups.sort_values(
            ["idle_annual_spend", *cols],
            ascending=[False] + [True] * len(cols),
            na_position="last",
            kind="stable",
        )
        .head(n)
        .reset_index(drop=True)
    )


def utilization_by_integration(
    df: pd.DataFrame | PreparedMetrics,
    options: MetricOptions | None = None,
    paid_only: bool = False,
) -> pd.DataFrame:
    """Seat-weighted utilization per integration (allocation, not activity), lowest first; NA last."""
    groups = group_summary(df, ["integration_label"], options, paid_only=paid_only)
    cols = [
        "integration_label",
        "utilization_pct",
        "assigned_seats",
        "total_seats",
        "unassigned_seats",
        "over_allocated_seats",
        "licenses",
        "rows_without_seat_counts",
    ]
    return (
        groups[cols]
        .sort_values(["utilization_pct", "integration_label"], na_position="last", kind="stable")
        .reset_index(drop=True)
    )


SPEND_PARTS = (
    ("used", "used_annual_spend"),
    ("idle", "idle_annual_spend"),
    ("not_reported", "unsplit_annual_spend"),
)


def spend_by_integration(
    df: pd.DataFrame | PreparedMetrics,
    options: MetricOptions | None = None,
    paid_only: bool = False,
) -> pd.DataFrame:
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
        frames.append(
            pd.DataFrame(
                {
                    "integration_label": groups["integration_label"].array[has],
                    "part": pd.array([part] * int(has.sum()), dtype="string"),
                    "amount": values.array[has],
                    "_order": order,
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out = (
        out.sort_values(["integration_label", "_order"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
    out["reporting_currency"] = pd.array([prep.reporting_currency] * len(out), dtype="string")
    return out
