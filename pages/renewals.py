"""Renewals: upcoming renewals and opt-out deadlines, what to do at each, the year ahead, contracts."""

from datetime import UTC, datetime

import streamlit as st

from lib import ui
from lib.analytics import renewal_views as R
from lib.analytics.ical import to_ics
from lib.analytics.renewals import renewals
from lib.export import dated_filename
from lib.ui import charts
from lib.ui import renewals as U

view = ui.current_view()
st.title("Renewals")
st.caption(
    "Contract renewals and opt-out deadlines (the last day to give notice), with the seats to renew "
    f"at: seats bought, assigned and recommended (assigned + buffer). Money in {view.currency} per year."
)
U.seed_demo(view)
U.saved_note()
today = datetime.now(UTC).date()
contracts = U.contracts(view)

if contracts.empty:
    st.info(
        "No contracts yet. Admins add them below (or upload a CSV); renewals and opt-out deadlines "
        "then appear here and in the alerts.",
        icon=":material/event_busy:",
    )
else:
    horizon = U.window()
    scope = {"shown": view.filtered, "accounts": view.accounts_filtered}  # the sidebar's filters
    upcoming = renewals(view.metrics, contracts, today, horizon, **scope)
    year = renewals(view.metrics, contracts, today, 365, **scope)
    ui.tiles(R.renewal_tiles(upcoming, today, horizon, view.currency))

    st.subheader("The year ahead")
    points = R.timeline(year, today)
    if points.empty:
        st.info("No renewal or opt-out deadline in the next 365 days.")
    else:
        ui.chart(charts.renewal_timeline(points, today), key="chart-renewals")

    st.subheader(f"Renewals and deadlines within {horizon} days")
    if upcoming.empty:
        st.success(f"Nothing renews and no opt-out deadline falls in the next {horizon} days.")
    else:
        ui.table(
            R.renewal_table(upcoming),
            key="renewal-table",
            column_config=U.renewal_columns(view.currency),
        )
    left, right = st.columns(2)
    with left:
        ui.download(R.renewal_table(upcoming), "renewals", key="dl-renewals")
    with right:
        st.download_button(
            "Add to calendar (.ics)",
            to_ics(year, today=today, horizon_days=horizon, account_names=view.names),
            file_name=dated_filename(f"renewals-calendar-{horizon}-days", ext="ics"),
            mime="text/calendar",
            icon=":material/calendar_month:",
            key="dl-renewals-ics",
            on_click="ignore",
            help=f"Every renewal and opt-out deadline of the next {horizon} days as all-day "
            "events, and opt-out deadlines already passed of contracts still to renew.",
        )

st.subheader("Contracts")
if view.actor.can_edit:
    U.contracts_editor(view, contracts)
else:
    st.info("You can see the contracts; only admins can change them.", icon=":material/lock:")
    U.contracts_table(contracts, view.names)
