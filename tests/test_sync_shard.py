"""The sharded sync (``python -m lib sync --shards N``) on PostgreSQL, against the emulator.

Real workers (threads with their own store and client, and a real ``python -m lib`` process
killed with SIGKILL), real HTTP on loopback: every account fetched exactly once (requests counted
per account by the emulator, compared with a single fetch of the same data), one account
snapshot per account in one run, the pages' ``Store.latest`` showing the run before until the
last account is written, a dead worker's accounts taken over after its claims expire.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import text

from lib.config import Settings
from lib.jobs.shard import _targets, run_shard, shard_settings, slot_run_key
from lib.jobs.sync import cmd_sync, config_key, run_sync
from lib.store import Store
from lib.truto.client import TrutoClient
from lib.truto.fetch import assemble, fetch_all
from lib.truto.outcomes import AccountOutcome
from tests.factories import TOKEN, account, dataset, lic, settings_for, user

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.postgres


def make_data(n: int = 40) -> dict:
    """n accounts: GitHub (licenses per organization, users) and Salesforce (licenses, users)."""
    accounts, licenses, orgs, users = [], {}, {}, {}
    for i in range(n):
        aid = f"acc-{i:03d}"
        if i % 2:
            accounts.append(account(aid, "github", tenant=f"t{i % 3}"))
            orgs[aid] = [{"id": f"o{i}", "name": f"org {i}"}]
            licenses[aid] = [
                lic(f"L{i}", "Enterprise", i + 1, i + 5, True, _organization_id=f"o{i}")
            ]
        else:
            accounts.append(account(aid, "salesforce", tenant=f"t{i % 3}"))
            licenses[aid] = [lic(f"L{i}", "Sales Cloud", i, i + 2, True)]
        users[aid] = [user(f"u{i}", f"L{i}")]
    return dataset(accounts, licenses, orgs, users)


@pytest.fixture
def pg_url(postgres_schema_url):
    return postgres_schema_url()


def single_fetch(emulator, data):
    """One single-process fetch of the same data: (requests per account, the FetchResult)."""
    emu = emulator(data)
    result = fetch_all(settings_for(emu))
    return dict(emu.counters.by_account), result


def snapshots_per_account(store: Store, snapshot_id: int) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT account_id, count(*) FROM account_snapshots WHERE snapshot_id = :s "
                "GROUP BY account_id"
            ),
            {"s": snapshot_id},
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def test_four_workers_fetch_every_account_exactly_once(pg_url, emulator):
    data = make_data(40)
    expected, single = single_fetch(emulator, data)
    assert len(expected) == 40 and all(v >= 2 for v in expected.values())
    emu = emulator(data, latency=0.02)
    settings = settings_for(emu, max_workers=3)
    key = config_key(settings)
    Store(pg_url).close()  # the schema, before four processes race to use it
    barrier = threading.Barrier(4)
    results: dict[int, object] = {}
    said: dict[int, list[str]] = {i: [] for i in range(4)}

    def worker(i: int) -> None:
        store = Store(pg_url)
        try:
            barrier.wait()
            results[i] = run_shard(
                settings,
                store,
                shards=4,
                run_key="job-20261203-0700",
                lease_seconds=10,
                report=said[i].append,
            )
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 4, said
    outcomes = list(results.values())
    assert [r.code for r in outcomes] == [0, 0, 0, 0]  # type: ignore[attr-defined]
    assert sum(r.published for r in outcomes) == 1  # type: ignore[attr-defined]
    assert sum(r.fetched for r in outcomes) == 40  # type: ignore[attr-defined]
    assert sum(1 for r in outcomes if r.fetched) >= 2  # type: ignore[attr-defined]
    assert {r.run.snapshot_id for r in outcomes} == {outcomes[0].run.snapshot_id}  # type: ignore[attr-defined]
    # Each account fetched exactly once: the same requests per account as one single fetch.
    assert dict(emu.counters.by_account) == expected
    listings = [p for _, p, _ in emu.counters.log if p == "/integrated-account"]
    assert 1 <= len(listings) <= 4  # only workers that found no run yet list the accounts
    # Each worker paced at a quarter of the token's limit.
    assert all("paced at 125 requests per 10 s" in said[i][0] for i in range(4))

    store = Store(pg_url)
    try:
        run_id = outcomes[0].run.snapshot_id  # type: ignore[attr-defined]
        assert snapshots_per_account(store, run_id) == {a["id"]: 1 for a in data["accounts"]}
        latest = store.latest(key)
        assert latest.snapshot_id == run_id and latest.exit_code == 0
        assert len(latest.accounts) == 40 and set(latest.accounts["outcome"]) == {"ok"}
        assert not latest.accounts["stale"].any()
        # The same license rows and seats as a single sync of the same data.
        cols = ["account_id", "license_id", "assigned_seats", "total_seats"]
        got = latest.licenses[cols].sort_values(cols).reset_index(drop=True)
        want = single.licenses[cols].sort_values(cols).reset_index(drop=True)
        assert got.equals(want) and len(got) == 40
        assert len(latest.seats) == len(single.seats) == 40
        snaps = store.snapshots(key)
        assert snaps["id"].tolist() == [run_id]
        assert int(snaps["accounts"].iloc[0]) == 40 and int(snaps["license_rows"].iloc[0]) == 40
        # A worker started later with the same run id (a restarted pod) fetches nothing.
        emu.reset_counters()
        again = run_shard(settings, store, shards=4, run_key="job-20261203-0700")
        assert (again.code, again.fetched, again.published) == (0, 0, False)
        assert emu.counters.requests == 0
    finally:
        store.close()


def test_the_heartbeat_keeps_claims_longer_than_their_lease(pg_url, emulator):
    """Each account takes about 0.6 s to fetch (three calls of 0.2 s), longer than the 0.4 s
    lease: only the renewals keep the other worker from taking it over."""
    data = make_data(6)
    expected, _ = single_fetch(emulator, data)
    emu = emulator(data, latency=0.2)
    settings = settings_for(emu, max_workers=1)
    Store(pg_url).close()
    results = []

    def worker() -> None:
        store = Store(pg_url)
        try:
            results.append(
                run_shard(
                    settings, store, shards=2, run_key="slow", lease_seconds=0.4, poll_interval=0.05
                )
            )
        finally:
            store.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 and [r.code for r in results] == [0, 0]
    assert sum(r.taken_over for r in results) == 0 and sum(r.dropped for r in results) == 0
    assert sum(r.fetched for r in results) == 6
    assert dict(emu.counters.by_account) == expected
    assert all(v >= 3 for v in expected.values())


def test_a_dead_workers_accounts_are_taken_over_after_its_claims_expire(pg_url, emulator):
    data = make_data(40)
    emu = emulator(data)
    settings = settings_for(emu, max_workers=2)
    key = config_key(settings)
    store = Store(pg_url)
    try:
        _, code = run_sync(settings, store, report=lambda m: None)
        assert code == 0
        expected = dict(emu.counters.by_account)  # one single-process fetch's requests per account
        assert len(expected) == 40
        before = store.latest(key).snapshot_id
        # The dead worker: creates the run, claims ten accounts with a short lease, then never
        # renews, fetches or writes them.
        targets = _targets(TrutoClient(settings), settings)
        run = store.create_run(key, "job-7", "dead-host:1:1:dead", targets)
        assert run.created and run.accounts == 40
        dead = store.claim_accounts(run, "dead-host:1:1:dead", 10, lease_seconds=1.0)
        assert [c.account_id for c in dead] == [f"acc-{i:03d}" for i in range(10)]
        assert store.claim_status(run).held == 10
        # While the run is unfinished the pages still show the run before, whole.
        assert store.latest(key).snapshot_id == before
        assert len(store.latest(key).accounts) == 40

        emu.reset_counters()
        said: list[str] = []
        res = run_shard(
            settings,
            store,
            shards=2,
            run_key="job-7",
            lease_seconds=1.0,
            report=said.append,
            poll_interval=0.1,
        )
        assert (res.code, res.published, res.fetched, res.taken_over, res.dropped) == (
            0,
            True,
            40,
            10,
            0,
        )
        assert sum("the claim of dead-host:1:1:dead had expired" in m for m in said) == 10
        assert dict(emu.counters.by_account) == expected  # the dead worker fetched nothing
        assert snapshots_per_account(store, run.snapshot_id) == {
            a["id"]: 1 for a in data["accounts"]
        }
        latest = store.latest(key)
        assert latest.snapshot_id == run.snapshot_id != before
        assert len(latest.accounts) == 40 and set(latest.accounts["outcome"]) == {"ok"}
        with store.engine.connect() as conn:
            attempts = dict(
                conn.execute(
                    text("SELECT account_id, attempts FROM sync_claims WHERE snapshot_id = :s"),
                    {"s": run.snapshot_id},
                ).all()
            )
        assert sorted(a for a, n in attempts.items() if n == 2) == [c.account_id for c in dead]

        # The dead worker wakes up and writes what it had: nothing is written twice.
        late = assemble(
            [AccountOutcome("acc-000", "salesforce", outcome="failed")], datetime.now(UTC)
        )
        written = store.write_claimed(run, "dead-host:1:1:dead", late, {"acc-000": "acc-000"})
        assert (written.written, written.dropped) == ([], ["acc-000"])
        assert snapshots_per_account(store, run.snapshot_id)["acc-000"] == 1
        assert store.latest(key).accounts.set_index("account_id").loc["acc-000", "outcome"] == "ok"
    finally:
        store.close()


def test_retention_drops_a_sharded_run_with_its_claims(pg_url, emulator):
    emu = emulator(make_data(4))
    settings = settings_for(emu)
    key = config_key(settings)
    store = Store(pg_url)
    try:
        first = run_shard(settings, store, shards=2, run_key="job-7", lease_seconds=5)
        again = run_shard(settings, store, shards=2, run_key="job-8", lease_seconds=5)
        assert first.published and again.published and first.code == again.code == 0
        assert store.snapshots(key)["id"].tolist() == [first.run.snapshot_id, again.run.snapshot_id]  # type: ignore[union-attr]
        # One snapshot per account per day: job-7's rows go, and its run with its claims and run
        # row (no reference left dangling).
        pruned = store.prune()
        assert pruned == {
            "account_snapshots": 4,
            "license_rows": 4,
            "problem_rows": 0,
            "seat_rows": 4,
            "snapshots": 1,
        }
        assert store.snapshots(key)["id"].tolist() == [again.run.snapshot_id]  # type: ignore[union-attr]
        assert store.find_run(key, "job-7") is None and store.find_run(key, "job-8") is not None
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM sync_claims")).scalar_one() == 4
        assert len(store.latest(key).accounts) == 4
    finally:
        store.close()


def test_a_killed_sync_process_is_taken_over(pg_url, emulator, tmp_path):
    """``python -m lib sync --shards 2`` killed with SIGKILL mid-run; a second worker with the same
    run id finishes it: one account snapshot per account, the killed one's claims taken over."""
    data = make_data(40)
    emu = emulator(data, latency=0.05)
    Store(pg_url).close()
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUTO_")}
    env.update(
        DATABASE_URL=pg_url,
        DASHBOARD_SECRETS_FILE=str(secrets),
        TRUTO_API_TOKEN=TOKEN,
        TRUTO_BASE_URL=emu.base_url,
        TRUTO_MAX_WORKERS="2",
    )
    log = (tmp_path / "worker.log").open("wb")  # a file: a full pipe would stall the worker
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib", "sync", "--shards", "2", "--run-id", "kill-1"]
        + ["--lease-seconds", "2", "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    store = Store(pg_url)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and done < 6:
            with store.engine.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM sync_claims WHERE done_at IS NOT NULL")
                ).scalar_one()
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert 6 <= done < 40, (tmp_path / "worker.log").read_text()
        with store.engine.connect() as conn:
            held = conn.execute(
                text(
                    "SELECT count(*) FROM sync_claims WHERE holder IS NOT NULL AND done_at IS NULL"
                )
            ).scalar_one()
            written = conn.execute(
                text("SELECT count(*) FROM sync_claims WHERE done_at IS NOT NULL")
            ).scalar_one()
        settings = settings_for(emu, max_workers=2)
        key = config_key(settings)
        assert store.latest(key).is_empty  # nothing published: the pages show no half run
        res = run_shard(
            settings, store, shards=2, run_key="kill-1", lease_seconds=2, poll_interval=0.1
        )
        assert res.code == 0 and res.published
        assert res.fetched == 40 - written and res.taken_over == held
        run = store.find_run(key, "kill-1")
        assert run is not None and run.finished_at is not None
        assert snapshots_per_account(store, run.snapshot_id) == {
            a["id"]: 1 for a in data["accounts"]
        }
        latest = store.latest(key)
        assert len(latest.accounts) == 40 and set(latest.accounts["outcome"]) == {"ok"}
        assert len(latest.licenses) == 40
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        store.close()


def _sync_args(**kw) -> argparse.Namespace:
    base = dict(
        quiet=True,
        keep_days=None,
        shards=None,
        run_id=None,
        slot_minutes=None,
        rate_limit=None,
        lease_seconds=None,
    )
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("pg", [False, True])
def test_cmd_sync_refuses_shards_on_sqlite_and_bad_options(
    pg, tmp_path, monkeypatch, capsys, emulator, postgres_schema_url
):
    emu = emulator(make_data(2))
    settings = settings_for(emu)
    url = postgres_schema_url() if pg else f"sqlite:///{tmp_path / 's.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    cases = [
        (_sync_args(run_id="x"), "--run-id needs --shards"),
        (_sync_args(shards=0), "--shards must be a whole number from 1 to 1000"),
        (_sync_args(shards=2, run_id="bad id!"), "a run id is 1 to 200 letters"),
        (_sync_args(shards=2, rate_limit=0), "the rate limit must be a whole number"),
        (_sync_args(shards=2, lease_seconds=0.5), "--lease-seconds must be between 1 and 86400"),
        (_sync_args(shards=2, slot_minutes=0), "--slot-minutes must be between 1 and 1440"),
    ]
    if not pg:
        cases.append((_sync_args(shards=2), "--shards 2 needs PostgreSQL"))
    for args, message in cases:
        assert cmd_sync(args, settings) == 1
        err = capsys.readouterr().err
        assert message in err and "nothing fetched" in err, err
    assert emu.counters.requests == 0
    # --shards 1 on SQLite is the ordinary sync; on PostgreSQL a one-worker sharded run.
    assert cmd_sync(_sync_args(shards=1, run_id="one"), settings) == 0
    err = capsys.readouterr().err
    assert ("Published snapshot" in err) == pg and (
        "--shards 1 runs the ordinary sync" in err
    ) != pg
    store = Store(url)
    try:
        assert len(store.latest(config_key(settings)).accounts) == 2
    finally:
        store.close()


def test_shard_pacing_and_slot_keys():
    s = Settings(token_rate_limit=500)
    assert shard_settings(s, 4).token_rate_limit == 125
    assert shard_settings(s, 3).token_rate_limit == 166  # rounded down: never over the token's
    assert shard_settings(s, 1000).token_rate_limit == 1
    assert shard_settings(s, 4, rate_limit=200).token_rate_limit == 200
    assert shard_settings(s, 4).account_rate_limit == s.account_rate_limit
    with pytest.raises(ValueError):
        shard_settings(s, 0)
    at = datetime(2026, 12, 3, 7, 59, 59, tzinfo=UTC)
    assert slot_run_key(at) == "slot-20261203T0700Z"
    assert slot_run_key(at, 15) == "slot-20261203T0745Z"
    assert slot_run_key(datetime(2026, 12, 3, 8, 0, tzinfo=UTC)) == "slot-20261203T0800Z"
    with pytest.raises(ValueError):
        slot_run_key(at, 0)


def test_retention_drops_a_run_every_worker_abandoned(pg_url, emulator):
    data = make_data(4)
    emu = emulator(data)
    settings = settings_for(emu)
    key = config_key(settings)
    store = Store(pg_url)
    try:
        targets = _targets(TrutoClient(settings), settings)
        # Two unfinished runs: one whose only worker died after writing an account, one whose
        # worker still holds a claim (a very long fetch).
        dead = store.create_run(key, "dead", "w1", targets)
        claims = store.claim_accounts(dead, "w1", 2, lease_seconds=1.0)
        fetched = fetch_all(settings)
        first = claims[0].account_id
        result = assemble([o for o in fetched.outcomes if o.account_id == first], datetime.now(UTC))
        assert store.write_claimed(dead, "w1", result, {first: first}).written == [first]
        alive = store.create_run(key, "alive", "w2", targets)
        store.claim_accounts(alive, "w2", 1, lease_seconds=5 * 86400.0)
        assert store.latest(key).is_empty  # neither was ever shown
        assert store.prune()["snapshots"] == 0  # a day has not passed
        later = datetime.now(UTC) + timedelta(days=2)
        pruned = store.prune(now=later)
        assert pruned == {
            "account_snapshots": 1,
            "license_rows": 1,
            "problem_rows": 0,
            "seat_rows": 1,
            "snapshots": 1,
        }
        assert store.find_run(key, "dead") is None and store.find_run(key, "alive") is not None
        with store.engine.connect() as conn:
            left = conn.execute(
                text("SELECT count(*) FROM sync_claims WHERE snapshot_id = :s"),
                {"s": dead.snapshot_id},
            ).scalar_one()
            runs = conn.execute(text("SELECT count(*) FROM snapshots")).scalar_one()
        assert left == 0 and runs == 1
    finally:
        store.close()


def test_publishing_a_sharded_run_brings_the_trend_rollup_up_to_date(pg_url, emulator):
    from sqlalchemy import select

    from lib.analytics import trends as T
    from lib.analytics.metrics import add_metrics
    from lib.jobs.refresh import metric_options, trend_pricing
    from lib.schema import LICENSE_COLUMNS
    from lib.store.tables import TREND_ROLLUP_DAYS

    emu = emulator(make_data(6))
    settings = settings_for(emu)
    key = config_key(settings)
    store = Store(pg_url)

    def built() -> list:
        with store._read() as conn:
            return conn.execute(select(TREND_ROLLUP_DAYS.c.built_at)).scalars().all()

    try:
        run_sync(settings, store, report=lambda m: None)
        first = built()
        assert len(first) == 1  # the sync built today's sums
        targets = _targets(TrutoClient(settings), settings)
        run = store.create_run(key, "job-r", "w1", targets)
        claims = store.claim_accounts(run, "w1", 10, lease_seconds=60.0)
        fetched = fetch_all(settings)
        store.write_claimed(run, "w1", fetched, {c.account_id: c.account_id for c in claims})
        assert built() == first  # not published yet: the pages (and the sums) show the run before
        assert store.finish_run(run)[0]
        assert built() == []  # today is built again from the published run on the next read
        pricing = trend_pricing(store)
        sums = store.trend_sums(key, pricing=pricing)
        hist = store.history(key)
        assert set(hist["data_as_of"]) == {store.latest(key).taken_at}  # the published run's rows
        priced = add_metrics(
            hist[list(LICENSE_COLUMNS)], store.get_price_book(), metric_options(store)
        )
        priced["taken_at"] = hist["taken_at"].to_numpy()
        pd.testing.assert_frame_equal(T.trend_from_sums(sums), T.trend_frame(priced))
        assert len(built()) == 1
        # a worker publishing builds the day at once
        res = run_shard(
            settings, store, shards=1, run_key="job-s", report=lambda m: None, poll_interval=0.1
        )
        assert res.published and len(built()) == 1 and built() != first
    finally:
        store.close()
