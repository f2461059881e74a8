"""The refresh workflow: one fetch across users and replicas, through the store's refresh lease.

:func:`refresh` takes the lease (or waits for whoever holds it), runs the
fetch, writes the snapshot and releases the lease, recording a failure so
those waiting learn of it instead of fetching again. :func:`metric_options`
turns the stored settings into :class:`~lib.analytics.metrics.MetricOptions`.
Both were methods of the store (``Store.refresh`` / ``Store.metric_options``),
which now knows nothing of fetching or metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from lib.analytics.metrics import MetricOptions
from lib.analytics.trends import TrendPricing
from lib.analytics.trends import trend_pricing as _trend_pricing
from lib.jobs.stream import SyncSummary
from lib.jobs.vendor import prepare, save_vendor_contracts
from lib.store import LeaseHeartbeat, Store, new_holder_id
from lib.store.tables import _utc
from lib.truto.fetch import FetchError

log = logging.getLogger(__name__)


def metric_options(store: Store) -> MetricOptions:
    """:class:`MetricOptions` from the store's settings and exchange rates."""
    s = store.get_settings()
    return MetricOptions(
        reporting_currency=s["reporting_currency"],
        fx_rates=store.get_fx_rates(),
        buffer=s["buffer"],
        under_used_pct=s["under_used_pct"],
        at_capacity_pct=s["at_capacity_pct"],
        vendor_price_period=s["vendor_price_period"],
    )


def trend_pricing(store: Store) -> TrendPricing:
    """The store's price book and rates as the trend rollup prices license classes with them."""
    return _trend_pricing(store.get_price_book(), metric_options(store))


@dataclass(frozen=True)
class RefreshOutcome:
    """What :func:`refresh` did.

    ``reason``: ``fetched`` (this call fetched and wrote ``snapshot_id``),
    ``joined`` (another user or replica was fetching; its snapshot is
    ``snapshot_id``), ``fresh`` (a snapshot written after ``requested_at``
    already existed), ``failed`` (the concurrent fetch this call waited for
    failed: ``error``), ``timeout`` (waited ``wait_timeout`` for another
    holder; ``snapshot_id`` is the latest there is).
    """

    reason: str
    snapshot_id: int | None
    fetched: bool = False
    waited: bool = False
    result: Any = None  # the FetchResult (or a streamed sync's SyncSummary), when this call fetched
    error: str | None = None
    exit_code: int | None = None
    vendor_contracts: int | None = None  # contracts prefilled from billing, when this call fetched

    @property
    def note(self) -> str | None:
        """A sentence for the person who asked, when something other than their own fetch happened."""
        if self.reason == "joined":
            return "Someone else was already refreshing; this shows the data their refresh fetched."
        if self.reason == "fresh":
            return "Data fetched after you asked was already there, so nothing was fetched again."
        if self.reason == "failed":
            return f"The refresh already under way failed: {self.error}"
        if self.reason == "timeout":
            return (
                f"Another refresh is still running ({self.error}); showing the latest data stored."
            )
        return None


def refresh(
    store: Store,
    config_key: str,
    fetch_fn: Callable[[], Any],
    requested_at: datetime | None = None,
    *,
    lease_seconds: float = 300.0,
    wait_timeout: float = 600.0,
    poll_interval: float = 0.2,
) -> RefreshOutcome:
    """Fetch anew, unless another user or replica already is (then wait for its snapshot).

    ``requested_at``: when the user asked (default: now). A snapshot
    written at or after it is fresh enough: nothing is fetched. Otherwise
    this call takes the lease (a row in ``refresh_leases`` with an expiry,
    renewed while fetching, so a crashed holder blocks for at most
    ``lease_seconds``), calls ``fetch_fn()`` and writes the snapshot (unless ``fetch_fn``
    wrote and published it itself, returning a :class:`~lib.jobs.stream.SyncSummary`). If
    someone else holds the lease it polls until their snapshot is written
    (``joined``), their fetch fails (``failed``; their error) or
    ``wait_timeout`` passes (``timeout``). Exceptions from ``fetch_fn`` are
    re-raised after the lease is released.
    """
    requested_at = _utc(requested_at) if requested_at is not None else datetime.now(UTC)
    holder = new_holder_id()
    deadline = time.monotonic() + wait_timeout
    waited = False
    while True:
        done = store.written_since(config_key, requested_at)
        if done is not None:
            return RefreshOutcome(
                "joined" if waited else "fresh", done.id, waited=waited, exit_code=done.exit_code
            )
        error = store.failed_since(config_key, requested_at)
        if error is not None:
            return RefreshOutcome(
                "failed", store.latest_snapshot_id(config_key), waited=waited, error=error
            )
        if store.try_lease(config_key, holder, lease_seconds):
            break
        waited = True
        if time.monotonic() >= deadline:
            return RefreshOutcome(
                "timeout",
                store.latest_snapshot_id(config_key),
                waited=True,
                error=f"another refresh has been running for more than {wait_timeout:g} s",
            )
        time.sleep(poll_interval * (0.75 + 0.5 * np.random.random()))
    try:
        # Another holder may have finished between our checks and taking the lease.
        done = store.written_since(config_key, requested_at)
        error = None if done is not None else store.failed_since(config_key, requested_at, holder)
        if done is not None or error is not None:
            store.release_lease(config_key, holder, attempted=False)
            if done is not None:
                return RefreshOutcome(
                    "joined" if waited else "fresh",
                    done.id,
                    waited=waited,
                    exit_code=done.exit_code,
                )
            return RefreshOutcome(
                "failed", store.latest_snapshot_id(config_key), waited=waited, error=error
            )
        with LeaseHeartbeat(store, config_key, holder, lease_seconds):
            result = fetch_fn()
            if isinstance(result, SyncSummary):  # streamed: written and published as it fetched
                vendor = result.vendor
                snapshot_id = result.snapshot_id
            else:
                vendor = prepare(result)  # billing problems go into the snapshot
                snapshot_id = store.write_snapshot(result, config_key)
            prefilled = save_vendor_contracts(store, vendor)
    except BaseException as exc:
        # Only Truto's own error (FetchError: written for people, no secrets) is kept verbatim; any other
        # exception's text could carry a header or URL, so only its type is stored and shown to others.
        if isinstance(exc, FetchError):
            message = f"FetchError: {exc}"
        elif isinstance(exc, Exception):
            message = (
                f"{type(exc).__name__} (details in the server log of the replica that fetched)"
            )
        else:
            message = "the refresh was interrupted"
        log.warning("refresh of %s failed: %s", config_key, message)
        store.release_lease(config_key, holder, error=message)
        raise
    store.release_lease(config_key, holder)
    exit_code = result.exit_code() if callable(getattr(result, "exit_code", None)) else None
    log.info("refresh of %s fetched snapshot %s (exit code %s)", config_key, snapshot_id, exit_code)
    return RefreshOutcome(
        "fetched",
        snapshot_id,
        fetched=True,
        waited=waited,
        result=result,
        exit_code=exit_code,
        vendor_contracts=prefilled if vendor is not None and vendor.accounts else None,
    )
