"""Accounts: what happened when each integrated account was fetched, and what to do about it."""

import streamlit as st

from lib import ui
from lib.analytics import reclaim_views as RV
from lib.analytics import views as D

view = ui.current_view()
st.title("Accounts")
st.caption(
    "Each integrated account, what its last fetch returned, and which license fields its integration "
    "does not report (why a cell reads “not reported”)."
)
if view.accounts.empty:
    ui.empty_state(view, "accounts")
    st.stop()

accounts = D.accounts_view(view.accounts_filtered)
if accounts.empty:
    st.info(f"No accounts match the filters ({view.filters.describe()}).")
    st.stop()

counts = accounts["outcome"].value_counts()
order = ["failed", "needs_reauth", "inactive", "ok", "not_supported"]  # what needs fixing first
cols = st.columns(len(order))
for col, outcome in zip(cols, order):
    col.metric(D.OUTCOME_LABELS[outcome], int(counts.get(outcome, 0)), border=True)

failing = accounts[accounts["outcome"].isin(["failed", "needs_reauth", "inactive"])]
for row in failing.itertuples(index=False):
    st.error(
        D.md_escape(
            f"{view.names.get(row.account_id, row.account_id)} — "
            f"{D.OUTCOME_LABELS.get(row.outcome, row.outcome)}: {row.message} {row.action}"
        ),
        icon=":material/error:",
    )

shown = accounts.assign(outcome=accounts["outcome"].map(D.OUTCOME_LABELS).astype("string"))
ui.table(
    shown,
    column_config={
        "outcome": st.column_config.TextColumn("Fetch result", width="medium"),
        "message": st.column_config.TextColumn("What happened", width="large"),
        "action": st.column_config.TextColumn("What to do", width="large"),
        "fetched_at": st.column_config.DatetimeColumn(
            "Data fetched at (UTC)",
            format="YYYY-MM-DD HH:mm",
            help="When the data shown was fetched: for a failed account, its last good fetch (— if none).",
        ),
        "last_attempt_at": st.column_config.DatetimeColumn(
            "Last attempt (UTC)", format="YYYY-MM-DD HH:mm"
        ),
    },
    key="accounts-table",
)
ui.download(accounts, "integrated-accounts", key="dl-accounts")

st.subheader("Seat activity")
st.caption(
    "Whether each account's users (who holds each seat, when they were last active) were listed, and "
    "per integration how many seat assignments carry activity data. Where an integration sends no "
    "last-active or last-login time, its seats read “activity not reported” on the Reclaim page: "
    "never inactive, never counted reclaimable for inactivity."
)
coverage = RV.activity_coverage(view.accounts_filtered, view.activity)
if coverage.empty:
    st.caption("No account lists licenses, so there are no seats to measure.")
else:
    for row in coverage[
        coverage["activity_outcome"] == "Activity could not be listed"
    ].itertuples():
        st.warning(
            D.md_escape(
                f"{view.names.get(row.account_id, row.account_id)} — seat activity could not be "
                f"listed: {row.activity_message} Its license figures are shown."
            ),
            icon=":material/person_off:",
        )
    ui.table(coverage, key="activity-table")
    ui.download(coverage, "seat-activity-per-account", key="dl-activity")
    seats = view.seats[view.seats["account_id"].isin(view.accounts_filtered["account_id"])]
    per_integration = RV.activity_by_integration(seats)
    if len(per_integration):
        ui.table(per_integration, key="activity-integration-table")
        ui.download(per_integration, "seat-activity-per-integration", key="dl-activity-integration")

st.subheader("Malformed records")
problems = view.problems
if len(view.accounts_filtered) != len(view.accounts):
    problems = problems[problems["account_id"].isin(view.accounts_filtered["account_id"])]
if problems.empty:
    st.caption("Every record arrived readable.")
else:
    st.caption(
        "Records a vendor sent that could not be read as they were. The row is kept; the unreadable "
        "field shows as not reported."
        + (
            ""
            if view.actor.can_see_people
            else " A user is named by a reference (#…): who it is is shown to admins only."
        )
    )
    problems = D.problems_view(problems, show_people=view.actor.can_see_people)
    ui.table(problems, key="problems-table")
    ui.download(problems, "record-problems", key="dl-problems")
