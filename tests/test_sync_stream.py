"""The streamed sync (lib.jobs.stream): accounts written in batches under a pending key, published
in one transaction; on SQLite and PostgreSQL, against the emulator (real HTTP on loopback).

The snapshot it publishes is the one the old path (one FetchResult, one ``write_snapshot``)
wrote from the same data; a sync that fails part-way publishes nothing and leaves the snapshot
before readable; an abandoned pending snapshot goes after a day.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from lib.config import Settings
from lib.jobs.refresh import refresh
from lib.jobs.shard import run_shard
from lib.jobs.stream import BatchWriter, SyncProgress, stream_snapshot
from lib.jobs.sync import config_key, run_sync
from lib.jobs.vendor import prepare
from lib.store import ACCOUNT_SNAPSHOTS, LICENSE_ROWS, SNAPSHOTS
from lib.store.tables import utcnow
from lib.truto.demo import synthetic_dataset
from lib.truto.fetch import fetch_all
from lib.truto.source import fetch
from tests.factories import settings_for

# What differs between two fetches of the same data: when, how long, how much waiting.
TIMING = {"fetched_at", "elapsed_seconds", "wait_seconds", "data_as_of", "stale_for"}


def comparable(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    keep = [c for c in df.columns if c not in TIMING]
    return df[keep].sort_values(keys, kind="stable").reset_index(drop=True)


def assert_same_snapshot(store, old_key: str, new_key: str) -> None:
    old, new = store.latest(old_key), store.latest(new_key)
    assert len(new.accounts) == len(old.accounts) > 0
    for name, keys in (
        ("accounts", ["account_id"]),
        ("licenses", ["account_id", "organization_id", "product", "license_id"]),
        ("problems", ["account_id", "resource", "record_id", "field", "kind", "message"]),
        ("seats", ["account_id", "license_id", "user_id"]),
        ("activity", ["account_id"]),
    ):
        got, want = getattr(new, name), getattr(old, name)
        assert len(got) == len(want), name
        pd.testing.assert_frame_equal(
            comparable(got, [k for k in keys if k in got.columns]),
            comparable(want, [k for k in keys if k in want.columns]),
            obj=name,
        )
    assert new.exit_code == old.exit_code
    a, b = store.snapshots(old_key).iloc[-1], store.snapshots(new_key).iloc[-1]
    assert (a["accounts"], a["license_rows"], a["demo"]) == (
        b["accounts"],
        b["license_rows"],
        b["demo"],
    )


def pending_rows(store) -> tuple[int, int]:
    """(runs, account snapshots) under a pending key."""
    with store.engine.connect() as conn:
        runs = conn.execute(
            select(func.count())
            .select_from(SNAPSHOTS)
            .where(SNAPSHOTS.c.config_key.contains("#pending:"))
        ).scalar()
        accounts = conn.execute(
            select(func.count())
            .select_from(ACCOUNT_SNAPSHOTS)
            .where(ACCOUNT_SNAPSHOTS.c.config_key.contains("#pending:"))
        ).scalar()
    return int(runs), int(accounts)


def count(store, table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar())


def test_the_streamed_demo_snapshot_equals_the_one_written_at_once(store):
    old = fetch(Settings(demo=True))
    prepare(old)  # billing problems go into the snapshot, as refresh does
    store.write_snapshot(old, "old")
    batches: list[int] = []
    summary = stream_snapshot(
        Settings(demo=True),
        store,
        "new",
        lambda done, total, _: batches.append(done),
        write_batch=3,
        write_every=0.05,
    )
    assert batches[0] == 0 and batches[-1] == 11 and len(batches) >= 1 + 11 // 3
    assert all(b - a <= 3 for a, b in zip(batches, batches[1:]))  # never more than 3 at a time
    assert summary.snapshot_id == store.latest_snapshot_id("new")
    assert (summary.exit_code(), summary.accounts, summary.license_rows) == (2, 11, 28)
    assert [f.outcome for f in summary.failures] == ["needs_reauth"]
    assert summary.failures[0].listings == []  # the records went with their batch
    assert summary.vendor is not None and len(summary.vendor.accounts) == 3
    assert_same_snapshot(store, "old", "new")
    assert pending_rows(store) == (0, 0)


def test_the_streamed_snapshot_equals_the_old_one_on_synthetic_accounts(store, emulator):
    emu = emulator(synthetic_dataset(40, licenses_per_account=6))
    settings = settings_for(emu)
    old = fetch_all(settings)
    prepare(old)
    store.write_snapshot(old, "old")
    summary = stream_snapshot(settings, store, "new", write_batch=7, write_every=0.05)
    assert (summary.exit_code(), summary.accounts) == (0, 40)
    assert summary.license_rows == len(old.licenses) > 150
    assert_same_snapshot(store, "old", "new")


def test_run_sync_saves_the_vendor_contracts_as_the_old_path_did(store):
    # The old path: one FetchResult through refresh (the app's Refresh still goes this way).
    refresh(store, "demo", lambda: fetch(Settings(demo=True)))
    want = store.get_contracts()
    assert sorted(want["integration"]) == ["ClickUp", "DocuSign", "Zoom"]
    messages: list[str] = []
    summary, code = run_sync(Settings(demo=True), store, report=messages.append, seed_demo=False)
    assert code == 2 and summary is not None
    assert any(
        m.startswith("Contracts prefilled from billing: 3 (from 3 accounts") for m in messages
    )
    got = store.get_contracts()
    cols = [c for c in want.columns if c not in ("id", "saved_at", "updated_at", "updated_by")]
    pd.testing.assert_frame_equal(
        got[cols].sort_values("integration").reset_index(drop=True),
        want[cols].sort_values("integration").reset_index(drop=True),
    )


def test_a_sync_failing_part_way_publishes_nothing(store, emulator):
    emu = emulator(synthetic_dataset(30, licenses_per_account=4))
    settings = settings_for(emu)
    key = config_key(settings)
    first, code = run_sync(settings, store, report=lambda m: None, write_batch=4)
    assert code == 0 and first is not None
    before = store.latest(key)
    rows_before = count(store, LICENSE_ROWS)
    runs_before = store.snapshots(key)["id"].tolist()

    seen: list[int] = []

    def interrupted(done: int, total: int, _: str) -> None:
        seen.append(done)
        if done >= 8:  # the person running it pressed Ctrl-C part-way
            raise KeyboardInterrupt

    emu.reset_counters()
    with pytest.raises(KeyboardInterrupt):
        run_sync(settings, store, progress=interrupted, report=lambda m: None, write_batch=4)
    assert seen[-1] >= 8 and seen[-1] < 30  # accounts had been written when it stopped
    assert emu.counters.requests > 0
    after = store.latest(key)
    assert after.snapshot_id == before.snapshot_id
    pd.testing.assert_frame_equal(after.licenses, before.licenses)
    pd.testing.assert_frame_equal(after.accounts, before.accounts)
    assert store.snapshots(key)["id"].tolist() == runs_before
    assert pending_rows(store) == (0, 0) and count(store, LICENSE_ROWS) == rows_before
    # The lease is free again: the next sync runs and publishes.
    again, code = run_sync(settings, store, report=lambda m: None)
    assert code == 0 and again is not None and store.latest_snapshot_id(key) == again.snapshot_id


def test_a_failed_account_keeps_its_last_good_snapshot_shown_stale(store, emulator):
    data = synthetic_dataset(12, licenses_per_account=3)
    emu = emulator(data)
    settings = settings_for(emu)
    key = config_key(settings)
    _, code = run_sync(settings, store, report=lambda m: None, write_batch=5)
    assert code == 0
    victim = data["accounts"][3]["id"]
    good = store.latest(key)
    emu.set_fault(victim, {"needs_reauth": True})
    messages: list[str] = []
    summary, code = run_sync(settings, store, report=messages.append, write_batch=5)
    assert (
        code == 2 and summary is not None and [f.account_id for f in summary.failures] == [victim]
    )
    assert any(m.startswith("FAILED") and victim in m for m in messages)
    latest = store.latest(key)
    row = latest.accounts.set_index("account_id").loc[victim]
    assert row["outcome"] == "needs_reauth" and bool(row["stale"])
    assert latest.accounts["stale"].sum() == 1
    pd.testing.assert_frame_equal(
        latest.licenses[latest.licenses["account_id"] == victim].reset_index(drop=True),
        good.licenses[good.licenses["account_id"] == victim].reset_index(drop=True),
    )
    assert len(latest.licenses) == len(good.licenses) > 20


def test_abandoned_pending_snapshots_are_pruned_after_a_day(store, emulator):
    emu = emulator(synthetic_dataset(6, licenses_per_account=2))
    settings = settings_for(emu)
    key = config_key(settings)
    summary, _ = run_sync(settings, store, report=lambda m: None)
    assert summary is not None
    result = fetch_all(settings)
    # A sync killed after writing part of its accounts: its pending snapshot stays behind.
    killed = store.begin_snapshot(key)
    half = result.accounts["account_id"].iloc[:3].tolist()
    from lib.store.sync_claims import _subset

    part = _subset(
        {
            "accounts": result.accounts,
            "activity": {c: result.activity[c] for c in result.activity.columns},
            "licenses": result.licenses,
            "problems": result.problems,
            "seats": result.seats,
        },
        set(half),
    )
    result.accounts, result.licenses, result.problems, result.seats = (
        part["accounts"],
        part["licenses"],
        part["problems"],
        part["seats"],
    )
    result.activity = result.activity[result.activity["account_id"].isin(half)].reset_index(
        drop=True
    )
    assert store.write_pending(killed, result) == 3
    with pytest.raises(ValueError, match="already in the pending snapshot"):
        store.write_pending(killed, result)
    assert pending_rows(store) == (1, 3)
    assert store.latest(key).snapshot_id == summary.snapshot_id  # never shown
    # Retention today keeps it (it may still be written); a day later it goes, rows and all.
    store.prune(now=utcnow())
    assert pending_rows(store) == (1, 3)
    licenses = count(store, LICENSE_ROWS)
    pruned = store.prune(now=utcnow() + timedelta(days=1, minutes=1))
    assert pending_rows(store) == (0, 0)
    assert pruned["snapshots"] >= 1 and pruned["account_snapshots"] >= 3
    assert count(store, LICENSE_ROWS) == licenses - len(result.licenses) < licenses
    assert store.latest(key).snapshot_id == summary.snapshot_id
    with pytest.raises(ValueError, match="no longer pending"):
        store.publish_snapshot(killed)


def test_a_published_snapshot_is_never_discarded(store, emulator):
    emu = emulator(synthetic_dataset(4, licenses_per_account=2))
    settings = settings_for(emu)
    pending = store.begin_snapshot("k")
    fetched = fetch_all(settings)
    store.write_pending(pending, fetched)
    assert store.latest("k").is_empty  # pending: not shown
    snapshot_id, code = store.publish_snapshot(pending)
    assert code == 0 and store.latest("k").snapshot_id == snapshot_id
    assert len(store.latest("k").accounts) == 4
    assert store.discard_snapshot(pending) == 0
    latest = store.latest("k")
    assert latest.snapshot_id == snapshot_id and len(latest.licenses) == len(fetched.licenses) > 0


def test_progress_lines_say_accounts_requests_rate_and_time_left():
    now = [100.0]
    lines: list[str] = []
    meter = SyncProgress(lines.append, clock=lambda: now[0])
    sent = [0]
    meter.watch(lambda: sent[0])
    meter(0, 1000, "")
    assert meter.line().startswith("sync: 0/1000 accounts, 0 requests, 0.0 req/s")
    now[0], sent[0] = 110.0, 500
    meter(200, 1000, "")
    line = meter.line()
    # 50 req/s; 2.5 requests per account so far, 800 accounts left: 2,000 requests, 40 s.
    assert "200/1000 accounts" in line and "500 requests" in line and "50.0 req/s" in line
    assert "about 40 s left" in line and "10 s elapsed" in line
    # The rate is the last 10 s's: 1,000 requests in 10 s; 400 accounts left at 2.5 each.
    now[0], sent[0] = 120.0, 1500
    meter(600, 1000, "")
    line = meter.line()
    assert "100.0 req/s" in line and "about 10 s left" in line
    now[0], sent[0] = 170.0, 2500
    meter(1000, 1000, "")
    assert "1000/1000 accounts" in meter.line() and "done" in meter.line()
    meter.close()
    # The last line: the average over the whole sync, 2,500 requests in 70 s.
    assert lines[-1] == (
        "sync: 1000/1000 accounts, 2500 requests, 35.7 req/s on average, done, 1 min 10 s elapsed"
    )


def test_the_batch_writer_stops_the_fetchers_when_writing_fails():
    written: list[list[int]] = []

    def write(items: list[int]) -> None:
        if 3 in items:
            raise OSError("disk full")
        written.append(items)

    writer = BatchWriter(write, batch=2, every=0.0, max_pending=1)
    import threading

    errors: list[BaseException] = []

    def run() -> None:
        try:
            writer.run()
        except OSError as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    handed = [i for i in range(50) if writer.put(i)]
    writer.close()
    t.join(10)
    assert not t.is_alive() and errors and writer.stop.is_set()
    assert len(handed) < 50  # put said False once the writer had stopped
    assert [i for batch in written for i in batch] == list(range(len(sum(written, []))))


@pytest.mark.postgres
def test_the_sharded_sync_saves_vendor_contracts(postgres_schema_url):
    from lib.store import Store

    store = Store(postgres_schema_url())
    try:
        said: list[str] = []
        res = run_shard(Settings(demo=True), store, shards=1, run_key="r1", report=said.append)
        assert res.published and res.code == 2 and res.vendor_contracts == 3
        assert sorted(store.get_contracts()["integration"]) == ["ClickUp", "DocuSign", "Zoom"]
        assert any(m.startswith("Contracts prefilled from billing: 3") for m in said)
        # The billing problems are in the run, as a single sync writes them.
        old = fetch(Settings(demo=True))
        prepare(old)
        store.write_snapshot(old, "old", taken_at=utcnow() - timedelta(hours=1))
        assert_same_snapshot(store, "old", "demo")
    finally:
        store.close()


def test_publishing_a_second_snapshot_the_same_day_forgets_the_days_trend_rollup(store, emulator):
    from lib.analytics import trends as T
    from lib.analytics.metrics import add_metrics
    from lib.jobs.refresh import metric_options, trend_pricing
    from lib.schema import LICENSE_COLUMNS

    data = synthetic_dataset(6, licenses_per_account=3)
    emu = emulator(data)
    settings = settings_for(emu)
    key = config_key(settings)
    stream_snapshot(settings, store, key, write_batch=2, write_every=0.05)
    store.warm_trend_rollup(key, trend_pricing(store))  # today's rollup built
    first = store.trend_sums(key, pricing=trend_pricing(store))
    bumped = 0
    for records in data["licenses"].values():
        for record in records:
            if isinstance(record.get("assigned_quantity"), int):
                record["assigned_quantity"] += 1  # one more seat assigned where it is reported
                bumped += 1
    # Published without retention's check: publishing itself must forget the day built above.
    stream_snapshot(settings, store, key, write_batch=2, write_every=0.05)
    pricing = trend_pricing(store)
    sums = store.trend_sums(key, pricing=pricing)
    hist = store.history(key)
    priced = add_metrics(hist[list(LICENSE_COLUMNS)], store.get_price_book(), metric_options(store))
    priced["taken_at"] = hist["taken_at"].to_numpy()
    pd.testing.assert_frame_equal(T.trend_from_sums(sums), T.trend_frame(priced))
    assert (
        bumped and sums["assigned_seats"].sum() > first["assigned_seats"].sum()
    )  # the new figures
