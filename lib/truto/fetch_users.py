"""Seat activity in a fetch: each account's users listed, then its seat table and one activity row."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from lib.config import Settings
from lib.integrations import (
    integration_label,
)
from lib.schema import ACTIVITY_COLUMNS
from lib.truto.client import TrutoError
from lib.truto.normalize import (
    Problem,
)
from lib.truto.outcomes import ACTIONS, USERS, AccountOutcome
from lib.truto.text import clean_text
from lib.truto.users import UserListing, build_seat_table, empty_seat_table


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
