"""Utilization: one row per license, assigned vs bought, flags, and a drill-down."""

import streamlit as st

from lib import ui
from lib.analytics import metrics as M
from lib.analytics import views as D
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
rows = D.utilization_table(view.filtered)
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
by = ["integration_label"] if level != "License" else ["integration_label", "license_name"]
st.caption(
    ("Paid licenses" if paid_only else "Paid and free licenses")
    + " (see the toggle above). Hatched grey: "
    "seats on licenses that report only seats bought or only seats assigned — neither 0 nor 100% used."
)
groups = M.group_summary(view.prepared, by, paid_only=paid_only)
if level == "License":
    groups = groups.assign(
        label=groups["license_name"].fillna("(no name)") + " (" + groups["integration_label"] + ")"
    )
    groups = groups.sort_values("total_seats", ascending=False, na_position="last").head(25)
label_col = "label" if level == "License" else "integration_label"
if groups["total_seats"].notna().any() or groups["assigned_seats"].notna().any():
    st.plotly_chart(charts.assigned_vs_unassigned(groups, label_col), key="chart-seats")
    ui.download(
        groups[
            [
                c
                for c in (
                    *by,
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
                if c in groups.columns
            ]
        ],
        f"seats-by-{level.lower()}",
        label="Download the chart's data (CSV)",
        key="dl-seats",
    )
else:
    st.info("No seat counts reported for these licenses.")

st.subheader("Drill down")
st.caption("From integration to account to organization to license.")
cols = st.columns(3)
integ = cols[0].selectbox(
    "Integration",
    ["All"] + sorted(view.filtered["integration_label"].dropna().unique()),
    key="drill-integration",
)
scope = view.filtered
level_col, level_name = "integration_label", "Integration"
if integ != "All":
    scope = scope[scope["integration_label"] == integ]
    level_col, level_name = "account_id", "Account"
    acct = cols[1].selectbox(
        "Account",
        ["All"] + sorted(scope["account_id"].dropna().unique()),
        format_func=lambda a: a if a == "All" else view.names.get(a, a),
        key="drill-account",
    )
    if acct != "All":
        scope = scope[scope["account_id"] == acct]
        level_col, level_name = "organization_name", "Organization"
        orgs = sorted(scope["organization_name"].dropna().unique())
        org = cols[2].selectbox("Organization", ["All"] + orgs, key="drill-org") if orgs else "All"
        if org != "All":
            scope = scope[scope["organization_name"] == org]
        if org != "All" or not orgs:
            level_col, level_name = "license_name", "License"
drill = M.group_summary(M.prepare(scope, view.options), [level_col])
drill_cols = [
    level_col,
    "licenses",
    "assigned_seats",
    "total_seats",
    "unassigned_seats",
    "over_allocated_seats",
    "utilization_pct",
    "rows_without_seat_counts",
]
drill = drill[drill_cols]
ui.table(
    drill.assign(
        **(
            {level_col: drill[level_col].map(lambda a: view.names.get(a, a))}
            if level_col == "account_id"
            else {}
        )
    ),
    column_config={
        "utilization_pct": st.column_config.ProgressColumn(
            "Seat utilization (%)", min_value=0, max_value=100, format="%.1f%%"
        )
    },
    key="drill-table",
)
ui.download(drill, f"drill-down-by-{level_name.lower()}", key="dl-drill")
