"""Trends benchmark: 10,000 licenses x 730 daily snapshots (7.3M history rows), old path vs new.

Old path (what the Trends page did): every license row of every day loaded into pandas
(``Store.history``), priced at today's prices (``add_metrics``) and grouped (``trend_frame``).
New path: the database adds up per day and group (``Store.trend_sums`` with today's prices from
``trend_prices``, finished by ``trend_from_sums``). Both per integration, and per license (the
page's 12 licenses with the most seats bought at the latest date). The two are checked equal.

The history is written with the store's own bulk writer (``write_snapshots``: COPY on PostgreSQL,
executemany on SQLite), one snapshot per day of the synthetic data set of ``lib.truto.demo``
(500 accounts x 20 licenses) with seat counts moving day to day and one account in 97 failing
each day (its rows carried, stale). Prices and rates: the demo's.

PostgreSQL runs when ``BENCH_POSTGRES_URL`` or ``TEST_POSTGRES_URL`` is set (in a fresh schema
dropped afterwards). Target: the new path under 1 s on PostgreSQL at 7.3M rows.

Run by hand: ``.venv/bin/python bench/trends.py [--licenses 10000] [--days 730] [--no-old]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.store import postgres_schema_url  # noqa: E402
from lib.analytics import trends as T  # noqa: E402
from lib.analytics.metrics import add_metrics  # noqa: E402
from lib.jobs.demo import seed_demo_pricing  # noqa: E402
from lib.jobs.refresh import metric_options  # noqa: E402
from lib.schema import LICENSE_COLUMNS  # noqa: E402
from lib.store import Store, redact_url  # noqa: E402
from lib.truto.demo import synthetic_result  # noqa: E402

KEY = "bench-trends"
TOP = 12


def day_results(base, days: int, end: datetime):
    """One fetch per day: seat counts moving, one account in 97 failing (a different one each day)."""
    accounts = base.accounts["account_id"].tolist()
    assigned = base.licenses["assigned_seats"]
    total = base.licenses["total_seats"]
    wiggle = np.arange(len(base.licenses)) % 13
    for d in range(days):
        at = end - timedelta(days=days - 1 - d)
        result = type(base).__new__(type(base))
        result.__dict__.update(base.__dict__)
        moved = (assigned + ((wiggle + d) % 13 - 6)).clip(lower=0)
        lic = base.licenses.copy()
        over = (moved > total).fillna(False).to_numpy(dtype=bool)
        lic["assigned_seats"] = moved.mask(over, total).astype("Int64")
        lic["fetched_at"] = pd.Timestamp(at)
        acc = base.accounts.copy()
        failing = [a for i, a in enumerate(accounts) if i % 97 == d % 97]
        acc.loc[acc["account_id"].isin(failing), "outcome"] = "failed"
        acc["fetched_at"] = pd.Timestamp(at)
        result.licenses, result.accounts = lic, acc
        result.started_at = result.finished_at = at
        yield result, at


def build(store: Store, base, days: int, end: datetime) -> float:
    seed_demo_pricing(store)
    started = time.perf_counter()
    batch: list = []
    for item in day_results(base, days, end):
        batch.append(item)
        if len(batch) == 30:
            store.write_snapshots(batch, KEY)
            batch = []
    if batch:
        store.write_snapshots(batch, KEY)
    return time.perf_counter() - started


def old_path(store: Store, book, options, group: str) -> pd.DataFrame:
    hist = store.history(KEY)
    priced = add_metrics(hist[list(LICENSE_COLUMNS)], book, options)
    priced["taken_at"] = hist["taken_at"].to_numpy()
    frame = T.trend_frame(priced, group)
    if group == "license":
        latest = frame[frame["taken_at"] == frame["taken_at"].max()]
        top = latest.sort_values(
            ["total_seats", "integration_label", "license_name"],
            ascending=[False, True, True],
            na_position="last",
        ).head(TOP)["label"]
        frame = frame[frame["label"].isin(top)].reset_index(drop=True)
    return frame


def new_path(store: Store, metrics, options, group: str) -> pd.DataFrame:
    sums = store.trend_sums(
        KEY,
        None,
        T.GROUPS[group],
        T.trend_prices(metrics, options),
        top=TOP if group == "license" else None,
    )
    return T.trend_from_sums(sums, group)


def timed(fn, reads: int) -> tuple[float, float, pd.DataFrame]:
    times, out = [], None
    for _ in range(reads):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    assert out is not None
    return min(times), statistics.median(times), out


def bench(url: str, base, days: int, reads: int, old: bool) -> dict:
    store = Store(url)
    try:
        end = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
        write = build(store, base, days, end)
        book, options = store.get_price_book(), metric_options(store)
        metrics = add_metrics(store.latest(KEY).licenses, book, options)
        out: dict = {"write": write, "rows": store_rows(store)}
        for group in ("integration", "license"):
            best, median, frame = timed(lambda: new_path(store, metrics, options, group), reads)
            out[f"new_{group}"] = (best, median, len(frame))
            if old:
                obest, omedian, reference = timed(
                    lambda: old_path(store, book, options, group), 1
                )
                out[f"old_{group}"] = (obest, omedian, len(reference))
                pd.testing.assert_frame_equal(frame, reference)
        return out
    finally:
        store.close()


def store_rows(store: Store) -> int:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM license_rows")).scalar_one())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licenses", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--reads", type=int, default=3)
    parser.add_argument("--no-old", action="store_true", help="time the new path only")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()

    base = synthetic_result(args.licenses)
    print(
        f"{len(base.licenses):,} licenses in {len(base.accounts):,} accounts x {args.days} days "
        f"= {len(base.licenses) * args.days:,} license rows written (failed accounts write none)"
    )
    runs = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite"
            runs.append(("SQLite", bench(url, base, args.days, args.reads, not args.no_old)))
    pg = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if pg:
        url, drop = postgres_schema_url(pg)
        try:
            runs.append(
                (
                    f"PostgreSQL ({redact_url(pg)})",
                    bench(url, base, args.days, args.reads, not args.no_old),
                )
            )
        finally:
            drop()
    else:
        print("PostgreSQL skipped: set BENCH_POSTGRES_URL or TEST_POSTGRES_URL")

    ok = True
    for name, r in runs:
        print(f"\n{name}: {r['rows']:,} history rows, written in {r['write']:.0f} s")
        for group in ("integration", "license"):
            best, median, n = r[f"new_{group}"]
            line = f"  per {group:<11} new path {best:6.2f} s best, {median:6.2f} s median ({n:,} rows)"
            if f"old_{group}" in r:
                obest, _, _ = r[f"old_{group}"]
                line += f"; old path {obest:6.2f} s ({obest / best:,.0f}x), same table"
            print(line)
        if name.startswith("PostgreSQL"):
            ok &= r["new_integration"][1] < 1.0
    print("\ntarget (new path per integration under 1 s on PostgreSQL):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
