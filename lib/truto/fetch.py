"""Fetch organizations and licenses for every integrated account.

One failing account never discards another's data: the result says, per
account, ok / failed / needs_reauth / inactive / not_supported, with what to
do about it, request counts and timings.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import UTC, datetime

from lib.config import Settings
from lib.integrations import (
    integration_label,
    requires_organization,
    requires_product,
    supports_licenses,
    supports_organizations,
)
from lib.schema import ACCOUNT_COLUMNS
from lib.truto.accounts import (
    _integration_name,
    _plain,
    _resolve_accounts,
    _text,
    distinct_accounts,
)
from lib.truto.client import TrutoClient, TrutoError
from lib.truto.outcomes import (
    ACTIONS,
    INACTIVE_STATUS,
    LICENSES,
    ORGANIZATIONS,
    AccountOutcome,
    FetchResult,
    Progress,
)
from lib.truto.outcomes import (
    FetchError as FetchError,  # importable from here, as before
)
from lib.truto.text import clean_text

log = logging.getLogger(__name__)

# What turns the answers into tables (pandas, pyarrow, numpy): imported where used, so that a fetch's
# first request need not wait for them (``python -m lib export`` sends it within a few tenths of a
# second of starting); ``fetch_all`` loads them in the background while its first requests are out.
_TABLES = ("lib.truto.normalize", "lib.truto.fetch_users")


def _load_tables() -> None:
    for name in _TABLES:
        importlib.import_module(name)


def _fetch_account(client: TrutoClient, settings: Settings, account: dict) -> AccountOutcome:
    started = time.monotonic()
    account_id = str(account["id"])  # as Truto spells it, for the requests; shown cleaned
    integration = _integration_name(account)
    out = AccountOutcome(
        clean_text(account_id),
        integration,
        _plain(account.get("tenant_id")),
        _plain(account.get("status")),
    )
    client.start_account(account_id)
    try:
        status = account.get("status")
        if status != "active":
            out.outcome, out.action = INACTIVE_STATUS.get(
                status if isinstance(status, str) else "",
                ("inactive", "Check this account in Truto; it is not active."),
            )
            detail = _text(account.get("last_error"))
            status_words = {"needs_reauth": "needing reauthorisation"}.get(
                out.account_status or "", (out.account_status or "").replace("_", " ")
            )
            out.message = f"Truto reports the account as {status_words or 'without a status'}" + (
                f": {detail}" if detail else "."
            )
            return out
        _fetch_listings(client, settings, account_id, integration, out.tenant_id, out)
    except TrutoError as exc:
        out.listings = []
        out.outcome = "needs_reauth" if exc.kind == "needs_reauth" else "failed"
        out.message = clean_text(str(exc))
        out.action = ACTIONS.get(exc.kind, ACTIONS["http"])
    finally:
        st = client.stats(account_id)
        out.requests, out.retries, out.rate_limited = st.requests, st.retries, st.rate_limited
        out.wait_seconds = round(st.wait_seconds, 3)
        out.elapsed_seconds = round(time.monotonic() - started, 3)
        out.fetched_at = datetime.now(UTC)
    return out


def _fetch_listings(
    client: TrutoClient,
    settings: Settings,
    account_id: str,
    integration: str | None,
    tenant_id: str | None,
    out: AccountOutcome,
) -> None:
    base = {"integrated_account_id": account_id}
    if settings.ignore_remote_data:
        base["truto_ignore_remote_data"] = "true"

    def listing(path: str, extra: dict[str, str]) -> list:
        return client.list_all(
            path, {**base, **extra}, account_id=account_id, paced_account=account_id
        )

    organizations: list[dict] | None = None
    if supports_organizations(integration) is not False:
        try:
            organizations = _distinct_organizations(listing(ORGANIZATIONS, {}), out)
        except TrutoError as exc:
            if exc.kind != "not_found":
                raise
    out.organizations = len(organizations) if organizations is not None else None

    if supports_licenses(integration) is False:
        out.outcome = "not_supported"
        out.message = (
            f"{integration_label(integration)} does not offer the licenses resource in Truto."
        )
        out.action = "Nothing to do: this account has no license data to show."
        return

    def per_organization() -> list[tuple[dict, list]]:
        if organizations is None:
            raise TrutoError(
                "bad_request",
                "Licenses need an organization_id, but this account lists no organizations.",
                account_id=account_id,
            )
        return [
            (
                {"organization_id": o["id"], "organization_name": o["name"]},
                listing(LICENSES, {"organization_id": o["id"]}),
            )
            for o in organizations
        ]

    def per_product() -> list[tuple[dict, list]]:
        return [({"product": p}, listing(LICENSES, {"product": p})) for p in settings.products]

    try:
        if requires_organization(integration):
            batches = per_organization()
        elif requires_product(integration):
            batches = per_product()
        else:
            try:
                batches = [({}, listing(LICENSES, {}))]
            except TrutoError as exc:
                missing = exc.missing_parameters() if exc.kind == "bad_request" else []
                if "organization_id" in missing:
                    batches = per_organization()
                elif "product" in missing:
                    batches = per_product()
                else:
                    raise
    except TrutoError as exc:
        if exc.kind == "not_found":
            out.outcome = "not_supported"
            out.message = f"Truto answered that {integration_label(integration)} does not support the licenses resource."
            out.action = "Nothing to do: this account has no license data to show."
            return
        raise

    from lib.truto.fetch_billing import _fetch_billing
    from lib.truto.fetch_users import _fetch_users
    from lib.truto.normalize import Listing

    fetched_at = datetime.now(UTC)
    remaining = settings.reports_remaining(integration)
    single_org = organizations[0] if organizations and len(organizations) == 1 else None
    for context, records in batches:
        if not context and single_org is not None:
            # One organization: its licenses are that organization's.
            context = {"organization_id": single_org["id"], "organization_name": single_org["name"]}
        out.listings.append(
            Listing(
                out.account_id,
                integration,
                tenant_id,
                records,
                fetched_at,
                remaining_seats=remaining,
                **context,
            )
        )
    out.outcome = "ok"
    _fetch_users(listing, settings, integration, out)
    _fetch_billing(listing, settings, integration, organizations, out)


def _distinct_organizations(records: list, out: AccountOutcome) -> list[dict]:
    """Organizations with an id, each once ({"id", "name"} as text): listing licenses twice for a
    repeated organization would count its seats twice. A repeat is reported."""
    seen: dict[str, dict] = {}
    for rec in records:
        oid = _plain(rec.get("id")) if isinstance(rec, dict) else None
        if oid is None:
            continue
        if oid in seen:
            out.notes.append(
                ("organizations", f"organization {oid} was listed more than once; counted once")
            )
            continue
        seen[oid] = {"id": oid, "name": _plain(rec.get("name"))}
    return list(seen.values())


def fetch_all(
    settings: Settings, progress: Progress | None = None, client: TrutoClient | None = None
) -> FetchResult:
    """Fetch every account; raises :class:`FetchError` only when the account list itself fails."""
    started = datetime.now(UTC)
    if not all(name in sys.modules for name in _TABLES):
        threading.Thread(target=_load_tables, name="truto-tables-import").start()
    client = client or TrutoClient(settings)
    client.start_fetch()
    outcomes: list[AccountOutcome] = []
    with ThreadPoolExecutor(
        max_workers=settings.max_workers, thread_name_prefix="truto-fetch"
    ) as pool:
        accounts, repeated = distinct_accounts(_resolve_accounts(client, settings, pool, outcomes))
        total = len(accounts) + len(outcomes)
        done = len(outcomes)
        if progress:
            progress(done, total, "")
        futures = [pool.submit(_fetch_account, client, settings, a) for a in accounts]
        for fut in as_completed(futures):
            outcome = fut.result()
            outcomes.append(outcome)
            done += 1
            log.info(
                "account %s (%s): %s after %d requests; %d of %d accounts done",
                outcome.account_id,
                outcome.integration,
                outcome.outcome,
                client.stats(outcome.account_id).requests,
                done,
                total,
            )
            if progress:
                progress(done, total, outcome.account_id)
    for outcome in outcomes:
        if outcome.account_id in repeated:
            note_repeated(outcome)
    result = assemble(outcomes, started, settings.demo)
    log.info(
        "fetch done: %d accounts (%d failed), %d license rows, %d requests in %.1f s",
        len(outcomes),
        len(result.failures),
        len(result.licenses),
        result.requests,
        (datetime.now(UTC) - started).total_seconds(),
    )
    return result


class FetchStream:
    """Every account, as :func:`fetch_all` fetches it, each outcome handed on as soon as it is
    fetched and none kept: for a sync too large to hold in memory (thousands of accounts).

    :meth:`list` reads which accounts to fetch (raises :class:`FetchError` as :func:`fetch_all`
    does, before anything else happens); :meth:`run` fetches them on ``max_workers`` threads and
    calls ``deliver(outcome)`` for each (the accounts that could not be read first); ``deliver``
    may block (the fetching thread waits) and returns False to stop: accounts not yet started are
    then left out. :meth:`requests` counts the requests sent so far, finished accounts and those
    in flight alike.
    """

    def __init__(self, settings: Settings, client: TrutoClient | None = None) -> None:
        self.settings = settings
        self.client = client or TrutoClient(settings)
        self.total: int | None = None
        self.done = 0
        self._accounts: list[dict] = []
        self._failed: list[AccountOutcome] = []
        self._repeated: list[str] = []
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._done_requests = 0

    def list(self) -> int:
        """Read the accounts to fetch; returns how many (those that could not be read included)."""
        if not all(name in sys.modules for name in _TABLES):
            threading.Thread(target=_load_tables, name="truto-tables-import").start()
        self.client.start_fetch()
        failed: list[AccountOutcome] = []
        with ThreadPoolExecutor(
            max_workers=max(1, self.settings.max_workers), thread_name_prefix="truto-resolve"
        ) as pool:
            accounts, repeated = distinct_accounts(
                _resolve_accounts(self.client, self.settings, pool, failed)
            )
        self._accounts, self._failed, self._repeated = accounts, failed, repeated
        self.total = len(accounts) + len(failed)
        return self.total

    def requests(self) -> int:
        with self._lock:
            flying = list(self._in_flight)
            done = self._done_requests
        return (
            self.client.stats(None).requests
            + done
            + sum(self.client.stats(a).requests for a in flying)
        )

    def _delivered(self, outcome: AccountOutcome, raw_id: str | None) -> None:
        with self._lock:
            if raw_id is not None:
                self._in_flight.discard(raw_id)
            self._done_requests += outcome.requests
            self.done += 1

    def run(self, deliver: Callable[[AccountOutcome], bool]) -> None:
        if self.total is None:
            self.list()
        stop = threading.Event()
        for outcome in self._failed:
            self._delivered(outcome, None)
            if not deliver(outcome):
                return
        self._failed = []
        todo = iter(self._accounts)
        repeated = set(self._repeated)

        def work() -> None:
            try:
                while not stop.is_set():
                    with self._lock:
                        account = next(todo, None)
                        if account is not None:
                            raw = str(account["id"])
                            self._in_flight.add(raw)
                    if account is None:
                        return
                    outcome = _fetch_account(self.client, self.settings, account)
                    if outcome.account_id in repeated:
                        note_repeated(outcome)
                    self._delivered(outcome, raw)
                    if not deliver(outcome):
                        stop.set()
            except BaseException:
                stop.set()
                raise

        threads = max(1, self.settings.max_workers)
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="truto-fetch")
        try:
            futures = [pool.submit(work) for _ in range(threads)]
            for fut in futures:
                fut.exception()  # wait (an interrupt here stops the threads after their account)
        except BaseException:
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True)
        self._accounts = []
        for fut in futures:
            fut.result()
        log.info(
            "fetch done: %d of %d accounts handed on, %d requests",
            self.done,
            self.total,
            self.requests(),
        )


def note_repeated(outcome: AccountOutcome) -> None:
    """Say on the account that Truto listed it more than once (it is fetched and counted once)."""
    outcome.notes.append(
        (
            "integrated accounts",
            f"account {outcome.account_id} was listed more than once by Truto; fetched and "
            "counted once",
        )
    )


def listed_accounts(client: TrutoClient, settings: Settings) -> tuple[list[dict], list[str]]:
    """The accounts :func:`fetch_all` covers when no ids are named: the environment's integrated
    accounts (tenant filter applied), each once, and the ids Truto listed more than once.

    Raises :class:`FetchError` when the list fails (the token refused included)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="truto-list") as pool:
        return distinct_accounts(
            _resolve_accounts(client, replace(settings, integrated_account_ids=()), pool, [])
        )


def fetch_one(
    client: TrutoClient, settings: Settings, account: dict | str, resolver: ThreadPoolExecutor
) -> AccountOutcome:
    """One account, as :func:`fetch_all` fetches it: ``account`` is a listed account record, or a
    named id (read first with ``GET /integrated-account/{id}``; an account that cannot be read
    ends ``failed``). Raises :class:`FetchError` only when Truto refuses the token."""
    if isinstance(account, str):
        failed: list[AccountOutcome] = []
        found = _resolve_accounts(
            client, replace(settings, integrated_account_ids=(account,)), resolver, failed
        )
        if not found:
            return failed[0]
        account = found[0]
    return _fetch_account(client, settings, account)


def assemble(outcomes: list[AccountOutcome], started: datetime, demo: bool = False) -> FetchResult:
    """Turn per-account outcomes into the three tables."""
    import pandas as pd

    from lib.truto.fetch_billing import billing_listings, billing_problems
    from lib.truto.fetch_users import _seat_tables
    from lib.truto.normalize import (
        Problem,
        build_license_table,
        empty_license_table,
        problems_table,
    )

    order = {o.account_id: i for i, o in enumerate(outcomes)}
    outcomes = sorted(
        outcomes,
        key=lambda o: (o.tenant_id or "", integration_label(o.integration), order[o.account_id]),
    )
    listings = [listing for o in outcomes for listing in o.listings]
    try:
        licenses, problems = (
            build_license_table(listings) if listings else (empty_license_table(), [])
        )
    except Exception:  # noqa: BLE001  (records no check foresaw: find the account, keep the others)
        for o in outcomes:
            try:
                build_license_table(o.listings)
            except Exception as exc:  # noqa: BLE001
                o.listings, o.outcome = [], "failed"
                o.message = f"Its license records could not be read ({type(exc).__name__})."
                o.action = ACTIONS["malformed"]
        listings = [listing for o in outcomes for listing in o.listings]
        licenses, problems = (
            build_license_table(listings) if listings else (empty_license_table(), [])
        )
    seats, activity = _seat_tables(outcomes, licenses, problems)
    problems.extend(billing_problems(outcomes))
    for o in outcomes:
        problems.extend(
            Problem(
                o.account_id,
                integration_label(o.integration),
                resource,
                None,
                "id",
                "duplicate_id",
                note,
            )
            for resource, note in o.notes
        )
    rows_by_account = licenses["account_id"].value_counts().to_dict() if len(licenses) else {}
    problems_by_account: dict[str, int] = {}
    for p in problems:
        problems_by_account[p.account_id] = problems_by_account.get(p.account_id, 0) + p.count
    records = []
    for o in outcomes:
        o.license_rows = int(rows_by_account.get(o.account_id, 0))
        o.problems = problems_by_account.get(o.account_id, 0)
        records.append(
            {
                "account_id": o.account_id,
                "integration": o.integration,
                "integration_label": integration_label(o.integration)
                if o.integration
                else "unknown",
                "tenant_id": o.tenant_id,
                "account_status": o.account_status,
                "outcome": o.outcome,
                "message": o.message,
                "action": o.action,
                "organizations": o.organizations,
                "license_rows": o.license_rows,
                "problems": o.problems,
                "requests": o.requests,
                "retries": o.retries,
                "rate_limited": o.rate_limited,
                "wait_seconds": o.wait_seconds,
                "elapsed_seconds": o.elapsed_seconds,
                "fetched_at": o.fetched_at,
            }
        )
    accounts = pd.DataFrame(records, columns=list(ACCOUNT_COLUMNS))
    accounts["fetched_at"] = pd.to_datetime(accounts["fetched_at"], utc=True)
    accounts = accounts.astype(ACCOUNT_COLUMNS)
    return FetchResult(
        licenses,
        accounts,
        problems_table(problems),
        outcomes,
        started,
        datetime.now(UTC),
        demo,
        seats,
        activity,
        billing_listings(outcomes),
    )
