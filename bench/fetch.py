"""Fetch benchmark: our client against the emulator, beside a naive baseline.

The emulator adds 300 ms to every answer (a real-time unified call waits on
the vendor) and enforces the documented limits (500 requests / 10 s per
token, 50 / 10 s per account). For 50 and 200 accounts it prints wall time,
requests, 429s received and the lower bound (the issue's)

    max(floor((requests - 1) / 500) x 10 s + latency, shortest chain x latency)

The token's window is sliding: 500 requests may leave at once, the 501st only 10 s after the first
(so "requests past the first window / 50 per s" understates it). The shortest chain is the account
list's pages (each needs the cursor of the one before), then an organization list and a license
list; an account's users pages can lengthen it, so at 50 accounts the bound is low.

and runs a naive baseline at 50 accounts: one request at a time, a new
connection for each (as the official Python SDK does).

Run by hand: ``.venv/bin/python bench/fetch.py`` (takes about a minute).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.config import Secret, Settings  # noqa: E402
from lib.integrations import requires_organization, requires_product, supports_organizations  # noqa: E402
from lib.truto.demo import synthetic_dataset  # noqa: E402
from lib.truto.emulator import Emulator  # noqa: E402
from lib.truto.fetch import fetch_all  # noqa: E402

LATENCY = 0.3
TOKEN_LIMIT, ACCOUNT_LIMIT, WINDOW = 500, 50, 10.0
TOKEN = "bench-token"


def chain_length(emu: Emulator) -> int:
    """Requests that must follow one another: the account list's pages, then one account's
    organizations and its licenses."""
    return emu.counters.by_path["/integrated-account"] + 2


def run_ours(accounts: int) -> dict:
    data = synthetic_dataset(accounts)
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
        )
        started = time.perf_counter()
        result = fetch_all(settings)
        wall = time.perf_counter() - started
        requests_made = emu.counters.requests
        # A sliding window lets 500 requests go at once, but request 501 only 10 s after the first:
        # the last of N requests cannot leave before floor((N - 1) / 500) windows have passed.
        bound = max(
            (requests_made - 1) // TOKEN_LIMIT * WINDOW + LATENCY,
            chain_length(emu) * LATENCY,
        )
        assert result.exit_code() == 0, [o.sentence() for o in result.failures]
        return {
            "name": f"ours, {accounts} accounts",
            "wall": wall,
            "requests": requests_made,
            "429s": emu.counters.rate_limited + sum(o.rate_limited for o in result.outcomes),
            "bound": bound,
            "rows": len(result.licenses),
            "max_in_flight": emu.counters.max_in_flight,
        }


def run_naive(accounts: int) -> dict:
    """One request at a time, a new connection each, no pacing: the SDK's way."""
    data = synthetic_dataset(accounts)
    with Emulator(
        data,
        token=TOKEN,
        latency=LATENCY,
        token_limit=TOKEN_LIMIT,
        account_limit=ACCOUNT_LIMIT,
        window=WINDOW,
    ) as emu:
        headers = {"Authorization": f"Bearer {TOKEN}", "Connection": "close"}
        started = time.perf_counter()
        rows = 0

        def get_all(path, params):
            out, cursor = [], None
            while True:
                q = dict(params, **({"next_cursor": cursor} if cursor else {}))
                body = requests.get(
                    emu.base_url + path, params=q, headers=headers, timeout=30
                ).json()
                out += body["result"]
                cursor = body.get("next_cursor")
                if not cursor:
                    return out

        for acc in get_all("/integrated-account", {}):
            name = acc["integration"]["name"]
            base = {"integrated_account_id": acc["id"], "truto_ignore_remote_data": "true"}
            orgs = (
                get_all("/unified/user-directory/organizations", base)
                if supports_organizations(name)
                else []
            )
            if requires_organization(name):
                for org in orgs:
                    rows += len(
                        get_all(
                            "/unified/user-directory/licenses",
                            {**base, "organization_id": org["id"]},
                        )
                    )
            elif requires_product(name):
                rows += len(
                    get_all(
                        "/unified/user-directory/licenses",
                        {**base, "product": "azure_active_directory"},
                    )
                )
            else:
                rows += len(get_all("/unified/user-directory/licenses", base))
        wall = time.perf_counter() - started
        return {
            "name": f"naive baseline, {accounts} accounts",
            "wall": wall,
            "requests": emu.counters.requests,
            "429s": emu.counters.rate_limited,
            "bound": None,
            "rows": rows,
            "max_in_flight": 1,
        }


def main() -> None:
    runs = [
        run_ours(50),
        run_ours(200),
        run_naive(50),
        run_ours(400),
    ]  # 400: past the token window, pacing binds
    print(
        f"latency {LATENCY * 1000:.0f} ms per request; limits {TOKEN_LIMIT}/{WINDOW:.0f}s per token, "
        f"{ACCOUNT_LIMIT}/{WINDOW:.0f}s per account"
    )
    print(
        f"{'run':32} {'wall s':>8} {'requests':>9} {'429s':>5} {'bound s':>8} {'wall/bound':>10} {'rows':>6}"
    )
    for r in runs:
        ratio = f"{r['wall'] / r['bound']:.2f}" if r["bound"] else "-"
        bound = f"{r['bound']:.2f}" if r["bound"] else "-"
        print(
            f"{r['name']:32} {r['wall']:8.2f} {r['requests']:9d} {r['429s']:5d} {bound:>8} {ratio:>10} {r['rows']:6d}"
        )
    speedup = runs[2]["wall"] / runs[0]["wall"]
    print(f"speed-up over the naive baseline at 50 accounts: {speedup:.1f}x")


if __name__ == "__main__":
    main()
