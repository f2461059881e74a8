"""The official Truto Python SDK listing what our export lists: run by bench/sdk_compare.py.

Runs in a throwaway venv that holds the SDK (never the project's), so it imports nothing from
``lib``: the integration rules (which integrations list organizations, which need an
``organization_id`` or a ``product`` for their licenses) come in as JSON on the command line,
from ``lib.integrations``, so both sides follow one rule.

    python bench/sdk_client.py gather|sequential RULES_JSON

Base URL and token come from TRUTO_BASE_URL and TRUTO_API_TOKEN (``TrutoApi(token, base_url)``).
The SDK opens a new aiohttp session (a new connection) for every request and raises on any
non-2xx answer; it has no retry, so a 429 is retried here after its Retry-After, as a user of
the SDK would have to. ``limit`` is sent only when SDK_LIMIT is set (the SDK sends none).
Prints one JSON line: wall seconds inside the process, accounts, license rows, 429s retried.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp
from truto_python_sdk import TrutoApi

RETRIED = 0


async def all_pages(pages) -> list:
    """Every item of a PaginationResult, page by page; a 429 waits its Retry-After and retries."""
    global RETRIED
    items: list = []
    first = True
    while first or pages.next_cursor:
        first = False
        while True:
            try:
                items += await pages.next_page()
                break
            except aiohttp.ClientResponseError as exc:
                if exc.status != 429:
                    raise
                RETRIED += 1
                await asyncio.sleep(float((exc.headers or {}).get("Retry-After") or 1))
    return items


async def one_account(sdk: TrutoApi, account: dict, rules: dict, extra: dict) -> int:
    name = account["integration"]["name"]
    base = {"integrated_account_id": account["id"], "truto_ignore_remote_data": "true", **extra}
    orgs = []
    if name in rules["organizations"]:
        orgs = await all_pages(sdk.unified_api.list("user-directory", "organizations", dict(base)))
    if name in rules["require_organization"]:
        rows = 0
        for org in orgs:
            query = {**base, "organization_id": org["id"]}
            rows += len(await all_pages(sdk.unified_api.list("user-directory", "licenses", query)))
        return rows
    if name in rules["require_product"]:
        query = {**base, "product": rules["product"]}
        return len(await all_pages(sdk.unified_api.list("user-directory", "licenses", query)))
    return len(await all_pages(sdk.unified_api.list("user-directory", "licenses", dict(base))))


async def main(mode: str, rules: dict) -> dict:
    sdk = TrutoApi(os.environ["TRUTO_API_TOKEN"], base_url=os.environ["TRUTO_BASE_URL"])
    extra = {"limit": os.environ["SDK_LIMIT"]} if os.environ.get("SDK_LIMIT") else {}
    started = time.perf_counter()
    accounts = await all_pages(sdk.integrated_accounts.list(**extra))
    if mode == "gather":
        counts = await asyncio.gather(*(one_account(sdk, a, rules, extra) for a in accounts))
    else:
        counts = [await one_account(sdk, a, rules, extra) for a in accounts]
    return {
        "wall": time.perf_counter() - started,
        "accounts": len(accounts),
        "rows": sum(counts),
        "retried_429s": RETRIED,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))))
