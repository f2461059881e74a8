"""A year of monthly demo snapshots, so the Trends page is filled on first launch.

The last snapshot (``now``) is the demo data exactly as the demo emulator
serves it; the eleven before it, one calendar month apart, scale each
license's seats by a deterministic factor: a per-license trend over the
year (most licenses grew, some shrank), a monthly wobble on assigned seats,
and bought seats that change only every third month, as renewals do.
Unassigned, over-allocated and utilization are recomputed from the scaled
counts with :func:`lib.normalize.seat_arithmetic`; a count the vendor does
not report stays not reported. Seat holders (seat activity) keep the same spread of activity relative
to each month's fetch, fewer of them the further back (:func:`month_seats`). Same input and ``now``:
the same history.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from lib.truto.fetch import FetchResult
from lib.truto.normalize import seat_arithmetic

MONTHS = 12


def _unit(key: str, salt: str) -> float:
    """A number in [0, 1) fixed by ``key``."""
    return zlib.crc32(f"{salt}/{key}".encode()) / 2**32


def seat_factors(key: str, months_back: int) -> tuple[float, float]:
    """(factor on assigned seats, factor on bought seats) ``months_back`` months before now; (1, 1) at 0."""
    if months_back <= 0:
        return 1.0, 1.0
    trend = -0.15 + 0.5 * _unit(key, "trend")  # share of this year's change: -15% .. +35%
    phase = 2 * math.pi * _unit(key, "phase")
    step = int(3 * _unit(key, "renewal"))  # which month of the quarter bought seats change
    progress = months_back / (MONTHS - 1)
    assigned = (1 - trend * progress) * (1 + 0.07 * math.sin(phase + 1.7 * months_back))
    quarters = (months_back + step) // 3
    total = 1 - 0.8 * trend * min(quarters / 4, 1.0)
    return max(assigned, 0.0), max(total, 0.0)


def _scaled(values: pd.Series, factors: np.ndarray) -> pd.Series:
    """Whole seats scaled by ``factors`` (half up), NA kept NA."""
    base = values.to_numpy(dtype="float64", na_value=np.nan)
    scaled = np.floor(base * factors + 0.5)
    missing = np.isnan(scaled)
    whole = np.where(missing, 0, scaled).astype(np.int64)
    return pd.Series(pd.arrays.IntegerArray(whole, missing), index=values.index)


def month_result(base: FetchResult, months_back: int, taken_at: datetime) -> FetchResult:
    """``base`` as it might have looked ``months_back`` months earlier, fetched at ``taken_at``."""
    lic = base.licenses.copy()
    keys = (
        lic["account_id"].astype(str)
        + "/"
        + lic["license_id"].fillna("").astype(str)
        + "/"
        + lic["organization_id"].fillna("").astype(str)
        + "/"
        + lic["product"].fillna("").astype(str)
    ).tolist()
    factors = np.array([seat_factors(k, months_back) for k in keys], dtype="float64").reshape(-1, 2)
    stamp = pd.Timestamp(taken_at).tz_convert("UTC").as_unit("us")
    if len(lic):
        lic["assigned_seats"] = _scaled(lic["assigned_seats"], factors[:, 0])
        lic["total_seats"] = _scaled(lic["total_seats"], factors[:, 1])
        lic = lic.assign(**seat_arithmetic(lic["assigned_seats"], lic["total_seats"]))
        lic["fetched_at"] = pd.Series([stamp] * len(lic), index=lic.index).astype(
            "datetime64[us, UTC]"
        )
    accounts = base.accounts.copy()
    if len(accounts):
        accounts["fetched_at"] = pd.Series([stamp] * len(accounts), index=accounts.index).astype(
            "datetime64[us, UTC]"
        )
    return replace(
        base,
        licenses=lic,
        accounts=accounts,
        seats=month_seats(base.seats, months_back, stamp),
        started_at=stamp.to_pydatetime(),
        finished_at=stamp.to_pydatetime(),
    )


_SEAT_TIMES = (
    "user_created_at",
    "user_last_login_at",
    "user_last_active_at",
    "license_last_active_at",
    "fetched_at",
)


def month_seats(seats: pd.DataFrame, months_back: int, taken_at: pd.Timestamp) -> pd.DataFrame:
    """The seat rows ``months_back`` months earlier: the same spread of activity relative to that
    fetch (every time moved by the same amount), with fewer holders the further back (up to 2% a
    month, by a fixed per-user draw), as a growing company would have had."""
    if months_back <= 0 or seats.empty:
        return seats
    keep = np.array(
        [
            _unit(f"{a}/{u}", "seat") >= 0.02 * months_back
            for a, u in zip(seats["account_id"], seats["user_id"])
        ],
        dtype=bool,
    )
    out = seats.loc[keep].copy()
    shift = taken_at - pd.Timestamp(out["fetched_at"].max())
    for col in _SEAT_TIMES:
        out[col] = (out[col] + shift).astype("datetime64[us, UTC]")
    out["fetched_at"] = pd.Series([taken_at] * len(out), index=out.index).astype(
        "datetime64[us, UTC]"
    )
    return out.reset_index(drop=True)


def demo_history(
    base: FetchResult, now: datetime, months: int = MONTHS
) -> list[tuple[FetchResult, datetime]]:
    """(result, taken_at) for each month, oldest first; the last is ``base`` at ``now``."""
    now_ts = pd.Timestamp(now)
    now_ts = now_ts.tz_localize("UTC") if now_ts.tzinfo is None else now_ts.tz_convert("UTC")
    out = []
    for back in range(months - 1, -1, -1):
        taken = (now_ts - pd.DateOffset(months=back)).to_pydatetime()
        out.append((month_result(base, back, taken), taken))
    return out


def seed_demo_history(
    store,
    config_key: str,
    now: datetime | None = None,
    *,
    result: FetchResult | None = None,
    settings: Any = None,
    months: int = MONTHS,
) -> int:
    """Write a year of monthly demo snapshots when ``config_key`` has none yet; returns how many were written.

    ``result``: the demo fetch to derive them from (default: one fetch from
    the demo emulator, with ``settings`` or the default demo settings).
    Safe to call from several replicas at once: it runs under the refresh
    lease and writes all months in one transaction, or nothing.
    """
    if store.has_snapshots(config_key):
        return 0
    now = now or datetime.now(UTC)
    with store.lease(config_key):
        if store.has_snapshots(config_key):
            return 0
        vendor = None
        if result is None:
            from lib.config import Settings
            from lib.jobs.vendor import prepare
            from lib.truto.source import fetch

            result = fetch(settings if settings is not None else Settings(demo=True))
            vendor = prepare(result)
        ids = store.write_snapshots(demo_history(result, now, months), config_key)
        if vendor is not None:
            from lib.jobs.vendor import save_vendor_contracts

            save_vendor_contracts(store, vendor)  # the contracts its billing prefills
    return len(ids)
