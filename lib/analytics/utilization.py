"""The Utilization page's groupings, pure: seats per integration or license, and the drill-down.

The page only draws what these return: the chart's bars (the top licenses by seats bought),
and the drill-down from integration to account to organization to license.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lib.analytics.groupings import group_summary
from lib.analytics.metrics import MetricOptions
from lib.analytics.totals import PreparedMetrics, prepare

ALL = "All"  # the drill-down choice that keeps every row of the level
TOP_LICENSES = 25  # bars in the per-license seat chart

SEAT_CHART_EXPORT = (
    "licenses",
    "utilization_assigned_seats",
    "utilization_total_seats",
    "unassigned_seats",
    "over_allocated_seats",
    "assigned_seats",
    "total_seats",
    "utilization_pct",
    "rows_without_seat_counts",
)
DRILL_COLUMNS = (
    "licenses",
    "assigned_seats",
    "total_seats",
    "unassigned_seats",
    "over_allocated_seats",
    "utilization_pct",
    "rows_without_seat_counts",
)


@dataclass(frozen=True)
class SeatGroups:
    """The assigned-vs-unassigned chart: one row per bar, labelled by ``label``."""

    rows: pd.DataFrame
    by: tuple[str, ...]
    label: str

    @property
    def has_counts(self) -> bool:
        """False when no group reports seats bought or assigned: nothing to draw."""
        return bool(
            self.rows["total_seats"].notna().any() or self.rows["assigned_seats"].notna().any()
        )

    def export(self) -> pd.DataFrame:
        """The chart's data for the CSV: the group columns and the seat figures."""
        cols = [c for c in (*self.by, *SEAT_CHART_EXPORT) if c in self.rows.columns]
        return self.rows[cols]


def seat_groups(
    prepared: pd.DataFrame | PreparedMetrics, per: str, paid_only: bool, top: int = TOP_LICENSES
) -> SeatGroups:
    """Seats per integration, or (``per="License"``) the ``top`` licenses by seats bought.

    A license's bar reads "name (integration)"; a license without a name reads "(no name)".
    """
    if per != "License":
        by: tuple[str, ...] = ("integration_label",)
        return SeatGroups(group_summary(prepared, by, paid_only=paid_only), by, "integration_label")
    by = ("integration_label", "license_name")
    groups = group_summary(prepared, by, paid_only=paid_only)
    groups = groups.assign(
        label=groups["license_name"].fillna("(no name)") + " (" + groups["integration_label"] + ")"
    )
    groups = groups.sort_values("total_seats", ascending=False, na_position="last").head(top)
    return SeatGroups(groups, by, "label")


def drill_choices(rows: pd.DataFrame, column: str) -> list[str]:
    """ "All" and then the values of ``column`` in ``rows``, sorted (empty values left out)."""
    return [ALL, *sorted(rows[column].dropna().unique())]


def drill_scope(
    rows: pd.DataFrame, integration: str = ALL, account: str = ALL, organization: str = ALL
) -> pd.DataFrame:
    """The rows under the choices made so far (each level only once the one above is chosen)."""
    for column, value in (
        ("integration_label", integration),
        ("account_id", account),
        ("organization_name", organization),
    ):
        if value == ALL:
            break
        rows = rows[rows[column] == value]
    return rows


@dataclass(frozen=True)
class DrillDown:
    """One row per item of the level below the choices: ``column`` holds it, ``level`` names it."""

    rows: pd.DataFrame
    column: str
    level: str


def drill_down(
    rows: pd.DataFrame,
    options: MetricOptions,
    integration: str = ALL,
    account: str = ALL,
    organization: str = ALL,
    paid_only: bool = False,
) -> DrillDown:
    """Seat figures one level below the choices: integrations, then accounts, organizations, licenses.

    An account whose licenses carry no organization goes straight to its licenses. ``paid_only``:
    over the paid licenses only (the seat tiles' scope, :func:`lib.analytics.rules.paid_rule`).
    """
    scope = drill_scope(rows, integration, account, organization)
    if integration == ALL:
        column, level = "integration_label", "Integration"
    elif account == ALL:
        column, level = "account_id", "Account"
    elif organization == ALL and scope["organization_name"].notna().any():
        column, level = "organization_name", "Organization"
    else:
        column, level = "license_name", "License"
    table = group_summary(prepare(scope, options), [column], paid_only=paid_only)
    return DrillDown(table[[column, *DRILL_COLUMNS]], column, level)
