"""The alerts job: after every sync, and from ``python -m lib alerts [--dry-run] [--json] [--digest]``.

It evaluates the stored rules (:data:`lib.analytics.alert_rules.DEFAULT_RULES` until an
admin saves some) on the latest snapshot, with metrics from the saved price book
and settings, and on the renewals of the saved contracts; compares them with the
alerts open after the previous run (fire once: an alert is sent when it starts,
and again only after it cleared); sends what fired to the configured channels
(``[alerts.email]``, ``[alerts.webhook]``: :mod:`lib.jobs.notify`), one message per
channel; and records every delivery. A failed delivery is sent again on the next
run while its alert is open. ``[alerts] digest = "weekly"`` (or ``--digest``) adds
one message a week with the top idle spend, the deadlines and the open alerts.

Exit codes: 0 nothing to send; 3 alerts fired (or messages were sent); 1 the
configuration is wrong (channels, rules) or there is no snapshot to evaluate.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from lib.analytics.activity import DEFAULT_INACTIVE_DAYS, exemption_lists, reclaim
from lib.analytics.alert_rules import CHANNELS, DEFAULT_RULES, AlertRule, validate_rules
from lib.analytics.alerts import Alert, evaluate, transition
from lib.analytics.digest import alerts_notice, digest
from lib.analytics.metrics import add_metrics
from lib.analytics.reclaim_views import with_reclaim_cost
from lib.analytics.renewals import HORIZONS, renewals
from lib.config import ConfigError
from lib.jobs.channels import AlertChannels, alert_channels
from lib.jobs.notify import (
    email_message,
    post_webhook,
    send_email,
    slack_payload,
)
from lib.jobs.refresh import metric_options

EXIT_OK, EXIT_CONFIG, EXIT_FIRED = 0, 1, 3
DIGEST_PREFIX = "digest:"
DIGEST_CHOICES = ("weekly", "off")

log = logging.getLogger(__name__)


def rules_in_force(store) -> list[AlertRule]:
    """The saved rules, checked; the defaults on a deployment where none were ever saved."""
    saved = store.get_alert_rules()
    return list(DEFAULT_RULES) if saved is None else validate_rules(saved)


def rule_rows(rules: Sequence[AlertRule]) -> list[dict[str, Any]]:
    """Rules as the store keeps them (plain dicts)."""
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "threshold": r.threshold,
            "enabled": r.enabled,
            "channels": tuple(r.channels),
            "paid_only": r.paid_only,
        }
        for r in rules
    ]


def digest_setting(secrets: Mapping[str, Any]) -> str:
    """``[alerts] digest``: "weekly" or "off" (the default). Raises ConfigError naming the key."""
    section = secrets.get("alerts") if isinstance(secrets, Mapping) else None
    if not isinstance(section, Mapping):
        return "off"
    value = section.get("digest", "off")
    if not isinstance(value, str) or value.strip().lower() not in DIGEST_CHOICES:
        raise ConfigError(
            f"secrets.toml [alerts] digest: {value!r} is not one of {', '.join(DIGEST_CHOICES)}"
        )
    unknown = sorted(set(section) - {"digest", "email", "webhook"})
    if unknown:
        raise ConfigError(
            f"secrets.toml [alerts]: unknown key {unknown[0]!r} (known: digest, email, webhook)"
        )
    return value.strip().lower()


@dataclass(frozen=True)
class Evaluation:
    """What holds on the latest snapshot: metrics, renewals, and the alerts."""

    metrics: pd.DataFrame
    accounts: pd.DataFrame
    renewals: pd.DataFrame
    alerts: list[Alert]
    taken_at: datetime | None


def evaluate_latest(store, config_key: str, today: date, rules: Sequence[AlertRule]) -> Evaluation:
    """The rules on the latest snapshot under ``config_key`` (empty tables when there is none)."""
    latest = store.latest(config_key)
    options = metric_options(store)
    metrics = add_metrics(latest.licenses, store.get_price_book(), options)
    if len(latest.seats):
        users, exempt_licenses = exemption_lists(store.exemptions())
        priced = reclaim(
            latest.seats, metrics, options, DEFAULT_INACTIVE_DAYS, None, users, exempt_licenses
        )
        metrics = with_reclaim_cost(metrics, priced)
    horizon = max(
        [max(HORIZONS)] + [int(r.limit) for r in rules if r.kind == "deadline_within" and r.enabled]
    )
    upcoming = renewals(metrics, store.get_contracts(), today, horizon_days=horizon)
    alerts = evaluate(rules, metrics, latest.accounts, upcoming, today)
    return Evaluation(metrics, latest.accounts, upcoming, alerts, latest.taken_at)


def _alert_from_state(row: Mapping[str, Any]) -> Alert:
    def opt(x: Any) -> Any:
        return None if x is None or x is pd.NA or (isinstance(x, float) and x != x) else x

    return Alert(
        key=str(row["key"]),
        rule_id=str(row["rule_id"]),
        kind=str(row["kind"]),
        severity=str(row["severity"]),
        title=str(row["title"]),
        detail=str(row["detail"]),
        integration=opt(row["integration"]),
        account_id=opt(row["account_id"]),
        license_id=opt(row["license_id"]),
        channels=tuple(c for c in str(row["channels"]).split(",") if c),
    )


@dataclass
class AlertRun:
    """What one run did (``--json`` prints :meth:`as_dict`)."""

    fired: list[Alert] = field(default_factory=list)
    still_open: list[Alert] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    digest: bool = False
    dry_run: bool = False
    configured: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_FIRED if (self.fired or self.deliveries) else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "channels": list(self.configured),
            "fired": [a.as_dict() for a in self.fired],
            "still_open": [a.key for a in self.still_open],
            "cleared": list(self.cleared),
            "retried": list(self.retried),
            "digest": self.digest,
            "deliveries": [
                {k: d[k] for k in ("channel", "ok", "error", "alerts")} for d in self.deliveries
            ],
        }


def _send(channel: str, notice, channels: AlertChannels) -> tuple[bool, str, datetime]:
    if channel == "email":
        assert channels.email is not None, "email is a channel only when [alerts.email] is set"
        result = send_email(email_message(notice, channels.email), channels.email)
    else:
        assert channels.webhook is not None, (
            "webhook is a channel only when [alerts.webhook] is set"
        )
        result = post_webhook(slack_payload(notice), channels.webhook)
    return result.ok, result.error, result.attempted_at or datetime.now(UTC)


def week_key(today: date) -> str:
    year, week, _ = today.isocalendar()
    return f"{DIGEST_PREFIX}{year}-W{week:02d}"


def run_alerts(
    store,
    config_key: str,
    secrets: Mapping[str, Any],
    *,
    dry_run: bool = False,
    force_digest: bool = False,
    today: date | None = None,
    now: datetime | None = None,
    report: Callable[[str], None] | None = None,
) -> AlertRun:
    """Evaluate, transition, deliver, record. Raises ConfigError for bad channels or rules (nothing
    is evaluated or written then)."""
    say = report or log.info
    channels = alert_channels(secrets)
    weekly = digest_setting(secrets) == "weekly"
    rules = rules_in_force(store)
    now = now or datetime.now(UTC)
    today = today or now.date()
    configured = tuple(
        c for c in CHANNELS if (channels.email if c == "email" else channels.webhook) is not None
    )
    run = AlertRun(dry_run=dry_run, configured=configured)
    if channels.email is not None and channels.email.plaintext_login:
        say(
            f"Email: the password for the SMTP server {channels.email.host}:{channels.email.port} "
            "is sent without TLS (allow_plaintext_login = true)"
        )
    found = evaluate_latest(store, config_key, today, rules)
    previous = store.open_alert_keys(config_key)
    run.fired, run.still_open, run.cleared = transition(previous, found.alerts)
    for a in run.fired:
        say(f"FIRED [{a.severity.upper()}] {a.title}")
    for key in run.cleared:
        say(f"Cleared: {key}")
    if not dry_run:
        store.update_alert_state(
            config_key,
            [a.as_dict() for a in run.fired],
            [a.as_dict() for a in run.still_open],
            run.cleared,
            now=now,
        )
    # What to send on each channel: what fired, and what is still open whose last attempt failed.
    open_now = {a.key: a for a in [*run.fired, *run.still_open]}
    pending = store.pending_deliveries(config_key)
    to_send: dict[str, dict[str, Alert]] = {c: {} for c in configured}
    for a in run.fired:
        for c in a.channels:
            if c in to_send:
                to_send[c][a.key] = a
    for rec in pending.to_dict("records"):
        key, channel = rec["alert_key"], rec["channel"]
        if channel in to_send and key in open_now and key not in to_send[channel]:
            to_send[channel][key] = open_now[key]
            run.retried.append(key)
    attempts: list[dict[str, Any]] = []
    for channel, alerts in to_send.items():
        if not alerts:
            continue
        listed = list(alerts.values())
        if dry_run:
            say(f"Would send {len(listed)} alert(s) by {channel} (dry run: nothing sent)")
            continue
        ok, error, when = _send(channel, alerts_notice(listed), channels)
        run.deliveries.append(
            {"channel": channel, "ok": ok, "error": error, "alerts": [a.key for a in listed]}
        )
        attempts += [
            {"alert_key": a.key, "channel": channel, "attempted_at": when, "ok": ok, "error": error}
            for a in listed
        ]
        say(
            f"Sent {len(listed)} alert(s) by {channel}"
            if ok
            else f"FAILED to send {len(listed)} alert(s) by {channel}: {error} (retried next run)"
        )
    if weekly or force_digest:
        key = week_key(today)
        due = [c for c in configured if force_digest or not store.delivered(config_key, key, c)]
        if due:
            open_alerts = list(open_now.values())
            notice = digest(found.metrics, found.renewals, open_alerts, today)
            for channel in due:
                if dry_run:
                    say(f"Would send the weekly digest by {channel} (dry run: nothing sent)")
                    continue
                ok, error, when = _send(channel, notice, channels)
                run.digest = run.digest or ok
                run.deliveries.append(
                    {"channel": channel, "ok": ok, "error": error, "alerts": [key]}
                )
                attempts.append(
                    {
                        "alert_key": key,
                        "channel": channel,
                        "attempted_at": when,
                        "ok": ok,
                        "error": error,
                    }
                )
                say(
                    f"Sent the weekly digest by {channel}"
                    if ok
                    else f"FAILED to send the weekly digest by {channel}: {error} (retried next run)"
                )
    if not dry_run:
        store.record_deliveries(config_key, attempts)
    if not configured and run.fired:
        say(
            "No alert channel is configured ([alerts.email] or [alerts.webhook] in secrets.toml): "
            "the alerts are listed on the Alerts page only."
        )
    if not run.fired and not run.deliveries:
        say(f"No new alerts ({len(run.still_open)} still open).")
    return run


def after_sync(
    store, config_key: str, report: Callable[[str], None], demo: bool = False
) -> AlertRun | None:
    """The hook at the end of ``python -m lib sync``: never changes the sync's exit code."""
    from lib.config import read_secrets_file

    try:
        if demo:
            from lib.jobs.demo import seed_demo_contracts

            seed_demo_contracts(store)
        return run_alerts(store, config_key, read_secrets_file(), report=report)
    except ConfigError as exc:
        report(f"Alerts not evaluated: {exc}")
    except (SQLAlchemyError, sqlite3.DatabaseError):
        raise  # the database itself failed: the sync says so (exit 3)
    except Exception as exc:  # noqa: BLE001  (a failing alert step must not fail the sync)
        log.debug("alerts after sync failed", exc_info=True)
        report(f"Alerts not evaluated: {type(exc).__name__}")
    return None


def cmd_alerts(args: Any, settings) -> int:
    """``python -m lib alerts [--dry-run] [--json] [--digest]``."""
    from lib.config import read_secrets_file
    from lib.jobs.cli_format import strict_json
    from lib.jobs.sync import config_key
    from lib.store import Store, database_url, redact_url

    def err(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    url = database_url()
    try:
        store = Store(url)
    except SQLAlchemyError as exc:
        err(f"Could not open the database {redact_url(url)} ({type(exc).__name__})")
        return EXIT_CONFIG
    try:
        key = config_key(settings)
        if settings.demo:
            from lib.jobs.demo import seed_demo_contracts

            seed_demo_contracts(store)
        if store.latest_snapshot_id(key) is None:
            err("No snapshot to evaluate yet: run `python -m lib sync` first.")
            return EXIT_CONFIG
        try:
            run = run_alerts(
                store,
                key,
                read_secrets_file(),
                dry_run=bool(getattr(args, "dry_run", False)),
                force_digest=bool(getattr(args, "digest", False)),
                report=err,
            )
        except ConfigError as exc:
            err(f"Configuration error: {exc}")
            return EXIT_CONFIG
        if getattr(args, "json", False):
            print(strict_json(run.as_dict()))
        else:
            for a in run.fired:
                print(f"[{a.severity.upper()}] {a.title}")
        return run.exit_code
    finally:
        store.close()
