"""Benchmark: the reclaim computation (classify, price, summary, sorted reclaimable table) at 1M seat rows.

    /work/main/.venv/bin/python bench/activity.py               # 1,000,000 seat rows
    /work/main/.venv/bin/python bench/activity.py --seats 100000 --repeat 5

Synthetic, deterministic (seeded) seat table: 20,000 licenses over 1,000 accounts with metrics from
``add_metrics`` (a price book in USD and EUR, an EUR rate), users spread over the classes (status
deleted/invited, last activity 0-600 days ago, some with none, one account in ten without activity
data). "cold" is the first run, "warm" the median of the others; peak memory is the process's
ru_maxrss (the tables themselves included). Target: under 1 s warm, under 1.5 GB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.analytics import activity as A  # noqa: E402
from lib.analytics.metrics import MetricOptions, add_metrics  # noqa: E402
from lib.schema import LICENSE_COLUMNS, SEAT_COLUMNS  # noqa: E402

FETCHED = pd.Timestamp("2026-12-01T06:00:00Z")


def tables(seats: int, licenses: int = 20_000, accounts: int = 1_000, seed: int = 7):
    rng = np.random.default_rng(seed)
    lic_acc = np.arange(licenses) % accounts
    lic = pd.DataFrame(
        {c: pd.Series([None] * licenses, dtype=t) for c, t in LICENSE_COLUMNS.items()}
    )
    lic["account_id"] = pd.array([f"acc-{a}" for a in lic_acc], dtype="string")
    lic["integration"] = pd.array(["adobe"] * licenses, dtype="string")
    lic["integration_label"] = pd.array(["Adobe"] * licenses, dtype="string")
    lic["license_id"] = pd.array([f"L{i}" for i in range(licenses)], dtype="string")
    lic["license_name"] = pd.array([f"Plan {i % 50}" for i in range(licenses)], dtype="string")
    lic["is_paid"] = pd.array(rng.random(licenses) > 0.1, dtype="boolean")
    total = rng.integers(10, 200, licenses)
    lic["total_seats"] = pd.array(total, dtype="Int64")
    lic["assigned_seats"] = pd.array((total * 0.8).astype(int), dtype="Int64")
    lic["fetched_at"] = pd.Series([FETCHED] * licenses).astype("datetime64[us, UTC]")
    book = pd.DataFrame(
        {
            "integration": ["adobe"] * 50,
            "license_id": [None] * 50,
            "license_name": [f"Plan {i}" for i in range(45)] + [None] * 5,
            "unit_price": [float(10 + i) for i in range(50)],
            "currency": ["USD" if i % 3 else "EUR" for i in range(50)],
            "billing_period": ["monthly"] * 50,
        }
    ).dropna(subset=["license_name"])
    options = MetricOptions(fx_rates={"EUR": 1.1})
    metrics = add_metrics(lic, book, options)

    which = rng.integers(0, licenses, seats)
    s = {}
    s["account_id"] = lic["account_id"].to_numpy()[which]
    s["license_id"] = lic["license_id"].to_numpy()[which]
    s["integration"] = np.full(seats, "adobe", dtype=object)
    s["integration_label"] = np.full(seats, "Adobe", dtype=object)
    s["user_id"] = np.array([f"u{i}" for i in range(seats)], dtype=object)
    s["user_email"] = np.array([f"u{i}@example.com" for i in range(seats)], dtype=object)
    status = rng.choice(
        ["active", "deleted", "invited", "inactive"], seats, p=[0.9, 0.04, 0.03, 0.03]
    )
    s["user_status"] = status
    days = rng.integers(0, 600, seats).astype("timedelta64[D]")
    last = (FETCHED.to_datetime64() - days).astype("datetime64[us]")
    none = rng.random(seats) < 0.1
    seat = pd.DataFrame({c: pd.Series(v, dtype="string") for c, v in s.items()})
    seat["license_last_active_at"] = pd.Series(
        np.where(none, np.datetime64("NaT"), last)
    ).dt.tz_localize("UTC")
    seat["user_last_active_at"] = pd.Series([pd.NaT] * seats, dtype="datetime64[us, UTC]")
    seat["user_last_login_at"] = pd.Series([pd.NaT] * seats, dtype="datetime64[us, UTC]")
    seat["user_created_at"] = pd.Series(
        (FETCHED.to_datetime64() - rng.integers(0, 1500, seats).astype("timedelta64[D]")).astype(
            "datetime64[us]"
        )
    ).dt.tz_localize("UTC")
    seat["activity_reported"] = pd.array(lic_acc[which] % 10 != 0, dtype="boolean")
    seat["fetched_at"] = pd.Series([FETCHED] * seats).astype("datetime64[us, UTC]")
    for c, t in SEAT_COLUMNS.items():
        if c not in seat:
            seat[c] = pd.Series([None] * seats, dtype=t)
    return seat[list(SEAT_COLUMNS)], metrics, options


def run(seat, metrics, options):
    priced = A.reclaim(seat, metrics, options, 90)
    summary = A.reclaim_summary(priced, options.reporting_currency)
    A.reclaimable_seats(priced)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seats", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=4)
    args = ap.parse_args()
    seat, metrics, options = tables(args.seats)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        summary = run(seat, metrics, options)
        times.append(time.perf_counter() - t)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"seat rows: {args.seats:,}  licenses: {len(metrics):,}")
    print(
        f"cold: {times[0]:.3f} s  warm (median of {len(times) - 1}): {statistics.median(times[1:]):.3f} s"
    )
    print(f"peak memory (ru_maxrss): {peak_mb:,.0f} MB")
    print(
        f"reclaimable: {summary.reclaimable_seats:,} seats, {summary.reclaimable_annual_cost:,.2f} "
        f"{summary.reporting_currency}; activity share {summary.activity_share_pct}%"
    )


if __name__ == "__main__":
    main()
