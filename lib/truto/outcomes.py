"""What a fetch returns: per-account outcomes, the whole result, its errors, and what to do per failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from lib.errors import DashboardError
from lib.integrations import (
    integration_label,
)
from lib.schema import ACTIVITY_COLUMNS

if TYPE_CHECKING:  # the tables' libraries load after a fetch's first request (see lib.truto.fetch)
    import pandas as pd

    from lib.truto.normalize import Listing

ORGANIZATIONS = "/unified/user-directory/organizations"
LICENSES = "/unified/user-directory/licenses"
USERS = "/unified/user-directory/users"
BILLING = "/unified/user-directory/billing"

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
    # Billing (ClickUp, DocuSign, Zoom): "" when not asked, else "ok", "not_supported", "failed" or
    # "off"; the records as Truto sent them (untrusted) once every page was listed.
    billing: str = ""
    billing_message: str = ""
    billing_records: list | None = field(default=None, repr=False)

    @property
    def failed(self) -> bool:
        return self.outcome in ("failed", "needs_reauth", "inactive")

    def sentence(self) -> str:
        label = integration_label(self.integration)
        return f"{label} account {self.account_id}: {self.outcome}: {self.message} {self.action}".strip()


@dataclass(frozen=True)
class BillingListing:
    """One account's billing records, every page listed; as Truto sent them (vendor text,
    untrusted): :func:`lib.analytics.vendor_contracts.contracts_from_billing` reads them."""

    account_id: str
    integration: str | None
    records: list = field(repr=False)


@dataclass
class FetchResult:
    licenses: pd.DataFrame
    accounts: pd.DataFrame
    problems: pd.DataFrame
    outcomes: list[AccountOutcome]
    started_at: datetime
    finished_at: datetime
    demo: bool = False
    seats: pd.DataFrame = field(default_factory=lambda: _empty_seats())  # SEAT_COLUMNS
    activity: pd.DataFrame = field(  # ACTIVITY_COLUMNS, one row per account
        default_factory=lambda: _empty_activity()
    )
    # The accounts whose billing was listed completely (an account whose listing failed is not here:
    # its vendor contract from an earlier fetch stands).
    billing: list[BillingListing] = field(default_factory=list)

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


def _empty_seats() -> pd.DataFrame:
    from lib.truto.users import empty_seat_table

    return empty_seat_table()


def _empty_activity() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in ACTIVITY_COLUMNS.items()})
