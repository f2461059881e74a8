"""The streamed sync: each finished account written into a pending snapshot, published at the end.

``python -m lib sync`` at thousands of accounts cannot hold every answer until the end. Here the
fetching threads (:class:`lib.truto.fetch.FetchStream`) hand each finished account to one
:class:`BatchWriter`, which writes what has come in every ``write_every`` seconds (at most
``write_batch`` accounts) in one transaction under a pending key
(:meth:`lib.store.snapshots.SnapshotMixin.begin_snapshot`); the raw records go with the batch.
When every account is written the snapshot is published in one transaction; a sync that fails
(an exception, the database, an interruption) drops what it wrote and publishes nothing, so the
pages keep showing the snapshot before. The sharded sync (:mod:`lib.jobs.shard`) uses the same
writer. :class:`SyncProgress` prints what the sync has done every two seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lib.config import Settings
from lib.jobs.vendor import VendorContracts, prepare
from lib.truto.fetch import FetchStream, assemble
from lib.truto.outcomes import AccountOutcome, Progress
from lib.truto.source import effective_settings

log = logging.getLogger(__name__)

_CLOSE = object()


class BatchWriter:
    """One writer for many fetching threads: :meth:`put` hands it an item, :meth:`run` (on its
    own thread) calls ``write(items)`` with what has come in every ``every`` seconds, at most
    ``batch`` at a time, until :meth:`close`. Building and writing accounts one by one costs a
    table build and a transaction each (about 45 ms of CPU per account); together about 1.3 ms.

    ``max_pending``: :meth:`put` waits while that many items wait to be written (memory stays
    bounded when writing is slower than fetching). When ``write`` raises, ``stop`` is set,
    :meth:`put` returns False from then on and :meth:`run` re-raises; setting ``stop`` from
    outside (an interrupted sync) makes :meth:`run` return without writing what is left.
    """

    def __init__(
        self,
        write: Callable[[list], None],
        *,
        batch: int = 64,
        every: float = 0.25,
        max_pending: int = 0,
        stop: threading.Event | None = None,
    ) -> None:
        self._write = write
        self.batch = max(1, batch)
        self.every = every
        self.stop = stop if stop is not None else threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(0, max_pending))

    def put(self, item: Any) -> bool:
        """Hand ``item`` on (waits while the queue is full); False when the writer has stopped."""
        while not self.stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        """No more items: :meth:`run` writes what is left and returns."""
        self.put(_CLOSE)

    def run(self) -> None:
        try:
            last = False
            while not last:
                item = self._get(0.2)
                while item is None and not self.stop.is_set():
                    item = self._get(0.2)
                if item is _CLOSE or self.stop.is_set():
                    return  # closed; or stopped: nothing more is written
                batch = [item]
                until = time.monotonic() + self.every
                while len(batch) < self.batch:
                    item = self._get(max(0.0, until - time.monotonic()))
                    if item is None:
                        break
                    if item is _CLOSE:
                        last = True
                        break
                    batch.append(item)
                if self.stop.is_set():
                    return
                self._write(batch)
        except BaseException:
            self.stop.set()
            raise

    def _get(self, timeout: float) -> Any:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None


class SyncProgress:
    """What a sync has done, as one line every ``interval`` seconds (and one at the end):
    accounts done of the total, requests sent, the request rate over the last ``window``
    seconds, and the time left at that rate (requests per account so far x accounts left);
    the last line gives the average rate over the whole sync."""

    def __init__(
        self,
        emit: Callable[[str], None],
        interval: float = 2.0,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.emit = emit
        self.interval = interval
        self.window = window
        self.clock = clock
        self.done = 0
        self.total: int | None = None
        self._requests: Callable[[], int] = lambda: 0
        self._started = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, done: int, total: int, account_id: str = "") -> None:  # a Progress
        self.done, self.total = done, total

    def watch(self, requests: Callable[[], int]) -> None:
        """Count requests with ``requests()`` and start printing."""
        self._requests = requests
        self._started = self.clock()
        self._samples.clear()
        self._samples.append((self._started, requests()))
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="sync-progress", daemon=True)
            self._thread.start()

    def line(self, final: bool = False) -> str:
        """The progress line; ``final``: the last one, with the average rate over the whole sync."""
        now, sent = self.clock(), self._requests()
        self._samples.append((now, sent))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()
        t0, r0 = self._samples[0]
        if final:
            t0, r0 = self._started, 0
        rate = (sent - r0) / (now - t0) if now > t0 else 0.0
        total = self.total
        parts = [
            f"{self.done}/{total if total is not None else '?'} accounts",
            f"{sent} requests",
            f"{rate:.1f} req/s" + (" on average" if final else ""),
        ]
        if total is not None and self.done >= total:
            parts.append("done")
        elif total and self.done and rate > 0:
            left = (total - self.done) * (sent / self.done) / rate
            parts.append(f"about {_duration(left)} left")
        parts.append(f"{_duration(now - self._started)} elapsed")
        return "sync: " + ", ".join(parts)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit(self.line())

    def close(self) -> None:
        """Stop printing; the last line says where the sync ended."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5)
            self._thread = None
            self.emit(self.line(final=True))


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass
class SyncSummary:
    """What a streamed sync fetched and wrote: counts and the failed accounts (their outcome,
    no records), in place of the whole :class:`~lib.truto.outcomes.FetchResult`."""

    snapshot_id: int | None = None
    code: int | None = None
    accounts: int = 0
    license_rows: int = 0
    requests: int = 0
    billing_accounts: int = 0
    failures: list[AccountOutcome] = field(default_factory=list)
    vendor: VendorContracts | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def exit_code(self) -> int:
        """0: every account fetched; 2: some failed; 1: nothing could be fetched."""
        if self.code is not None:
            return self.code
        if not self.accounts or len(self.failures) == self.accounts:
            return 1
        return 2 if self.failures else 0


def _slim(outcome: AccountOutcome) -> AccountOutcome:
    """A failed account's outcome without its records (kept for the report at the end)."""
    outcome.listings, outcome.user_records, outcome.billing_records = [], None, None
    return outcome


def stream_snapshot(
    settings: Settings,
    store,
    config_key: str,
    progress: Progress | None = None,
    *,
    write_batch: int = 64,
    write_every: float = 0.25,
    fail_after: int | None = None,
) -> SyncSummary:
    """Fetch every account and write it into a pending snapshot as it finishes; publish the
    snapshot when all are written. Returns the summary (published: ``snapshot_id`` set).

    Raises :class:`~lib.truto.fetch.FetchError` when the account list fails (nothing written),
    and whatever writing raised (the pending snapshot dropped, nothing published).
    ``progress``: called after each batch; a :class:`SyncProgress` also counts the requests.
    ``fail_after``: raise RuntimeError once this many accounts are written (tests: a sync that
    fails part-way).
    """
    eff = effective_settings(settings)
    started = datetime.now(UTC)
    fetch = FetchStream(eff)
    total = fetch.list()  # FetchError: nothing begun
    watch = getattr(progress, "watch", None)
    if callable(watch):
        watch(fetch.requests)
    if progress:
        progress(0, total, "")
    pending = store.begin_snapshot(config_key, demo=eff.demo, started_at=started)
    summary = SyncSummary(started_at=started)
    vendor = VendorContracts()
    frames: list[pd.DataFrame] = []

    def write(items: list[AccountOutcome]) -> None:
        result = assemble(items, started, eff.demo)
        found = prepare(result)  # billing problems go into the snapshot
        store.write_pending(pending, result)
        if found is not None:
            vendor.accounts.extend(found.accounts)
            vendor.skipped.extend(found.skipped)
            if len(found.contracts):
                frames.append(found.contracts)
        summary.billing_accounts += len(result.billing)
        summary.accounts += len(items)
        summary.license_rows += int(
            result.accounts.loc[
                result.accounts["outcome"].isin(("ok", "not_supported")).to_numpy(dtype=bool),
                "license_rows",
            ].sum()
        )
        summary.requests += sum(o.requests for o in items)
        summary.failures.extend(_slim(o) for o in result.outcomes if o.failed)
        for o in items:
            log.info(
                "account %s (%s): %s after %d requests",
                o.account_id,
                o.integration,
                o.outcome,
                o.requests,
            )
        if fail_after is not None and summary.accounts >= fail_after:
            raise RuntimeError(f"stopped after {summary.accounts} accounts (fail_after)")
        if progress:
            progress(summary.accounts, total, "")

    writer = BatchWriter(
        write, batch=write_batch, every=write_every, max_pending=max(4 * write_batch, 256)
    )
    try:
        thread_error: list[BaseException] = []

        def run_writer() -> None:
            try:
                writer.run()
            except BaseException as exc:  # noqa: BLE001  (re-raised below, on the sync's thread)
                thread_error.append(exc)

        thread = threading.Thread(target=run_writer, name="sync-writer")
        thread.start()
        try:
            fetch.run(writer.put)
        except BaseException:
            writer.stop.set()  # nothing more is written: the pending snapshot is dropped
            raise
        finally:
            writer.close()
            thread.join()
        if thread_error:
            raise thread_error[0]
        summary.finished_at = datetime.now(UTC)
        summary.snapshot_id, summary.code = store.publish_snapshot(
            pending, finished_at=summary.finished_at
        )
    except BaseException:
        try:
            store.discard_snapshot(pending)
        except Exception as exc:  # noqa: BLE001  (retention drops it after a day)
            log.warning(
                "pending snapshot %s not dropped (%s); retention drops it after a day",
                pending.snapshot_id,
                type(exc).__name__,
            )
        raise
    if frames:
        vendor.contracts = pd.concat(frames, ignore_index=True)
    summary.vendor = vendor
    log.info(
        "sync: snapshot %s published, %d accounts (%d failed), %d license rows, %d requests",
        summary.snapshot_id,
        summary.accounts,
        len(summary.failures),
        summary.license_rows,
        fetch.requests(),
    )
    return summary
