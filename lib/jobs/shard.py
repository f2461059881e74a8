"""Sharded sync: ``python -m lib sync --shards N``, N processes (on N machines) writing one run.

For an environment one process cannot fetch within its schedule. The processes are coordinated
only through PostgreSQL (:mod:`lib.store.sync_claims`):

- They share a *run key*: ``--run-id`` (in Kubernetes the Job's name, the same for every pod of
  one scheduled run), else the schedule slot (the UTC time rounded down to ``--slot-minutes``).
- The first to arrive lists the integrated accounts (one paged call) and creates the run, with
  one claim per account; the others join it.
- Each claims free accounts (``FOR UPDATE SKIP LOCKED``), fetches them as a single sync does
  (organizations, licenses, users, billing), and writes each account snapshot in the transaction
  that marks its claim done (batched by the single sync's writer, :class:`lib.jobs.stream.BatchWriter`).
  Once the run is finished, each worker saves the vendor contracts read from the billing of the
  accounts it wrote, as a single sync does (:mod:`lib.jobs.vendor`). A heartbeat renews its claims every third of ``--lease-seconds``.
- A process that dies leaves its claims to expire; one still working, or one started later
  with the same run key (a replacement pod), takes them over.
- When every account is written, the run is published at once: the pages switch from the run
  before to this one, which shows every account. That worker also applies retention and the
  alerts, once per run.

Each process paces at ``token_rate_limit / N`` requests per window (``--rate-limit`` overrides),
so the N together stay under the token's limit. The per-account limit needs no share: an account
is fetched by one process.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pandas as pd

from lib.config import Settings
from lib.jobs.refresh import trend_pricing
from lib.jobs.stream import BatchWriter
from lib.jobs.sync import EXIT_NOTHING, _say, config_key
from lib.jobs.vendor import VendorContracts, prepare, save_vendor_contracts
from lib.store import LeaseHeartbeat, Store, SyncRun, check_run_key, claim_record, new_holder_id
from lib.truto.client import TrutoClient
from lib.truto.fetch import (
    FetchError,
    Progress,
    assemble,
    fetch_one,
    listed_accounts,
    note_repeated,
)
from lib.truto.source import effective_settings
from lib.truto.text import clean_text

log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 120.0
DEFAULT_SLOT_MINUTES = 60


def shard_settings(settings: Settings, shards: int, rate_limit: int | None = None) -> Settings:
    """The settings of one of ``shards`` processes sharing the token: ``token_rate_limit``
    divided among them (rounded down, at least 1), or ``rate_limit`` when given."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(
            f"the number of shards must be a whole number, at least 1 (got {shards!r})"
        )
    if rate_limit is not None and (
        isinstance(rate_limit, bool) or not isinstance(rate_limit, int) or rate_limit < 1
    ):
        raise ValueError(f"the rate limit must be a whole number, at least 1 (got {rate_limit!r})")
    limit = rate_limit if rate_limit is not None else max(1, settings.token_rate_limit // shards)
    return replace(settings, token_rate_limit=limit)


def slot_run_key(now: datetime, minutes: int = DEFAULT_SLOT_MINUTES) -> str:
    """The run key of the schedule slot holding ``now``: ``slot-YYYYMMDDTHHMMZ`` (UTC, rounded down)."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
        raise ValueError(f"--slot-minutes must be between 1 and 1440 (got {minutes!r})")
    epoch_minutes = int(now.astimezone(UTC).timestamp() // 60)
    start = datetime.fromtimestamp(epoch_minutes // minutes * minutes * 60, UTC)
    return f"slot-{start:%Y%m%dT%H%M}Z"


@dataclass(frozen=True)
class ShardResult:
    code: int  # the run's exit code (as a single sync's), or 1 when this worker could not take part
    run: SyncRun | None
    published: bool = False  # this worker published the run (and should apply retention and alerts)
    fetched: int = 0  # accounts this worker fetched and wrote
    taken_over: int = 0  # of them, accounts whose earlier claim had expired
    dropped: int = 0  # accounts fetched but not written: the claim had been taken over meanwhile
    vendor_contracts: int | None = None  # contracts prefilled from the billing of its accounts


def _targets(client: TrutoClient, settings: Settings) -> list[tuple[str, dict | None, bool]]:
    """(account id, listed record or None for a named id, listed twice) for each account to fetch."""
    if settings.integrated_account_ids:
        seen: dict[str, bool] = {}
        for aid in settings.integrated_account_ids:
            seen[aid] = aid in seen
        return [(aid, None, repeated) for aid, repeated in seen.items()]
    accounts, repeated = listed_accounts(client, settings)
    return [(str(a["id"]), claim_record(a), clean_text(str(a["id"])) in repeated) for a in accounts]


def run_shard(
    settings: Settings,
    store: Store,
    *,
    shards: int,
    run_key: str,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    rate_limit: int | None = None,
    report: Callable[[str], None] | None = None,
    progress: Progress | None = None,
    wait_timeout: float | None = None,
    poll_interval: float = 0.5,
    claim_batch: int = 1,
    write_batch: int = 64,
    write_every: float = 0.25,
) -> ShardResult:
    """Take part in run ``run_key`` as one of ``shards`` processes; returns when the run is
    published (by this worker or another), or after ``wait_timeout`` seconds (default: the
    ``fetch_deadline`` setting) of waiting on accounts other live workers hold (exit code 1).

    ``claim_batch``: accounts claimed at a time by each of the ``max_workers`` threads;
    ``write_batch`` / ``write_every``: the writer's largest transaction and how long it gathers.
    Raises ValueError on SQLite, FetchError only when Truto refuses the token while reading a
    named account (the accounts this worker held are given back first).
    """
    check_run_key(run_key)
    if not lease_seconds > 0:
        raise ValueError(f"the lease must be positive (got {lease_seconds!r} s)")
    if store.is_sqlite:
        store.find_run("", run_key)  # raises: SQLite serves one process on one machine
    key = config_key(settings)
    holder = new_holder_id()
    eff = effective_settings(shard_settings(settings, shards, rate_limit))
    _say(
        report,
        f"Sync run {run_key}: worker {holder}, one of {shards}, paced at {eff.token_rate_limit} "
        f"requests per {eff.rate_window:g} s (the token's {settings.token_rate_limit} shared).",
    )
    client = TrutoClient(eff)
    client.start_fetch()
    run = store.find_run(key, run_key)
    if run is None:
        try:
            targets = _targets(client, eff)
        except FetchError as exc:
            _say(report, f"Nothing fetched: {exc}")
            return ShardResult(EXIT_NOTHING, None)
        run = store.create_run(key, run_key, holder, targets, demo=eff.demo)
    _say(
        report,
        f"{'Created' if run.created else 'Joined'} sync run {run_key} (snapshot {run.snapshot_id}, "
        f"{run.accounts} accounts).",
    )
    if run.finished_at is not None:
        _say(
            report,
            f"Sync run {run_key} already finished at {run.finished_at:%Y-%m-%d %H:%M:%S} UTC "
            f"(exit code {run.exit_code}); nothing fetched.",
        )
        return ShardResult(run.exit_code if run.exit_code is not None else EXIT_NOTHING, run)

    started = datetime.now(UTC)
    deadline = time.monotonic() + (wait_timeout if wait_timeout is not None else eff.fetch_deadline)
    lock = threading.Lock()
    stop = threading.Event()
    tally = {"fetched": 0, "taken_over": 0, "dropped": 0, "requests": 0}
    resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="truto-resolve")

    # Fetching threads hand each account to one writer (lib.jobs.stream.BatchWriter, shared with
    # the single-process sync), which writes what has come in every ``write_every`` seconds (at
    # most ``write_batch`` accounts) in one transaction.
    vendor = VendorContracts()
    contracts: list = []

    def write(items: list) -> None:
        outcomes = {claim.account_id: out for claim, out in items}
        result = assemble(list(outcomes.values()), started, eff.demo)
        found = prepare(result)  # billing problems go into the snapshot, as a single sync's
        written = store.write_claimed(
            run,
            holder,
            result,
            {cid: o.account_id for cid, o in outcomes.items()},
        )
        with lock:
            tally["fetched"] += len(written.written)
            tally["dropped"] += len(written.dropped)
            tally["requests"] += sum(out.requests for _, out in items)
            done = set(written.written)
            kept = {outcomes[cid].account_id for cid in done}
            if found is not None:
                # The vendor contracts of the accounts this worker wrote, saved once the run is
                # finished (an account taken over is saved by the worker that wrote it).
                vendor.accounts.extend(a for a in found.accounts if a in kept)
                vendor.skipped.extend(p for p in found.skipped if p.account_id in kept)
                if len(found.contracts):
                    contracts.append(
                        found.contracts[found.contracts["account_id"].isin(kept).to_numpy(bool)]
                    )
            for claim, out in items:
                if claim.account_id not in done:
                    _say(
                        report,
                        f"Account {out.account_id}: another worker took it over while this one "
                        "fetched it (its claim had expired); not written.",
                    )
                    continue
                if claim.taken_from is not None:
                    tally["taken_over"] += 1
                    _say(
                        report,
                        f"Took over account {out.account_id}: the claim of {claim.taken_from} "
                        "had expired.",
                    )
                if out.failed:
                    _say(report, f"FAILED {out.sentence()}")
                log.info(
                    "sync run %s: account %s (%s): %s after %d requests",
                    run.run_key,
                    out.account_id,
                    out.integration,
                    out.outcome,
                    out.requests,
                )
            if progress:
                progress(tally["fetched"], run.accounts, "")

    def save_contracts() -> int | None:
        """Save the vendor contracts of the accounts this worker wrote, as a single sync does."""
        if not vendor.accounts:
            return None
        if contracts:
            vendor.contracts = pd.concat(contracts, ignore_index=True)
        saved = save_vendor_contracts(store, vendor)
        _say(
            report,
            f"Contracts prefilled from billing: {saved} (from {len(vendor.accounts)} accounts; "
            "contracts edited by people kept as they are).",
        )
        return saved

    writer = BatchWriter(
        write, batch=write_batch, every=write_every, max_pending=max(4 * write_batch, 256)
    )
    watch = getattr(progress, "watch", None)
    if callable(watch):
        watch(lambda: client.stats(None).requests + tally["requests"])

    def fetch_loop() -> None:
        try:
            while not (stop.is_set() or writer.stop.is_set()):
                claims = store.claim_accounts(run, holder, claim_batch, lease_seconds)
                if not claims:
                    return
                for claim in claims:
                    out = fetch_one(
                        client,
                        eff,
                        claim.account if claim.account is not None else claim.account_id,
                        resolver,
                    )
                    if claim.repeated:
                        note_repeated(out)
                    if not writer.put((claim, out)):
                        return
        except BaseException:
            stop.set()
            raise

    try:
        with LeaseHeartbeat(
            None,
            run.run_key,
            holder,
            lease_seconds,
            renew=lambda: store.renew_claims(run, holder, lease_seconds) >= 0,
        ):
            while True:
                threads = max(1, eff.max_workers)
                with ThreadPoolExecutor(threads + 1, thread_name_prefix="truto-fetch") as pool:
                    writing = pool.submit(writer.run)
                    fetchers = [pool.submit(fetch_loop) for _ in range(threads)]
                    for fut in fetchers:
                        fut.exception()  # wait; errors are raised below, once all is written
                    writer.close()
                    writing.result()
                for fut in fetchers:
                    fut.result()
                status = store.claim_status(run)
                if status.finished:
                    break
                if (
                    status.free
                ):  # expired claims: take them over (after a breath, should they be locked)
                    time.sleep(poll_interval / 5)
                    continue
                if time.monotonic() >= deadline:
                    _say(
                        report,
                        f"Sync run {run_key}: {status.held} accounts are still held by other workers "
                        f"after waiting {wait_timeout or eff.fetch_deadline:g} s; this worker stops "
                        f"(it wrote {tally['fetched']}). The run is published when they finish, or "
                        "when a worker started with the same run id takes over their expired claims.",
                    )
                    return ShardResult(
                        EXIT_NOTHING,
                        run,
                        False,
                        tally["fetched"],
                        tally["taken_over"],
                        tally["dropped"],
                        save_contracts(),
                    )
                time.sleep(poll_interval * (0.75 + 0.5 * random.random()))
    except BaseException:
        given_back = store.release_claims(run, holder)
        if given_back:
            _say(report, f"Gave back {given_back} unfinished account claims.")
        raise
    finally:
        resolver.shutdown(wait=False)
    published, code = store.finish_run(run)
    code = code if code is not None else EXIT_NOTHING
    mine = f"this worker fetched {tally['fetched']} of {run.accounts} accounts" + (
        f", {tally['taken_over']} of them taken over from expired claims"
        if tally["taken_over"]
        else ""
    )
    if published:
        _say(report, f"Published snapshot {run.snapshot_id} of sync run {run_key} ({mine}).")
        store.warm_trend_rollup(run.config_key, trend_pricing(store))  # the Trends page's sums
    else:
        _say(
            report,
            f"Snapshot {run.snapshot_id} of sync run {run_key} was published by another worker "
            f"({mine}).",
        )
    prefilled = save_contracts()
    return ShardResult(
        code, run, published, tally["fetched"], tally["taken_over"], tally["dropped"], prefilled
    )
