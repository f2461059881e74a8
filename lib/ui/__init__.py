"""Streamlit pieces shared by app.py and the pages; the only package that imports Streamlit.

Everything that computes lives in lib/; these modules only wire it to widgets:

- ``state``: the View a page draws from, the caches, loading, refresh and history
- ``sidebar``: the shared filters and how fresh the data is
- ``widgets``: tables, CSV downloads, tiles, empty states, the seat scope
- ``pages``: the page registry and routing
- ``access``: the sign-in gate and who is signed in
- ``charts``: the Plotly figures; ``plot``: drawing them (``chart``)
- ``serve``: the page-load hints in the HTML document the server sends

Pages, app.py and tests use the names below as ``ui.<name>``.
"""

from __future__ import annotations

from lib.ui.access import gate, sidebar_access, streamlit_user
from lib.ui.pages import (
    HOME,
    PAGE_BY_KEY,
    PAGE_TITLES,
    PAGES,
    ROOT,
    PageSpec,
    current_view,
    leave_legacy_multipage_mode,
    navigation_pages,
    page_path,
    routed,
)
from lib.ui.plot import chart
from lib.ui.sidebar import sidebar_filters, sidebar_status
from lib.ui.state import (
    CACHE_TTL_SECONDS,
    View,
    clear_data_caches,
    config_key,
    get_store,
    history,
    load_settings_or_stop,
    load_view,
    open_store_or_stop,
    refresh,
    seat_history,
    trends,
)
from lib.ui.widgets import (
    MISSING,
    MISSING_LEGEND,
    download,
    empty_state,
    include_free,
    seat_scope,
    table,
    tiles,
)

__all__ = [
    "chart",
    "CACHE_TTL_SECONDS",
    "HOME",
    "MISSING",
    "MISSING_LEGEND",
    "PAGES",
    "PAGE_BY_KEY",
    "PAGE_TITLES",
    "ROOT",
    "PageSpec",
    "View",
    "clear_data_caches",
    "config_key",
    "current_view",
    "download",
    "empty_state",
    "gate",
    "get_store",
    "history",
    "leave_legacy_multipage_mode",
    "load_settings_or_stop",
    "load_view",
    "navigation_pages",
    "open_store_or_stop",
    "page_path",
    "refresh",
    "routed",
    "seat_history",
    "trends",
    "include_free",
    "seat_scope",
    "sidebar_access",
    "sidebar_filters",
    "sidebar_status",
    "streamlit_user",
    "table",
    "tiles",
]
