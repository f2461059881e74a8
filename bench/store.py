"""Store benchmark: write a 100k-row snapshot, then read the latest snapshot as the Overview does.

The data is the synthetic data set of ``lib.demo`` (5,000 accounts x 20
licenses) put through the same normalization as a real fetch, with text, NA
and timestamps as a fetch produces them. For each database it prints the
write time, the ``Store.latest()`` time (best and median of several reads),
and the row counts read back. Target: ``latest()`` under 1 s at 100k rows.

PostgreSQL runs when ``BENCH_POSTGRES_URL`` or ``TEST_POSTGRES_URL`` is set
(it works in a fresh schema it drops afterwards); otherwise it is skipped
with a message.

Run by hand: ``.venv/bin/python bench/store.py [--rows 100000] [--reads 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.store import Store, redact_url  # noqa: E402
from lib.truto.demo import synthetic_result as _synthetic_result  # noqa: E402

LICENSES_PER_ACCOUNT = 20


def synthetic_result(rows: int):
    return _synthetic_result(rows, LICENSES_PER_ACCOUNT)


def bench(url: str, result, reads: int) -> dict:
    store = Store(url)
    try:
        started = time.perf_counter()
        store.write_snapshot(result, "bench")
        write = time.perf_counter() - started
        times = []
        for _ in range(reads):
            started = time.perf_counter()
            latest = store.latest("bench")
            times.append(time.perf_counter() - started)
        assert len(latest.licenses) == len(result.licenses), (
            len(latest.licenses),
            len(result.licenses),
        )
        return {
            "write": write,
            "read_best": min(times),
            "read_median": statistics.median(times),
            "rows": len(latest.licenses),
            "accounts": len(latest.accounts),
        }
    finally:
        store.close()


def postgres_schema_url(base: str):
    """A URL whose connections work in a new schema, and a function that drops it."""
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = make_url(Store(base, upgrade=False).url)
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    result = synthetic_result(args.rows)
    print(
        f"synthetic snapshot: {len(result.licenses):,} license rows, {len(result.accounts):,} accounts "
        f"(built in {time.perf_counter() - started:.1f} s)"
    )

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(("SQLite", bench(f"sqlite:///{tmp}/bench.sqlite", result, args.reads)))
    pg = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if pg:
        url, drop = postgres_schema_url(pg)
        try:
            rows.append((f"PostgreSQL ({redact_url(pg)})", bench(url, result, args.reads)))
        finally:
            drop()
    else:
        print("PostgreSQL skipped: set BENCH_POSTGRES_URL or TEST_POSTGRES_URL")

    print(
        f"{'database':<60} {'write':>8} {'latest() best':>14} {'median':>8} {'rows':>9} {'accounts':>9}"
    )
    ok = True
    for name, r in rows:
        print(
            f"{name:<60} {r['write']:>7.2f}s {r['read_best']:>13.3f}s {r['read_median']:>7.3f}s "
            f"{r['rows']:>9,} {r['accounts']:>9,}"
        )
        ok &= r["read_median"] < 1.0
    print("target (latest() under 1 s):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
