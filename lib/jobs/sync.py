"""The scheduled job: fetch every account, write a snapshot, apply retention.

``python -m lib sync`` (cron or a Kubernetes CronJob) calls :func:`cmd_sync`;
the app's refresh button goes through the same :func:`lib.jobs.refresh.refresh`,
so a sync and a user refreshing at the same time fetch once.

Exit codes, as ``export``: 0 every account fetched; 2 some accounts failed
(their last good snapshot is kept and shown as stale); 1 nothing could be
fetched (token refused, account list failed) or the configuration is wrong
(``--keep-days`` below 1 included, checked before fetching); 3 the database
failed during the sync (e.g. a damaged SQLite file), the message saying
whether the snapshot had been written.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lib.config import Settings
from lib.jobs.refresh import refresh, trend_pricing
from lib.jobs.stream import SyncProgress, SyncSummary, stream_snapshot
from lib.schema import MAX_KEEP_DAYS
from lib.truto.fetch import FetchError, Progress

DEMO_KEY = "demo"
EXIT_OK, EXIT_NOTHING, EXIT_PARTIAL, EXIT_STORE = 0, 1, 2, 3

log = logging.getLogger(__name__)

# The settings that decide which data is fetched and how it is counted, and the token: a token belongs to
# one Truto environment, and two environments (a sandbox and production, say) behind the same base URL must
# never share a history. Timeouts, rate limits and workers are not part of it.
_DATA_FIELDS = (
    "base_url",
    "integrated_account_ids",
    "tenant_id",
    "products",
    "remaining_seats_integrations",
)


def config_key(settings: Settings) -> str:
    """The key snapshots are stored under: ``"demo"`` for the demo data, else a digest of the data-shaping
    settings and of the token's one-way digest.

    Stable across restarts (the demo emulator's port changes every start) and tuning changes; different when
    another token (environment), base URL, account list, tenant, Microsoft 365 products or seat convention
    could make the data differ. Rotating the token starts a new history; the old snapshots stay in the
    database under their own key.
    """
    if settings.demo:
        return DEMO_KEY
    parts = [f"token={settings.api_token.digest() if settings.api_token else None}"]
    for name in _DATA_FIELDS:
        value = getattr(settings, name)
        if isinstance(value, tuple):
            value = tuple(
                sorted(
                    str(v).strip().lower() if name == "remaining_seats_integrations" else str(v)
                    for v in value
                )
            )
        parts.append(f"{name}={value!r}")
    return "truto-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _say(report: Callable[[str], None] | None, message: str) -> None:
    if report is not None:
        report(message)
    else:
        log.info(message)


def run_sync(
    settings: Settings,
    store,
    progress: Progress | None = None,
    *,
    keep_days: int | None = None,
    report: Callable[[str], None] | None = None,
    seed_demo: bool = True,
    wait_timeout: float = 600.0,
    now: datetime | None = None,
    write_batch: int = 64,
    write_every: float = 2.0,
) -> tuple[SyncSummary | None, int]:
    """Fetch, write a snapshot, prune; returns (a summary of what was fetched, exit code).

    Streamed (:mod:`lib.jobs.stream`): each finished account is written into a pending snapshot
    in batches (what finished in ``write_every`` seconds, at most ``write_batch`` accounts: fewer,
    larger transactions than the sharded sync's 0.25 s, for less CPU beside the fetching threads),
    and the snapshot published at the end in one
    transaction; a sync that fails part-way publishes nothing. The summary
    (:class:`~lib.jobs.stream.SyncSummary`: counts and the failed accounts, not the records) is
    None when nothing was fetched by this call: the fetch
    failed as a whole (exit 1), or another user or replica was already
    fetching and this call used its snapshot (its exit code is returned).
    ``keep_days``: retention (default: the store's ``retention_days`` setting).
    With demo settings and an empty store, a year of monthly demo snapshots
    is seeded first. ``report`` receives the human-readable messages.
    """
    key = config_key(settings)
    if settings.demo and seed_demo and not store.has_snapshots(key):
        from lib.jobs.demo_history import seed_demo_history

        written = seed_demo_history(store, key, settings=settings)
        if written:
            _say(report, f"Seeded {written} monthly demo snapshots.")
    # Taken after seeding: the seeded snapshots must not count as a fresh fetch for this sync.
    requested_at = now or datetime.now(UTC)
    try:
        outcome = refresh(
            store,
            key,
            lambda: stream_snapshot(
                settings, store, key, progress, write_batch=write_batch, write_every=write_every
            ),
            requested_at=requested_at,
            wait_timeout=wait_timeout,
        )
    except FetchError as exc:
        _say(report, f"Nothing fetched: {exc}")
        return None, EXIT_NOTHING
    if outcome.reason in ("failed", "timeout"):
        _say(report, f"Nothing fetched: {outcome.error}")
        return None, EXIT_NOTHING
    if outcome.fetched:
        result = outcome.result
        for failure in result.failures:
            _say(report, f"FAILED {failure.sentence()}")
        if not result.accounts:
            _say(report, "No integrated accounts found for this token (and tenant filter).")
        _say(
            report,
            f"Wrote snapshot {outcome.snapshot_id}: {result.license_rows} license rows from "
            f"{result.accounts - len(result.failures)} of {result.accounts} accounts.",
        )
        if outcome.vendor_contracts is not None:
            _say(
                report,
                f"Contracts prefilled from billing: {outcome.vendor_contracts} (from "
                f"{result.billing_accounts} accounts; contracts edited by people kept as they are).",
            )
        code = result.exit_code()
    else:
        result = None
        if outcome.reason == "joined":
            _say(report, f"Another refresh was running; using its snapshot {outcome.snapshot_id}.")
        else:
            _say(
                report,
                f"Snapshot {outcome.snapshot_id} was written after this sync was requested; nothing fetched.",
            )
        code = outcome.exit_code if outcome.exit_code is not None else EXIT_NOTHING
        shown = store.latest(key).accounts
        for row in shown[shown["outcome"].isin(("failed", "needs_reauth", "inactive"))].itertuples(
            index=False
        ):
            _say(
                report,
                f"FAILED {row.integration_label} account {row.account_id}: {row.outcome}: "
                f"{row.message} {row.action}".strip(),
            )
    apply_retention(store, keep_days, report)
    store.warm_trend_rollup(key, trend_pricing(store))  # the Trends page's sums, ready for its read
    return result, code


def apply_retention(store, keep_days: int | None, report: Callable[[str], None] | None) -> None:
    """Prune old snapshots after a sync (``keep_days``: default the stored setting) and say what went."""
    pruned = store.prune(keep_days)
    if pruned["account_snapshots"] or pruned["snapshots"]:
        _say(
            report,
            f"Retention: removed {pruned['snapshots']} snapshots, {pruned['account_snapshots']} account "
            f"snapshots and {pruned['license_rows']} license rows.",
        )


def _shard_options(args: Any) -> tuple[int | None, str | None]:
    """(shards, problem): ``--shards`` and its companions checked before anything is fetched."""
    shards = getattr(args, "shards", None)
    if shards is None:
        for flag in ("run_id", "rate_limit", "lease_seconds", "slot_minutes"):
            if getattr(args, flag, None) is not None:
                return None, f"--{flag.replace('_', '-')} needs --shards; nothing fetched"
        return None, None
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 1000:
        return (
            None,
            f"--shards must be a whole number from 1 to 1000 (got {shards!r}); nothing fetched",
        )
    from lib.jobs.shard import shard_settings, slot_run_key
    from lib.store import check_run_key

    try:
        shard_settings(Settings(), shards, getattr(args, "rate_limit", None))
        if getattr(args, "run_id", None) is not None:
            check_run_key(args.run_id)
        slot = getattr(args, "slot_minutes", None)
        slot_run_key(datetime.now(UTC), 60 if slot is None else slot)
    except ValueError as exc:
        return None, f"{exc}; nothing fetched"
    lease = getattr(args, "lease_seconds", None)
    if lease is not None and not (isinstance(lease, (int, float)) and 1 <= lease <= 86400):
        return None, f"--lease-seconds must be between 1 and 86400 (got {lease!r}); nothing fetched"
    return shards, None


def _run_shard(args: Any, settings: Settings, store, progress, report) -> tuple[int, bool]:
    """One worker of a sharded sync: (exit code, whether this worker published the run)."""
    from lib.jobs.shard import DEFAULT_LEASE_SECONDS, run_shard, slot_run_key

    slot = getattr(args, "slot_minutes", None)
    run_key = getattr(args, "run_id", None) or slot_run_key(
        datetime.now(UTC), 60 if slot is None else slot
    )
    try:
        res = run_shard(
            settings,
            store,
            shards=args.shards,
            run_key=run_key,
            lease_seconds=getattr(args, "lease_seconds", None) or DEFAULT_LEASE_SECONDS,
            rate_limit=getattr(args, "rate_limit", None),
            report=report,
            progress=progress,
        )
    except FetchError as exc:
        report(f"Nothing fetched: {exc}")
        return EXIT_NOTHING, False
    if res.published:
        apply_retention(store, getattr(args, "keep_days", None), report)
    return res.code, res.published


def cmd_sync(args: Any, settings: Settings) -> int:
    """``python -m lib sync``: args may carry ``quiet`` (bool), ``keep_days`` (int or None) and the
    sharded sync's ``shards``, ``run_id``, ``slot_minutes``, ``rate_limit``, ``lease_seconds``
    (:mod:`lib.jobs.shard`; PostgreSQL only)."""
    from sqlalchemy.exc import SQLAlchemyError

    from lib.store import Store, database_url, redact_url

    def err(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    keep_days = getattr(args, "keep_days", None)
    if keep_days is not None and (
        isinstance(keep_days, bool)
        or not isinstance(keep_days, int)
        or not 1 <= keep_days <= MAX_KEEP_DAYS
    ):
        err(
            f"--keep-days must be a whole number of days, at least 1 and at most {MAX_KEEP_DAYS} "
            f"(got {keep_days!r}); nothing fetched"
        )
        return EXIT_NOTHING
    shards, problem = _shard_options(args)
    if problem:
        err(problem)
        return EXIT_NOTHING
    url = database_url()
    if settings.demo:
        err("No Truto API token configured: using the built-in demo data.")
    try:
        store = Store(url)
    except SQLAlchemyError as exc:
        # The driver's own message can quote the URL it was given (password included): name its type only.
        err(
            f"Could not open the database {redact_url(url)} ({type(exc).__name__}); check the URL, the server "
            "and the credentials"
        )
        return EXIT_NOTHING
    said: list[str] = []

    def report(message: str) -> None:
        said.append(message)
        err(message)

    if shards is not None and store.is_sqlite:
        if shards > 1:
            err(
                f"--shards {shards} needs PostgreSQL: {redact_url(url)} is SQLite, which serves one "
                "process on one machine. Point DATABASE_URL at PostgreSQL, or run python -m lib sync "
                "without --shards; nothing fetched"
            )
            store.close()
            return EXIT_NOTHING
        err("SQLite: one process on one machine; --shards 1 runs the ordinary sync.")
        shards = None

    # Every two seconds: accounts done of the total, requests, req/s, time left.
    progress = None if getattr(args, "quiet", False) else SyncProgress(err)
    try:
        err(f"Database: {redact_url(url)} (snapshots under {config_key(settings)})")
        if shards is not None:
            code, published = _run_shard(
                args,
                settings,
                store,
                progress,
                report,
            )
            if not published:  # the worker that published the run sends its alerts, once
                return code
        else:
            _, code = run_sync(
                settings,
                store,
                progress=progress,
                keep_days=keep_days,
                report=report,
            )
        if progress is not None:
            progress.close()
        if store.latest_snapshot_id(config_key(settings)) is not None:
            from lib.jobs.alerts import after_sync

            after_sync(store, config_key(settings), report, demo=settings.demo)
        return code
    except (SQLAlchemyError, sqlite3.DatabaseError) as exc:
        written = next(
            (
                found.group(1)
                for m in said
                if (found := re.match(r"(?:Wrote|Published) (snapshot \d+)", m))
            ),
            None,
        )
        stage = (
            f"{written} was written, but the sync could not finish (retention not applied)"
            if written
            else "no snapshot was written"
        )
        err(
            f"The database {redact_url(url)} failed during the sync: {_database_problem(exc, url)}; {stage}. "
            "Check the database (for SQLite: PRAGMA integrity_check, or restore it from a backup)."
        )
        return EXIT_STORE
    finally:
        if progress is not None:
            progress.close()
        store.close()


def _database_problem(exc: Exception, url: str) -> str:
    """The driver's first line (e.g. "database disk image is malformed"), never holding the URL's password."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:200]
    password = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
    if password and password in first:
        first = first.replace(password, "***")
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__
