"""The trend rollup (lib.store.rollup): Store.trend_sums with ``pricing`` reads sums kept per day, and
gives exactly what trend_frame gives from the history loaded into pandas (each row priced by its
license class, a license gone from today's snapshot too); it is built on first read, and every write
(new snapshots, a backfilled day, retention, a price change) brings back exactly what it changes."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from lib.analytics import trends as T
from lib.analytics.metrics import MetricOptions, add_metrics
from lib.analytics.pricing import validate_price_book
from lib.analytics.views import Filters
from lib.schema import LICENSE_COLUMNS
from lib.store.tables import DAY_US, TREND_CLASSES, TREND_ROLLUP, TREND_ROLLUP_DAYS, _to_us
from tests import test_trend_sums as sums_tests
from tests.test_store import KEY, make_result
from tests.test_trend_sums import BOOK, DAYS, OPTIONS, reference, spec, summed

PRICING = T.trend_pricing(BOOK, OPTIONS)
history_store = sums_tests.history_store  # the same five days of history


def rolled(store, group: str, filters: Filters = Filters(), since=None, top=None, pricing=None):
    sums = store.trend_sums(
        KEY,
        since,
        T.GROUPS[group],
        # today's prices per license: what a read the rollup does not serve adds up with
        T.trend_prices(add_metrics(store.latest(KEY).licenses, BOOK, OPTIONS), OPTIONS),
        top=top,
        pricing=pricing or PRICING,
        **T.filter_arguments(filters),
    )
    return T.trend_from_sums(sums, group)


def built_days(store, key: str = KEY) -> dict[int, tuple]:
    D = TREND_ROLLUP_DAYS
    with store._read() as conn:
        rows = conn.execute(
            select(D.c.day, D.c.prices, D.c.built_at).where(D.c.config_key == key)
        ).all()
    return {int(d): (p, b) for d, p, b in rows}


def rollup_rows(store) -> int:
    with store._read() as conn:
        return len(conn.execute(select(TREND_ROLLUP.c.day)).all())


def day_us(at) -> int:
    return _to_us(at) // DAY_US * DAY_US


@pytest.mark.parametrize("group", ["integration", "license"])
def test_the_rollup_gives_what_trend_frame_and_the_full_scan_give(history_store, group):
    assert not built_days(history_store)
    got = rolled(history_store, group)
    pd.testing.assert_frame_equal(got, reference(history_store, group))
    pd.testing.assert_frame_equal(got, summed(history_store, group))  # every license is here today
    assert sorted(built_days(history_store)) == sorted({day_us(d) for d in DAYS})
    assert rollup_rows(history_store) > 0
    # a second read reads the rollup as it is
    before = built_days(history_store)
    pd.testing.assert_frame_equal(rolled(history_store, group), got)
    assert built_days(history_store) == before


@pytest.mark.parametrize(
    "filters",
    [
        Filters(integrations=("GitHub", "Zoom")),
        Filters(paid_only=True),
        Filters(active_only=True),
        Filters(paid_only=True, active_only=True, integrations=("Salesforce",)),
        # not kept by the rollup: every row is added up, as before
        Filters(tenants=("t2",)),
        Filters(search="CLOUD"),
        Filters(accounts=("acc-b",), active_only=True),
    ],
)
def test_the_filters_give_what_pandas_gives(history_store, filters):
    for group in ("integration", "license"):
        pd.testing.assert_frame_equal(
            rolled(history_store, group, filters), reference(history_store, group, filters)
        )


def test_since_and_the_top_licenses(history_store):
    since = DAYS[2]
    pd.testing.assert_frame_equal(
        rolled(history_store, "license", since=since),
        reference(history_store, "license", since=since),
    )
    # only the days asked for were built
    assert sorted(built_days(history_store)) == sorted({day_us(d) for d in DAYS[2:]})
    for top in (1, 3, 50):
        pd.testing.assert_frame_equal(
            rolled(history_store, "license", top=top), summed(history_store, "license", top=top)
        )
    pd.testing.assert_frame_equal(
        rolled(history_store, "license", Filters(paid_only=True), top=2),
        summed(history_store, "license", Filters(paid_only=True), top=2),
    )


def test_a_license_gone_from_todays_snapshot_is_priced_as_trend_frame_prices_it(store):
    store.write_snapshot(make_result(spec(0), DAYS[0]), KEY)
    store.write_snapshot(make_result(spec(1, with_c=False), DAYS[1]), KEY)  # acc-c left
    for group in ("integration", "license"):
        want = reference(store, group)
        pd.testing.assert_frame_equal(rolled(store, group), want)
        for filters in (
            Filters(paid_only=True),
            Filters(active_only=True),
            Filters(tenants=("t1",)),  # these three add up every row: priced by class too
            Filters(search="zoom"),
            Filters(accounts=("acc-c", "acc-a"), paid_only=True),
        ):
            pd.testing.assert_frame_equal(
                rolled(store, group, filters), reference(store, group, filters)
            )
    got = rolled(store, "integration").set_index(["taken_at", "label"])
    zoom = got.loc[(pd.Timestamp(DAYS[0].date(), tz="UTC"), "Zoom")]
    assert zoom["total_seats"] == 12 and zoom["licenses"] == 3
    # one of Zoom's licenses has no cost that day: Zoom's is not known, never the priced part alone
    assert zoom["annual_cost_reporting"] is pd.NA
    # paid only (c3 has no price and no paid status: not known, left out): c2 alone, priced by
    # its class though gone from today's snapshot, 0.125 a year
    rooms = rolled(store, "license", Filters(paid_only=True)).set_index(["taken_at", "label"])
    day0 = pd.Timestamp(DAYS[0].date(), tz="UTC")
    assert rooms.loc[(day0, "Zoom Rooms (Zoom)"), "annual_cost_reporting"] == 0.12
    # priced by today's licenses (no pricing given) it has no price: where trend_frame differs
    old = summed(store, "license").set_index(["taken_at", "label"])
    assert old.loc[(day0, "Zoom Rooms (Zoom)"), "annual_cost_reporting"] is pd.NA


def test_a_license_renamed_is_priced_by_its_name_of_that_day(store):
    """The price book prices Copilot by name: the day it was called otherwise it has no price,
    as trend_frame has it (today's prices per license would price it)."""
    renamed = spec(0)
    renamed["acc-a"][2][1]["name"] = "Copilot Business"
    store.write_snapshot(make_result(renamed, DAYS[0]), KEY)
    store.write_snapshot(make_result(spec(1), DAYS[1]), KEY)
    for group in ("integration", "license"):
        pd.testing.assert_frame_equal(rolled(store, group), reference(store, group))


def test_new_snapshots_forget_their_day_and_later_ones_only(history_store):
    rolled(history_store, "integration")
    first = built_days(history_store)
    # a new day: built on the next read, the others left as they were
    later = DAYS[4] + timedelta(days=1)
    history_store.write_snapshot(make_result(spec(6), later), KEY)
    assert built_days(history_store) == first
    pd.testing.assert_frame_equal(
        rolled(history_store, "license"), reference(history_store, "license")
    )
    now = built_days(history_store)
    assert {d: v for d, v in now.items() if d in first} == first and day_us(later) in now
    # a backfilled day (a failed account's rows carried over the days after it): that day and later
    back = DAYS[2] + timedelta(hours=5)
    history_store.write_snapshot(make_result(spec(7), back), KEY)
    kept = built_days(history_store)
    assert sorted(kept) == sorted(d for d in now if d < day_us(back))
    for group in ("integration", "license"):
        pd.testing.assert_frame_equal(rolled(history_store, group), reference(history_store, group))
    again = built_days(history_store)
    assert {d: again[d] for d in kept} == kept


def test_a_price_or_rate_change_rebuilds_at_the_new_prices(history_store):
    rolled(history_store, "integration")
    book = validate_price_book(
        pd.concat(
            [
                BOOK,
                pd.DataFrame(
                    {
                        "integration": ["zoom"],
                        "license_id": ["c3"],
                        "license_name": [None],
                        "unit_price": [7.5],
                        "currency": ["GBP"],
                        "billing_period": ["monthly"],
                    }
                ),
            ]
        )
    )
    options = MetricOptions(reporting_currency="USD", fx_rates={"EUR": 1.2, "GBP": 1.3})
    pricing = T.trend_pricing(book, options)
    assert pricing.token != PRICING.token
    assert T.trend_pricing(BOOK, OPTIONS).token == PRICING.token  # the same prices: the same token
    hist = history_store.history(KEY)
    priced = add_metrics(hist[list(LICENSE_COLUMNS)], book, options)
    priced["taken_at"] = hist["taken_at"].to_numpy()
    for group in ("integration", "license"):
        got = rolled(history_store, group, pricing=pricing)
        pd.testing.assert_frame_equal(got, T.trend_frame(priced, group))
    assert {p for p, _ in built_days(history_store).values()} == {pricing.token}
    with history_store._read() as conn:
        tokens = set(conn.execute(select(TREND_CLASSES.c.prices)).scalars().all())
    assert tokens == {pricing.token}
    # the costs really changed; and back at the old prices, the old figures
    new = rolled(history_store, "license", pricing=pricing)["annual_cost_reporting"]
    old = rolled(history_store, "license")
    assert not new.equals(old["annual_cost_reporting"])
    pd.testing.assert_frame_equal(old, reference(history_store, "license"))


def test_retention_forgets_only_the_days_it_changed(store):
    for d in range(6):
        store.write_snapshot(make_result(spec(d), DAYS[0] + timedelta(days=d)), KEY)
    # two attempts on day 3; retention keeps the day's last good one only
    store.write_snapshot(make_result(spec(9), DAYS[3] + timedelta(hours=2)), KEY)
    store.write_snapshot(make_result(spec(10), DAYS[3] + timedelta(hours=1)), KEY)
    rolled(store, "integration")
    before = built_days(store)
    now = DAYS[0] + timedelta(days=6)
    store.prune(keep_days=4, now=now)  # days 0 and 1 go; day 3's extra attempts go
    after = built_days(store)
    # days 0 and 1 went; day 3 still has the same snapshot standing for it: left as built
    gone = {day_us(DAYS[0] + timedelta(days=d)) for d in (0, 1)}
    assert sorted(after) == sorted(d for d in before if d not in gone)
    assert all(after[d] == before[d] for d in after)
    for group in ("integration", "license"):
        pd.testing.assert_frame_equal(rolled(store, group), reference(store, group))
    # pruning nothing forgets nothing
    again = built_days(store)
    store.prune(keep_days=4, now=now)
    assert built_days(store) == again


def test_warming_builds_every_day_once(history_store):
    assert history_store.warm_trend_rollup(KEY, PRICING) == 5
    assert history_store.warm_trend_rollup(KEY, PRICING) == 0
    assert history_store.warm_trend_rollup("another-key", PRICING) == 0
    pd.testing.assert_frame_equal(
        rolled(history_store, "integration"), reference(history_store, "integration")
    )


def test_nothing_stored_gives_an_empty_trend(store):
    got = rolled(store, "integration")
    assert got.empty and list(got.columns) == list(reference(store, "integration").columns)


def test_two_processes_building_at_once_build_each_day_once(history_store):
    import threading

    from lib.store import Store

    other = Store(history_store.url)
    try:
        start = threading.Barrier(2)
        built: list[int] = []

        def build(store) -> None:
            start.wait()
            built.append(store.build_trend_rollup(KEY, PRICING))

        threads = [threading.Thread(target=build, args=(s,)) for s in (history_store, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(built) == [0, 5]  # one built every day; the other, waiting, found them built
        rows = rollup_rows(history_store)
        history_store.write_snapshot(make_result(spec(0), DAYS[0] - timedelta(days=1)), KEY)
        assert history_store.build_trend_rollup(KEY, PRICING) == 6  # a day before all: every day
        assert rollup_rows(history_store) > rows
        pd.testing.assert_frame_equal(rolled(other, "license"), reference(history_store, "license"))
    finally:
        other.close()


def test_a_build_in_several_transactions_gives_the_same_rollup(history_store, monkeypatch):
    import lib.store.rollup as R

    monkeypatch.setattr(R, "BUILD_DAYS", 2)  # 5 days: three transactions, newest days first
    assert history_store.build_trend_rollup(KEY, PRICING) == 5
    assert len(built_days(history_store)) == 5
    for group in ("integration", "license"):
        pd.testing.assert_frame_equal(rolled(history_store, group), reference(history_store, group))
    assert history_store.build_trend_rollup(KEY, PRICING) == 0
