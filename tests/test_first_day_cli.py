"""The first day on a real Truto environment (issue 22), on the command line.

Every command of ``python -m lib`` in a real subprocess, against an emulator with every fault it knows
switched on (lib.truto.demo.first_day_dataset), on an empty database with nothing saved: no traceback, a
clear message, and the exit code the README names (0 every account fetched, 2 some failed, 1 nothing
or the configuration; alerts: 1 no snapshot yet, 0 nothing new to send, 3 alerts fired).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.truto.demo import first_day_dataset
from lib.truto.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "first-day-cli-token-51d0"


@pytest.fixture(scope="module")
def truto():
    data, faults = first_day_dataset()
    emu = Emulator(data, token=TOKEN, faults=faults).start()
    yield emu
    emu.stop()


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "lib", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
    assert TOKEN not in proc.stderr + proc.stdout
    return proc


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def test_every_command_on_the_first_day(truto, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUTO_", "DATABASE_URL"))}
    env.update(
        {
            "TRUTO_API_TOKEN": TOKEN,
            "TRUTO_BASE_URL": truto.base_url,
            "TRUTO_MAX_ATTEMPTS": "3",  # enough for the account that recovers; the rate-limited one waits 2 s, not 4
            "DATABASE_URL": f"sqlite:///{tmp_path / 'dashboard.sqlite'}",
            "DASHBOARD_SECRETS_FILE": str(tmp_path / "no-secrets.toml"),
        }
    )
    failed = 8  # accounts that fail (lib.truto.demo._FAULT_ACCOUNTS and the demo's Zoom EU)

    # Nothing synced yet: the alerts have nothing to evaluate, and say what to run.
    alerts = run(["alerts", "--dry-run"], env)
    assert alerts.returncode == 1
    assert "No snapshot to evaluate yet: run `python -m lib sync` first." in alerts.stderr

    summary = run(["summary"], env)
    assert summary.returncode == 2, summary.stderr[-2000:]
    assert sum(line.startswith("FAILED") for line in summary.stderr.splitlines()) == failed
    assert "record(s) could not be read as sent" in summary.stderr
    table = summary.stdout
    assert "Annual spend (USD)" in table and "not known" in table
    assert "Left out: no rate for EUR" in table and "Left out: no rate for GBP" in table
    assert "paid seats, not known a year" in table

    as_json = run(["summary", "--json"], env)
    assert as_json.returncode == 2
    figures = json.loads(as_json.stdout)
    assert figures["paid_licenses"]["annual_spend"] is None  # not known, never 0
    assert set(figures["paid_licenses"]["excluded_by_currency"]) == {"EUR", "GBP"}

    out = tmp_path / "licenses.csv"
    export = run(["export", "--out", str(out), "--quiet"], env)
    assert export.returncode == 2
    assert f"wrote {len(rows(out))} license rows" in export.stderr and rows(out)

    seats = tmp_path / "reclaim.csv"
    reclaim = run(["reclaim", "--out", str(seats), "--quiet"], env)
    assert reclaim.returncode == 2
    assert "FAILED seat activity of account" in reclaim.stderr  # the users listing that fails
    done = next(line for line in reclaim.stderr.splitlines() if line.startswith("wrote "))
    assert f"wrote {len(rows(seats))} reclaimable seats" in done
    # Nothing reclaimable has a price on the first day: not known, never "0.00 USD a year".
    assert "not known a year" in done and "0.00" not in done

    sync = run(["sync", "--quiet"], env)
    assert sync.returncode == 2
    assert "Wrote snapshot 1" in sync.stderr
    assert "No alert channel is configured" in sync.stderr
    assert sum(line.startswith("FIRED") for line in sync.stderr.splitlines()) >= failed

    # The sync sent what fired; a later check has nothing new (and still no channel to send by).
    again = run(["alerts", "--digest"], env)
    assert again.returncode == 0, again.stderr
    assert "No new alerts" in again.stderr
    listed = run(["alerts", "--json"], env)
    assert listed.returncode == 0 and json.loads(listed.stdout)["fired"] == []


def test_the_first_day_data_set_switches_on_every_fault_the_emulator_knows():
    from dataclasses import fields

    from lib.truto.emulator import Faults

    data, faults = first_day_dataset()
    ids = {a["id"] for a in data["accounts"]}
    assert set(faults) <= ids
    default = Faults()
    on = {
        f.name
        for switched in faults.values()
        for f in fields(Faults)
        if getattr(Faults.from_dict(switched), f.name) != getattr(default, f.name)
    }
    assert on == {f.name for f in fields(Faults)}
    currencies = {
        r.get("currency") for recs in data["licenses"].values() for r in recs if isinstance(r, dict)
    }
    assert {"EUR", "GBP"} <= currencies  # licenses priced in currencies no rate is saved for


def test_the_emulator_command_serves_every_fault(tmp_path):
    import requests

    from lib.truto.demo import DEMO_TOKEN
    from tests.browser import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "lib", "emulator", "--every-fault", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once the server listens
        data, faults = first_day_dataset()
        assert f"serving {len(data['accounts'])} accounts at http://127.0.0.1:{port}" in first
        blocked = next(a for a, f in faults.items() if f.get("blocked_503"))
        answer = requests.get(
            f"http://127.0.0.1:{port}/unified/user-directory/licenses",
            params={"integrated_account_id": blocked},
            headers={"Authorization": f"Bearer {DEMO_TOKEN}"},
            timeout=10,
        )
        assert answer.status_code == 503
    finally:
        proc.terminate()
        proc.wait(10)
