"""The same figure everywhere: ``python -m lib summary --json`` and the Overview (and the Spend page's
true-up tile) on one data set, the demo with a saved price book that leaves one Microsoft 365 license
(whose vendor never reports is_paid) and Jira (paid, as Atlassian says) without a price."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lib.analytics import reclaim_views as RV
from lib.analytics import views as D
from lib.analytics.activity import ReclaimSummary
from lib.auth import Actor
from lib.jobs.demo import seed_demo_pricing
from lib.store import Store
from tests.test_app import app, metric_values, no_exception
from tests.test_cli import run

ADMIN = Actor("ana@acme.com", "Ana", "admin")
DROPPED = "Microsoft 365 E3"  # Microsoft 365 does not report is_paid


@pytest.fixture
def data_set(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'same.sqlite'}"
    store = Store(url)
    seed_demo_pricing(store)
    book = store.get_price_book()
    assert DROPPED in set(book["license_name"])
    store.save_price_book(book[book["license_name"] != DROPPED].reset_index(drop=True), ADMIN)
    store.close()
    monkeypatch.setenv("DATABASE_URL", url)
    proc = run(["summary", "--json"], {"DATABASE_URL": url}, tmp_path)
    assert proc.returncode in (0, 2), (
        proc.stderr
    )  # 2: the demo's Zoom EU account needs reauthorisation
    return json.loads(proc.stdout)


def _gaps(cli: dict):
    """The CLI's spend-left-out counts as a SpendGaps, to put its figures in the tiles' words."""
    counts = cli["spend_left_out"]["rows"]
    reasons = [r for r, k in counts.items() for _ in range(k)]
    return D.SpendGaps(
        cli["spend_left_out"]["at_least_from_seats_assigned"],
        pd.DataFrame({"reason": pd.Series(reasons, dtype="string")}),
        "USD",
    )


def _expected(s: dict, cli: dict) -> dict[str, str]:
    summary = D.Summary(**{k: v for k, v in s.items()})
    gaps = _gaps(cli)
    reclaim = RV.reclaim_cost_tile(ReclaimSummary(**cli["reclaim_90_days"]), 90)
    return {
        reclaim.label: reclaim.value,
        "Seats bought": D.fmt_seats(s["utilization_total_seats"]),
        "Seats assigned": D.fmt_seats(s["utilization_assigned_seats"]),
        "Seat utilization": D.fmt_pct(s["utilization_pct"]),
        "Over-allocated licenses": f"{s['over_allocated_licenses']:,}",
        "Annual spend (USD)": D.tile_value(D.spend_words(summary, gaps)[0]),
        "Idle spend (USD)": D.tile_value(D.amount_words(s["idle_annual_spend"], "USD", gaps)),
        "Potential savings (USD)": D.tile_value(
            D.amount_words(s["potential_annual_savings"], "USD", gaps)
        ),
    }


def test_cli_and_overview_show_the_same_kpis_paid_and_all(data_set):
    cli = data_set
    at = app()
    no_exception(at)
    assert metric_values(at) == _expected(cli["paid_licenses"], cli)
    at.toggle(key="with_free").set_value(True).run()
    assert metric_values(at) == _expected(cli["all_licenses"], cli)


def test_paid_licenses_without_a_price_are_one_count_on_cli_and_pages(data_set):
    cli = data_set
    # Jira (Atlassian says paid) and the dropped Microsoft 365 license (paid status not reported).
    no_price = cli["spend_left_out"]["rows"]["no_price"]
    assert cli["all_licenses"]["unpriced_paid_licenses"] == no_price
    at = app()
    text = " ".join(m.value for m in at.markdown)
    assert D.md_escape(f"{no_price} paid license(s) have no price") in text
    assert D.md_escape(DROPPED) in text
    assert no_price >= 2


def test_true_up_exposure_is_the_same_on_cli_and_spend_page(data_set):
    cli = data_set
    at = app("pages/spend.py")
    no_exception(at)
    gaps = _gaps(cli)
    want = D.tile_value(D.amount_words(cli["paid_licenses"]["true_up_exposure"], "USD", gaps))
    assert metric_values(at)["True-up exposure (USD)"] == want
    assert (
        metric_values(at)["Annual spend (USD)"]
        == _expected(cli["paid_licenses"], cli)["Annual spend (USD)"]
    )
