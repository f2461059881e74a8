"""The renewal calendar as iCalendar (RFC 5545): one event per opt-out deadline and renewal."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from lib.analytics.contracts import (
    _BIDI,
)
from lib.analytics.labels import account_label
from lib.analytics.renewals import (
    _as_date,
    _opt,
    renewal_day,
    renewal_row_label,
)


def _ics_text(value: Any) -> str:
    """TEXT escaped as RFC 5545 3.3.11: backslash, semicolon, comma and line breaks."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    return "".join(" " if (unicodedata.category(ch) == "Cc" or ch in _BIDI) else ch for ch in text)


def _fold(line: str) -> str:
    """A content line folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 character."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    limit = 75
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > limit:
            out.append("".join(current))
            current, size, limit = [" "], 1, 75
        current.append(ch)
        size += width
    out.append("".join(current))
    return "\r\n".join(out)


def _uid(kind: str, key: str, day: date) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    return f"{kind}-{digest}-{day:%Y%m%d}@license-dashboard"


def in_window(kind: str, day: date, today: date | None, horizon_days: int | None) -> bool:
    """Whether an event of ``kind`` ("opt-out" or "renewal") on ``day`` is in the window: dated from
    ``today`` to ``today + horizon_days`` (both included), or an opt-out deadline already passed
    of a contract still to renew (still open: it renews without the notice given). No ``today``
    or ``horizon_days``: every event is."""
    if today is None or horizon_days is None:
        return True
    if day < today:
        return kind == "opt-out"
    return day <= today + timedelta(days=horizon_days)


def to_ics(
    renewals_df: pd.DataFrame,
    calendar_name: str = "License renewals",
    now: datetime | None = None,
    *,
    today: date | None = None,
    horizon_days: int | None = None,
    account_names: dict[str, str] | None = None,
) -> str:
    """An RFC 5545 calendar: one all-day event per contract renewal and one per opt-out deadline.

    A contract covering several licenses is one event listing each license's advice. UIDs
    depend only on the contract and the date, so a calendar that subscribes again updates the
    events instead of doubling them. ``now`` (UTC) is the DTSTAMP (default: the current time).
    ``today`` and ``horizon_days``: only the events :func:`in_window` keeps (give ``renewals_df``
    at least that horizon); a passed deadline's summary says it passed.
    ``account_names``: account id -> name (:func:`lib.analytics.labels.account_names`); an account is
    named so, else by its integration and the start of its ID, never by its whole UUID.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//License utilization dashboard//Renewals//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_ics_text(calendar_name)}",
    ]
    groups: dict[tuple[str, date], list[dict]] = {}
    for rec in renewals_df.to_dict("records"):
        groups.setdefault((rec["contract_key"], renewal_day(rec["renewal_date"])), []).append(rec)
    for (key, renewal), recs in groups.items():
        first = recs[0]
        scope = first["integration_label"] or first["integration"]
        names = sorted(
            {str(_opt(r["license_name"]) or _opt(r["license_id"]) or "") for r in recs} - {""}
        )
        what = f"{scope}: {', '.join(names)}" if names else f"{scope}"
        if _opt(first["account_id"]):
            what += f" (account {account_label(first['account_id'], account_names)})"
        advice = "\n".join(f"{renewal_row_label(r)}: {r['what_to_do']}" for r in recs)
        deadline = _as_date(first["opt_out_deadline"])
        events = [("renewal", renewal, f"Renewal: {what}")]
        if deadline is not None:
            passed = today is not None and deadline < today
            title = "Opt-out deadline passed" if passed else "Opt-out deadline"
            events.insert(0, ("opt-out", deadline, f"{title}: {what}"))
        events = [e for e in events if in_window(e[0], e[1], today, horizon_days)]
        for kind, day, summary in events:
            detail = [f"Renews on {renewal.isoformat()}."]
            if deadline is not None:
                detail.append(f"Opt-out deadline (notice due): {deadline.isoformat()}.")
            else:
                detail.append("Notice period not entered.")
            detail.append(advice)
            lines += [
                "BEGIN:VEVENT",
                f"UID:{_uid(kind, key, day)}",
                f"DTSTAMP:{stamp}",
                f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
                f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}",
                f"SUMMARY:{_ics_text(summary)}",
                f"DESCRIPTION:{_ics_text(chr(10).join(detail))}",
                "TRANSP:TRANSPARENT",
                "END:VEVENT",
            ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
