"""Alert rules, their evaluation after a sync, and the fire-once state machine.

An admin keeps a list of :class:`AlertRule`; after every sync :func:`evaluate`
turns the license table (with metrics), the account outcomes and the renewals
into :class:`Alert` objects, each with a stable ``key``. :func:`transition`
compares them with the keys open after the previous sync: an alert *fires*
when its condition starts, stays open (silent) while it holds, and can fire
again only after it has cleared.

Rules of the house kept here:

- Free licenses never alert on cost or under-use: the paid rule is
  :func:`lib.analytics.rules.paid_mask`, the one the totals use.
- A figure the vendor does not report never triggers a numeric rule (NA is
  not 0), and a cost without an exchange rate never passes a threshold.
- Vendor text in titles and details is cleaned of control characters and
  bidi overrides; it is still untrusted, and each channel escapes it
  (:mod:`lib.jobs.notify`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from lib.analytics.alert_rules import CHANNELS, AlertRule, _num
from lib.analytics.contracts import clean_text
from lib.analytics.labels import account_label, account_name, account_names
from lib.analytics.renewals import renewal_day, renewal_row_label
from lib.analytics.rules import paid_mask
from lib.truto.fetch import AccountOutcome

# ------------------------------------------------------------------ alerts


@dataclass(frozen=True)
class Alert:
    """One condition that holds now. ``key`` is stable across syncs: the rule id and what it is
    about."""

    key: str
    rule_id: str
    kind: str
    severity: str
    title: str
    detail: str
    integration: str | None = None
    account_id: str | None = None
    license_id: str | None = None
    channels: tuple[str, ...] = CHANNELS

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def alert_key(rule_id: str, *parts: Any) -> str:
    """``rule id`` + what the alert is about, each part percent-escaped so no two subjects share
    a key."""

    def text(x: Any) -> str:
        return "" if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else str(x)

    return ":".join([quote(rule_id, safe="")] + [quote(text(p), safe="") for p in parts])


def _opt(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _money(value: Any, currency: str | None) -> str:
    value = _opt(value)
    if value is None:
        return "not known (no price or no exchange rate)"
    return f"{float(value):,.2f} {currency or ''}".strip()


def _seats(n: int) -> str:
    return f"{n} seat" if n == 1 else f"{n} seats"


def _license_name(r: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    integ = _opt(r.get("integration_label")) or _opt(r.get("integration")) or "Unknown integration"
    name = _opt(r.get("license_name")) or _opt(r.get("license_id")) or "unnamed license"
    where = []
    if _opt(r.get("organization_name")):
        where.append(f"organization {r['organization_name']}")
    if _opt(r.get("account_id")):
        acct = str(r["account_id"])
        if (not names or acct not in names) and "tenant_id" in r:  # the row names its own tenant
            names = {acct: account_name(integ, _opt(r.get("tenant_id")), acct)}
        where.append(f"account {account_label(acct, names)}")
    suffix = f" ({', '.join(where)})" if where else ""
    return clean_text(f"{integ}: {name}{suffix}")


def _license_subject(r: Mapping[str, Any]) -> tuple:
    return (
        _opt(r.get("integration")),
        _opt(r.get("account_id")),
        _opt(r.get("organization_id")),
        _opt(r.get("product")),
        _opt(r.get("license_id")) or _opt(r.get("license_name")),
    )


def _failed(outcome: Any) -> bool:
    """The fetch layer's own rule (AccountOutcome.failed) for one outcome value."""
    return isinstance(outcome, str) and AccountOutcome(account_id="", outcome=outcome).failed


def evaluate(
    rules: Sequence[AlertRule],
    licenses_with_metrics: pd.DataFrame | None,
    accounts: pd.DataFrame | None,
    renewals: pd.DataFrame | None,
    today: date,
) -> list[Alert]:
    """The alerts whose condition holds now, one per rule and subject (first row wins), in rule
    order.

    ``licenses_with_metrics``: from :func:`lib.analytics.metrics.add_metrics` (with
    ``reclaimable_seats`` and ``reclaimable_annual_cost_reporting`` from
    :func:`lib.analytics.reclaim_views.with_reclaim_cost` for that rule); ``accounts``: the fetch's
    account table (:data:`lib.schema.ACCOUNT_COLUMNS`); ``renewals``: from
    :func:`lib.analytics.renewals.renewals`, with a horizon at least the largest
    ``deadline_within``.
    """
    lic = (
        licenses_with_metrics.reset_index(drop=True)
        if licenses_with_metrics is not None
        else pd.DataFrame()
    )
    paid = paid_mask(lic) if len(lic) else np.zeros(0, dtype=bool)
    records = lic.to_dict("records") if len(lic) else []
    # Accounts named as the dashboard names them, never by their whole UUID (the Alert keeps the ID).
    names = (
        account_names(accounts.dropna(subset=["account_id"]))
        if accounts is not None
        and {"account_id", "integration_label", "tenant_id"} <= set(accounts.columns)
        else {}
    )
    out: dict[str, Alert] = {}

    def add(alert: Alert) -> None:
        out.setdefault(alert.key, alert)

    for rule in rules:
        if not rule.enabled:
            continue
        kind = rule.kind
        if kind in (
            "under_used",
            "free_seats_below",
            "over_allocated",
            "idle_cost_above",
            "reclaimable_cost_above",
        ):
            paid_only = rule.paid_only or kind in (
                "under_used",
                "idle_cost_above",
                "reclaimable_cost_above",
            )
            for pos, r in enumerate(records):
                if paid_only and not paid[pos]:
                    continue
                alert = _license_alert(rule, r, names)
                if alert is not None:
                    add(alert)
        elif kind == "account_failed" and accounts is not None:
            for r in accounts.to_dict("records"):
                if not _failed(_opt(r.get("outcome"))):
                    continue
                integ = _opt(r.get("integration_label")) or _opt(r.get("integration")) or "Account"
                needs_reauth = r.get("outcome") == "needs_reauth"
                title = clean_text(
                    f"Account {account_label(r.get('account_id'), names, integ)} "
                    f"{'needs reauthorization' if needs_reauth else 'failed'}"
                )
                detail = clean_text(
                    " ".join(x for x in (_opt(r.get("message")), _opt(r.get("action"))) if x)
                    or f"The last sync of this account ended: {r.get('outcome')}."
                )
                add(
                    Alert(
                        alert_key(rule.id, _opt(r.get("integration")), _opt(r.get("account_id"))),
                        rule.id,
                        kind,
                        "critical",
                        title,
                        detail,
                        _opt(r.get("integration")),
                        _opt(r.get("account_id")),
                        None,
                        rule.channels,
                    )
                )
        elif kind == "deadline_within" and renewals is not None and len(renewals):
            for alert in _deadline_alerts(rule, renewals, today, names):
                add(alert)
    return list(out.values())


def _license_alert(
    rule: AlertRule, r: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> Alert | None:
    kind = rule.kind
    assigned, total = _opt(r.get("assigned_seats")), _opt(r.get("total_seats"))
    cur = _opt(r.get("reporting_currency"))
    name = _license_name(r, names)
    subject = _license_subject(r)
    if kind == "under_used":
        util = _opt(r.get("utilization_pct"))
        if util is None or assigned is None or total is None:
            return None
        if rule.threshold is None:
            if _opt(r.get("flag")) != "under_used":
                return None
            limit = "the under-used threshold"
        else:
            if not util < float(rule.threshold):
                return None
            limit = f"{_num(rule.threshold)}%"
        title = f"Under-used: {name}"
        rec = _opt(r.get("recommended_seats"))
        detail = (
            f"{assigned} of {_seats(total)} assigned ({util:.1f}%), below {limit}. "
            f"Annual cost of unassigned seats: {_money(r.get('idle_annual_cost_reporting'), cur)}. "
            f"Potential annual savings at "
            f"{_seats(rec) if rec is not None else 'the recommended seats'}: "
            f"{_money(r.get('potential_annual_savings_reporting'), cur)}."
        )
        severity = "info"
    elif kind == "free_seats_below":
        free = _opt(r.get("unassigned_seats"))
        over = _opt(r.get("over_allocated_seats"))
        if free is None or total is None or assigned is None or over:
            return None  # over-allocated is its own rule
        if not free < int(rule.limit):
            return None
        title = f"Few unassigned seats: {name}"
        detail = (
            f"{_seats(free)} of {total} not assigned ({assigned} assigned), "
            f"fewer than {_num(rule.threshold)}."
        )
        severity = "warning"
    elif kind == "over_allocated":
        over = _opt(r.get("over_allocated_seats"))
        if over is None or not over > 0:
            return None
        title = f"Over-allocated: {name}"
        detail = (
            f"{assigned} seats assigned, {total} bought: {_seats(over)} beyond those bought. "
            f"Annual true-up exposure: {_money(r.get('true_up_exposure_reporting'), cur)}."
        )
        severity = "warning"
    elif kind == "idle_cost_above":
        idle = _opt(r.get("idle_annual_cost_reporting"))
        if idle is None or not float(idle) > rule.limit:
            return None
        free = _opt(r.get("unassigned_seats"))
        title = f"Idle spend: {name}"
        detail = (
            f"Annual cost of unassigned seats {_money(idle, cur)} "
            f"({_seats(free) if free is not None else 'unassigned seats'} of {total}), "
            f"above {rule.limit:,.2f} {cur or ''}.".replace(" .", ".")
        )
        severity = "warning"
    elif kind == "reclaimable_cost_above":
        cost = _opt(r.get("reclaimable_annual_cost_reporting"))
        if cost is None or not float(cost) > rule.limit:
            return None
        seats = _opt(r.get("reclaimable_seats"))
        title = f"Reclaimable seats: {name}"
        detail = (
            f"{_seats(seats) if seats is not None else 'Seats'} assigned but unused (inactive for "
            f"more than 90 days, never used, departed or invited) cost {_money(cost, cur)} a year, "
            f"above {rule.limit:,.2f} {cur or ''}. The Reclaim page lists who holds them."
        ).replace(" .", ".")
        severity = "warning"
    else:
        return None
    return Alert(
        alert_key(rule.id, *subject),
        rule.id,
        kind,
        severity,
        clean_text(title),
        clean_text(detail),
        _opt(r.get("integration")),
        _opt(r.get("account_id")),
        _opt(r.get("license_id")),
        rule.channels,
    )


def _as_date(value: Any) -> date | None:
    value = _opt(value)
    if value is None:
        return None
    return (
        value
        if isinstance(value, date) and not isinstance(value, pd.Timestamp)
        else pd.Timestamp(value).date()
    )


def _deadline_alerts(
    rule: AlertRule, renewals: pd.DataFrame, today: date, accounts: Mapping[str, str] | None = None
) -> list[Alert]:
    within = int(rule.limit)
    groups: dict[tuple[str, date], list[dict]] = {}
    for r in renewals.to_dict("records"):
        groups.setdefault((r["contract_key"], renewal_day(r["renewal_date"])), []).append(r)
    alerts = []
    for (key, renewal), rows in groups.items():
        first = rows[0]
        deadline = _as_date(first.get("opt_out_deadline"))
        if deadline is not None and deadline >= today:
            which, day = "opt_out", deadline
        else:
            which, day = "renewal", renewal
        days = (day - today).days
        if not 0 <= days <= within:
            continue
        integ = _opt(first.get("integration_label")) or _opt(first.get("integration")) or "Contract"
        names = sorted(
            {str(_opt(r.get("license_name")) or _opt(r.get("license_id")) or "") for r in rows}
            - {""}
        )
        scope = f"{integ}: {', '.join(names)}" if names else integ
        if _opt(first.get("account_id")):
            scope += f" (account {account_label(first['account_id'], accounts)})"
        when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        if which == "opt_out":
            title = f"Opt-out deadline {day.isoformat()} ({when}): {scope}"
            lead = (
                f"Give notice by {day.isoformat()}; the contract renews on {renewal.isoformat()}."
            )
            severity = "critical" if days <= 14 else "warning"
        else:
            title = f"Renewal {day.isoformat()} ({when}): {scope}"
            lead = f"Renews on {renewal.isoformat()}; " + (
                "the opt-out deadline passed on " + deadline.isoformat() + "."
                if deadline is not None
                else "notice period not entered."
            )
            severity = "warning"
        advice = " ".join(f"{renewal_row_label(r)}: {r['what_to_do']}." for r in rows)
        alerts.append(
            Alert(
                alert_key(rule.id, key, which, day.isoformat()),
                rule.id,
                "deadline_within",
                severity,
                clean_text(title),
                clean_text(f"{lead} {advice}"),
                _opt(first.get("integration")),
                _opt(first.get("account_id")),
                None,
                rule.channels,
            )
        )
    return alerts


def transition(
    previous_open: set[str] | Iterable[str], current: Sequence[Alert]
) -> tuple[list[Alert], list[Alert], list[str]]:
    """(fired, still_open, cleared): alerts whose condition started since the last sync, those that
    held already (not sent again), and the keys of those that cleared (sorted). The open set after
    this sync is the keys of ``fired`` + ``still_open``."""
    previous = set(previous_open)
    fired = [a for a in current if a.key not in previous]
    still_open = [a for a in current if a.key in previous]
    now = {a.key for a in current}
    cleared = sorted(previous - now)
    return fired, still_open, cleared
