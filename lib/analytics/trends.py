"""Seats, utilization and spend over time, from the stored snapshots."""

from __future__ import annotations

import pandas as pd

from lib.analytics.labels import TREND_MEASURES
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
    date; a sum is empty (not 0) when no row of the group reports it.
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
            lambda s: round(float(s.sum()), 2) if s.notna().any() else pd.NA,
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
    if group == "license":
        out["label"] = (
            out["license_name"].fillna("(no name)") + " (" + out["integration_label"] + ")"
        )
    else:
        out["label"] = out["integration_label"]
    return out[[*cols, "label"]]


def snapshot_dates(history: pd.DataFrame) -> list[pd.Timestamp]:
    if history.empty:
        return []
    return sorted(history["taken_at"].dt.floor("D").unique())
