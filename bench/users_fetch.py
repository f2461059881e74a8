"""Users-fetch benchmark: 50 accounts x 2,000 users (100k seat rows) against the emulator.

The emulator adds 300 ms to every answer and enforces the documented limits (500 requests / 10 s
per token, 50 / 10 s per account). Every account lists its organizations and licenses, then its
users: the users lists are the long pole. Printed beside the wall time: the lower bound

    max(requests / 50 per s, pages of the busiest account / 5 per s)

(the token's and one account's documented rates), the requests, the 429s received and the seat
rows built. ``--page-limit`` sets the ``limit`` sent with each list call (default: the setting's).

Run by hand: ``.venv/bin/python bench/users_fetch.py`` (about half a minute).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.config import Secret, Settings  # noqa: E402
from lib.truto.demo import synthetic_dataset  # noqa: E402
from lib.truto.emulator import Emulator  # noqa: E402
from lib.truto.fetch import fetch_all  # noqa: E402

LATENCY = 0.3
TOKEN_LIMIT, ACCOUNT_LIMIT, WINDOW = 500, 50, 10.0
TOKEN = "bench-token"
STATUSES = ("active",) * 17 + ("inactive", "deleted", "invited")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def dataset(accounts: int, users: int) -> dict:
    """The synthetic accounts and licenses, and ``users`` users per account, each holding one of
    its licenses (deterministic; last activity spread over 0-500 days, one in ten without)."""
    data = synthetic_dataset(accounts)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    by_account = {}
    for a, acc in enumerate(data["accounts"]):
        lics = data["licenses"][acc["id"]]
        rows = []
        for u in range(users):
            lic = lics[(u * 7 + a) % len(lics)]
            entry = {"id": lic["id"], "name": lic.get("name")}
            if lic.get("_organization_id"):
                entry["organization_id"] = lic["_organization_id"]
            seen = None if u % 10 == 0 else _iso(today - timedelta(days=(u * 37 + a) % 500))
            rows.append(
                {
                    "id": f"usr-{a}-{u}",
                    "name": f"User {a}-{u}",
                    "emails": [{"email": f"user{a}.{u}@bench.example", "is_primary": True}],
                    "status": STATUSES[(u + a) % len(STATUSES)],
                    "type": "end user",
                    "created_at": _iso(today - timedelta(days=400 + u % 300)),
                    "last_active_at": seen,
                    "last_login_at": seen,
                    "licenses": [entry],
                }
            )
        by_account[acc["id"]] = rows
    data["users"] = by_account
    return data


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=50)
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--page-limit", type=int, default=Settings().page_limit)
    ap.add_argument("--workers", type=int, default=Settings().max_workers)
    args = ap.parse_args()
    data = dataset(args.accounts, args.users)
    with Emulator(
        data,
        token=TOKEN,
        latency=LATENCY,
        token_limit=TOKEN_LIMIT,
        account_limit=ACCOUNT_LIMIT,
        window=WINDOW,
    ) as emu:
        settings = Settings(
            api_token=Secret(TOKEN),
            base_url=emu.base_url,
            token_rate_limit=TOKEN_LIMIT,
            account_rate_limit=ACCOUNT_LIMIT,
            rate_window=WINDOW,
            page_limit=args.page_limit,
            max_workers=args.workers,
        )
        started = time.perf_counter()
        result = fetch_all(settings)
        wall = time.perf_counter() - started
        requests_made = emu.counters.requests
        busiest = max(emu.counters.by_account.values())
        bound = max(requests_made / (TOKEN_LIMIT / WINDOW), busiest / (ACCOUNT_LIMIT / WINDOW))
        rate_limited = emu.counters.rate_limited
    assert result.exit_code() == 0, [o.sentence() for o in result.failures]
    failed = result.activity[result.activity["activity"] != "ok"]
    assert not len(failed), failed.to_dict("records")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.accounts} accounts x {args.users:,} users, limit={args.page_limit}, "
        f"{LATENCY * 1000:.0f} ms latency, {TOKEN_LIMIT}/{WINDOW:.0f} s per token, "
        f"{ACCOUNT_LIMIT}/{WINDOW:.0f} s per account"
    )
    print(
        f"  wall {wall:.1f} s   bound {bound:.1f} s   requests {requests_made:,} "
        f"(busiest account {busiest})   429s {rate_limited}"
    )
    print(
        f"  seat rows {len(result.seats):,}   license rows {len(result.licenses):,}   "
        f"peak memory (ru_maxrss, emulator included) {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()
