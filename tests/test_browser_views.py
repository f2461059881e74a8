"""End to end, what the pages show: honest figures and readable tables, in headless Chromium on the demo data."""

from __future__ import annotations

import re

import pytest

from lib import ui
from tests.browser import CHROMIUM_ARGS, Server, require_chromium, screenshot, wait_idle

pytestmark = pytest.mark.browser

PAGES = {p.url_path: p.title for p in ui.PAGES}
# What each page draws last-ish, to wait for (never a fixed sleep).
READY = {"overview": "Needs attention", "utilization": "Drill down", "spend": "All priced rows",
         "trends": "Measure", "accounts": "Malformed records", "price-book": "Download the price book"}
LEAKS = re.compile(r"(?<![\w-])(None|nan|NaN|<NA>|NaT)(?![\w-])")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_chromium()
    srv = Server(tmp_path_factory.mktemp("streamlit-views"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(params=[(1440, 900), (390, 844)], ids=["1440", "390"])
def page(browser, request):
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    pg = context.new_page()
    pg.viewport_name = str(width)
    yield pg
    context.close()


@pytest.fixture
def wide(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    yield pg
    context.close()


def open_page(page, url: str, path: str) -> None:
    page.goto(url)
    wait_idle(page)
    page.get_by_role("heading", name=PAGES[path], exact=True).wait_for(timeout=60_000)
    page.get_by_text(READY[path], exact=True).wait_for(timeout=60_000)
    wait_idle(page)


def metric_value(page, label: str) -> str:
    tile = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']", has_text=re.compile(f"^{re.escape(label)}$")))
    tile.wait_for(timeout=30_000)
    return tile.locator("[data-testid='stMetricValue']").inner_text().strip()


def grid_text(page) -> str:
    """The text the grids put in the DOM (their accessible table), if any."""
    cells = page.locator("[data-testid='stDataFrame'] table td, [data-testid='stDataFrame'] table th")
    return " ".join(cells.all_inner_texts())


@pytest.mark.parametrize("path", list(PAGES))
def test_no_none_nan_or_na_on_any_page(server, page, path):
    open_page(page, f"{server.url}/{path}", path)
    assert page.locator("[data-testid='stException']").count() == 0
    main = page.locator("[data-testid='stMain']").inner_text()
    assert not LEAKS.search(main), LEAKS.search(main).group(0)
    grids = grid_text(page)
    assert not LEAKS.search(grids), LEAKS.search(grids).group(0)
    screenshot(page, f"{path}-{page.viewport_name}")


def test_accounts_show_names_and_the_failed_account_first(server, wide):
    open_page(wide, f"{server.url}/accounts", "accounts")
    banner = wide.locator("[data-testid='stAlertContentError']").filter(has_text="Zoom · acme-europe · 7d383c7a")
    banner.wait_for(timeout=30_000)
    text = banner.inner_text()
    assert "needs_reauth" not in text and "needing reauthorisation" in text
    main = wide.locator("[data-testid='stMain']").inner_text()
    assert "7d383c7a-068a-505e-bab4-623667e26571" not in main         # the UUID only in the CSV / More columns


def test_overview_and_spend_say_at_least_for_the_spend_lower_bound(server, wide):
    open_page(wide, f"{server.url}/overview", "overview")
    assert metric_value(wide, "Seat utilization") == "80.3%"           # paid licenses by default
    assert metric_value(wide, "Annual spend (USD)") == "≥ USD 847,818"
    open_page(wide, f"{server.url}/spend", "spend")
    assert metric_value(wide, "Annual spend (USD)") == "≥ USD 847,818"
    wide.get_by_text("What the spend total leaves out", exact=True).wait_for(timeout=30_000)
    screenshot(wide, "spend-lower-bound-1440")


def test_zoom_empty_states_are_true(server, wide):
    open_page(wide, f"{server.url}/spend?integration=Zoom", "spend")
    assert metric_value(wide, "Annual spend (USD)") == "≥ USD 30,786"
    wide.get_by_text("No savings can be computed", exact=False).wait_for(timeout=30_000)
    main = wide.locator("[data-testid='stMain']").inner_text()
    assert "No priced paid licenses" not in main and "within its buffer" not in main
    assert wide.locator("[data-testid='stPlotlyChart']").count() >= 1
    screenshot(wide, "spend-zoom-1440")


def test_atlassian_overview_does_not_say_nothing_needs_attention(server, wide):
    open_page(wide, f"{server.url}/overview?integration=Atlassian", "overview")
    wide.get_by_text("report no seat counts through Truto", exact=False).wait_for(timeout=30_000)
    assert wide.get_by_text("Nothing needs attention", exact=False).count() == 0
    screenshot(wide, "overview-atlassian-1440")
