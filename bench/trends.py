"""Trends benchmark: 10,000 licenses x 730 daily snapshots (7.3M history rows): the rollup, the
full scan and the pandas path.

Rollup (what the Trends page does): ``Store.trend_sums`` given ``pricing`` (``trend_pricing``: the
price book and rates) reads the sums kept per day (``lib.store.rollup``), building the days missing
first. Timed: the first build of every day, rebuilding one day (what a sync's new snapshot costs),
and the reads per integration and per license (the page's 12 licenses with the most seats bought at
the latest date), median of ``--reads``. Full scan (the path for tenant, account or search filters):
the database adds up every history row per read (``trend_sums`` with today's prices from
``trend_prices``). Pandas path (what the page did first): every row loaded (``Store.history``),
priced (``add_metrics``) and grouped (``trend_frame``). All three are checked equal.

The history: the synthetic data set of ``lib.truto.demo`` (500 accounts x 20 licenses) written
once by the store's own writer (COPY on PostgreSQL), then copied to one snapshot per day inside
the database, with seat counts moving day to day and one account in 97 failing each day (its
rows carried, stale). Prices and rates: the demo's.

PostgreSQL runs when ``BENCH_POSTGRES_URL`` or ``TEST_POSTGRES_URL`` is set (in a fresh schema
dropped afterwards). Target: a Trends read (per integration) under 1 s on PostgreSQL at 7.3M rows.

Measured 2026-12-03 (``flock /tmp/bench.lock .venv/bin/python bench/trends.py --no-old``, 2 cores):
see the README's Trends figures.

Run by hand: ``.venv/bin/python bench/trends.py [--licenses 10000] [--days 730] [--reads 5]
[--no-old] [--no-scan] [--no-sqlite]``.
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


def build(store: Store, base, days: int, end: datetime) -> float:
    """Day 0 through the store's writer (one snapshot as a sync writes it); every later day copied
    from it inside the database (INSERT ... SELECT: the 7.3M rows never pass through Python), with
    seat counts moving day to day and one account in 97 failing each day (no rows: stale)."""
    from sqlalchemy import insert, select, text

    from lib.store import ACCOUNT_SNAPSHOTS, SNAPSHOTS
    from lib.store.tables import _to_us

    seed_demo_pricing(store)
    started = time.perf_counter()
    first = end - timedelta(days=days - 1)
    base_id = store.write_snapshot(base, KEY, taken_at=first)
    a_cols = [c.name for c in ACCOUNT_SNAPSHOTS.columns if c.name != "id"]
    copied = {
        "snapshot_id": ":sid",
        "taken_at": ":taken",
        "good": "good_now",
        "outcome": "outcome_now",
    }
    lic_cols = [c for c in LICENSE_COLUMNS if c != "assigned_seats"]
    with store._write() as conn:
        accounts = (
            conn.execute(
                select(ACCOUNT_SNAPSHOTS.c.account_id)
                .where(ACCOUNT_SNAPSHOTS.c.snapshot_id == base_id)
                .order_by(ACCOUNT_SNAPSHOTS.c.account_id)
            )
            .scalars()
            .all()
        )
        rank = {a: i for i, a in enumerate(accounts)}
        for d in range(1, days):
            taken = first + timedelta(days=d)
            sid = conn.execute(
                insert(SNAPSHOTS)
                .values(
                    config_key=KEY,
                    taken_at=taken,
                    started_at=taken,
                    finished_at=taken,
                    written_at=taken,
                    demo=False,
                    exit_code=0,
                    accounts=len(accounts),
                    license_rows=0,
                )
                .returning(SNAPSHOTS.c.id)
            ).scalar_one()
            failing = [a for a in accounts if rank[a] % 97 == d % 97] or [""]
            fail_in = ", ".join(f":f{i}" for i in range(len(failing)))
            params = {
                "sid": sid,
                "base": base_id,
                **{f"f{i}": a for i, a in enumerate(failing)},
            }
            params["taken"] = _to_us(taken) if store.is_sqlite else taken
            select_list = ", ".join(copied.get(c, c) for c in a_cols)
            conn.execute(
                text(
                    f"INSERT INTO account_snapshots ({', '.join(a_cols)}) SELECT {select_list} FROM "
                    f"(SELECT *, account_id NOT IN ({fail_in}) AS good_now, CASE WHEN account_id "
                    f"IN ({fail_in}) THEN 'failed' ELSE outcome END AS outcome_now "
                    f"FROM account_snapshots WHERE snapshot_id = :base) b"
                ),
                params,
            )
        # every later day's license rows in one statement, from the base's rows by account
        conn.execute(
            text("CREATE TEMPORARY TABLE base_map (account_id TEXT PRIMARY KEY, oid BIGINT)")
        )
        conn.execute(
            text(
                "INSERT INTO base_map SELECT account_id, id FROM account_snapshots "
                "WHERE snapshot_id = :base"
            ),
            {"base": base_id},
        )
        moved = "r.assigned_seats + ((r.position + n.snapshot_id - :base) % 13) - 6"
        conn.execute(
            text(
                f"INSERT INTO license_rows (account_snapshot_id, position, assigned_seats, "
                f"{', '.join(lic_cols)}) SELECT n.id, r.position, CASE WHEN r.assigned_seats "
                f"IS NULL THEN NULL WHEN {moved} < 0 THEN 0 WHEN r.total_seats IS NOT NULL AND "
                f"{moved} > r.total_seats THEN r.total_seats ELSE {moved} END, "
                f"{', '.join('r.' + c for c in lic_cols)} FROM account_snapshots n "
                # CROSS JOIN: SQLite joins in this order (the base's rows by key, not a scan)
                "CROSS JOIN base_map m CROSS JOIN license_rows r "
                "WHERE n.snapshot_id > :base AND n.config_key = :key AND n.good "
                "AND m.account_id = n.account_id AND r.account_snapshot_id = m.oid"
            ),
            {"base": base_id, "key": KEY},
        )
        conn.execute(text("DROP TABLE base_map"))
    with store.engine.connect() as conn:
        conn.execute(text("ANALYZE"))  # what autovacuum (PostgreSQL) or an optimize would have done
        conn.commit()
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


def new_path(
    store: Store, metrics, options, group: str, tenants: tuple = (), pricing=None
) -> pd.DataFrame:
    """The database adding up every row at today's prices; given ``pricing``, what the Trends page
    does now: ``trend_sums`` reads the rollup (with a tenant filter: adds up every row, each priced
    by its license class)."""
    sums = store.trend_sums(
        KEY,
        None,
        T.GROUPS[group],
        T.trend_prices(metrics, options),
        top=TOP if group == "license" else None,
        pricing=pricing,
        tenants=tenants,
    )
    return T.trend_from_sums(sums, group)


def rollup_path(
    store: Store, metrics, options, pricing, group: str, tenants: tuple = ()
) -> pd.DataFrame:
    return new_path(store, metrics, options, group, tenants, pricing)


def timed(fn, reads: int) -> tuple[float, float, pd.DataFrame]:
    times, out = [], None
    for _ in range(reads):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    assert out is not None
    return min(times), statistics.median(times), out


def rebuild_last_day(store: Store, pricing) -> float:
    """Forget the latest day (as a sync's new snapshot does) and build it again."""
    from lib.store._rollup import forget_rollup
    from lib.store.tables import DAY_US, _to_us

    last = _to_us(store.latest(KEY).taken_at) // DAY_US * DAY_US
    with store._write() as conn:
        forget_rollup(conn, KEY, from_day_us=last)
    started = time.perf_counter()
    assert store.build_trend_rollup(KEY, pricing) == 1
    return time.perf_counter() - started


def bench(url: str, base, days: int, reads: int, old: bool, scan: bool) -> dict:
    store = Store(url)
    try:
        end = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
        write = build(store, base, days, end)
        book, options = store.get_price_book(), metric_options(store)
        latest = store.latest(KEY)
        metrics = add_metrics(latest.licenses, book, options)
        tenants = tuple(sorted(latest.licenses["tenant_id"].dropna().unique()))
        pricing = T.trend_pricing(book, options)
        out: dict = {"write": write, "rows": store_rows(store)}
        started = time.perf_counter()
        out["built_days"] = store.build_trend_rollup(KEY, pricing)
        out["first_build"] = time.perf_counter() - started
        out["rollup_rows"] = store_rows(store, "trend_rollup")
        out["one_day"] = statistics.median(rebuild_last_day(store, pricing) for _ in range(3))
        for group in ("integration", "license"):
            best, median, frame = timed(
                lambda g=group: rollup_path(store, metrics, options, pricing, g), reads
            )
            out[f"rollup_{group}"] = (best, median, len(frame))
            if scan:
                sbest, smedian, scanned = timed(
                    lambda g=group: new_path(store, metrics, options, g), 1
                )
                out[f"new_{group}"] = (sbest, smedian, len(scanned))
                pd.testing.assert_frame_equal(frame, scanned)
                # a tenant filter (every tenant: the same table) adds up every row, priced by class
                cbest, cmedian, by_class = timed(
                    lambda g=group: rollup_path(store, metrics, options, pricing, g, tenants), 1
                )
                out[f"class_{group}"] = (cbest, cmedian, len(by_class))
                pd.testing.assert_frame_equal(frame, by_class)
                # the same filter priced by today's prices per license (as before)
                tbest, tmedian, by_today = timed(
                    lambda g=group: new_path(store, metrics, options, g, tenants), 1
                )
                out[f"today_{group}"] = (tbest, tmedian, len(by_today))
                pd.testing.assert_frame_equal(frame, by_today)
            if old:
                obest, omedian, reference = timed(
                    lambda g=group: old_path(store, book, options, g), 1
                )
                out[f"old_{group}"] = (obest, omedian, len(reference))
                pd.testing.assert_frame_equal(frame, reference)
        return out
    finally:
        store.close()


def store_rows(store: Store, table: str = "license_rows") -> int:
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licenses", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--reads", type=int, default=5, help="rollup reads timed (median)")
    parser.add_argument("--no-old", action="store_true", help="skip the pandas path")
    parser.add_argument("--no-scan", action="store_true", help="skip the full-scan SQL path")
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
            runs.append(
                (
                    "SQLite",
                    bench(url, base, args.days, args.reads, not args.no_old, not args.no_scan),
                )
            )
    pg = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if pg:
        url, drop = postgres_schema_url(pg)
        try:
            runs.append(
                (
                    f"PostgreSQL ({redact_url(pg)})",
                    bench(url, base, args.days, args.reads, not args.no_old, not args.no_scan),
                )
            )
        finally:
            drop()
    else:
        print("PostgreSQL skipped: set BENCH_POSTGRES_URL or TEST_POSTGRES_URL")

    ok = True
    for name, r in runs:
        print(
            f"\n{name}: {r['rows']:,} history rows, written in {r['write']:.0f} s; rollup: "
            f"{r['built_days']} days built in {r['first_build']:.1f} s ({r['rollup_rows']:,} rows), "
            f"one day rebuilt in {r['one_day']:.2f} s (median of 3)"
        )
        for group in ("integration", "license"):
            best, median, n = r[f"rollup_{group}"]
            line = (
                f"  per {group:<11} rollup {best:6.2f} s best, {median:6.2f} s median ({n:,} rows)"
            )
            if f"new_{group}" in r:
                line += f"; full scan {r[f'new_{group}'][0]:6.2f} s"
                line += (
                    f"; tenant filter {r[f'class_{group}'][0]:.2f} s priced by class, "
                    f"{r[f'today_{group}'][0]:.2f} s by today's prices"
                )
            if f"old_{group}" in r:
                line += f"; pandas {r[f'old_{group}'][0]:6.2f} s"
            if f"new_{group}" in r or f"old_{group}" in r:
                line += ", same table"
            print(line)
        if name.startswith("PostgreSQL"):
            ok &= r["rollup_integration"][1] < 1.0
    if not any(name.startswith("PostgreSQL") for name, _ in runs):
        print("\ntarget (per integration under 1 s on PostgreSQL): not measured")
        return 0
    print("\ntarget (per integration under 1 s on PostgreSQL):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
