"""The attention list: what needs someone's attention on the Overview, computed without Streamlit."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lib.analytics.activity import ReclaimSummary, reclaim_cost_words
from lib.analytics.labels import (
    OUTCOME_LABELS,
    account_names,
)
from lib.analytics.metrics import MetricOptions
from lib.analytics.rules import needs_price, not_known_mask
from lib.analytics.totals import Summary
from lib.schema import FAILED_OUTCOMES

# ------------------------------------------------------------------ attention list


@dataclass
class Attention:
    kind: str
    text: str
    page: str  # a page key of ui.PAGE_FILES
    count: int


def attention(
    df: pd.DataFrame,
    accounts: pd.DataFrame,
    problems: pd.DataFrame,
    summary: Summary,
    options: MetricOptions,
    names: dict[str, str] | None = None,
    limit: int = 3,
    open_alerts: pd.DataFrame | None = None,
    reclaim: ReclaimSummary | None = None,
    activity: pd.DataFrame | None = None,
) -> list[Attention]:
    """What needs a person's attention, most urgent first, each pointing at the page that shows it.

    ``open_alerts``: the open alerts (``Store.alert_states(key, open_only=True)``: severity, title),
    listed first, critical ones named first.

    Free licenses (flag ``free``) cost nothing: they are never under-used or over-allocated here.
    Licenses without seat counts are an item of their own: "nothing needs attention" must not hide them.
    """
    names = names or account_names(accounts)
    items: list[Attention] = []

    def sample(rows: pd.DataFrame) -> str:
        labels = [
            f"{_name(r.license_name, r.license_id)} ({r.integration_label})"
            for r in rows.head(limit).itertuples()
        ]
        more = len(rows) - limit
        return ", ".join(labels) + (f" and {more} more" if more > 0 else "")

    if open_alerts is not None and len(open_alerts):
        rank = open_alerts["severity"].map({"critical": 0, "warning": 1}).fillna(2)
        ranked = open_alerts.assign(_rank=rank).sort_values("_rank", kind="stable")
        critical = int((open_alerts["severity"] == "critical").sum())
        more = len(ranked) - limit
        titles = "; ".join(str(t) for t in ranked["title"].head(limit)) + (
            f" and {more} more" if more > 0 else ""
        )
        items.append(
            Attention(
                "open_alerts",
                f"{len(open_alerts)} alert(s) open"
                + (f", {critical} critical" if critical else "")
                + f" — {titles}.",
                "alerts",
                len(open_alerts),
            )
        )
    failed = accounts[accounts["outcome"].isin(FAILED_OUTCOMES)]
    if len(failed):
        who = ", ".join(
            f"{names.get(a, a)}: {OUTCOME_LABELS.get(o, o).lower()}"
            for a, o in zip(failed["account_id"].head(limit), failed["outcome"].head(limit))
        )
        items.append(
            Attention(
                "failed_accounts",
                f"{len(failed)} account(s) could not be fetched — {who}.",
                "accounts",
                len(failed),
            )
        )
    if activity is not None and len(activity):
        scoped = activity[activity["account_id"].isin(accounts["account_id"])]
        bad = scoped[(scoped["activity"] == "failed").fillna(False).to_numpy(dtype=bool)]
        if len(bad):
            who = ", ".join(names.get(a, a) for a in bad["account_id"].head(limit))
            items.append(
                Attention(
                    "activity_failed",
                    f"The users of {len(bad)} account(s) could not be listed, so their seat "
                    f"activity is missing (their license figures are shown) — {who}.",
                    "accounts",
                    len(bad),
                )
            )
    if reclaim is not None and reclaim.departed_paid_users:
        items.append(
            Attention(
                "departed_paid",
                f"{reclaim.departed_paid_users} departed user(s) still hold paid seats: reclaim "
                "them (the vendor marks these users inactive or deleted).",
                "reclaim",
                reclaim.departed_paid_users,
            )
        )
    if reclaim is not None and reclaim.reclaimable_paid_seats:
        words = reclaim_cost_words(reclaim)
        cost = f", {words} a year" if words != "not known" else ""
        items.append(
            Attention(
                "reclaimable",
                f"{reclaim.reclaimable_paid_seats} paid seat(s) are unused (inactive, never used, "
                f"departed or invited){cost}.",
                "reclaim",
                reclaim.reclaimable_paid_seats,
            )
        )
    over = df[df["flag"] == "over_allocated"].sort_values("over_allocated_seats", ascending=False)
    if len(over):
        items.append(
            Attention(
                "over_allocated",
                f"{len(over)} license(s) have more seats assigned than bought — "
                f"{sample(over)}. Buy seats or reclaim them before the vendor's true-up.",
                "utilization",
                len(over),
            )
        )
    under = df[(df["flag"] == "under_used")].sort_values(
        "idle_annual_cost_reporting", ascending=False, na_position="last"
    )
    if len(under):
        items.append(
            Attention(
                "under_used",
                f"{len(under)} license(s) have fewer than "
                f"{options.under_used_pct:g}% of their seats assigned — {sample(under)}.",
                "utilization",
                len(under),
            )
        )
    silent = df[df["flag"] == "not_reported"]
    if len(silent):
        spend = (
            "their spend is unknown"
            if silent["annual_cost"].isna().all()
            else "part of their spend is unknown"
        )
        items.append(
            Attention(
                "not_reported",
                f"{len(silent)} license(s) report no seat counts through Truto — "
                f"{sample(silent)}. Their utilization, idle seats and savings cannot be computed and "
                f"{spend}; they are not 0. The Accounts page lists which fields each integration "
                "does not report.",
                "accounts",
                len(silent),
            )
        )
    unpriced = df[needs_price(df)]
    if len(unpriced):
        unknown = int(not_known_mask(unpriced).sum())
        apart = (
            f" {unknown} of them the vendor does not mark paid or free: not known, so they are left "
            "out of the paid seat figures until they have a price (0 for a free one)."
            if unknown
            else ""
        )
        items.append(
            Attention(
                "unpriced",
                f"{len(unpriced)} paid license(s) have no price, so their spend is "
                f"unknown — {sample(unpriced)}. Add them to the price book.{apart}",
                "price_book",
                len(unpriced),
            )
        )
    if summary.excluded_by_currency:
        cur = ", ".join(summary.excluded_by_currency)
        items.append(
            Attention(
                "no_rate",
                f"Spend in {cur} is left out of the {summary.reporting_currency} totals: "
                f"add an exchange rate for it.",
                "price_book",
                len(summary.excluded_by_currency),
            )
        )
    if len(problems):
        items.append(
            Attention(
                "data_problems",
                f"{len(problems)} license record(s) arrived malformed and are "
                "shown as not reported where they were unreadable.",
                "accounts",
                len(problems),
            )
        )
    return items


def _name(name, license_id) -> str:
    """A license's name for a sentence: the name, else its id (a vendor may not report names)."""
    for value in (name, license_id):
        if isinstance(value, str) and value:
            return value
    return "(unnamed license)"
