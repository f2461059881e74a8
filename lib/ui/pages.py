"""The page registry (PAGES, the one list app.py, page links and tests read) and routing."""

from __future__ import annotations

import runpy
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from lib.ui.state import View


@dataclass(frozen=True)
class PageSpec:
    """One page of the dashboard: the one registry app.py, page links and tests read."""

    key: str
    file: str  # relative to the project root
    title: str
    icon: str
    url_path: str  # the deep link, /<url_path>


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    PageSpec(
        "utilization", "pages/utilization.py", "Utilization", ":material/group:", "utilization"
    ),
    PageSpec("spend", "pages/spend.py", "Spend", ":material/payments:", "spend"),
    PageSpec("reclaim", "pages/reclaim.py", "Reclaim", ":material/person_remove:", "reclaim"),
    PageSpec("trends", "pages/trends.py", "Trends", ":material/trending_up:", "trends"),
    PageSpec("accounts", "pages/accounts.py", "Accounts", ":material/hub:", "accounts"),
    PageSpec("price_book", "pages/price-book.py", "Price book", ":material/sell:", "price-book"),
    PageSpec("renewals", "pages/renewals.py", "Renewals", ":material/event:", "renewals"),
    PageSpec("alerts", "pages/alerts.py", "Alerts", ":material/notifications:", "alerts"),
)
PAGE_BY_KEY = {p.key: p for p in PAGES}
PAGE_TITLES = {p.key: p.title for p in PAGES}
HOME = "overview"  # what the bare address shows
ROOT = Path(__file__).resolve().parents[2]  # the project: app.py and pages/


def page_path(name: str) -> str:
    return PAGE_BY_KEY[name].file


def navigation_pages() -> list:
    """The st.Page list for st.navigation.

    Streamlit gives its default page the bare address ``/`` and no other, so a
    default Overview would make ``/overview`` a "Page not found". The default is
    instead a hidden page at ``/`` that draws the Overview, and every listed page,
    Overview included, keeps its own deep link.
    """
    home = PAGE_BY_KEY[HOME]
    listed = [
        st.Page(ROOT / p.file, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES
    ]
    start = st.Page(
        ROOT / home.file,
        title=home.title,
        icon=home.icon,
        url_path="home",
        default=True,
        visibility="hidden",
    )
    return [start, *listed]


_ROUTED = threading.local()


@contextmanager
def routed():
    """app.py runs the page inside this, so a page can tell it was reached through the router."""
    _ROUTED.active = True
    try:
        yield
    finally:
        _ROUTED.active = False


def leave_legacy_multipage_mode() -> None:
    """Run app.py (gate, data, sidebar, then this same page) for a page Streamlit ran alone.

    With a ``pages/`` folder beside app.py, Streamlit starts in its legacy
    multipage mode until ``st.navigation`` has run once (AppTest: on every run),
    and a deep link then runs the page file without app.py. Running app.py here,
    in the same script run, calls ``st.navigation``, which ends that mode for the
    server, and draws the page through the router; nothing is rerun, so no widget
    event is lost and the address stays the same. tests/test_routing.py fails the
    day Streamlit names legacy pages differently from this registry.
    """
    runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
    st.stop()  # the page was drawn inside app.py; end the run Streamlit started for it alone


def current_view() -> View:
    """The view app.py built for this run (a page reached without app.py hands over first)."""
    if not getattr(_ROUTED, "active", False):
        leave_legacy_multipage_mode()
    return st.session_state["_view"]
