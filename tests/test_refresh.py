"""The refresh workflow (lib.jobs.refresh) on both backends: one fetch across users and replicas,
a crashed holder's lease runs out, a live one is waited for then given up on, a failure is shared.
Also: the store's log lines (leases, snapshots, pruning) appear and never hold a password or token.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from lib.jobs.refresh import refresh
from lib.store import Store
from lib.truto.fetch import FetchError
from tests.test_store import KEY, make_result, seats, store_table

# ------------------------------------------------------------------ refresh


class CountingFetch:
    def __init__(self, delay: float = 0.4, fail: Exception | None = None):
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
        time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return make_result(seats(5), datetime.now(UTC))


def run_together(n: int, target) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def work(i):
        barrier.wait()
        try:
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    return results


def test_concurrent_refreshes_fetch_once(store):
    replica = Store(store.url)  # a second replica: its own engine and connections
    try:
        fetch = CountingFetch()
        requested = datetime.now(UTC)
        stores = [store, replica]
        outcomes = run_together(
            4, lambda i: refresh(stores[i % 2], KEY, fetch, requested, poll_interval=0.05)
        )
        assert fetch.calls == 1, outcomes
        assert sorted(o.reason for o in outcomes)[0] == "fetched"
        assert all(o.reason in ("joined", "fresh") for o in outcomes if not o.fetched)
        assert all(o.note for o in outcomes if not o.fetched) and [
            o.note for o in outcomes if o.fetched
        ] == [None]
        assert sum(o.waited for o in outcomes) >= 1  # someone found the lease taken and waited
        assert len({o.snapshot_id for o in outcomes}) == 1 and all(
            o.exit_code == 0 for o in outcomes
        )
        assert store.lease_holder(KEY) is None
        assert len(store.snapshots(KEY)) == 1
        # A later request fetches anew; one made before the snapshot was written does not.
        assert refresh(store, KEY, fetch, requested).reason == "fresh"
        assert (
            refresh(store, KEY, fetch, datetime.now(UTC)).reason == "fetched" and fetch.calls == 2
        )
    finally:
        replica.close()


def test_a_crashed_holder_does_not_block_forever(store):
    past = datetime.now(UTC) - timedelta(minutes=1)
    with store.engine.begin() as conn:
        conn.execute(
            insert(store_table("refresh_leases")).values(
                config_key=KEY,
                holder="dead-replica",
                acquired_at=past - timedelta(minutes=5),
                expires_at=past,
            )
        )
    fetch = CountingFetch(delay=0)
    outcome = refresh(store, KEY, fetch, poll_interval=0.05, wait_timeout=5)
    assert outcome.reason == "fetched" and fetch.calls == 1


def test_a_live_holder_is_waited_for_then_given_up_on(store):
    with store.lease(KEY):
        fetch = CountingFetch(delay=0)
        outcome = refresh(store, KEY, fetch, poll_interval=0.05, wait_timeout=0.3)
        assert outcome.reason == "timeout" and outcome.waited and fetch.calls == 0
        assert store.lease_holder(KEY) is not None
    assert store.lease_holder(KEY) is None


def test_a_failed_fetch_is_reported_to_those_waiting_without_fetching_again(store):
    fetch = CountingFetch(delay=0.4, fail=FetchError("Truto refused the API token"))
    requested = datetime.now(UTC)
    outcomes = run_together(3, lambda i: refresh(store, KEY, fetch, requested, poll_interval=0.05))
    assert fetch.calls == 1
    raised = [o for o in outcomes if isinstance(o, FetchError)]
    waited = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(raised) == 1 and len(waited) == 2
    assert all(o.reason == "failed" and "refused the API token" in o.error for o in waited)
    assert all("refused the API token" in o.note for o in waited)
    assert store.latest(KEY).is_empty and store.lease_holder(KEY) is None


# ------------------------------------------------------------------ logging


def test_log_lines_for_leases_snapshots_and_pruning_hold_no_password(store, caplog):
    caplog.set_level(logging.INFO, logger="lib.store")
    caplog.set_level(logging.INFO, logger="lib.jobs.refresh")
    token = "tok-SECRET-9f8e7d"
    outcome = refresh(store, KEY, CountingFetch(delay=0), poll_interval=0.05)
    assert outcome.reason == "fetched"
    past = datetime.now(UTC) - timedelta(minutes=1)
    with store.engine.begin() as conn:  # a holder that died with the lease
        conn.execute(
            store_table("refresh_leases").update().values(holder="dead-replica", expires_at=past)
        )
    with pytest.raises(FetchError):
        refresh(
            store,
            KEY,
            CountingFetch(delay=0, fail=FetchError("Truto refused the API token")),
            datetime.now(UTC),
            poll_interval=0.05,
        )
    store.prune(keep_days=1, now=datetime.now(UTC) + timedelta(days=30))
    messages = [r.getMessage() for r in caplog.records]
    text = "\n".join(messages)
    assert any(m.startswith(f"lease on {KEY} taken by ") for m in messages), text
    assert any(m.startswith(f"lease on {KEY} released by ") for m in messages), text
    assert any("dead-replica's lease expired" in m for m in messages), text
    written = [m for m in messages if m.startswith("snapshot ") and f"written for {KEY}" in m]
    assert written and "2 accounts, 3 license rows" in written[0] and " ms" in written[0], text
    assert any(m.startswith("pruned ") for m in messages), text
    assert any("refresh of" in m and "failed" in m for m in messages), text
    password = store.engine.url.password
    for m in messages:
        assert token not in m
        if password:
            assert str(password) not in m


def test_opening_a_store_logs_its_url_without_the_password(caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="lib.store")
    from lib.store.engine import make_engine

    engine = make_engine("postgresql+psycopg://dash:hunter2-pw@127.0.0.1:1/none")
    engine.dispose()
    Store(f"sqlite:///{tmp_path / 'x.sqlite'}").close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "dash:***@127.0.0.1" in text and "hunter2-pw" not in text
    assert "x.sqlite" in text
