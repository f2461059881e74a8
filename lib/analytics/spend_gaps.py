"""What the annual spend total leaves out, the lower bound it can still give, and the empty-chart texts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lib.analytics.labels import LEFT_OUT_REASONS
from lib.analytics.metrics import MetricOptions
from lib.analytics.rules import free_mask, needs_price, paid_mask, priced_paid


@dataclass
class SpendGaps:
    """What the annual spend total cannot count, and the lower bound it can still give.

    ``floor``: price per seat per year × seats assigned, in the reporting
    currency, over the priced paid licenses whose seats bought are not
    reported (Zoom): the vendor bills at least the seats in use.
    ``left_out``: one row per license row the total does not fully count, with
    ``reason`` (a key of :data:`LEFT_OUT_REASONS`) and ``at_least`` (the floor
    counted for it, in the reporting currency; empty when nothing could be).
    """

    floor: float
    left_out: pd.DataFrame
    reporting_currency: str

    @property
    def complete(self) -> bool:
        return self.left_out.empty

    def count(self, reason: str) -> int:
        return int((self.left_out["reason"] == reason).sum())


LEFT_OUT_COLUMNS = [
    "integration_label",
    "account_id",
    "license_name",
    "reason",
    "assigned_seats",
    "total_seats",
    "annual_unit_price",
    "currency",
    "at_least",
    "reporting_currency",
]


def spend_gaps(df: pd.DataFrame, options: MetricOptions) -> SpendGaps:
    """The rows the annual spend total leaves out, and why (see :class:`SpendGaps`); free licenses cost 0."""
    cur = options.reporting_currency
    paid = paid_mask(df)
    priced = df["annual_unit_price"].notna().to_numpy(dtype=bool)
    spend_na = df["annual_cost"].isna().to_numpy(dtype=bool)
    total_na = df["total_seats"].isna().to_numpy(dtype=bool)
    assigned_na = df["assigned_seats"].isna().to_numpy(dtype=bool)
    converted_na = df["annual_cost_reporting"].isna().to_numpy(dtype=bool)
    reason = np.full(len(df), "", dtype=object)
    reason[needs_price(df)] = "no_price"
    unknown = paid & priced & spend_na & total_na
    reason[unknown & assigned_na] = "no_seat_counts"
    floor_rows = unknown & ~assigned_na
    reason[floor_rows] = "bought_not_reported"
    reason[paid & priced & ~spend_na & converted_na] = "no_rate"
    at_least = np.full(len(df), np.nan)
    if floor_rows.any():
        rate = np.full(len(df), np.nan)
        rate[floor_rows] = [
            options.rate(c) or np.nan if isinstance(c, str) else np.nan
            for c in df["currency"].astype("string").to_numpy(dtype=object)[floor_rows]
        ]
        price = df["annual_unit_price"].to_numpy(dtype=np.float64, na_value=np.nan)
        assigned = df["assigned_seats"].to_numpy(dtype=np.float64, na_value=np.nan)
        at_least[floor_rows] = np.round(
            price[floor_rows] * assigned[floor_rows] * rate[floor_rows], 2
        )
    keep = reason != ""
    rows = df.loc[
        keep, [c for c in LEFT_OUT_COLUMNS if c in df.columns and c not in ("reason", "at_least")]
    ].copy()
    rows.insert(3, "reason", pd.array(reason[keep].tolist(), dtype="string"))
    rows["at_least"] = pd.array(at_least[keep], dtype="Float64")
    rows["at_least"] = rows["at_least"].where(~np.isnan(at_least[keep]), pd.NA)
    rows["reporting_currency"] = pd.array([cur] * len(rows), dtype="string")
    order = {k: i for i, k in enumerate(LEFT_OUT_REASONS)}
    rows = (
        rows.assign(_o=rows["reason"].map(order))
        .sort_values(["_o", "integration_label", "license_name"], kind="stable")
        .drop(columns="_o")
    )
    counted = at_least[keep & ~np.isnan(at_least)]
    # A floor in a currency without a rate cannot be added: that row reads "no rate", as its spend would.
    no_rate_floor = floor_rows & np.isnan(at_least)
    if no_rate_floor.any():
        rows.loc[rows.index.isin(df.index[no_rate_floor]), "reason"] = "no_rate"
    return SpendGaps(
        round(float(counted.sum()), 2) if len(counted) else 0.0,
        rows[LEFT_OUT_COLUMNS].reset_index(drop=True),
        cur,
    )


def spend_chart_rows(spend: pd.DataFrame, gaps: SpendGaps) -> pd.DataFrame:
    """``totals.spend_by_integration``'s rows plus, per integration, the lower bound counted at seats assigned
    (part ``at_least``), so an integration whose seats bought are not reported is drawn, not left out."""
    floor = gaps.left_out[gaps.left_out["at_least"].notna()]
    if floor.empty:
        return spend
    extra = (
        floor.groupby("integration_label", observed=True)["at_least"]
        .sum()
        .round(2)
        .reset_index()
        .rename(columns={"at_least": "amount"})
    )
    extra.insert(1, "part", pd.array(["at_least"] * len(extra), dtype="string"))
    extra["reporting_currency"] = pd.array([gaps.reporting_currency] * len(extra), dtype="string")
    out = pd.concat([spend, extra.astype({"amount": "Float64"})], ignore_index=True)
    return out.sort_values("integration_label", kind="stable").reset_index(drop=True)


def spend_chart_empty_text(df: pd.DataFrame, gaps: SpendGaps) -> str:
    """Why the spend chart has nothing to draw, true of ``df`` (its rows and their :func:`spend_gaps`)."""
    n = int(priced_paid(df).sum())
    if n == 0:
        return "No paid license here has a price yet. Add prices in the Price book to see spend."
    why = [f"{k} report no seat counts" for k in [gaps.count("no_seat_counts")] if k]
    why += [
        f"{k} have no exchange rate to {gaps.reporting_currency}"
        for k in [gaps.count("no_rate")]
        if k
    ]
    return (
        f"{n} paid license(s) here have a price, but no amount can be drawn: {', '.join(why) or 'none has seats'}. "
        "What the spend total leaves out lists them."
    )


def idle_spend_empty_text(df: pd.DataFrame, gaps: SpendGaps) -> tuple[str, str | None]:
    """Why the top idle spend has nothing to draw, true of ``df`` (its rows with metrics and their
    :func:`spend_gaps`), and the page key where to act (None: nothing to do)."""
    unassigned = df["unassigned_seats"].to_numpy(dtype=np.float64, na_value=np.nan)
    # Not known to be free (a license whose vendor does not say, without a price, may cost money).
    idle = ~free_mask(df) & (np.nan_to_num(unassigned, nan=0.0) > 0)
    if not idle.any():
        if np.isnan(unassigned).all():
            return (
                "No idle spend to show: no license here reports both seats bought and seats "
                "assigned, so unassigned seats cannot be counted.",
                None,
            )
        return (
            "No idle spend to show: every license here that is not free and reports both seat "
            "counts has all its seats bought assigned.",
            None,
        )
    n = int(idle.sum())
    unpriced = int((idle & needs_price(df)).sum())
    unconverted = (
        idle & priced_paid(df) & df["idle_annual_cost_reporting"].isna().to_numpy(dtype=bool)
    )
    if unpriced == n:
        return (
            f"No idle spend to show yet: none of the {n} license(s) with seats bought but not "
            "assigned has a price. Add their prices in the Price book.",
            "price_book",
        )
    if unconverted.any():
        currencies = sorted(
            {str(c) for c in df.loc[unconverted, "currency"].dropna().astype("string")}
        )
        rest = f" and {unpriced} have no price" if unpriced else ""
        return (
            f"No idle spend to show yet: of the {n} license(s) with seats bought but not "
            f"assigned, {int(unconverted.sum())} have a price in {', '.join(currencies)} with no "
            f"exchange rate to {gaps.reporting_currency}{rest}. Add the missing rates and prices "
            "in the Price book.",
            "price_book",
        )
    return (
        f"No idle spend to show: the {n} license(s) with seats bought but not assigned cost "
        "nothing at their prices.",
        "price_book",
    )


def savings_empty_text(df: pd.DataFrame) -> str:
    """Why there are no potential savings to list, true of ``df``."""
    priced = priced_paid(df)
    unknown = priced & df["potential_annual_savings_reporting"].isna().to_numpy(dtype=bool)
    known = priced & ~unknown
    if not priced.any():
        return "No paid license here has a price, so no savings can be computed."
    if not known.any():
        return (
            f"No savings can be computed: the {int(unknown.sum())} priced paid license(s) here do not report "
            "both seats assigned and seats bought (or have no exchange rate)."
        )
    text = f"No savings found: each of the {int(known.sum())} priced paid license(s) with both seat counts is within its buffer."
    if unknown.any():
        text += f" {int(unknown.sum())} other priced license(s) do not report both counts, so their savings are unknown."
    return text
