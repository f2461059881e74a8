"""Fetch organizations and licenses for every integrated account.

One failing account never discards another's data: the result says, per
account, ok / failed / needs_reauth / inactive / not_supported, with what to
do about it, request counts and timings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from lib.config import Settings
from lib.errors import DashboardError
from lib.integrations import (
    integration_label,
    requires_organization,
    requires_product,
    supports_licenses,
    supports_organizations,
)
from lib.schema import ACCOUNT_COLUMNS, ACTIVITY_COLUMNS
from lib.truto.client import TrutoClient, TrutoError
from lib.truto.normalize import (
    Listing,
    Problem,
    build_license_table,
    clean_text,
    empty_license_table,
    problems_table,
)
from lib.truto.users import UserListing, build_seat_table, empty_seat_table

ORGANIZATIONS = "/unified/user-directory/organizations"
LICENSES = "/unified/user-directory/licenses"
USERS = "/unified/user-directory/users"

Progress = Callable[[int, int, str], None]

# What a person should do, per kind of failure.
ACTIONS = {
    "auth": "Check the Truto API token (TRUTO_API_TOKEN or [truto] api_token): Truto refused it.",
    "needs_reauth": "Reconnect this account in Truto: the vendor no longer accepts its credentials.",
    "not_found": "Check the account id in TRUTO_INTEGRATED_ACCOUNT_IDS: Truto has no such account in this environment.",
    "blocked": "Truto has blocked this account; reconnect it in Truto or contact Truto support.",
    "forbidden": "The token may not read this account; check its environment and permissions in Truto.",
    "rate_limited": "Truto kept rate-limiting these calls; refresh later, or lower max_workers.",
    "server": "A temporary failure at Truto or the vendor; refresh later. If it persists, check Truto's status page.",
    "network": "Truto could not be reached; check the network and TRUTO_BASE_URL, then refresh.",
    "malformed": "Truto returned data the dashboard could not read; refresh later and report it to Truto if it repeats.",
    "cursor_loop": "Truto's pagination repeated itself; refresh later and report it to Truto if it repeats.",
    "page_cap": "This account has more pages than max_pages allows; raise max_pages in the settings.",
    "bad_request": "Truto rejected the request; check this integration's required parameters in the settings.",
    "http": "Truto answered with an unexpected error; refresh later.",
    "deadline": "Truto or the vendor answered too slowly; refresh later, or raise request_deadline, "
    "account_deadline or fetch_deadline in the settings.",
    "too_large": "One answer was bigger than max_response_bytes allows; lower page_limit or raise "
    "max_response_bytes in the settings.",
}

INACTIVE_STATUS = {
    "needs_reauth": (
        "needs_reauth",
        "Reconnect this account in Truto: the vendor no longer accepts its credentials.",
    ),
    "connecting": (
        "inactive",
        "The account is still being connected; finish connecting it in Truto.",
    ),
    "post_install_error": (
        "inactive",
        "Truto could not finish installing this account; reconnect it in Truto.",
    ),
    "validation_error": (
        "inactive",
        "Truto could not validate this account's credentials; reconnect it in Truto.",
    ),
}


log = logging.getLogger(__name__)


class FetchError(DashboardError):
    """Nothing could be fetched (the account list itself failed)."""


@dataclass
class AccountOutcome:
    account_id: str
    integration: str | None = None
    tenant_id: str | None = None
    account_status: str | None = None
    outcome: str = "ok"
    message: str = ""
    action: str = ""
    organizations: int | None = None
    license_rows: int = 0
    problems: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    wait_seconds: float = 0.0
    elapsed_seconds: float = 0.0
    fetched_at: datetime | None = None
    listings: list[Listing] = field(default_factory=list, repr=False)
    notes: list[tuple[str, str]] = field(
        default_factory=list, repr=False
    )  # (resource, problem) outside the licenses
    # Seat activity (the users listing): "" when the account lists no licenses, else ACTIVITY_OUTCOMES.
    activity: str = ""
    activity_message: str = ""
    user_records: list | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "needs_reauth", "inactive")

    def sentence(self) -> str:
        label = integration_label(self.integration)
        return f"{label} account {self.account_id}: {self.outcome}: {self.message} {self.action}".strip()


@dataclass
class FetchResult:
    licenses: pd.DataFrame
    accounts: pd.DataFrame
    problems: pd.DataFrame
    outcomes: list[AccountOutcome]
    started_at: datetime
    finished_at: datetime
    demo: bool = False
    seats: pd.DataFrame = field(default_factory=empty_seat_table)  # SEAT_COLUMNS
    activity: pd.DataFrame = field(  # ACTIVITY_COLUMNS, one row per account
        default_factory=lambda: pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in ACTIVITY_COLUMNS.items()}
        )
    )

    @property
    def failures(self) -> list[AccountOutcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def requests(self) -> int:
        return sum(o.requests for o in self.outcomes)

    def exit_code(self) -> int:
        """0: every account fetched; 2: some failed; 1: nothing could be fetched."""
        if not self.outcomes or all(o.failed for o in self.outcomes):
            return 1
        return 2 if self.failures else 0


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


def _fetch_users(listing, settings: Settings, integration: str | None, out: AccountOutcome) -> None:
    """The account's users (who holds which seat), beside its licenses. A failure here marks only the
    activity part failed: the license figures already fetched stay."""
    label = integration_label(integration)
    if not settings.fetches_users(integration):
        out.activity = "off"
        out.activity_message = f"Listing users is switched off for {label} in the settings."
        return
    try:
        out.user_records = listing(USERS, {})
    except TrutoError as exc:
        if exc.kind == "not_found":
            out.activity = "not_supported"
            out.activity_message = (
                f"Activity not supported: Truto answered that {label} does not list users."
            )
        else:
            out.activity = "failed"
            out.activity_message = (
                f"The users could not be listed ({clean_text(str(exc))}); the license figures are "
                f"shown. {ACTIONS.get(exc.kind, ACTIONS['http'])}"
            )
        return
    out.activity = "ok"


def _fetch_error(exc: TrutoError) -> FetchError:
    what = (
        "Truto refused the API token"
        if exc.kind == "auth"
        else "Could not list the integrated accounts"
    )
    return FetchError(f"{what} ({exc}). {ACTIONS.get(exc.kind, ACTIONS['http'])}")


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


def fetch_all(
    settings: Settings, progress: Progress | None = None, client: TrutoClient | None = None
) -> FetchResult:
    """Fetch every account; raises :class:`FetchError` only when the account list itself fails."""
    started = datetime.now(UTC)
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
            outcome.notes.append(
                (
                    "integrated accounts",
                    f"account {outcome.account_id} was listed more than once by Truto; fetched and "
                    "counted once",
                )
            )
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


def assemble(outcomes: list[AccountOutcome], started: datetime, demo: bool = False) -> FetchResult:
    """Turn per-account outcomes into the three tables."""
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
        problems_by_account[p.account_id] = problems_by_account.get(p.account_id, 0) + 1
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
    )


def _seat_tables(
    outcomes: list[AccountOutcome], licenses: pd.DataFrame, problems: list[Problem]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seat table of every account whose users were listed, and one activity row per account.
    Records no check foresaw fail that account's activity only."""
    ids_by_account: dict[str, frozenset[str]] = {}
    if len(licenses):
        known = licenses.dropna(subset=["license_id"])
        for aid, group in known.groupby("account_id", sort=False):
            ids_by_account[str(aid)] = frozenset(group["license_id"].astype(str))
    tables, stats_of = [], {}
    for o in outcomes:
        if o.activity != "ok" or o.user_records is None:
            continue
        item = UserListing(
            o.account_id,
            o.integration,
            o.tenant_id,
            o.user_records,
            o.fetched_at or datetime.now(UTC),
            ids_by_account.get(o.account_id, frozenset()),
        )
        try:
            table, found, stats = build_seat_table([item])
        except Exception as exc:  # noqa: BLE001  (keep the other accounts, and this one's licenses)
            o.activity = "failed"
            o.activity_message = (
                f"Its user records could not be read ({type(exc).__name__}); the license figures "
                f"are shown. {ACTIONS['malformed']}"
            )
            continue
        if len(table):
            tables.append(table)
        problems.extend(found)
        stats_of[o.account_id] = stats.get(o.account_id)
    seats = pd.concat(tables, ignore_index=True) if tables else empty_seat_table()
    rows = []
    for o in outcomes:
        st = stats_of.get(o.account_id)
        rows.append(
            {
                "account_id": o.account_id,
                "activity": o.activity or None,
                "activity_message": o.activity_message or None,
                "users": st.users if st else None,
                "seat_rows": st.seat_rows if st else None,
                "activity_problems": st.problems if st else None,
            }
        )
    activity = pd.DataFrame(rows, columns=list(ACTIVITY_COLUMNS)).astype(ACTIVITY_COLUMNS)
    return seats, activity
