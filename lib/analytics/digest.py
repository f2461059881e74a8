"""The alerts digest and notices: plain text sections for email and webhook."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from lib.analytics.alert_rules import (
    SEVERITIES,
)
from lib.analytics.alerts import (
    Alert,
    _as_date,
    _money,
    _opt,
    _seats,
)
from lib.analytics.contracts import clean_text
from lib.analytics.groupings import top_idle_spend
from lib.analytics.renewals import renewal_day, renewal_row_label

# ------------------------------------------------------------------ digest


@dataclass(frozen=True)
class Section:
    heading: str
    items: tuple[tuple[str, str], ...]  # (headline, detail), plain text
    empty: str = "Nothing."


@dataclass(frozen=True)
class Notice:
    """A message in plain text parts; each channel renders and escapes it
    (:mod:`lib.jobs.notify`)."""

    title: str
    sections: tuple[Section, ...] = field(default_factory=tuple)
    summary: str = ""


def alerts_notice(alerts: Sequence[Alert], title: str | None = None) -> Notice:
    """The message for alerts that fired: one section, critical first."""
    order = {s: i for i, s in enumerate(SEVERITIES)}
    ranked = sorted(alerts, key=lambda a: order.get(a.severity, len(order)))
    critical = sum(a.severity == "critical" for a in alerts)
    n = len(alerts)
    title = title or (f"License alerts: {n} new" + (f" ({critical} critical)" if critical else ""))
    items = tuple((f"[{a.severity.upper()}] {a.title}", a.detail) for a in ranked)
    return Notice(title, (Section("New alerts", items, "No new alerts."),))


def digest(
    licenses_with_metrics: pd.DataFrame,
    renewals: pd.DataFrame | None,
    open_alerts: Sequence[Alert],
    today: date,
    top_n: int = 5,
    deadline_days: int = 30,
) -> Notice:
    """The weekly message: the top idle spend (paid licenses), the renewals and opt-out deadlines in
    the next ``deadline_days`` days, and the alerts open now."""
    sections = []
    items = []
    if licenses_with_metrics is not None and len(licenses_with_metrics):
        top = top_idle_spend(licenses_with_metrics, n=top_n, paid_only=True)
        for r in top.to_dict("records"):
            head = clean_text(f"{r['integration_label']}: {r['license_name']}")
            seats = _opt(r.get("unassigned_seats"))
            seats_text = _seats(seats) if seats is not None else "unassigned seats"
            items.append(
                (
                    head,
                    f"{_money(r['idle_annual_spend'], r['reporting_currency'])} a year on "
                    + f"{seats_text} not assigned",
                )
            )
    sections.append(
        Section(
            f"Top {top_n} idle spend (paid licenses)",
            tuple(items),
            "No idle spend on paid licenses with a price.",
        )
    )
    items = []
    if renewals is not None and len(renewals):
        seen = set()
        for r in renewals.to_dict("records"):
            renewal = renewal_day(r["renewal_date"])
            deadline = _as_date(r.get("opt_out_deadline"))
            first = deadline if deadline is not None and deadline >= today else renewal
            if (first - today).days > deadline_days:
                continue
            name = clean_text(
                f"{r['integration_label'] or r['integration']}: {renewal_row_label(r)}"
            )
            if (name, renewal) in seen:
                continue
            seen.add((name, renewal))
            when = (
                f"opt-out deadline {deadline.isoformat()}, "
                if deadline is not None and deadline >= today
                else ""
            )
            items.append(
                (f"{name}", clean_text(f"{when}renews {renewal.isoformat()}: {r['what_to_do']}"))
            )
    sections.append(
        Section(
            f"Deadlines in the next {deadline_days} days",
            tuple(items),
            "No renewals or opt-out deadlines.",
        )
    )
    order = {s: i for i, s in enumerate(SEVERITIES)}
    ranked = sorted(open_alerts, key=lambda a: order.get(a.severity, len(order)))
    sections.append(
        Section(
            "Open alerts",
            tuple((f"[{a.severity.upper()}] {a.title}", a.detail) for a in ranked),
            "No open alerts.",
        )
    )
    return Notice(f"Weekly license digest, {today.isoformat()}", tuple(sections))
