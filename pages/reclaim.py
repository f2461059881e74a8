"""Reclaim: paid seats held by people who do not use them, departed users, never-accepted invitations."""

import streamlit as st

from lib import ui
from lib.analytics import reclaim_views as RV
from lib.analytics.activity import reclaim_summary
from lib.ui import reclaim as U

view = ui.current_view()
cur = view.currency
st.title("Reclaim")
st.caption(
    "Seats assigned to people who have not used them within the threshold, never used them, have "
    "left (the vendor marks them inactive or deleted), or never accepted an invitation, and what "
    f"they cost a year in {cur}. Activity comes from each integration's users list; where an "
    "integration reports no activity the seats are “activity not reported”, never inactive."
)
U.saved_note()
if ui.empty_state(view, "licenses"):
    st.stop()

left, right = st.columns(2)
with left:
    days = U.threshold()
with right:
    reasons = U.reason_filter()

priced = view.reclaim(days)
summary = reclaim_summary(priced, cur)
ui.tiles(RV.reclaim_tiles(summary, days), per_row=2)

coverage = RV.activity_coverage(view.accounts_filtered, view.activity)
failed = coverage[coverage["activity_outcome"] == "Activity could not be listed"]
if len(failed):
    st.warning(
        f"The users of {len(failed)} account(s) could not be listed, so their seats are not counted "
        "here (their license figures are). The Accounts page says why.",
        icon=":material/warning:",
    )
if priced.empty:
    st.info(
        "No seat assignments to measure: no account's users were listed. The Accounts page shows "
        "which integrations report users and activity.",
        icon=":material/person_off:",
    )
    st.stop()

shown = RV.reasons_kept(priced, reasons)
st.subheader("Reclaimable seats")
if view.actor.can_see_people:
    seats = RV.seat_table(shown, show_people=True)
    if seats.empty:
        st.success(f"No reclaimable seats at {days} days for the reasons picked.")
    else:
        st.caption("Costliest first. Names and emails are personal data: shown to admins only.")
        ui.table(seats, key="reclaim-table", column_config=U.seat_columns(cur))
        ui.download(seats, "reclaimable-seats", key="dl-reclaim")
else:
    st.info(
        "Who holds each seat is shown to admins only; here are the counts and costs per license.",
        icon=":material/lock:",
    )
    seats = RV.seat_table(shown, show_people=False)

st.subheader("Reclaimable seats per license")
per_license = RV.license_table(shown)
if per_license.empty:
    st.caption("None.")
else:
    ui.table(per_license, key="reclaim-license-table")
    ui.download(per_license, "reclaimable-seats-per-license", key="dl-reclaim-license")

st.subheader("Exemptions")
st.caption("Users and licenses that are never reclaimable: service accounts, break-glass admins.")
U.exemptions_table(view)
if view.actor.can_edit:
    U.exemption_editor(view, seats)
