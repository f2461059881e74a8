"""Alerts: what is open, what fired before, how each message was delivered, and the rules."""

from datetime import UTC, datetime

import streamlit as st

from lib import ui
from lib.analytics import renewal_views as R
from lib.analytics import views as D
from lib.ui import renewals as U

view = ui.current_view()
st.title("Alerts")
st.caption(
    "Checked after every scheduled sync: an alert is sent once when its condition starts, and again "
    "only after it cleared. Failed messages are sent again on the next sync.",
    help="For admins: the scheduled sync is `python -m lib sync`; `python -m lib alerts` checks the "
    "alerts alone.",
)
U.seed_demo(view)
U.saved_note()
state = U.alert_state(view)
if state.rule_problems:
    U.show_problems("The saved alert rules have problems.", state.rule_problems)
rules, states, deliveries, pending = state.rules, state.states, state.deliveries, state.pending
not_yet = state.not_yet_checked

opened = R.open_alerts(states)
holding = R.holding_now(state.holding, states)
st.caption(R.checked_words(state.checked_at, datetime.now(UTC)))
ui.tiles(
    [
        D.Tile(
            "Holding now",
            f"{len(holding):,}",
            "Conditions the rules find on the latest data, raised or not.",
            f"{len(not_yet):,} not yet raised" if not_yet else None,
        ),
        D.Tile(
            "Critical, holding now",
            f"{int((holding['severity'] == 'critical').sum()):,}",
            "Failed accounts and opt-out deadlines within 14 days.",
        ),
        D.Tile("Open alerts", f"{len(opened):,}", "Alerts raised (and sent) at a check."),
        D.Tile(
            "Messages not delivered",
            f"{len(pending):,}",
            "Their last attempt failed; they are sent again on the next sync.",
        ),
    ]
)

st.subheader("Holding now")
if holding.empty:
    st.success("Nothing holds on the latest data.")
else:
    if not_yet:
        st.warning(
            f"{len(not_yet)} condition(s) hold on the latest data but are not raised yet: the next "
            "check (the next scheduled sync) raises and sends them.",
            icon=":material/schedule:",
        )
    U.alert_table(holding, "holding-now")
gone = R.no_longer_holding(state.holding, states)
if len(gone):
    st.caption(
        f"{len(gone)} open alert(s) no longer hold on the latest data: the next check clears them."
    )
    U.alert_table(gone, "open-alerts")

st.subheader("Delivery")
if len(pending):
    st.warning(
        f"{len(pending)} message(s) could not be delivered; they are sent again on the next sync. "
        "The table says why.",
        icon=":material/error:",
    )
if deliveries.empty:
    st.info("Nothing sent yet. Configure `[alerts.email]` or `[alerts.webhook]` in secrets.toml.")
else:
    U.alert_table(R.delivery_table(deliveries, states), "deliveries")

st.subheader("History")
history = R.alert_history(states)
if history.empty:
    st.caption("No alert has cleared yet.")
else:
    U.alert_table(history, "alert-history")

st.subheader("Rules")
if view.actor.can_edit:
    U.rules_editor(view, rules)
else:
    st.info("Only admins can change the rules.", icon=":material/lock:")
    U.rules_table(rules)
