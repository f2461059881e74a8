"""Raw Truto user records -> the seat-assignment table: one row per (account, license, user).

``GET /unified/user-directory/users`` lists each user with ``licenses[]`` ("the licenses of the
user or the products the user has access to"). A user holding two licenses is two seat rows; a user
holding none is counted as a user but holds no seat.

Rules, as for the licenses (:mod:`lib.truto.normalize`):
- a timestamp that is not ISO 8601, lies in the future, or is a placeholder (before 1970-01-02: year 1
  or the Unix epoch, standing for "never") is reported and becomes "not reported", that value alone;
- a user listed twice is reported and kept once, so its seats are not counted twice;
- a license entry whose id matches no license of the account is reported and kept
  (``license_known`` false), never dropped silently;
- a field the integration does not send stays null: "not reported";
- volume is capped, so one hostile page cannot make millions of rows: a user's first
  :data:`MAX_LICENSES_PER_USER` licenses are read (the rest are skipped, said once for that user),
  and an account's first :data:`MAX_PROBLEMS_PER_ACCOUNT` problems are kept, the others counted
  in one ``more_problems`` row.

A user's id is often an email: personal data. A problem names the user by :func:`user_reference`
in its detail (what logs, stderr and viewers read); ``record_id`` keeps the id, for admins
(:func:`lib.analytics.views.problems_view` shows each what they may see).

The per-license last-active key is not verified in Truto's reference: ``last_active_at``, else
``last_login_at``, inside the license object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from lib.integrations import integration_label
from lib.schema import SEAT_COLUMNS
from lib.truto.normalize import Problem
from lib.truto.text import _text

RESOURCE = "users"
_FUTURE_SLACK = timedelta(days=1)  # clocks differ; a day ahead of the fetch is still plausible
# Before this, a time is a vendor's placeholder, not a login: year 1 (0001-01-01, .NET's and Go's
# zero time) or the Unix epoch (1970-01-01 in any time zone) stand for "never".
EARLIEST_TIMESTAMP = datetime(1970, 1, 2, tzinfo=UTC)
MAX_LICENSES_PER_USER = 1_000  # a person holds a handful; a thousand is already far beyond any plan
MAX_PROBLEMS_PER_ACCOUNT = 1_000  # problem rows kept per account's users; the rest are counted


@dataclass
class UserListing:
    """The records of one account's users listing."""

    account_id: str
    integration: str | None
    tenant_id: str | None
    records: Sequence[Any]
    fetched_at: datetime
    license_ids: frozenset[str] = field(default_factory=frozenset)  # from the licenses listing


@dataclass
class UserStats:
    users: int = 0
    seat_rows: int = 0
    problems: int = 0
    activity_reported: bool = False


def user_reference(account_id: str, user_id: str) -> str:
    """A non-personal name for one user of one account: ``#`` and 10 hex digits of a hash of the
    account and the user's id. The same user reads the same in every run, in logs, on stderr and
    on the pages; the id itself (often an email) is not in it."""
    key = f"{account_id}\x1f{user_id}".encode("utf-8", "surrogatepass")
    return "#" + hashlib.sha256(key).hexdigest()[:10]


def empty_seat_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SEAT_COLUMNS.items()})


def parse_timestamp(value: Any, now: datetime) -> tuple[datetime | None, str | None]:
    """(UTC datetime, problem kind) for one vendor timestamp; (None, None) when not sent."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if not isinstance(value, str):
        return None, "bad_timestamp"
    try:
        ts = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None, "bad_timestamp"
    try:
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, or 9999-12-31 west of it: outside datetime's range
        return None, ("future_timestamp" if ts.year > now.year else "placeholder_timestamp")
    if ts < EARLIEST_TIMESTAMP:
        return None, "placeholder_timestamp"
    if ts > now + _FUTURE_SLACK:
        return None, "future_timestamp"
    return ts, None


def _display_name(rec: dict) -> str | None:
    name = _text(rec.get("name"))
    if name:
        return name
    parts = [_text(rec.get("first_name")), _text(rec.get("last_name"))]
    joined = " ".join(p for p in parts if p)
    return joined or _text(rec.get("username"))


def _primary_email(rec: dict) -> str | None:
    emails = rec.get("emails")
    if not isinstance(emails, list):
        return None
    entries = [e for e in emails if isinstance(e, dict) and _text(e.get("email"))]
    if not entries:
        return None
    primary = next((e for e in entries if e.get("is_primary") is True), entries[0])
    return _text(primary.get("email"))


def _organization(entry: dict) -> str | None:
    org = entry.get("organization_id")
    if org is None:
        org = entry.get("organization")
        if isinstance(org, dict):
            org = org.get("id")
    return _text(org)


def build_seat_table(
    listings: Iterable[UserListing],
) -> tuple[pd.DataFrame, list[Problem], dict[str, UserStats]]:
    """The seat table, the problems found, and per account: users, seat rows, problems."""
    cols: dict[str, list] = {c: [] for c in SEAT_COLUMNS}
    problems: list[Problem] = []
    stats: dict[str, UserStats] = {}
    for listing in listings:
        _add_users(listing, cols, problems, stats.setdefault(listing.account_id, UserStats()))
    if not cols["account_id"]:
        return empty_seat_table(), problems, stats
    data = {}
    for c, dtype in SEAT_COLUMNS.items():
        if dtype.startswith("datetime"):
            data[c] = pd.to_datetime(pd.Series(cols[c], dtype=object), utc=True).astype(dtype)
        else:
            data[c] = pd.Series(cols[c], dtype=object).astype(dtype)
    return pd.DataFrame(data)[list(SEAT_COLUMNS)], problems, stats


def _add_users(
    listing: UserListing, cols: dict[str, list], problems: list[Problem], st: UserStats
) -> None:
    label = integration_label(listing.integration)
    now = listing.fetched_at
    found = [0]  # every problem of this account's users, kept or beyond the cap

    def report(record_id, fieldname, kind, detail):
        found[0] += 1
        if found[0] <= MAX_PROBLEMS_PER_ACCOUNT:
            problems.append(
                Problem(listing.account_id, label, RESOURCE, record_id, fieldname, kind, detail)
            )

    def when(rec_id, raw, fieldname) -> datetime | None:
        ts, kind = parse_timestamp(raw, now)
        if kind == "bad_timestamp":
            report(
                rec_id,
                fieldname,
                kind,
                f"{fieldname} {raw!r} is not a date and time; shown as not reported",
            )
        elif kind == "future_timestamp":
            report(
                rec_id,
                fieldname,
                kind,
                f"{fieldname} {raw!r} lies in the future; shown as not reported",
            )
        elif kind == "placeholder_timestamp":
            report(
                rec_id,
                fieldname,
                kind,
                f"{fieldname} {raw!r} lies before 1970, a placeholder (it usually means never), "
                "not a date; shown as not reported",
            )
        return ts

    seen_users: set[str] = set()
    rows_before = len(cols["account_id"])
    for pos, rec in enumerate(listing.records):
        if not isinstance(rec, dict):
            report(
                None,
                "record",
                "not_an_object",
                f"user {pos + 1} is {type(rec).__name__}, not an object; skipped",
            )
            continue
        uid = _text(rec.get("id"))
        who = user_reference(listing.account_id, uid) if uid is not None else f"{pos + 1}"
        if uid is None:
            report(
                None,
                "id",
                "missing_id",
                f"user {pos + 1} has no id; kept, but it cannot be told apart from others",
            )
        elif uid in seen_users:
            report(uid, "id", "duplicate_user", f"user {who} appears more than once; counted once")
            continue
        else:
            seen_users.add(uid)
        st.users += 1
        created = when(uid, rec.get("created_at"), "created_at")
        last_login = when(uid, rec.get("last_login_at"), "last_login_at")
        last_active = when(uid, rec.get("last_active_at"), "last_active_at")
        if last_login is not None or last_active is not None:
            st.activity_reported = True
        licenses = rec.get("licenses")
        if licenses is None:
            continue
        if not isinstance(licenses, list):
            report(
                uid,
                "licenses",
                "not_a_list",
                f"licenses of user {who} is {type(licenses).__name__}, not a list; skipped",
            )
            continue
        name, email = _display_name(rec), _primary_email(rec)
        status = _text(rec.get("status"))
        status = status.lower() if status else None
        utype = _text(rec.get("type"))
        if len(licenses) > MAX_LICENSES_PER_USER:
            report(
                uid,
                "licenses",
                "too_many_licenses",
                f"user {who} holds {len(licenses):,} licenses, more than the "
                f"{MAX_LICENSES_PER_USER:,} read per user; the first {MAX_LICENSES_PER_USER:,} are "
                f"counted, the other {len(licenses) - MAX_LICENSES_PER_USER:,} skipped",
            )
            licenses = licenses[:MAX_LICENSES_PER_USER]
        seen_seats: set[tuple] = set()
        for entry in licenses:
            if not isinstance(entry, dict) or _text(entry.get("id")) is None:
                report(
                    uid,
                    "licenses",
                    "missing_id",
                    f"a license of user {who} has no id; that seat cannot be matched; skipped",
                )
                continue
            lid = _text(entry.get("id"))
            org = _organization(entry)
            if (lid, org) in seen_seats:
                report(
                    uid,
                    "licenses",
                    "duplicate_seat",
                    f"user {who} holds license {lid} more than once; counted once",
                )
                continue
            seen_seats.add((lid, org))
            known = lid in listing.license_ids
            if not known:
                report(
                    uid,
                    "licenses",
                    "unknown_license",
                    f"user {who} holds license {lid}, which the licenses listing does not have; "
                    "kept, without a price",
                )
            raw_lic = entry.get("last_active_at")
            lic_field = "licenses.last_active_at"
            if raw_lic is None:
                raw_lic, lic_field = entry.get("last_login_at"), "licenses.last_login_at"
            lic_active = when(uid, raw_lic, lic_field)
            if lic_active is not None:
                st.activity_reported = True
            for c, v in (
                ("account_id", listing.account_id),
                ("integration", listing.integration),
                ("integration_label", label),
                ("tenant_id", listing.tenant_id),
                ("organization_id", org),
                ("license_id", lid),
                ("license_name", _text(entry.get("name"))),
                ("license_known", known),
                ("user_id", uid),
                ("user_name", name),
                ("user_email", email),
                ("user_status", status),
                ("user_type", utype),
                ("user_created_at", created),
                ("user_last_login_at", last_login),
                ("user_last_active_at", last_active),
                ("license_last_active_at", lic_active),
                ("activity_reported", None),
                ("fetched_at", now),
            ):
                cols[c].append(v)
    n = len(cols["account_id"]) - rows_before
    cols["activity_reported"][rows_before:] = [st.activity_reported] * n
    st.seat_rows += n
    st.problems += found[0]
    beyond = found[0] - MAX_PROBLEMS_PER_ACCOUNT
    if beyond > 0:
        problems.append(
            Problem(
                listing.account_id,
                label,
                RESOURCE,
                None,
                "record",
                "more_problems",
                f"{found[0]:,} problems in these users in all: the first "
                f"{MAX_PROBLEMS_PER_ACCOUNT:,} are listed one by one, the other {beyond:,} only "
                "counted here",
                count=beyond,
            )
        )
