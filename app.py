"""License utilization dashboard: the router, the access gate and the shared sidebar.

Streamlit runs this file as the script of every page (``__name__ == "__main__"``). ``streamlit run
app.py`` first imports it once to find ``app`` below: the server, Streamlit's own, that also serves the
chart library (lib/ui/plot.py) and adds the page-load hints of lib/ui/serve.py to its HTML document.
"""

import streamlit as st
from starlette.middleware import Middleware
from starlette.routing import Mount

from lib import ui
from lib.process import prefer_small_pages
from lib.ui.plot import asset_route
from lib.ui.serve import PageLoadMiddleware, assets

prefer_small_pages()  # this process's memory in 4 KB pages: see lib/process.py


def main() -> None:
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


if __name__ == "__main__":
    main()
else:
    app = st.App(
        __file__,
        # the chart library (the command line's options are read by now)
        routes=[Mount(asset_route(st.get_option("server.baseUrlPath")), app=assets())],
        middleware=[Middleware(PageLoadMiddleware)],
    )
