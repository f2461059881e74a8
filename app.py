"""License utilization dashboard: the router, the access gate and the shared sidebar."""

import streamlit as st

from lib import ui
from lib.process import prefer_small_pages

prefer_small_pages()  # this process's memory in 4 KB pages: see lib/process.py

st.set_page_config(
    page_title="License utilization", page_icon="📊", layout="wide"
)  # local icon: no font fetch

actor = ui.gate()

page = st.navigation(ui.navigation_pages())

st.session_state["_view"] = view = ui.load_view(actor)
ui.sidebar_status(view)
ui.sidebar_access(actor)
with ui.routed():
    page.run()
