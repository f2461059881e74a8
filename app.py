"""License utilization dashboard: the router, the access gate and the shared sidebar."""

from pathlib import Path

import streamlit as st

import ui

HERE = Path(__file__).parent

st.set_page_config(page_title="License utilization", page_icon="📊", layout="wide")  # local icon: no font fetch

actor = ui.gate()

pages = [
    st.Page(HERE / "pages" / "overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
            default=True),
    st.Page(HERE / "pages" / "utilization.py", title="Utilization", icon=":material/group:", url_path="utilization"),
    st.Page(HERE / "pages" / "spend.py", title="Spend", icon=":material/payments:", url_path="spend"),
    st.Page(HERE / "pages" / "trends.py", title="Trends", icon=":material/trending_up:", url_path="trends"),
    st.Page(HERE / "pages" / "accounts.py", title="Accounts", icon=":material/hub:", url_path="accounts"),
    st.Page(HERE / "pages" / "price_book.py", title="Price book", icon=":material/sell:", url_path="price-book"),
]
page = st.navigation(pages)

st.session_state["_view"] = view = ui.load_view(actor)
ui.sidebar_status(view)
ui.sidebar_access(actor)
with ui.routed():
    page.run()
