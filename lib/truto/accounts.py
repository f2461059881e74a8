"""Which integrated accounts a fetch covers: listed (by tenant) or named, each once; vendor text made safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from typing import Any

from lib.config import Settings
from lib.truto.client import TrutoClient, TrutoError
from lib.truto.outcomes import ACTIONS, AccountOutcome, FetchError
from lib.truto.text import clean_text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return clean_text(str(value.get("message") or value.get("error") or value))
    return clean_text(str(value))


def _integration_name(account: dict) -> str | None:
    integ = account.get("integration")
    name = integ.get("name") if isinstance(integ, dict) else integ
    return _plain(name) if isinstance(name, str) else None


def _plain(value: Any) -> str | None:
    """Vendor text (a name, a tenant) as safe text (:func:`clean_text`), or None when it is not text."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return clean_text(str(value)).strip() or None
    return None


def list_accounts(client: TrutoClient, settings: Settings) -> list[dict]:
    """The environment's integrated accounts (all pages, filtered by tenant when set)."""
    params: dict[str, Any] = {}
    if settings.tenant_id:
        params["tenant_id"] = settings.tenant_id
    if settings.account_page_limit:
        params["limit"] = settings.account_page_limit
    accounts = client.list_all("/integrated-account", params, account_id=None)
    if settings.tenant_id:  # the filter's exact behaviour is not documented: apply it here too
        accounts = [
            a for a in accounts if isinstance(a, dict) and a.get("tenant_id") == settings.tenant_id
        ]
    return [a for a in accounts if isinstance(a, dict) and a.get("id")]


def distinct_accounts(accounts: list[dict]) -> tuple[list[dict], list[str]]:
    """Each account once, by id compared as text (the first listing kept), and the ids that were repeated:
    fetching an account twice would count its seats twice."""
    seen: set[str] = set()
    out, repeated = [], []
    for acc in accounts:
        aid = str(acc["id"])
        if aid in seen:
            if clean_text(aid) not in repeated:
                repeated.append(clean_text(aid))
            continue
        seen.add(aid)
        out.append(acc)
    return out, repeated


def _fetch_error(exc: TrutoError) -> FetchError:
    what = (
        "Truto refused the API token"
        if exc.kind == "auth"
        else "Could not list the integrated accounts"
    )
    return FetchError(f"{what} ({exc}). {ACTIONS.get(exc.kind, ACTIONS['http'])}")


def _resolve_accounts(
    client: TrutoClient,
    settings: Settings,
    pool: ThreadPoolExecutor,
    outcomes: list[AccountOutcome],
) -> list[dict]:
    if not settings.integrated_account_ids:
        try:
            return list_accounts(client, settings)
        except TrutoError as exc:
            raise _fetch_error(exc) from None

    def get(account_id: str) -> dict:
        client.start_account(account_id)
        return client.get(f"/integrated-account/{account_id}", account_id=account_id)

    accounts = []
    futures = {pool.submit(get, aid): aid for aid in settings.integrated_account_ids}
    for fut in as_completed(futures):
        aid = futures[fut]
        try:
            account = fut.result()
            if not isinstance(account, dict) or not account.get("id"):
                raise TrutoError(
                    "malformed", "Truto's answer for the account had no id.", account_id=aid
                )
            accounts.append(account)
        except TrutoError as exc:
            if exc.kind == "auth":
                raise _fetch_error(exc) from None
            st = client.stats(aid)
            outcomes.append(
                AccountOutcome(
                    aid,
                    outcome="failed",
                    message=f"Could not read the account: {exc}",
                    action=ACTIONS.get(exc.kind, ACTIONS["http"]),
                    requests=st.requests,
                    retries=st.retries,
                    rate_limited=st.rate_limited,
                    fetched_at=datetime.now(UTC),
                )
            )
    order = {aid: i for i, aid in enumerate(settings.integrated_account_ids)}
    accounts.sort(key=lambda a: order.get(str(a["id"]), len(order)))
    return accounts
