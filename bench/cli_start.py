"""Command-line start benchmark: from ``python -m lib export`` starting to its first request.

Starts the emulator in this process (a few accounts), then runs ``python -m lib export`` against it
in a subprocess, several times, and prints per run the seconds from just before the process was
started to the first request the emulator saw (its arrival time, on the same monotonic clock), and
the whole run's wall time. The figure to keep under 0.4 s is the first one. Also prints the time of
``python -m lib export --help`` (the imports alone, nothing fetched).

Run by hand: ``.venv/bin/python bench/cli_start.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lib.truto.demo import synthetic_dataset  # noqa: E402
from lib.truto.emulator import Emulator  # noqa: E402

TOKEN = "bench-token"


def _env(base_url: str, database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUTO_")}
    env.update(
        TRUTO_API_TOKEN=TOKEN,
        TRUTO_BASE_URL=base_url,
        DATABASE_URL=f"sqlite:///{database}",  # none there: nothing saved is read
    )
    return env


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(monotonic time just before the start, wall seconds) of ``python -m lib *args``."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "lib", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"python -m lib {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return started, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--accounts", type=int, default=5)
    args = ap.parse_args()
    firsts, walls, helps = [], [], []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Emulator(synthetic_dataset(args.accounts), token=TOKEN) as emu,
    ):
        env = _env(emu.base_url, Path(tmp) / "none.sqlite")
        for run in range(args.runs):
            emu.reset_counters()
            started, wall = _timed(["export", "--out", str(Path(tmp) / "x.csv"), "--quiet"], env)
            first = emu.counters.log[0][0] - started  # the log holds monotonic arrival times
            firsts.append(first)
            walls.append(wall)
            helps.append(_timed(["export", "--help"], env)[1])
            print(f"run {run + 1}: first request {first:.3f} s   export {wall:.3f} s")
    print(
        f"median of {args.runs}: first request {statistics.median(firsts):.3f} s "
        f"(max {max(firsts):.3f})   export {statistics.median(walls):.3f} s   "
        f"export --help {statistics.median(helps):.3f} s"
    )


if __name__ == "__main__":
    main()
