"""Overview: the KPI tiles, where idle spend sits, utilization per integration, what needs attention."""

import streamlit as st

from lib import ui
from lib.analytics import groupings
from lib.analytics import reclaim_views as RV
from lib.analytics import views as D
from lib.analytics.activity import DEFAULT_INACTIVE_DAYS, reclaim_summary
from lib.ui import charts
from lib.ui import renewals as U

view = ui.current_view()
st.title("Overview")
st.caption(
    f"Seat allocation and spend across {view.accounts_filtered['account_id'].nunique()} integrated accounts "
    f"({view.filters.describe()}). Utilization is allocation — seats assigned ÷ seats bought — not activity. "
    f"Money in {view.currency} per year."
)
if ui.empty_state(view, "licenses"):
    st.stop()

tiles_area = st.container()  # laid out first, filled after the charts: see below
with tiles_area:
    summary = ui.seat_scope(view)  # the toggle first: the chart below counts what the tiles count
    tiles_slot = st.container()

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Top idle spend")
    st.caption("Licenses whose bought-but-unassigned seats cost the most per year.")
    top = groupings.top_idle_spend(view.prepared, 10)
    if top.empty:
        text, target = D.idle_spend_empty_text(
            view.filtered, D.spend_gaps(view.filtered, view.options)
        )
        with st.container(key="top-idle-empty"):
            st.info(text)
            if target:
                st.page_link(
                    ui.page_path(target),
                    label=f"Open {ui.PAGE_TITLES[target]}",
                    icon=":material/arrow_forward:",
                )
    else:
        ui.chart(charts.top_idle_spend(top, view.currency), key="chart-top-idle")
        ui.download(top, "top-idle-spend", key="dl-top-idle")
with right:
    st.subheader("Utilization per integration")
    st.caption(
        "Seats assigned ÷ seats bought, over licenses that report both: "
        + ("paid licenses, as the tiles." if summary.paid_only else "paid and free, as the tiles.")
    )
    util = groupings.utilization_by_integration(view.prepared, paid_only=summary.paid_only)
    if util["utilization_pct"].notna().any():
        ui.chart(charts.utilization_by_integration(util), key="chart-util-integration")
    else:
        st.info("None of these integrations report both assigned and bought seats.")
    ui.download(util, "utilization-by-integration", key="dl-util-integration")

# The charts are sent before the tiles (which sit above them) so that the browser starts loading
# its chart renderer, the largest part of a first load, as early as it can.
with tiles_slot:
    tiles = D.kpi_tiles(summary, D.spend_gaps(view.filtered, view.options))
    reclaim = reclaim_summary(view.reclaim(DEFAULT_INACTIVE_DAYS), view.currency)
    ui.tiles(tiles[:4])
    ui.tiles([*tiles[4:], RV.reclaim_cost_tile(reclaim, DEFAULT_INACTIVE_DAYS)], per_row=2)

st.subheader("Needs attention")
items = D.attention(
    view.filtered,
    view.accounts_filtered,
    view.problems,
    summary,
    view.options,
    view.names,
    open_alerts=U.open_alerts(view),
    reclaim=reclaim,
    activity=view.activity,
)
if not items:
    st.success(D.NOTHING_NEEDS_ATTENTION)
else:
    with st.container(border=True):
        st.markdown(
            "\n".join(
                f"- {D.md_escape(item.text)} → **{ui.PAGE_TITLES[item.page]}**" for item in items
            )
        )
        targets = list(dict.fromkeys(item.page for item in items))
        for col, target in zip(st.columns(len(targets)), targets):
            col.page_link(
                ui.page_path(target),
                label=f"Open {ui.PAGE_TITLES[target]}",
                icon=":material/arrow_forward:",
            )
