"""Sharded sync benchmark: ``python -m lib sync`` as 1 process, then as 2 and 4 ``--shards`` processes.

The emulator adds 300 ms to every answer and enforces the documented limits (500 requests / 10 s
per token, 50 / 10 s per account). Each process may fetch ``MAX_WORKERS`` accounts at once: a
process that cannot serve its schedule alone. Every run is real: separate ``python -m lib``
processes, one PostgreSQL schema each (from ``BENCH_POSTGRES_URL``, else ``TEST_POSTGRES_URL``).
For each run it prints the wall time (from starting the processes to the last exit, Python's start
included), requests, 429s, the lower bound

    max(requests / token rate, requests x latency / (processes x MAX_WORKERS))

the emulator's CPU time (one Python process serving every request: on a small machine it can
be what binds), and whether every account was fetched exactly once (the same requests per account as the single
process) with every account in the published snapshot.

Run by hand: ``TEST_POSTGRES_URL=postgresql+psycopg://… .venv/bin/python bench/shard.py``
(about two minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from lib.config import Secret, Settings  # noqa: E402
from lib.jobs.sync import config_key  # noqa: E402
from lib.store import Store, normalize_url  # noqa: E402
from lib.truto.demo import synthetic_dataset  # noqa: E402
from lib.truto.emulator import Emulator  # noqa: E402

LATENCY = 0.3
TOKEN_LIMIT, ACCOUNT_LIMIT, WINDOW = 500, 50, 10.0
ACCOUNTS, MAX_WORKERS = 400, 8
TOKEN = "bench-token"


def schema_url(base: str) -> tuple[str, str, str]:
    url = make_url(normalize_url(base))
    conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return (
        url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        ),
        conninfo,
        schema,
    )


def run(base: str, shards: int | None) -> dict:
    data = synthetic_dataset(ACCOUNTS)
    db, conninfo, schema = schema_url(base)
    try:
        Store(db).close()  # the schema, before the processes start
        with (
            Emulator(
                data,
                token=TOKEN,
                latency=LATENCY,
                token_limit=TOKEN_LIMIT,
                account_limit=ACCOUNT_LIMIT,
                window=WINDOW,
            ) as emu,
            tempfile.TemporaryDirectory() as tmp,
        ):
            secrets = Path(tmp) / "secrets.toml"
            secrets.write_text("")
            env = {k: v for k, v in os.environ.items() if not k.startswith("TRUTO_")}
            env.update(
                DATABASE_URL=db,
                DASHBOARD_SECRETS_FILE=str(secrets),
                TRUTO_API_TOKEN=TOKEN,
                TRUTO_BASE_URL=emu.base_url,
                TRUTO_MAX_WORKERS=str(MAX_WORKERS),
            )
            cmd = [sys.executable, "-m", "lib", "sync", "--quiet"]
            if shards:
                cmd += ["--shards", str(shards), "--run-id", "bench"]
            started, cpu = time.perf_counter(), time.process_time()
            logs = [Path(tmp) / f"worker-{i}.log" for i in range(shards or 1)]
            handles = [log.open("wb") for log in logs]
            procs = [
                subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=h)
                for h in handles
            ]
            codes = [p.wait(600) for p in procs]
            for h in handles:
                h.close()
            wall = time.perf_counter() - started
            emulator_cpu = (
                time.process_time() - cpu
            )  # this process only serves the emulator meanwhile
            errors = [log.read_text()[-2000:] for log in logs]
            settings = Settings(api_token=Secret(TOKEN), base_url=emu.base_url)
            store = Store(db)
            try:
                latest = store.latest(config_key(settings))
            finally:
                store.close()
            processes = shards or 1
            return {
                "name": f"{processes} process{'es' if processes > 1 else ''}"
                + (f" (--shards {shards})" if shards else ""),
                "wall": wall,
                "codes": codes,
                "requests": emu.counters.requests,
                "429s": emu.counters.rate_limited,
                "by_account": dict(emu.counters.by_account),
                "accounts_shown": len(latest.accounts),
                "bound": max(
                    emu.counters.requests / (TOKEN_LIMIT / WINDOW),
                    emu.counters.requests * LATENCY / (processes * MAX_WORKERS),
                ),
                "errors": errors,
                "emulator_cpu": emulator_cpu,
            }
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    base = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if not base:
        sys.exit("set BENCH_POSTGRES_URL (or TEST_POSTGRES_URL) to a PostgreSQL URL")
    runs = [run(base, None), run(base, 2), run(base, 4)]
    single = runs[0]["by_account"]
    print(
        f"{ACCOUNTS} accounts, latency {LATENCY * 1000:.0f} ms per request, {MAX_WORKERS} accounts at "
        f"once per process; limits {TOKEN_LIMIT}/{WINDOW:.0f}s per token, {ACCOUNT_LIMIT}/{WINDOW:.0f}s "
        "per account"
    )
    print(
        f"{'run':26} {'wall s':>7} {'requests':>9} {'429s':>5} {'bound s':>8} {'wall/bound':>10} "
        f"{'exit':>8} {'shown':>6} {'emu CPU s':>9} exactly once"
    )
    for r in runs:
        once = r["by_account"] == single
        print(
            f"{r['name']:26} {r['wall']:7.2f} {r['requests']:9d} {r['429s']:5d} {r['bound']:8.2f} "
            f"{r['wall'] / r['bound']:10.2f} {','.join(map(str, r['codes'])):>8} "
            f"{r['accounts_shown']:6d} {r['emulator_cpu']:9.2f} {'yes' if once else 'NO'}"
        )
        if any(r["codes"]):
            print("\n".join(e.strip() for e in r["errors"] if e.strip()), file=sys.stderr)


if __name__ == "__main__":
    main()
