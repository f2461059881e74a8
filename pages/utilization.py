"""Utilization: one row per license, assigned vs bought, flags, and a drill-down."""

import streamlit as st

from lib import ui
from lib.analytics import reclaim_views as RV
from lib.analytics import utilization as U
from lib.analytics import views as D
from lib.analytics.activity import DEFAULT_INACTIVE_DAYS
from lib.ui import charts

view = ui.current_view()
st.title("Utilization")
st.caption(
    "Seats assigned against seats bought, as each vendor reports them (allocation, not activity). "
    "“not reported” means the vendor does not send that count through Truto."
)
if ui.empty_state(view, "licenses"):
    st.stop()

s = ui.seat_scope(view)
paid_only = s.paid_only
ui.tiles(
    [
        t
        for t in D.kpi_tiles(s)
        if t.label
        in ("Seats bought", "Seats assigned", "Seat utilization", "Over-allocated licenses")
    ]
)

st.subheader("Licenses")
by_activity = st.toggle(
    "Right-size by activity",
    key="by_activity",
    bind="query-params",
    help="Recommend active seats (used within 90 days) + buffer instead of assigned seats + buffer, "
    "where the integration reports activity.",
)
licenses = RV.with_activity(view.filtered, view.reclaim(DEFAULT_INACTIVE_DAYS), view.options)
rows = D.utilization_table(
    licenses,
    extra=[
        *RV.ACTIVITY_SHOWN,
        *(
            ["recommended_seats_by_activity", "potential_annual_savings_by_activity_reporting"]
            if by_activity
            else []
        ),
    ],
)
st.caption(
    f"Activity columns: seats whose holders were active within {DEFAULT_INACTIVE_DAYS} days, from "
    "each integration's users list (the Reclaim page takes any threshold). Seats assigned "
    "(users listing) can differ from the license's own count: both are shown, with the difference."
)
shown = rows.assign(flag=rows["flag"].map(D.FLAG_DISPLAY).astype("string"))
ui.table(
    shown,
    column_config={
        "license_name": st.column_config.TextColumn("License", pinned=True),
        "utilization_pct": st.column_config.ProgressColumn(
            "Seat utilization (assigned ÷ bought)",
            min_value=0,
            max_value=100,
            format="%.1f%%",
            help=D.headers(["utilization_pct"])["utilization_pct"],
        ),
        "idle_annual_cost_reporting": st.column_config.NumberColumn(
            f"Idle annual cost ({view.currency})",
            format="accounting",
            help="The annual cost of seats bought but not assigned: rank cuts by it.",
        ),
    },
    key="utilization-table",
)
ui.download(rows, "license-utilization", key="dl-utilization")

st.subheader("Assigned and unassigned seats")
level = st.segmented_control(
    "Per", ["Integration", "License"], default="Integration", key="seats-per"
)
st.caption(
    ("Paid licenses" if paid_only else "Paid and free licenses")
    + " (see the toggle above). Hatched grey: "
    "seats on licenses that report only seats bought or only seats assigned — neither 0 nor 100% used."
)
groups = U.seat_groups(view.prepared, level or "Integration", paid_only=paid_only)
if groups.has_counts:
    ui.chart(charts.assigned_vs_unassigned(groups.rows, groups.label), key="chart-seats")
    ui.download(
        groups.export(),
        f"seats-by-{(level or 'Integration').lower()}",
        label="Download the chart's data (CSV)",
        key="dl-seats",
    )
else:
    st.info("No seat counts reported for these licenses.")

st.subheader("Drill down")
st.caption(
    "From integration to account to organization to license: "
    + ("paid licenses" if paid_only else "paid and free licenses")
    + " (see the toggle above)."
)
cols = st.columns(3)
integ = cols[0].selectbox(
    "Integration", U.drill_choices(view.filtered, "integration_label"), key="drill-integration"
)
acct = org = U.ALL
if integ != U.ALL:
    acct = cols[1].selectbox(
        "Account",
        U.drill_choices(U.drill_scope(view.filtered, integ), "account_id"),
        format_func=lambda a: a if a == U.ALL else view.names.get(a, a),
        key="drill-account",
    )
if acct != U.ALL:
    orgs = U.drill_choices(U.drill_scope(view.filtered, integ, acct), "organization_name")
    if len(orgs) > 1:
        org = cols[2].selectbox("Organization", orgs, key="drill-org")
drill = U.drill_down(view.filtered, view.options, integ, acct, org, paid_only=paid_only)
ui.table(  # account IDs read as account names (ui.table)
    drill.rows,
    column_config={
        "utilization_pct": st.column_config.ProgressColumn(
            "Seat utilization (%)", min_value=0, max_value=100, format="%.1f%%"
        )
    },
    key="drill-table",
)
ui.download(drill.rows, f"drill-down-by-{drill.level.lower()}", key="dl-drill")
