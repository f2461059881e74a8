"""Trends: seats, utilization and spend over time from the stored snapshots."""

import streamlit as st

from lib import ui
from lib.analytics import trends as T
from lib.analytics import views as D
from lib.ui import charts

view = ui.current_view()
st.title("Trends")
st.caption(
    "How seat allocation and spend moved, from the snapshots each sync keeps (one per account per day). "
    "Spend is at today's prices and exchange rates. Active and reclaimable seats come from the users "
    "each sync listed, at 90 days without activity."
)
if ui.empty_state(view, "licenses"):
    st.stop()

PERIODS = {"Last 3 months": 92, "Last 12 months": 365, "Last 2 years": 731, "Everything kept": None}
period = (
    st.segmented_control("Period", list(PERIODS), default="Last 12 months", key="trend-period")
    or "Last 12 months"
)
cols = st.columns(2)
labels = T.measure_labels(view.currency)
measure = cols[0].selectbox("Measure", list(labels), format_func=labels.get, key="trend-measure")
group = (
    cols[1].segmented_control(
        "Per", list(T.GROUPS), default="integration", key="trend-group", format_func=str.capitalize
    )
    or "integration"
)
# Added up in the database per day and group (the per-license view: the 12 licenses with the most
# seats bought at the latest date), never every snapshot row loaded here.
paid_only = not ui.include_free()
frame = ui.trends(
    view, PERIODS[period], group, top=12 if group == "license" else None, paid_only=paid_only
)
dates = T.snapshot_dates(frame)
if not dates:
    st.info(
        "No snapshots yet. Each refresh or scheduled sync adds one; trends appear after the second."
    )
    st.stop()
frame = T.with_seat_trends(frame, ui.seat_history(view, PERIODS[period]), group)
st.caption(
    ("Paid licenses" if paid_only else "Paid and free licenses")
    + " (see the toggle above)"
    + (": the 12 with the most seats bought at the latest snapshot." if group == "license" else ".")
)

if len(dates) == 1:
    st.info(f"Only one snapshot so far ({dates[0]:%Y-%m-%d}); the lines start with the next sync.")
plotted = frame[frame[measure].notna()]
if plotted.empty:
    st.info(f"{labels[measure]} is not reported for these licenses.")
else:
    ui.chart(
        charts.trend_lines(
            plotted,
            "taken_at",
            measure,
            "label",
            labels[measure],
            percent=measure == "utilization_pct",
            currency=view.currency if measure.endswith("cost_reporting") else None,
        ),
        key="chart-trend",
    )
ui.table(
    frame.drop(columns="label"),
    column_config={"taken_at": st.column_config.DateColumn("Snapshot date", format="YYYY-MM-DD")},
    key="trend-table",
)
ui.download(frame.drop(columns="label"), f"trends-by-{group}", key="dl-trends")
st.caption(
    f"{len(dates)} snapshot dates, {dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}. {D.NOT_REPORTED.capitalize()} "
    "counts are left out of the sums, not counted as 0."
)
