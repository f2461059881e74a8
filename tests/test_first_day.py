"""The first day on a real Truto environment (issue 22), end to end.

A fresh deployment: an empty database, nothing saved, no demo seeding (a token is set), pointed at an
emulator with every fault it knows switched on (lib.truto.demo.first_day_dataset: failing, blocked,
reauthorisation, malformed answers and records, a cursor loop, rate-limited, licenses not supported,
users and billing failing) whose licenses carry EUR and GBP prices with no rate saved. Every page at
1440 and 390 px: no exception, no "None"/"nan"/"NaT"/"<NA>", every chart drawn or an empty state that
says what to do (and, where it matters, links the page to do it on). Then one price and one rate are
saved through the Price book page and every page is walked again. Screenshots of every page, width
and walk: artifacts/screenshots/first-day-*.png. The command line: tests/test_first_day_cli.py.
"""

from __future__ import annotations

import re

import pytest

from lib import ui
from lib.truto.demo import first_day_dataset
from lib.truto.emulator import Emulator
from tests.browser import (
    CHROMIUM_ARGS,
    Server,
    by_key,
    require_chromium,
    screenshot,
    wait_idle,
)

pytestmark = pytest.mark.browser

TOKEN = "first-day-token-7c1e"
WIDTHS = ((1440, 900), (390, 844))
# Whole words only: "None" in "Nonexistent" or "nan" in "nanosecond" are no leak.
LEAKS = re.compile(r"(?<![\w-])(None|nan|NaN|<NA>|NaT)(?![\w-])")
# Every chart a page can draw (its ui.chart keys).
CHARTS = {
    "overview": ("chart-top-idle", "chart-util-integration"),
    "utilization": ("chart-seats",),
    "spend": ("chart-spend", "chart-savings"),
    "trends": ("chart-trend",),
    "renewals": ("chart-renewals",),
}
# Where a chart is not drawn, the empty state in its place: what it must say, true of the data (and
# the link it must show). Before anything is saved only the licenses DocuSign prices (in EUR and
# GBP, with no rate) have a price; after one price and one rate every chart is drawn.
EMPTY = {
    "empty": {
        ("overview", "chart-top-idle"): (
            "license(s) with seats bought but not assigned has a price. Add their prices in the Price book.",
            "Open Price book",
        ),
        ("spend", "chart-spend"): ("2 have no exchange rate to USD", None),
        ("spend", "chart-savings"): ("No savings can be computed", None),
    },
    "saved": {},
}
CHARTS_DRAWN = "(sel) => [...document.querySelectorAll(sel)].every(c => c.querySelector('.main-svg') || c.innerText.includes('could not be drawn'))"


@pytest.fixture(scope="module")
def first_day(tmp_path_factory):
    require_chromium()
    data, faults = first_day_dataset()
    emu = Emulator(data, token=TOKEN, faults=faults).start()
    srv = Server(
        tmp_path_factory.mktemp("first-day"),
        env={"TRUTO_API_TOKEN": TOKEN, "TRUTO_BASE_URL": emu.base_url},
    )
    yield srv
    srv.stop()
    emu.stop()


@pytest.fixture(scope="module")
def browser():
    path = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def pages(browser):
    contexts = [
        browser.new_context(viewport={"width": w, "height": h}, accept_downloads=True)
        for w, h in WIDTHS
    ]
    yield [(w, c.new_page()) for (w, _), c in zip(WIDTHS, contexts)]
    for c in contexts:
        c.close()


def _grid_text(page) -> str:
    cells = page.locator(
        "[data-testid='stDataFrame'] table td, [data-testid='stDataFrame'] table th"
    )
    return " ".join(cells.all_inner_texts())


def shoot(page, name: str) -> None:
    """A screenshot of the whole main area: the viewport made as tall as the page's content for it
    (Streamlit scrolls inside its main area, so a full-page shot is only the viewport)."""
    size = page.viewport_size
    tall = page.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], tall)})
    try:
        screenshot(page, name)
    finally:
        page.set_viewport_size(size)


def check(page, width: int, spec: ui.PageSpec, tag: str) -> list[str]:
    """One page once drawn: what is wrong with it (empty: nothing)."""
    wrong: list[str] = []
    where = f"{spec.key} at {width} px ({tag})"
    wait_idle(page, timeout=120_000)
    page.get_by_role("heading", name=spec.title, exact=True).wait_for(timeout=30_000)
    page.wait_for_function(CHARTS_DRAWN, arg="[data-testid='dashboardChart']", timeout=30_000)
    errors = page.locator("[data-testid='stException']")
    if errors.count():
        wrong.append(f"{where}: exception: {errors.all_inner_texts()}")
    main = page.locator("[data-testid='stMain']").inner_text()
    for text, what in ((main, "text"), (_grid_text(page), "table")):
        for m in LEAKS.finditer(text):
            around = text[max(0, m.start() - 60) : m.end() + 30]
            wrong.append(f"{where}: the {what} shows {m.group(0)!r}: …{around!r}")
    alerts = " ".join(
        page.locator("[data-testid='stMain'] [data-testid='stAlert']").all_inner_texts()
    )
    for key in CHARTS.get(spec.key, ()):
        chart = by_key(page, key)
        expected = EMPTY[tag].get((spec.key, key))
        if chart.count():
            if chart.locator(".main-svg").count() == 0:
                wrong.append(f"{where}: chart {key} not drawn: {chart.inner_text()[:200]!r}")
            elif expected:
                wrong.append(f"{where}: chart {key} drawn where {expected[0]!r} was expected")
        elif expected is None:
            wrong.append(
                f"{where}: chart {key} neither drawn nor expected empty; it says {alerts!r}"
            )
        else:
            words, target = expected
            if words not in alerts:
                wrong.append(f"{where}: chart {key} not drawn, and no {words!r}: {alerts!r}")
            box = by_key(page, key.replace("chart-", "") + "-empty")
            if target and not box.get_by_role("link", name=target).count():
                wrong.append(f"{where}: chart {key}'s empty state has no link {target!r}")
    shoot(page, f"first-day-{tag}-{spec.key}-{width}")
    return wrong


def walk_all(server, pages, tag: str) -> list[str]:
    """Every page at every width; the widths load at once (each its own browser session)."""
    wrong: list[str] = []
    for spec in ui.PAGES:
        for _, page in pages:
            page.goto(f"{server.url}/{spec.url_path}")
        for width, page in pages:
            wrong += check(page, width, spec, tag)
    return wrong


def save_one_price_and_one_rate(server, page, tmp_path) -> None:
    """Through the Price book page, as an admin would: upload a one-row price book and one rate."""
    prices = tmp_path / "prices.csv"
    prices.write_text(
        "integration,license_id,license_name,unit_price,currency,billing_period\n"
        "GitHub,,GitHub Enterprise,21,USD,monthly\n"
    )
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,rate\nEUR,1.1\n")
    page.goto(f"{server.url}/price-book")
    wait_idle(page)
    by_key(page, "price-upload").locator("input[type=file]").set_input_files(str(prices))
    apply = page.get_by_role("button", name="Replace the price book with these 1 prices")
    apply.wait_for(timeout=30_000)
    apply.click()
    page.get_by_text("Replaced the price book with 1 prices").wait_for(timeout=30_000)
    wait_idle(page)
    tab = page.get_by_role("tab", name="Currency and exchange rates")
    tab.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[role=tab]')].some(t => "
        "t.innerText.includes('Currency and exchange rates') && t.getAttribute('aria-selected') === 'true')",
        timeout=30_000,
    )
    by_key(page, "fx-upload").wait_for(state="visible", timeout=30_000)
    by_key(page, "fx-upload").locator("input[type=file]").set_input_files(str(rates))
    apply = page.get_by_role("button", name="Replace the exchange rates with these 1 rates to USD")
    apply.wait_for(timeout=30_000)
    apply.click()
    page.get_by_text("Replaced the exchange rates from rates.csv").wait_for(timeout=30_000)
    wait_idle(page)


def test_first_day_every_page_then_one_price_and_one_rate(first_day, pages, tmp_path):
    # CHARTS names every chart the pages draw, so a new one is checked too.
    drawn = {
        m
        for path in (ui.ROOT / "pages").glob("*.py")
        for m in re.findall(r'key="(chart-[\w-]+)"', path.read_text())
    }
    assert drawn == {k for keys in CHARTS.values() for k in keys}
    wrong = walk_all(first_day, pages, "empty")
    save_one_price_and_one_rate(first_day, pages[0][1], tmp_path)
    wrong += walk_all(first_day, pages, "saved")
    assert not wrong, "\n".join(wrong)
