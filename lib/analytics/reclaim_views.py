"""What the Reclaim page (and the Overview, Utilization, Accounts) show of seat activity, computed
without Streamlit (pinned by tests/test_reclaim_views.py): the seats under the sidebar filters, the
tiles, the per-seat and per-license tables, and which integrations report activity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lib.analytics._engine import _masked, _round_cents
from lib.analytics.activity import (
    LICENSE_ACTIVITY_COLUMNS,
    RECLAIMABLE,
    ReclaimSummary,
    license_activity,
    match_licenses,
    reclaim_cost_words,
    reclaimable_seats,
)
from lib.analytics.labels import ACTIVITY_CLASS_LABELS, ACTIVITY_OUTCOME_LABELS
from lib.analytics.metrics import MetricOptions, recommended_for
from lib.analytics.views import Filters, Tile, _scope_mask, tile_value

REASON_LABELS = {c: ACTIVITY_CLASS_LABELS[c] for c in RECLAIMABLE}
# The reason filter's words, as the URL carries them (?reason=Departed).
REASON_FILTER = {
    "Inactive": "inactive",
    "Never active": "never_active",
    "Departed": "departed",
    "Invited": "invited",
}
REASON_SHORT = {c: word for word, c in REASON_FILTER.items()}  # how the seat table says it

# The per-seat table, people first (only for those allowed to see them), then the license and cost.
PEOPLE_COLUMNS = ("user_name", "user_email", "user_id")
SEAT_SHOWN = [
    "user_name",
    "user_email",
    "license_name",
    "integration_label",
    "reclaim_reason",
    "reclaimable_annual_cost_reporting",
    "days_inactive",
    "last_active_at",
    "user_status",
    "account_id",
    "reclaimable_annual_cost",
    "currency",
    "user_id",
    "license_id",
    "organization_id",
]
LICENSE_SHOWN = [
    "license_name",
    "integration_label",
    "account_id",
    "reclaimable_seats",
    "reclaimable_annual_cost_reporting",  # the point: in view at 1440 px, before the split by reason
    *(f"{c}_reclaimable" for c in RECLAIMABLE),
    "reclaimable_annual_cost",
    "currency",
    "license_id",
    "organization_id",
]


def filter_seats(priced: pd.DataFrame, licenses: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The seat rows the sidebar filters keep: tenant, integration and account as on licenses; with a
    license filter (paid, active, search) on, only seats of the licenses it keeps (``licenses``: the
    filtered license rows), so a seat and its license are never filtered by two rules."""
    if not filters.active or priced.empty:
        return priced
    mask = _scope_mask(priced, filters)
    if filters.paid_only or filters.active_only or filters.search.strip():
        mask &= match_licenses(priced, licenses) >= 0
    return priced.loc[mask]


def reasons_kept(priced: pd.DataFrame, reasons: Sequence[str]) -> pd.DataFrame:
    """Rows whose activity class is one of ``reasons`` (classes or :data:`REASON_FILTER` words; all
    reclaimable ones when empty)."""
    wanted = [REASON_FILTER.get(r, r) for r in reasons]
    wanted = [r for r in wanted if r in RECLAIMABLE] or list(RECLAIMABLE)
    return priced.loc[priced["activity_class"].isin(wanted).to_numpy(dtype=bool)]


def reclaim_cost_tile(s: ReclaimSummary, days: int) -> Tile:
    """The reclaimable annual cost (also on the Overview)."""
    return reclaim_tiles(s, days)[1]


def reclaim_tiles(s: ReclaimSummary, days: int) -> list[Tile]:
    cur = s.reporting_currency
    left_out = []
    if s.unpriced_reclaimable_seats:
        left_out.append(f"{s.unpriced_reclaimable_seats:,} seat(s) without a price")
    if s.unconverted_reclaimable_seats:
        left_out.append(f"{s.unconverted_reclaimable_seats:,} without a rate to {cur}")
    cost = tile_value(reclaim_cost_words(s))
    share = "not reported" if s.activity_share_pct is None else f"{s.activity_share_pct:.1f}%"
    return [
        Tile(
            "Reclaimable paid seats",
            f"{s.reclaimable_paid_seats:,}",
            f"Seats of paid licenses inactive for more than {days} days, never used, held by "
            "departed users or by invitations never accepted; exemptions left out. Seats of free "
            "licenses cost nothing and are counted apart.",
            f"+{s.reclaimable_seats - s.reclaimable_paid_seats:,} on free licenses; of "
            f"{s.seats:,} seat assignments",
        ),
        Tile(
            f"Reclaimable annual cost ({cur})",
            cost,
            f"Seats unused for more than {days} days, never used, held by departed users or by "
            "invitations never accepted, × the license's price per seat per year, converted to "
            f"{cur}. Free licenses cost nothing.",
            ("leaves out " + "; ".join(left_out)) if left_out else None,
        ),
        Tile(
            "Departed users holding paid seats",
            f"{s.departed_paid_users:,}",
            "Users the vendor marks inactive or deleted who still hold a paid license.",
            None,
        ),
        Tile(
            "Seats with activity data",
            share,
            "Seat assignments whose integration reports when users were last active. The others "
            "are “activity not reported”, never counted inactive.",
            f"{s.seats_with_activity:,} of {s.seats:,}" if s.seats else None,
        ),
    ]


def seat_table(priced: pd.DataFrame, show_people: bool) -> pd.DataFrame:
    """The reclaimable seats, costliest first (:func:`reclaimable_seats`), with the page's columns;
    without names, emails and user ids unless ``show_people``."""
    rows = reclaimable_seats(priced)
    out = pd.DataFrame(
        {
            **{c: rows[c] for c in SEAT_SHOWN if c in rows.columns},
            "reclaim_reason": rows["activity_class"]
            .astype("string")
            .map(REASON_SHORT)
            .astype("string"),
            "reclaimable_annual_cost": rows["annual_cost"],
            "reclaimable_annual_cost_reporting": rows["annual_cost_reporting"],
        }
    )
    cols = [c for c in SEAT_SHOWN if show_people or c not in PEOPLE_COLUMNS]
    return out[cols].reset_index(drop=True)


def license_table(priced: pd.DataFrame) -> pd.DataFrame:
    """Reclaimable seats per license: how many, why, and what they cost a year (in the price's
    currency, and converted; empty when any of its seats is unpriced or has no rate)."""
    rec = priced.loc[priced["reclaimable"].to_numpy(dtype=bool, na_value=False)]
    if rec.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in LICENSE_SHOWN})
    keys = ["account_id", "integration_label", "license_id", "license_name", "organization_id"]
    frame = rec[keys].astype("string").fillna("")
    frame["currency"] = rec["currency"].astype("string").fillna("")
    groups = frame.groupby([*keys, "currency"], sort=False).ngroup().to_numpy()
    n = int(groups.max()) + 1
    first = np.unique(groups, return_index=True)[1]
    out = rec.iloc[first][[*keys, "currency"]].reset_index(drop=True)
    out["reclaimable_seats"] = np.bincount(groups, minlength=n)
    cls = rec["activity_class"].astype("string").to_numpy()
    for c in RECLAIMABLE:
        out[f"{c}_reclaimable"] = np.bincount(groups, weights=(cls == c), minlength=n).astype(
            np.int64
        )
    for col, src in (
        ("reclaimable_annual_cost", "annual_cost"),
        ("reclaimable_annual_cost_reporting", "annual_cost_reporting"),
    ):
        values = rec[src].to_numpy(dtype=np.float64, na_value=np.nan)
        known = np.bincount(groups, weights=np.nan_to_num(values), minlength=n)
        unknown = np.bincount(groups, weights=np.isnan(values), minlength=n) > 0
        out[col] = pd.arrays.FloatingArray(np.round(known, 2), unknown)
    out["currency"] = out["currency"].replace("", pd.NA).astype("string")
    order = np.lexsort(
        (
            -out["reclaimable_seats"].to_numpy(),
            -out["reclaimable_annual_cost_reporting"].to_numpy(np.float64, na_value=-np.inf),
        )
    )
    return out.iloc[order][LICENSE_SHOWN].reset_index(drop=True)


def activity_coverage(accounts: pd.DataFrame, activity: pd.DataFrame) -> pd.DataFrame:
    """Per account: whether its users (seat activity) were listed, how many users and seats, and
    the message; accounts that list no licenses are left out (no seats to measure)."""
    merged = accounts[["account_id", "integration_label"]].merge(
        activity, on="account_id", how="left"
    )
    merged = merged.loc[merged["activity"].notna().to_numpy(dtype=bool)]
    out = pd.DataFrame(
        {
            "account_id": merged["account_id"],
            "integration_label": merged["integration_label"],
            "activity_outcome": merged["activity"]
            .map(ACTIVITY_OUTCOME_LABELS)
            .fillna(merged["activity"])
            .astype("string"),
            "users": merged["users"],
            "activity_seats": merged["seat_rows"],
            "activity_problems": merged["activity_problems"],
            "activity_message": merged["activity_message"],
        }
    )
    return out.reset_index(drop=True)


def activity_by_integration(seats: pd.DataFrame) -> pd.DataFrame:
    """Per integration: seat assignments listed, how many carry activity data, and the share."""
    if seats.empty:
        return pd.DataFrame(
            {
                "integration_label": pd.Series(dtype="string"),
                "activity_seats": pd.Series(dtype="Int64"),
                "seats_with_activity": pd.Series(dtype="Int64"),
                "activity_share_pct": pd.Series(dtype="Float64"),
            }
        )
    reported = seats["activity_reported"].fillna(False).astype(bool)
    g = (
        pd.DataFrame({"integration_label": seats["integration_label"], "r": reported})
        .groupby("integration_label", sort=True, observed=True)["r"]
        .agg(["size", "sum"])
    )
    out = pd.DataFrame(
        {
            "integration_label": g.index.astype("string"),
            "activity_seats": g["size"].astype("Int64").to_numpy(),
            "seats_with_activity": g["sum"].astype("Int64").to_numpy(),
        }
    )
    out["activity_share_pct"] = (
        (100 * out["seats_with_activity"] / out["activity_seats"]).round(1).astype("Float64")
    )
    return out


# ------------------------------------------------------------------ Utilization: activity per license

ACTIVITY_SHOWN = [
    "users_assigned_seats",
    "assigned_difference",
    "active_seats",
    "inactive_seats",
    "departed_seats",
    "activity_not_reported_seats",
    "active_utilization_pct",
]
BY_ACTIVITY_COLUMNS = [
    "recommended_seats_by_activity",
    "potential_annual_savings_by_activity",
    "potential_annual_savings_by_activity_reporting",
]


def with_activity(
    licenses: pd.DataFrame, classified: pd.DataFrame, options: MetricOptions
) -> pd.DataFrame:
    """The license rows (with metrics) plus :data:`LICENSE_ACTIVITY_COLUMNS` and the right-sizing
    by activity: ``recommended_seats_by_activity`` = ceil(seats still needed x (1 + buffer)), where
    the seats still needed are the seats assigned (the license's count, else the users listing's)
    less the seats known to be reclaimable (:func:`lib.analytics.activity.reclaim`: inactive, never
    active, departed, invited, not exempt). A seat whose use is not reported, or whose holder the
    users listing did not name, stays needed. Also what dropping to it saves a year (price currency,
    and converted). Empty where the account reports no activity or the license is free; never 0
    for "not known"."""
    out = license_activity(classified, licenses)
    n = len(out)
    at = match_licenses(classified, licenses)
    rec_mask = classified["reclaimable"].to_numpy(dtype=bool, na_value=False) & (at >= 0)
    reclaimable = np.bincount(at[rec_mask], minlength=n).astype(np.int64)
    _, active_na = _masked(out["active_seats"], "Int64", np.int64)
    assigned, assigned_na = _masked(out["assigned_seats"], "Int64", np.int64)
    listed, listed_na = _masked(out["users_assigned_seats"], "Int64", np.int64)
    held = np.where(assigned_na, listed, np.maximum(assigned, np.where(listed_na, 0, listed)))
    needed = np.maximum(held - reclaimable, 0)
    free = (out["flag"].astype("string") == "free").fillna(False).to_numpy(dtype=bool)
    rec_na = active_na | free | (assigned_na & listed_na)
    rec = np.where(rec_na, 0, recommended_for(np.where(rec_na, 0, needed), options.buffer))
    total, total_na = _masked(out["total_seats"], "Int64", np.int64)
    price, price_na = _masked(out["annual_unit_price"], "Float64", np.float64)
    spare = np.maximum(total - rec, 0)
    saving_na = rec_na | total_na | price_na
    saving = np.where(saving_na, 0.0, spare * np.where(price_na, 0.0, price))
    currencies = out["currency"].astype("string")
    rates = {c: options.rate(c) for c in currencies.dropna().unique()}
    rate = np.array(
        [rates.get(c) if isinstance(c, str) else None for c in currencies.tolist()], dtype=object
    )
    rate_na = np.array([r is None for r in rate], dtype=bool) if n else np.zeros(0, dtype=bool)
    rate_f = np.array([0.0 if r is None else float(r) for r in rate], dtype=np.float64)
    conv_na = saving_na | (rate_na & (saving != 0))
    out["recommended_seats_by_activity"] = pd.arrays.IntegerArray(rec.astype(np.int64), rec_na)
    out["potential_annual_savings_by_activity"] = pd.arrays.FloatingArray(
        _round_cents(saving), saving_na
    )
    out["potential_annual_savings_by_activity_reporting"] = pd.arrays.FloatingArray(
        _round_cents(np.where(conv_na, 0.0, saving * rate_f)), conv_na
    )
    return out


def with_reclaim_cost(licenses: pd.DataFrame, priced: pd.DataFrame) -> pd.DataFrame:
    """The license rows plus ``reclaimable_seats`` and ``reclaimable_annual_cost_reporting`` (the
    sum over the license's reclaimable seats; empty when a reclaimable seat has no price or rate,
    and both empty for a license no seat row matches)."""
    out = licenses.copy()
    n = len(out)
    at = match_licenses(priced, licenses)
    rec = priced["reclaimable"].to_numpy(dtype=bool, na_value=False) & (at >= 0)
    seen = np.bincount(at[at >= 0], minlength=n) > 0
    seats = np.bincount(at[rec], minlength=n).astype(np.int64)
    cost = priced["annual_cost_reporting"].to_numpy(dtype=np.float64, na_value=np.nan)[rec]
    known = np.bincount(at[rec], weights=np.nan_to_num(cost), minlength=n)
    unknown = np.bincount(at[rec], weights=np.isnan(cost), minlength=n) > 0
    out["reclaimable_seats"] = pd.arrays.IntegerArray(seats, ~seen)
    out["reclaimable_annual_cost_reporting"] = pd.arrays.FloatingArray(
        _round_cents(known), unknown | ~seen
    )
    return out


__all__ = [
    "ACTIVITY_SHOWN",
    "BY_ACTIVITY_COLUMNS",
    "LICENSE_ACTIVITY_COLUMNS",
    "REASON_FILTER",
    "REASON_LABELS",
    "activity_by_integration",
    "activity_coverage",
    "filter_seats",
    "license_table",
    "reasons_kept",
    "reclaim_cost_tile",
    "reclaim_cost_words",
    "reclaim_tiles",
    "seat_table",
    "with_activity",
    "with_reclaim_cost",
]
