"""Trends added up in the database (Store.trend_sums) give exactly what trend_frame gives from the
history loaded into pandas: per day and integration or license, with stale days, counts not
reported, licenses without a price or without an exchange rate, and the sidebar filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from lib.analytics import trends as T
from lib.analytics.metrics import MetricOptions, add_metrics
from lib.analytics.pricing import validate_price_book
from lib.analytics.views import Filters, apply_filters
from lib.schema import LICENSE_COLUMNS
from tests.factories import lic
from tests.test_store import KEY, make_result

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAYS = [T0 + timedelta(days=d) for d in range(5)]
OPTIONS = MetricOptions(reporting_currency="USD", fx_rates={"EUR": 1.1})
BOOK = validate_price_book(
    pd.DataFrame(
        {
            "integration": ["github", "github", "salesforce", "salesforce", "zoom"],
            "license_id": ["a1", None, "b1", None, "c2"],
            "license_name": [None, "Copilot", None, "Service Cloud", None],
            "unit_price": [21.0, 10.0, 1000.0, 50.0, 0.125],
            "currency": ["USD", "USD", "EUR", "GBP", "USD"],  # no GBP rate
            "billing_period": ["monthly", "monthly", "annual", "monthly", "annual"],
        }
    )
)


def spec(n: int, b: str = "ok", with_c: bool = True) -> dict:
    out = {
        "acc-a": (
            "github",
            "ok",
            [
                lic("a1", "GitHub Enterprise", 5 + n, 100, True),
                lic("a2", "Copilot", None, 20),  # assigned not reported; paid by its price
                lic("a3", "Free Tool", 3, 10 + n, False, status="inactive"),
            ],
        ),
        "acc-b": (
            "salesforce",
            b,
            [
                lic("b1", "Sales Cloud", 7, 3 + n, True),  # 1000 EUR a year at 1.1
                lic("b2", "Service Cloud", 2 + n, 5),  # GBP: no rate
                lic("b3", "Sales Cloud", 1, None, True),  # total not reported
            ]
            if b == "ok"
            else [],
        ),
    }
    if with_c:
        out["acc-c"] = (
            "zoom",
            "ok",
            [
                lic("c1", None, 4, 8),  # no name, no price
                lic("c2", "Zoom Rooms", 1, 1),  # 0.125 a year: 12.5 cents, half to even
                lic("c3", "Zoom Rooms", 2, 3 + n),
            ],
        )
    return out


@pytest.fixture
def history_store(store):
    store.write_snapshot(make_result(spec(0), DAYS[0]), KEY)
    store.write_snapshot(make_result(spec(1), DAYS[1]), KEY)
    store.write_snapshot(make_result(spec(2), DAYS[1] + timedelta(hours=3)), KEY)  # later that day
    store.write_snapshot(make_result(spec(3, b="failed"), DAYS[2]), KEY)  # acc-b: stale
    store.write_snapshot(make_result(spec(4, b="needs_reauth", with_c=False), DAYS[3]), KEY)
    store.write_snapshot(make_result(spec(5), DAYS[4]), KEY)
    return store


def reference(store, group: str, filters: Filters = Filters(), since=None) -> pd.DataFrame:
    """What the page drew before: every row loaded, priced at today's prices, filtered, grouped."""
    hist = store.history(KEY, since=since)
    priced = add_metrics(hist[list(LICENSE_COLUMNS)], BOOK, OPTIONS)
    priced["taken_at"] = hist["taken_at"].to_numpy()
    return T.trend_frame(apply_filters(priced, filters), group)


def summed(store, group: str, filters: Filters = Filters(), since=None, top=None) -> pd.DataFrame:
    today = add_metrics(store.latest(KEY).licenses, BOOK, OPTIONS)
    sums = store.trend_sums(
        KEY,
        since,
        T.GROUPS[group],
        T.trend_prices(today, OPTIONS),
        top=top,
        **T.filter_arguments(filters),
    )
    return T.trend_from_sums(sums, group)


@pytest.mark.parametrize("group", ["integration", "license"])
def test_the_database_adds_up_what_trend_frame_adds_up(history_store, group):
    want = reference(history_store, group)
    got = summed(history_store, group)
    pd.testing.assert_frame_equal(got, want)
    # the cases are really there
    assert len(want["taken_at"].unique()) == 5
    by = want.set_index(["taken_at", "label"]) if group == "license" else None
    if by is not None:
        day1 = pd.Timestamp(DAYS[1].date(), tz="UTC")
        assert by.loc[(day1, "Copilot (GitHub)"), "assigned_seats"] is pd.NA
        assert by.loc[(day1, "Service Cloud (Salesforce)"), "annual_cost_reporting"] is pd.NA
        assert by.loc[(day1, "(no name) (Zoom)"), "annual_cost_reporting"] is pd.NA
        # c3 has no price: Zoom Rooms' cost is not known, never c2's 0.12 passed off as the whole
        assert by.loc[(day1, "Zoom Rooms (Zoom)"), "annual_cost_reporting"] is pd.NA
        assert by.loc[(day1, "Free Tool (GitHub)"), "annual_cost_reporting"] == 0.0
        # the stale day carries day 1's last rows for Salesforce
        day2 = pd.Timestamp(DAYS[2].date(), tz="UTC")
        assert by.loc[(day2, "Sales Cloud (Salesforce)"), "total_seats"] == 5
        # b3 reports no seats bought, so its cost and Sales Cloud's are not known (b1 alone: 5500)
        assert by.loc[(day2, "Sales Cloud (Salesforce)"), "annual_cost_reporting"] is pd.NA
        assert by.loc[(day2, "Sales Cloud (Salesforce)"), "licenses"] == 2


@pytest.mark.parametrize(
    "filters",
    [
        Filters(integrations=("GitHub", "Zoom")),
        Filters(accounts=("acc-b",), active_only=True),
        Filters(paid_only=True),
        Filters(active_only=True),
        Filters(search="CLOUD"),
        Filters(search="org acc-c"),
        Filters(tenants=("t2",)),
    ],
)
def test_the_sidebar_filters_apply_in_the_database_as_in_pandas(history_store, filters):
    for group in ("integration", "license"):
        pd.testing.assert_frame_equal(
            summed(history_store, group, filters), reference(history_store, group, filters)
        )


def test_since_and_the_top_licenses_at_the_latest_date(history_store):
    since = DAYS[2]
    pd.testing.assert_frame_equal(
        summed(history_store, "license", since=since),
        reference(history_store, "license", since=since),
    )
    full = reference(history_store, "license")
    last = full[full["taken_at"] == full["taken_at"].max()]
    # most seats bought at the latest date: GitHub Enterprise 100, Copilot 20, Free Tool 15
    top3 = last.sort_values(["total_seats", "label"], ascending=[False, True]).head(3)["label"]
    assert top3.tolist() == ["GitHub Enterprise (GitHub)", "Copilot (GitHub)", "Free Tool (GitHub)"]
    got = summed(history_store, "license", top=3)
    pd.testing.assert_frame_equal(got, full[full["label"].isin(top3)].reset_index(drop=True))
    with pytest.raises(ValueError):
        history_store.trend_sums(KEY, group=["license_name; DROP TABLE license_rows"])


def test_a_license_gone_from_todays_snapshot_keeps_its_seats_but_has_no_price_today(store):
    store.write_snapshot(make_result(spec(0), DAYS[0]), KEY)
    store.write_snapshot(make_result(spec(1, with_c=False), DAYS[1]), KEY)  # acc-c left
    got = summed(store, "integration").set_index(["taken_at", "label"])
    zoom = got.loc[(pd.Timestamp(DAYS[0].date(), tz="UTC"), "Zoom")]
    assert zoom["total_seats"] == 12 and zoom["licenses"] == 3
    assert zoom["annual_cost_reporting"] is pd.NA  # not 0: no price today
    assert len(got) == 5  # day 0: three integrations; day 1: two


def test_nothing_stored_gives_an_empty_trend(store):
    got = summed(store, "integration")
    assert got.empty and list(got.columns) == list(reference(store, "integration").columns)


def test_the_top_licenses_are_exactly_those_groups_not_their_names_crossed(store):
    crossed = {
        "acc-a": ("github", "ok", [lic("a1", "Alpha", 90, 100), lic("a2", "Beta", 1, 2)]),
        "acc-c": ("zoom", "ok", [lic("c1", "Beta", 40, 50), lic("c2", "Alpha", 1, 3)]),
    }
    store.write_snapshot(make_result(crossed, DAYS[0]), KEY)
    store.write_snapshot(make_result(crossed, DAYS[1]), KEY)
    got = summed(store, "license", top=2)
    assert sorted(set(got["label"])) == ["Alpha (GitHub)", "Beta (Zoom)"]
    full = reference(store, "license")
    pd.testing.assert_frame_equal(
        got, full[full["label"].isin(["Alpha (GitHub)", "Beta (Zoom)"])].reset_index(drop=True)
    )
