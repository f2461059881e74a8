"""Page benchmark.

1. Server side: one Overview rerun from a warm cache at 1k, 10k and 100k
   licenses. A synthetic snapshot is written to a temporary store under the
   configuration's key, so the app reads it as it would after a sync; the
   first run warms the caches, then reruns are timed with AppTest (the
   script's whole run: gate, data, filters, figures, charts, tables).
2. Browser: on the demo data, a real `streamlit run` and headless Chromium;
   the time from navigation to the Overview's charts drawn.

Targets: under 300 ms per rerun at 10k licenses; under 2.5 s from a deep link to everything drawn.
Run by hand: ``.venv/bin/python bench/page.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.config import load_settings  # noqa: E402
from lib.truto.demo import synthetic_result  # noqa: E402
from lib.ui.serve import HINTS_ENV  # noqa: E402

LICENSES_PER_ACCOUNT = 100


def price_book_for(result):
    import pandas as pd

    names = result.licenses[["integration_label", "license_name"]].drop_duplicates().head(400)
    return pd.DataFrame(
        {
            "integration": names["integration_label"],
            "license_id": pd.NA,
            "license_name": names["license_name"],
            "unit_price": 12.5,
            "currency": "USD",
            "billing_period": "monthly",
        }
    )


def server_side(licenses: int, reruns: int = 5) -> dict:
    from streamlit.testing.v1 import AppTest

    from lib.auth import Actor
    from lib.jobs.sync import config_key
    from lib.store import Store

    tmp = Path(tempfile.mkdtemp())
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite'}",
        "TRUTO_API_TOKEN": "bench-token",
        "TRUTO_BASE_URL": "http://127.0.0.1:9",
    }
    os.environ.update(env)
    settings = load_settings()
    store = Store(env["DATABASE_URL"])
    result = synthetic_result(licenses, LICENSES_PER_ACCOUNT)
    store.write_snapshot(result, config_key(settings))
    store.save_price_book(price_book_for(result), Actor("bench@example.com", "bench", "admin"))

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    t0 = time.perf_counter()
    at.run()
    cold = time.perf_counter() - t0
    assert not at.exception, [e.value for e in at.exception]
    assert at.metric, "the Overview drew no KPI tiles"
    times = []
    for _ in range(reruns):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    for k in env:
        os.environ.pop(k, None)
    return {
        "licenses": len(result.licenses),
        "first": cold,
        "median": statistics.median(times),
        "min": min(times),
    }


# Everything drawn: the script finished, no skeleton left, and both of the Overview's charts drawn.
ALL_DRAWN = (
    "() => document.querySelector(\"[data-testid='stApp'][data-test-script-state='notRunning']\")"
    " && !document.querySelector(\"[data-testid='stSkeleton']\")"
    " && document.querySelectorAll(\"[data-testid='dashboardChart'] .main-svg\").length >= 2"
)


def opened_and_drawn(page, url: str) -> float:
    """Open the Overview at ``url`` in ``page``: seconds from the navigation's start to everything drawn."""
    page.goto(url)
    page.wait_for_function(ALL_DRAWN, timeout=30_000, polling=16)
    return page.evaluate("performance.now()") / 1000


def browser() -> dict | None:
    """Navigation to the Overview's charts drawn: a full load by deep link in a new session, and a click
    on the sidebar link from another page of an open app."""
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server, wait_idle

    if not Path(CHROMIUM).exists():
        print("browser part skipped: no Chromium at", CHROMIUM)
        return None
    from playwright.sync_api import sync_playwright

    srv = Server(Path(tempfile.mkdtemp()))
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(srv.url + "/overview")  # first visit: seeds the demo store and fetches
            wait_idle(page)
            page.close()
            loads, clicks = [], []
            for _ in range(5):
                fresh = b.new_page(viewport={"width": 1400, "height": 1000})
                loads.append(opened_and_drawn(fresh, srv.url + "/overview"))
                fresh.goto(srv.url + "/accounts")
                wait_idle(fresh)
                fresh.locator("[data-testid='stDataFrame']").first.wait_for(timeout=30_000)
                t0 = time.perf_counter()
                fresh.locator("[data-testid='stSidebarNav'] a", has_text="Overview").click()
                fresh.wait_for_function(ALL_DRAWN, timeout=30_000, polling=16)
                clicks.append(time.perf_counter() - t0)
                fresh.close()
            # A returning visitor: the same browser profile (its HTTP cache holds Streamlit's
            # scripts, the Plotly bundle among them) opens the deep link in a new tab.
            profile = b.new_context(viewport={"width": 1400, "height": 1000})
            first = profile.new_page()
            opened_and_drawn(first, srv.url + "/overview")
            first.close()
            returns = []
            for _ in range(5):
                tab = profile.new_page()
                returns.append(opened_and_drawn(tab, srv.url + "/overview"))
                tab.close()
            profile.close()
            b.close()
            return {
                "load": statistics.median(loads),
                "load_min": min(loads),
                "click": statistics.median(clicks),
                "return": statistics.median(returns),
            }
    finally:
        srv.stop()


def hints_compared(rounds: int = 10) -> tuple[list[float], list[float]]:
    """Full loads by deep link from two servers, one without lib/ui/serve.py's hints, taken in turn
    (so that the machine's own drift falls on both)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server, wait_idle

    servers = [Server(Path(tempfile.mkdtemp())), Server(Path(tempfile.mkdtemp()), {HINTS_ENV: "0"})]
    loads: list[list[float]] = [[], []]
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for srv in servers:
                warm = b.new_page()
                warm.goto(srv.url + "/overview")
                wait_idle(warm)
                warm.close()
            for r in range(rounds):
                for i in (0, 1) if r % 2 == 0 else (1, 0):
                    fresh = b.new_page(viewport={"width": 1400, "height": 1000})
                    loads[i].append(opened_and_drawn(fresh, servers[i].url + "/overview"))
                    fresh.close()
            b.close()
    finally:
        for srv in servers:
            srv.stop()
    return loads[0], loads[1]


def main() -> None:
    if "--browser" not in sys.argv[1:]:
        server_figures()
    t = browser()
    if t is not None:
        print(
            "browser, demo data, navigation to everything drawn (no skeleton, both charts; median of 5):"
        )
        print(
            f"  full load by deep link, new session: {t['load']:.2f} s (best {t['load_min']:.2f} s)"
        )
        print(f"  returning visitor (same browser profile, new tab): {t['return']:.2f} s")
        print(f"  click on the sidebar link in an open app: {t['click']:.2f} s")
        on, off = hints_compared()
        gain = statistics.median(b - a for a, b in zip(on, off))
        print(
            f"  full load with the page-load hints {statistics.median(on):.2f} s, without"
            f" ({HINTS_ENV}=0) {statistics.median(off):.2f} s: the hints gain {gain:.2f} s"
            f" (median of {len(on)} interleaved pairs)"
        )


def server_figures() -> None:
    print("Overview rerun, server side (AppTest), warm cache:")
    print(f"{'licenses':>9} {'first run s':>12} {'rerun median ms':>16} {'rerun min ms':>13}")
    for n in (1_000, 10_000, 100_000):
        r = server_side(n)
        print(
            f"{r['licenses']:>9,} {r['first']:12.2f} {r['median'] * 1000:16.0f} {r['min'] * 1000:13.0f}"
        )


if __name__ == "__main__":
    main()
