"""Our export beside the official Truto Python SDK (truto-python-sdk 0.1.6), in the same run.

One emulator (lib/truto/emulator.py, a real HTTP server on loopback): 50 synthetic accounts,
300 ms added to every answer, the documented limits (500 requests / 10 s per token, 50 / 10 s per
integrated account) and a small default page size (4 records a page when a call sends no
``limit``). Against it, each as a fresh process timed from outside (process start included):

- ours: ``python -m lib export`` (TRUTO_BASE_URL, TRUTO_API_TOKEN; users and billing off, so
  both sides list the same things: the accounts, then each account's organizations and licenses);
- the SDK with ``asyncio.gather`` over the accounts, and the SDK one account at a time
  (bench/sdk_client.py, in a throwaway venv: the SDK declares Python >= 3.12 and is installed
  with ``--ignore-requires-python``, never into the project's venv);
- for reference, the SDK with ``asyncio.gather`` sending ``limit=100`` as our export does (how
  much of the gap is the page size rather than the client).

Printed: wall times, requests and 429s (the emulator counts them), the bound

    max(requests past the first window / 50 per s, longest chain x latency) + process start

(the token's first 500 requests go at once; after that 50 a second; the chain is the account
list's pages then the busiest account's calls, one after another; process start is
``python -m lib export`` against an emulator with no accounts and no latency), and the ratios
against the targets: ours >= 2x faster than the SDK's gather, >= 10x faster than one at a time,
and within 1.25x of the bound.

Run by hand: ``.venv/bin/python bench/sdk_compare.py`` (about two minutes). It creates the venv
(default /tmp/sdk-venv, ``--venv``) when it has no SDK yet.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.config import Settings  # noqa: E402
from lib.integrations import (  # noqa: E402
    requires_organization,
    requires_product,
    supports_organizations,
)
from lib.truto.demo import synthetic_dataset  # noqa: E402
from lib.truto.emulator import Emulator  # noqa: E402

SDK = "truto-python-sdk==0.1.6"
ACCOUNTS, LATENCY, PAGE_SIZE = 50, 0.3, 4
TOKEN_LIMIT, ACCOUNT_LIMIT, WINDOW = 500, 50, 10.0
TOKEN = "bench-token"
REPEAT = 3  # fresh processes per timed run (the median is shown); one at a time runs once
TARGET_GATHER, TARGET_SEQUENTIAL, TARGET_BOUND = 2.0, 10.0, 1.25


def sdk_python(venv: Path) -> Path:
    """The throwaway venv's python, with the SDK installed (created on first use)."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import truto_python_sdk"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", SDK, "--ignore-requires-python"], check=True
    )
    return python


def rules(data: dict) -> dict:
    """Which integrations list organizations / need one / need a product (lib.integrations)."""
    names = {a["integration"]["name"] for a in data["accounts"]}
    return {
        "organizations": sorted(n for n in names if supports_organizations(n)),
        "require_organization": sorted(n for n in names if requires_organization(n)),
        "require_product": sorted(n for n in names if requires_product(n)),
        "product": Settings().products[0],
    }


def emulator(data: dict, latency: float = LATENCY) -> Emulator:
    return Emulator(
        data,
        token=TOKEN,
        latency=latency,
        token_limit=TOKEN_LIMIT,
        account_limit=ACCOUNT_LIMIT,
        window=WINDOW,
        page_size=PAGE_SIZE,
    )


def env_for(emu: Emulator, secrets: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUTO_", "SDK_"))}
    env.update(
        TRUTO_BASE_URL=emu.base_url,
        TRUTO_API_TOKEN=TOKEN,
        TRUTO_FETCH_USERS="false",
        TRUTO_FETCH_BILLING="false",
        DASHBOARD_SECRETS_FILE=str(secrets),  # an empty file: nothing from a secrets.toml
    )
    return env


def export_cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "lib", "export", "--out", str(out), "--quiet", "--no-saved"]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - started, done


def chain_length(emu: Emulator) -> int:
    """The account list's pages, then the busiest account's calls: they follow one another."""
    return emu.counters.by_path["/integrated-account"] + max(emu.counters.by_account.values())


def run(name: str, data: dict, cmd: list[str], secrets: Path, extra_env=None, repeat=REPEAT):
    """The median wall of ``repeat`` fresh processes, each on a fresh emulator (fresh limits);
    the counts are the last run's (every run makes the same requests)."""
    walls = []
    for _ in range(repeat):
        with emulator(data) as emu:
            wall, done = timed(cmd, {**env_for(emu, secrets), **(extra_env or {})})
            if done.returncode != 0:
                raise SystemExit(f"{name}: exit {done.returncode}\n{done.stderr[-2000:]}")
            walls.append(wall)
    c = emu.counters
    return {
        "name": name,
        "wall": statistics.median(walls),
        "walls": walls,
        "requests": c.requests,
        "429s": c.rate_limited,
        "chain": chain_length(emu),
        "max_in_flight": c.max_in_flight,
        "stdout": done.stdout,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", type=Path, default=Path("/tmp/sdk-venv"))
    args = ap.parse_args()
    python = sdk_python(args.venv)
    data = synthetic_dataset(ACCOUNTS)
    client = str(ROOT / "bench" / "sdk_client.py")
    plan = json.dumps(rules(data))
    with tempfile.TemporaryDirectory() as tmp:
        secrets = Path(tmp) / "secrets.toml"
        secrets.write_text("")
        out = Path(tmp) / "export.csv"
        with emulator({"accounts": []}, latency=0.0) as emu:  # process start: no accounts, no wait
            cmd, env = export_cmd(Path(tmp) / "empty.csv"), env_for(emu, secrets)
            timed(cmd, env)  # once first, not counted: a cold file cache is not process start
            start = statistics.median(timed(cmd, env)[0] for _ in range(REPEAT))
        ours = run("ours (python -m lib export)", data, export_cmd(out), secrets)
        with out.open(encoding="utf-8-sig", newline="") as fh:
            ours["rows"] = sum(1 for _ in csv.DictReader(fh))
        runs = [
            ours,
            run("SDK, asyncio.gather", data, [str(python), client, "gather", plan], secrets),
            run(
                "SDK, one at a time",
                data,
                [str(python), client, "sequential", plan],
                secrets,
                repeat=1,
            ),
            run(
                "SDK, gather, limit=100 (ref.)",
                data,
                [str(python), client, "gather", plan],
                secrets,
                {"SDK_LIMIT": str(Settings().page_limit)},
            ),
        ]
    for r in runs[1:]:
        inner = json.loads(r["stdout"].strip().splitlines()[-1])
        r["rows"] = inner["rows"]
    past_window = max(ours["requests"] - TOKEN_LIMIT, 0)
    bound = max(past_window / (TOKEN_LIMIT / WINDOW), ours["chain"] * LATENCY) + start
    print(
        f"{ACCOUNTS} accounts, {LATENCY * 1000:.0f} ms per answer, default page size {PAGE_SIZE}, "
        f"limits {TOKEN_LIMIT}/{WINDOW:.0f} s per token and {ACCOUNT_LIMIT}/{WINDOW:.0f} s per "
        f"account; users and billing off; wall = fresh process, start included"
    )
    print(
        f"{'run':32} {'wall s':>7} {'requests':>9} {'429s':>5} {'chain':>6} {'in flight':>9} {'rows':>6}  (each run, s)"
    )
    for r in runs:
        print(
            f"{r['name']:32} {r['wall']:7.2f} {r['requests']:9d} {r['429s']:5d} {r['chain']:6d} "
            f"{r['max_in_flight']:9d} {r['rows']:6d}  ({', '.join(f'{w:.2f}' for w in r['walls'])})"
        )
    print(
        f"process start {start:.2f} s; bound for ours = max({past_window} past the first window / "
        f"{TOKEN_LIMIT / WINDOW:.0f} per s, chain {ours['chain']} x {LATENCY} s) + start = {bound:.2f} s"
    )
    checks = [
        ("SDK gather / ours", runs[1]["wall"] / ours["wall"], TARGET_GATHER, ">="),
        ("SDK one at a time / ours", runs[2]["wall"] / ours["wall"], TARGET_SEQUENTIAL, ">="),
        ("ours / bound", ours["wall"] / bound, TARGET_BOUND, "<="),
    ]
    for label, value, target, op in checks:
        met = value >= target if op == ">=" else value <= target
        print(f"  {label:26} {value:6.2f}  (target {op} {target}: {'met' if met else 'MISSED'})")
    print(f"  SDK gather with limit=100 / ours: {runs[3]['wall'] / ours['wall']:.2f} (reference)")
    if len({r["rows"] for r in runs}) != 1:
        print("  WARNING: the runs did not list the same number of license rows")


if __name__ == "__main__":
    main()
