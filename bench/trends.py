"""Trends benchmark: 10,000 licenses x 730 daily snapshots (7.3M history rows), old path vs new.

Old path (what the Trends page did): every license row of every day loaded into pandas
(``Store.history``), priced at today's prices (``add_metrics``) and grouped (``trend_frame``).
New path: the database adds up per day and group (``Store.trend_sums`` with today's prices from
``trend_prices``, finished by ``trend_from_sums``). Both per integration, and per license (the
page's 12 licenses with the most seats bought at the latest date). The two are checked equal.

The history: the synthetic data set of ``lib.truto.demo`` (500 accounts x 20 licenses) written
once by the store's own writer (COPY on PostgreSQL), then copied to one snapshot per day inside
the database, with seat counts moving day to day and one account in 97 failing each day (its
rows carried, stale). Prices and rates: the demo's.

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
            best, median, frame = timed(lambda g=group: new_path(store, metrics, options, g), reads)
            out[f"new_{group}"] = (best, median, len(frame))
            if old:
                obest, omedian, reference = timed(
                    lambda g=group: old_path(store, book, options, g), 1
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
    if not any(name.startswith("PostgreSQL") for name, _ in runs):
        print("\ntarget (new path per integration under 1 s on PostgreSQL): not measured")
        return 0
    print(
        "\ntarget (new path per integration under 1 s on PostgreSQL):", "met" if ok else "NOT met"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
