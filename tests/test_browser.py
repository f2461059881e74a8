"""End to end: a real `streamlit run` on the demo data, driven in headless Debian Chromium."""

from __future__ import annotations

import csv
import io
from datetime import UTC
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from lib import ui
from lib.ui import plot
from tests.browser import (
    CHROMIUM_ARGS,
    Server,
    by_key,
    download,
    require_chromium,
    screenshot,
    wait_idle,
)

pytestmark = pytest.mark.browser

CHARTS = {
    "overview": ["chart-top-idle", "chart-util-integration"],
    "utilization": ["chart-seats"],
    "spend": ["chart-spend"],
    "trends": ["chart-trend"],
}  # page key -> keys of its charts
GRIDS = {
    "utilization": "utilization-table",
    "spend": "spend-table",
    "accounts": "accounts-table",
    "trends": "trend-table",
}  # page key -> key of its main table


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_chromium()
    srv = Server(tmp_path_factory.mktemp("streamlit"))
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


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def metric(page, label: str) -> str:
    tile = page.locator("[data-testid='stMetric']").filter(
        has=page.locator("[data-testid='stMetricLabel']", has_text=label)
    )
    tile.wait_for(timeout=30_000)
    return tile.locator("[data-testid='stMetricValue']").inner_text().strip()


def check_page(page, spec: ui.PageSpec) -> None:
    """The page's own heading, no error, its charts and table drawn, at its own address."""
    page.get_by_role("heading", name=spec.title, exact=True).wait_for(timeout=30_000)
    errors = page.locator("[data-testid='stException']")
    assert errors.count() == 0, errors.all_inner_texts()
    for chart in CHARTS.get(spec.key, []):
        by_key(page, chart).locator(".main-svg").first.wait_for(timeout=30_000)
    if spec.key in GRIDS:
        grid = by_key(page, GRIDS[spec.key]).locator("[data-testid='stDataFrame']")
        grid.wait_for(timeout=30_000)
        assert grid.bounding_box()["height"] > 60


@pytest.mark.parametrize("spec", ui.PAGES, ids=[p.key for p in ui.PAGES])
def test_deep_link_draws_the_page(server, page, spec):
    page.goto(f"{server.url}/{spec.url_path}")
    wait_idle(page)
    check_page(page, spec)
    assert urlsplit(page.url).path == f"/{spec.url_path}"
    screenshot(page, spec.key)


@pytest.mark.parametrize("first", ["spend", "overview", "price_book"])
def test_first_deep_link_after_a_start_is_routed(tmp_path, browser, first):
    """The first request a new server gets is the one Streamlit answers in its legacy multipage mode."""
    srv = Server(tmp_path)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg = context.new_page()
        spec = ui.PAGE_BY_KEY[first]
        pg.goto(f"{srv.url}/{spec.url_path}?paid=true")
        wait_idle(pg)
        check_page(pg, spec)
        assert urlsplit(pg.url).path == f"/{spec.url_path}"
        assert parse_qs(urlsplit(pg.url).query) == {"paid": ["true"]}
        assert pg.get_by_role("dialog").count() == 0
        # The router ran too: the sidebar's filters are there.
        pg.locator("[data-testid='stSidebar']").get_by_text("Paid licenses only").wait_for(
            timeout=30_000
        )
        context.close()
    finally:
        srv.stop()


def test_bare_address_shows_the_overview(server, page):
    page.goto(server.url)
    wait_idle(page)
    check_page(page, ui.PAGE_BY_KEY["overview"])


def test_filter_changes_url_and_figures(server, page):
    page.goto(f"{server.url}/utilization")
    wait_idle(page)
    before = metric(page, "Seats bought")
    box = page.locator(
        "[data-testid='stSidebar'] [data-testid='stMultiSelect']", has_text="Integration"
    )
    box.locator("input").click()
    page.get_by_role("option", name="GitHub", exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_function("() => location.search.includes('integration=GitHub')", timeout=30_000)
    wait_idle(page)
    page.wait_for_function(
        "(b) => [...document.querySelectorAll(\"[data-testid='stMetric']\")].some("
        "m => m.innerText.includes('Seats bought') && !m.innerText.includes(b))",
        arg=before,
        timeout=30_000,
    )
    assert (
        metric(page, "Seats bought") == "340" != before
    )  # paid by default: not GitHub Free's 9 seats
    assert parse_qs(urlsplit(page.url).query)["integration"] == ["GitHub"]
    screenshot(page, "utilization-github")

    # A copied link opens the same view.
    page.goto(page.url)
    wait_idle(page)
    assert metric(page, "Seats bought") == "340"


def test_csv_download_equals_the_filtered_table(server, page):
    page.goto(f"{server.url}/utilization?integration=GitHub")
    wait_idle(page)
    got = download(page, "dl-utilization")
    assert got.suggested_filename.startswith(
        "license-utilization-"
    ) and got.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(got.path()).read_text(encoding="utf-8-sig"))))
    assert {r["integration_label"] for r in rows} == {"GitHub"}
    assert sorted((r["organization_name"], r["license_name"]) for r in rows) == sorted(
        [
            ("acme-platform", "GitHub Enterprise"),
            ("acme-platform", "GitHub Copilot Business"),
            ("acme-labs", "GitHub Enterprise"),
            ("acme-labs", "GitHub Free"),
        ]
    )
    assert sum(int(r["seats_bought"]) for r in rows) == 349


def test_uploading_a_price_changes_spend(server, page, tmp_path):
    page.goto(f"{server.url}/spend")
    wait_idle(page)
    before = metric(page, "Annual spend (USD)")
    page.goto(f"{server.url}/price-book")
    wait_idle(page)
    from lib.analytics.pricing import price_book_to_csv
    from lib.jobs.demo import demo_price_book

    book = demo_price_book()
    book.loc[book["license_name"] == "Sales Cloud Enterprise", "unit_price"] = (
        200.0  # was 165 a month
    )
    price_file = tmp_path / "prices.csv"
    price_file.write_bytes(price_book_to_csv(book))
    by_key(page, "price-upload").locator("input[type=file]").set_input_files(str(price_file))
    apply = page.get_by_role("button", name=f"Replace the price book with these {len(book)} prices")
    apply.wait_for(timeout=30_000)
    apply.click()
    page.get_by_text(f"Replaced the price book with {len(book)} prices").wait_for(timeout=30_000)
    screenshot(page, "price-book-saved")
    page.goto(f"{server.url}/spend")
    wait_idle(page)
    after = metric(page, "Annual spend (USD)")
    assert after != before
    # (200 - 165) x 12 months x 120 seats bought = 50,400 more per year
    to_number = lambda s: float(s.split()[-1].replace(",", ""))  # noqa: E731
    assert to_number(after) - to_number(before) == pytest.approx(50_400, abs=1)


@pytest.fixture(scope="module")
def synced_server(tmp_path_factory):
    """A server whose database holds two syncs of the demo data, a day apart, with GitHub seats changed."""
    require_chromium()
    from dataclasses import replace
    from datetime import datetime, timedelta

    from lib.config import load_settings
    from lib.jobs.sync import config_key
    from lib.store import Store
    from lib.truto.source import fetch

    tmp = tmp_path_factory.mktemp("synced")
    settings = load_settings(env={}, secrets={})
    store = Store(f"sqlite:///{tmp / 'dashboard.sqlite'}")
    now = datetime.now(UTC)
    first = fetch(settings)
    store.write_snapshot(first, config_key(settings), taken_at=now - timedelta(days=2))
    second = fetch(settings)
    rows = second.licenses
    enterprise = (rows["integration_label"] == "GitHub") & (
        rows["license_name"] == "GitHub Enterprise"
    )
    rows.loc[enterprise, "assigned_seats"] = (
        rows.loc[enterprise, "assigned_seats"] + 25
    )  # 2 orgs: +50 in all
    store.write_snapshot(
        replace(second, licenses=rows), config_key(settings), taken_at=now - timedelta(days=1)
    )
    store.close()
    srv = Server(tmp)
    yield srv, (now - timedelta(days=2)).date(), (now - timedelta(days=1)).date()
    srv.stop()


def test_trends_after_two_syncs_show_the_change(synced_server, page):
    srv, day1, day2 = synced_server
    page.goto(f"{srv.url}/trends?integration=GitHub")
    wait_idle(page)
    by_key(page, "chart-trend").locator(".main-svg").first.wait_for(timeout=30_000)
    screenshot(page, "trends-two-syncs")
    got = download(page, "dl-trends")
    rows = list(csv.DictReader(io.StringIO(Path(got.path()).read_text(encoding="utf-8-sig"))))
    by_day = {r["taken_at"][:10]: r for r in rows if r["integration_label"] == "GitHub"}
    assert sorted(by_day) == [str(day1), str(day2)]
    assert int(by_day[str(day2)]["seats_assigned"]) - int(by_day[str(day1)]["seats_assigned"]) == 50
    # paid licenses, as the tiles (GitHub Free's 9 seats count with "Include free licenses")
    assert by_day[str(day1)]["seats_bought"] == by_day[str(day2)]["seats_bought"] == "340"
    assert float(by_day[str(day2)]["utilization_pct"]) > float(by_day[str(day1)]["utilization_pct"])


def test_editing_a_price_in_the_table_changes_spend(server, page):
    page.goto(f"{server.url}/spend")
    wait_idle(page)
    before = metric(page, "Annual spend (USD)")
    page.goto(f"{server.url}/price-book")
    wait_idle(page)
    grid = by_key(page, "price-editor").locator(
        "[data-testid='stDataFrame']"
    )  # the price table (st.data_editor)
    grid.wait_for(timeout=30_000)
    grid.click(position={"x": 80, "y": 52})  # first row: GitHub · GitHub Enterprise
    for _ in range(3):  # Integration -> License ID -> name -> price
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # open the cell editor
    editor = page.locator("#portal input, .gdg-input").first
    editor.wait_for(timeout=10_000)
    editor.fill("30")
    page.keyboard.press("Enter")
    # The edit reaches the server and reruns the script; Save before that would store the table as it was.
    try:
        page.wait_for_selector(
            "[data-testid='stApp'][data-test-script-state='running']", timeout=5_000
        )
    except Exception:  # noqa: BLE001  (a fast rerun may finish before we look)
        pass
    wait_idle(page)
    page.get_by_role("button", name="Save prices").click()
    page.locator("[data-testid='stAlertContentSuccess']", has_text="Saved").wait_for(timeout=30_000)
    screenshot(page, "price-book-edited")
    page.goto(f"{server.url}/spend")
    wait_idle(page)
    after = metric(page, "Annual spend (USD)")
    to_number = lambda s: float(s.split()[-1].replace(",", ""))  # noqa: E731
    # GitHub Enterprise from 21 to 30 a month: 9 x 12 x 240 seats bought (two organizations) = 25,920
    assert to_number(after) - to_number(before) == pytest.approx(25_920, abs=1)


def _reclaim_csv(page, url: str) -> list[dict]:
    page.goto(url)
    wait_idle(page)
    page.get_by_role("heading", name="Reclaim", exact=True).wait_for(timeout=30_000)
    got = download(page, "dl-reclaim")
    assert got.suggested_filename.startswith("reclaimable-seats-")
    return list(csv.DictReader(io.StringIO(Path(got.path()).read_text(encoding="utf-8-sig"))))


def test_reclaim_threshold_and_reason_in_the_url_shape_the_download(server, page):
    at_90 = _reclaim_csv(page, f"{server.url}/reclaim?integration=GitHub")
    assert at_90 and {r["integration_label"] for r in at_90} == {"GitHub"}
    assert all("@" in r["user_email"] for r in at_90)  # open mode: the admin's view
    costs = [float(r["reclaimable_annual_cost_reporting"]) for r in at_90]
    assert costs == sorted(costs, reverse=True)  # costliest first
    at_30 = _reclaim_csv(page, f"{server.url}/reclaim?integration=GitHub&days=30")
    assert len(at_30) > len(at_90)  # a shorter threshold: more seats count as inactive
    departed = _reclaim_csv(page, f"{server.url}/reclaim?integration=GitHub&reason=Departed")
    assert departed and {r["reclaim_reason"] for r in departed} == {"Departed"}
    assert urlsplit(page.url).query == "integration=GitHub&reason=Departed"


def test_the_server_sends_the_chart_library_and_the_page_load_hints(server):
    document = requests.get(
        f"{server.url}/utilization", headers={"Accept": "text/html"}, timeout=30
    )
    assert document.status_code == 200
    head = document.text[: document.text.index("</head>")]
    assert f'<link rel="preload" as="script" href="{plot.PLOTLY_URL}">' in head
    library = requests.get(f"{server.url}{plot.ASSET_ROUTE}/{plot.PLOTLY_JS}", timeout=30)
    assert library.status_code == 200 and "javascript" in library.headers["content-type"]
    assert library.content == (plot.ASSETS / plot.PLOTLY_JS).read_bytes()
    assert "immutable" in library.headers["cache-control"]
    assert requests.get(f"{server.url}{plot.ASSET_ROUTE}/missing.js", timeout=30).status_code == 404


def test_charts_draw_with_the_basic_library_loaded_once_and_never_streamlits_full_plotly(
    server, page
):
    page.goto(f"{server.url}/overview")
    wait_idle(page)
    check_page(page, ui.PAGE_BY_KEY["overview"])  # both charts drawn
    names = page.evaluate("performance.getEntriesByType('resource').map(r => r.name)")
    assert [n for n in names if n.endswith(plot.PLOTLY_JS)] == [
        f"{server.url}{plot.ASSET_ROUTE}/{plot.PLOTLY_JS}"
    ]
    assert not [n for n in names if "/static/js/PlotlyChart." in n]
    assert page.locator(f"script#{plot.LIBRARY_TAG_ID}").count() == 1
    # A click to another page draws its chart with the library already there.
    page.locator("[data-testid='stSidebarNav'] a", has_text="Spend").click()
    wait_idle(page)
    check_page(page, ui.PAGE_BY_KEY["spend"])
    assert page.locator(f"script#{plot.LIBRARY_TAG_ID}").count() == 1


def test_a_chart_whose_library_cannot_load_says_so_and_the_page_is_still_drawn(server, page):
    page.route(f"**{plot.ASSET_ROUTE}/{plot.PLOTLY_JS}", lambda route: route.abort())
    page.goto(f"{server.url}/overview")
    wait_idle(page)
    for key in CHARTS["overview"]:
        by_key(page, key).get_by_text("This chart could not be drawn", exact=False).wait_for(
            timeout=30_000
        )
    assert page.locator("[data-testid='stMetric']").count() >= 4
    assert page.locator("[data-testid='stException']").count() == 0
