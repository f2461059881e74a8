"""Sync at MSP scale: ``python -m lib sync`` over N integrated accounts in 200 tenants.

The emulator (in this process) serves ``synthetic_dataset(N)`` with the accounts spread over 200
tenants, adds ``--latency`` (300 ms) to every answer and enforces the documented limits (500
requests / 10 s per token, 50 / 10 s per account). The sync runs as a real ``python -m lib sync``
process on a fresh database (SQLite file, or a PostgreSQL schema with ``--postgres``). For each
run it prints:

- wall time, from starting the process to its exit (Python's start included);
- the bound: requests past the token's first window ÷ 50/s, plus the latency chain (the account
  list's pages, then the longest account's requests, one after another, × latency);
- requests, 429s the emulator sent, and the request rate: over the whole run, and past the
  first window (the steady rate the token allows is 50/s);
- the peak memory (maximum RSS) of the sync process (``os.wait4``), the emulator not included,
  and its peak while fetching (RSS sampled every 0.2 s up to the last request: after it the
  alerts read the whole snapshot back), and its CPU time; seconds from starting it to its first request, and from its last request to
  its exit (publishing, retention, alerts);
- the accounts shown in the published snapshot, and the exit code.

``--old PATH`` also runs a checkout of the old path (e.g. ``/work/main``: its own ``lib``, one
FetchResult written at the end) on the same emulator, for its figures beside ours.

Run by hand, one at a time: ``flock /tmp/bench.lock .venv/bin/python bench/sync_scale.py
--accounts 500 1000 5000 --old ../main`` (5,000 accounts: about 5 minutes per run).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy import text as sql_text  # noqa: E402

from lib.config import Secret, Settings  # noqa: E402
from lib.jobs.sync import config_key  # noqa: E402
from lib.store import normalize_url  # noqa: E402
from lib.truto.demo import synthetic_dataset  # noqa: E402
from lib.truto.emulator import Emulator  # noqa: E402

TOKEN_LIMIT, ACCOUNT_LIMIT, WINDOW = 500, 50, 10.0
TENANTS = 200
TOKEN = "bench-token"
LIST = "/integrated-account"


def dataset(n: int) -> dict:
    data = synthetic_dataset(n)
    for i, acc in enumerate(data["accounts"]):
        acc["tenant_id"] = f"tenant-{i % TENANTS:03d}"
    return data


def new_database(postgres: str | None, tmp: Path) -> tuple[str, object]:
    """(URL, cleanup): a fresh SQLite file, or a fresh schema in ``postgres``."""
    if not postgres:
        return f"sqlite:///{tmp / f'sync-{uuid.uuid4().hex[:8]}.sqlite'}", lambda: None
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(normalize_url(postgres))
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    db = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return db.render_as_string(hide_password=False), drop


def _sample_rss(pid: int, out: list[tuple[float, float]]) -> None:
    """Append (time, RSS in MB) of process ``pid`` every 0.2 s until it ends."""
    path = Path(f"/proc/{pid}/status")
    while True:
        try:
            text = path.read_text()
        except OSError:
            return
        found = re.search(r"VmRSS:\s+(\d+) kB", text)
        if found is None:  # a zombie: it has exited
            return
        out.append((time.monotonic(), int(found.group(1)) / 1024))
        time.sleep(0.2)


def run(checkout: Path, emu: Emulator, n: int, latency: float, postgres: str | None) -> dict:
    emu.reset_counters()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        db, drop = new_database(postgres, tmp)
        try:
            secrets = tmp / "secrets.toml"
            secrets.write_text("")
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRUTO_")}
            env.pop("PYTHONPATH", None)
            env.update(
                DATABASE_URL=db,
                DASHBOARD_SECRETS_FILE=str(secrets),
                TRUTO_API_TOKEN=TOKEN,
                TRUTO_BASE_URL=emu.base_url,
            )
            log = tmp / "sync.log"
            with log.open("wb") as err:
                started, mono = time.perf_counter(), time.monotonic()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "lib", "sync"],
                    cwd=checkout,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
                samples: list[tuple[float, float]] = []  # (monotonic time, RSS in MB)
                sampling = threading.Thread(
                    target=_sample_rss, args=(proc.pid, samples), daemon=True
                )
                sampling.start()
                _, status, usage = os.wait4(proc.pid, 0)
                wall = time.perf_counter() - started
                ended = time.monotonic()
            proc.returncode = os.waitstatus_to_exitcode(status)
            text = log.read_text(errors="replace")
            c = emu.counters
            times = sorted(t for t, _, _ in c.log)
            first = times[0] if times else 0.0
            past = [t for t in times if t >= first + WINDOW]
            steady = (
                len(past) / (past[-1] - (first + WINDOW))
                if len(past) > 1 and past[-1] > first + WINDOW
                else float("nan")
            )
            listing = c.by_path.get(LIST, 0)
            chain = (listing + max(c.by_account.values(), default=0)) * latency
            bound = max(0, c.requests - TOKEN_LIMIT) / (TOKEN_LIMIT / WINDOW) + chain
            # Read with plain SQL: the old checkout may have left a newer schema than ours.
            settings = Settings(api_token=Secret(TOKEN), base_url=emu.base_url)
            engine = create_engine(normalize_url(db))
            try:
                with engine.connect() as conn:
                    shown = conn.execute(
                        sql_text(
                            "SELECT accounts FROM snapshots WHERE config_key = :k "
                            "ORDER BY taken_at DESC, id DESC LIMIT 1"
                        ),
                        {"k": config_key(settings)},
                    ).scalar()
            finally:
                engine.dispose()
            shown = int(shown or 0)
            progress = [line for line in text.splitlines() if line.startswith("sync: ")]
            rates = [
                float(m.group(1)) for m in map(re.compile(r"([\d.]+) req/s").search, progress) if m
            ]
            return {
                "wall": wall,
                "code": proc.returncode,
                "requests": c.requests,
                "429s": c.rate_limited,
                "bound": bound,
                "chain": chain,
                "rate": c.requests / (times[-1] - first) if len(times) > 1 else float("nan"),
                "steady": steady,
                "rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
                "cpu": usage.ru_utime + usage.ru_stime,
                # RSS while fetching and writing (sampled every 0.2 s up to the last request);
                # after it the sync publishes and the alerts read the whole snapshot back.
                "fetch_mb": max((mb for t, mb in samples if times and t <= times[-1]), default=0.0),
                "before": (first - mono) if times else float("nan"),  # start to first request
                "after": (ended - times[-1]) if times else float("nan"),  # last request to exit
                "shown": shown,
                "progress_lines": len(progress),
                "last_progress": progress[-1] if progress else "",
                "max_shown_rate": max(rates, default=float("nan")),
                "tail": text[-1500:],
            }
        finally:
            drop()  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[500, 1000, 5000])
    ap.add_argument("--latency", type=float, default=0.3)
    ap.add_argument("--old", type=Path, help="a checkout of the old sync (e.g. /work/main)")
    ap.add_argument(
        "--postgres",
        action="store_true",
        help="PostgreSQL from BENCH_POSTGRES_URL (else TEST_POSTGRES_URL) instead of SQLite",
    )
    args = ap.parse_args()
    postgres = None
    if args.postgres:
        postgres = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
        if not postgres:
            sys.exit("set BENCH_POSTGRES_URL (or TEST_POSTGRES_URL) to a PostgreSQL URL")
    print(
        f"limits {TOKEN_LIMIT}/{WINDOW:.0f}s per token, {ACCOUNT_LIMIT}/{WINDOW:.0f}s per account; "
        f"{args.latency * 1000:.0f} ms per answer; {TENANTS} tenants; "
        f"{'PostgreSQL' if postgres else 'SQLite'}; load before: {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(
        f"{'run':>14} {'accounts':>8} {'wall s':>7} {'bound s':>7} {'wall/bound':>10} {'requests':>8} "
        f"{'429s':>5} {'req/s':>6} {'steady':>6} {'peak MB':>7} {'fetch MB':>8} {'CPU s':>6} {'start':>5} "
        f"{'end':>5} {'shown':>6} {'exit':>4}",
        flush=True,
    )
    for n in args.accounts:
        data = dataset(n)
        checkouts = [("streamed", ROOT)] + ([("old", args.old.resolve())] if args.old else [])
        for name, checkout in checkouts:
            # A fresh emulator each run: the token's fixed window outlives a run, and a run
            # starting inside the window the one before opened would get part of it free.
            with Emulator(
                data,
                token=TOKEN,
                latency=args.latency,
                token_limit=TOKEN_LIMIT,
                account_limit=ACCOUNT_LIMIT,
                window=WINDOW,
            ) as emu:
                r = run(checkout, emu, n, args.latency, postgres)
                print(
                    f"{name:>14} {n:8d} {r['wall']:7.1f} {r['bound']:7.1f} "
                    f"{r['wall'] / r['bound']:10.2f} {r['requests']:8d} {r['429s']:5d} "
                    f"{r['rate']:6.1f} {r['steady']:6.1f} {r['rss_mb']:7.0f} {r['fetch_mb']:8.0f} "
                    f"{r['cpu']:6.1f} "
                    f"{r['before']:5.1f} {r['after']:5.1f} {r['shown']:6d} "
                    f"{r['code']:4d}",
                    flush=True,
                )
                if name == "streamed":
                    print(
                        f"{'':>14} progress: {r['progress_lines']} lines, last: {r['last_progress']}",
                        flush=True,
                    )
                if r["code"] not in (0, 2) or r["shown"] != n or math.isnan(r["wall"]):
                    print(r["tail"], file=sys.stderr, flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
