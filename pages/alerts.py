"""Alerts: what is open, what fired before, how each message was delivered, and the rules."""

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
ui.tiles(
    [
        D.Tile("Open alerts", f"{len(opened):,}", "Alerts whose condition held at the last check."),
        D.Tile(
            "Critical",
            f"{int((opened['severity'] == 'critical').sum()):,}",
            "Failed accounts and opt-out deadlines within 14 days.",
        ),
        D.Tile(
            "Messages not delivered",
            f"{len(pending):,}",
            "Their last attempt failed; they are sent again on the next sync.",
        ),
        D.Tile(
            "Holding now, not yet checked",
            f"{len(not_yet):,}",
            "Conditions on the latest data that the next sync will raise.",
        ),
    ]
)

st.subheader("Open alerts")
if opened.empty:
    st.success("No open alerts.")
else:
    U.alert_table(opened, "open-alerts")
if not_yet:
    with st.expander(f"{len(not_yet)} condition(s) on the latest data, raised at the next sync"):
        st.markdown(
            "\n".join(f"- **{D.md_escape(a.title)}**: {D.md_escape(a.detail)}" for a in not_yet)
        )

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
