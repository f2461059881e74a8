"""Alert rules: kinds, channels, thresholds and their validation."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from lib.config import ConfigError

KINDS = (
    "under_used",
    "free_seats_below",
    "over_allocated",
    "deadline_within",
    "account_failed",
    "idle_cost_above",
    "reclaimable_cost_above",
)
CHANNELS = ("email", "webhook")
SEVERITIES = ("critical", "warning", "info")

KIND_LABELS = {
    "under_used": "Paid license under-used (utilization below the threshold)",
    "free_seats_below": "Fewer unassigned seats than N",
    "over_allocated": "Over-allocated (more seats assigned than bought)",
    "deadline_within": "Renewal or opt-out deadline within N days",
    "account_failed": "Integrated account failed or needs reauthorization",
    "idle_cost_above": "Annual cost of unassigned seats above an amount",
    "reclaimable_cost_above": "Annual cost of reclaimable seats (unused 90 days, departed, invited) "
    "above an amount",
}

# What the threshold of each kind is: (required, whole number, lowest, highest, unit).
_THRESHOLDS: dict[str, tuple[bool, bool, float, float, str] | None] = {
    "under_used": (False, False, 0.0, 100.0, "% utilization"),
    "free_seats_below": (True, True, 1, 10**9, "seats"),
    "over_allocated": None,
    "deadline_within": (True, True, 0, 3650, "days"),
    "account_failed": None,
    "idle_cost_above": (True, False, 0.0, 1e12, "in the reporting currency"),
    "reclaimable_cost_above": (True, False, 0.0, 1e12, "in the reporting currency"),
}
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class AlertRule:
    """One rule. ``threshold``: the number the kind compares with (see :data:`KIND_LABELS`);
    for ``under_used`` None means the dashboard's own under-used threshold (the ``flag``).
    ``paid_only``: only paid licenses (cost and under-use rules are paid-only whatever it says).
    ``channels``: where a firing alert is sent; empty = listed on the Alerts page only."""

    id: str
    kind: str
    threshold: float | int | None = None
    enabled: bool = True
    channels: tuple[str, ...] = CHANNELS
    paid_only: bool = True

    def describe(self) -> str:
        label = KIND_LABELS.get(self.kind, self.kind)
        if self.kind == "under_used":
            what = (
                "the dashboard's under-used threshold"
                if self.threshold is None
                else f"below {_num(self.threshold)}%"
            )
            return f"{label}: {what}"
        if self.threshold is not None:
            return f"{label}: N = {_num(self.threshold)}"
        return label

    @property
    def limit(self) -> float:
        """The threshold of a kind that needs one (validate_rules refuses such a rule without it)."""
        assert self.threshold is not None, f"{self.id}: {self.kind} needs a threshold"
        return float(self.threshold)


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("over-allocated-paid", "over_allocated"),
    AlertRule("account-failed", "account_failed", paid_only=False),
    AlertRule("deadline-60-days", "deadline_within", 60, paid_only=False),
    AlertRule("under-used-paid", "under_used"),
)


class AlertRulesError(ConfigError):
    """Alert rules with problems; ``.problems`` lists them all."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            f"The alert rules were not applied: {count} problem{'s' if count != 1 else ''}:\n"
            + "\n".join(f"- {p}" for p in self.problems)
        )


def _num(x: Any) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return (
        True
        if text in ("true", "yes", "1", "on")
        else False
        if text in ("false", "no", "0", "off")
        else None
    )


def validate_rules(rules: Iterable[AlertRule | Mapping[str, Any]]) -> list[AlertRule]:
    """Checked rules from AlertRule objects or dicts (as stored); every problem listed by rule
    number.

    Raises :class:`AlertRulesError`; nothing is half applied.
    """
    names = {f.name for f in fields(AlertRule)}
    problems: list[str] = []
    out: list[AlertRule] = []
    seen: dict[str, int] = {}
    for pos, raw in enumerate(rules, 1):
        rec = {f: getattr(raw, f) for f in names} if isinstance(raw, AlertRule) else raw
        where = f"rule {pos}"
        if not isinstance(rec, Mapping):
            problems.append(f"{where}: not a rule")
            continue
        unknown = sorted(set(rec) - names)
        if unknown:
            problems.append(f"{where}: unknown setting {unknown[0]!r}")
        rid = rec.get("id")
        if not isinstance(rid, str) or not _RULE_ID.match(rid):
            problems.append(
                f"{where}, id: {rid!r} is not a rule id (lower-case letters, digits, - and _, "
                "up to 64)"
            )
            rid = None
        else:
            where = f"rule {pos} ({rid})"
            first = seen.setdefault(rid, pos)
            if first != pos:
                problems.append(f"{where}, id: already used by rule {first}")
        kind = rec.get("kind")
        if kind not in KINDS:
            problems.append(f"{where}, kind: {kind!r} is not one of {', '.join(KINDS)}")
            kind = None
        threshold = rec.get("threshold")
        if threshold == "":
            threshold = None
        if kind is not None:
            spec = _THRESHOLDS[kind]
            if spec is None:
                if threshold is not None:
                    problems.append(f"{where}, threshold: {kind} takes no threshold")
            elif threshold is None:
                if spec[0]:
                    problems.append(f"{where}, threshold: {kind} needs a number ({spec[4]})")
            else:
                _, whole, low, high, unit = spec
                number = None
                if not isinstance(threshold, bool):
                    try:
                        number = float(threshold)
                    except (TypeError, ValueError):
                        number = None
                if number is None or not math.isfinite(number):
                    problems.append(f"{where}, threshold: {threshold!r} is not a number")
                elif whole and not number.is_integer():
                    problems.append(
                        f"{where}, threshold: {threshold!r} is not a whole number of {unit}"
                    )
                elif not low <= number <= high:
                    problems.append(
                        f"{where}, threshold: {threshold!r} is outside {_num(low)} to "
                        f"{_num(high)} {unit}"
                    )
                else:
                    threshold = int(number) if whole else number
        enabled = _bool(rec.get("enabled", True))
        if enabled is None:
            problems.append(f"{where}, enabled: {rec.get('enabled')!r} is not true or false")
        paid_only = _bool(rec.get("paid_only", True))
        if paid_only is None:
            problems.append(f"{where}, paid_only: {rec.get('paid_only')!r} is not true or false")
        channels = rec.get("channels", CHANNELS)
        if isinstance(channels, str):
            channels = [c.strip() for c in channels.split(",") if c.strip()]
        if not isinstance(channels, (list, tuple)) or not all(c in CHANNELS for c in channels):
            problems.append(f"{where}, channels: {channels!r}: use any of {', '.join(CHANNELS)}")
            channels = ()
        if rid and kind and not problems:
            out.append(
                AlertRule(
                    rid,
                    kind,
                    threshold,
                    bool(enabled),
                    tuple(dict.fromkeys(channels)),
                    bool(paid_only),
                )
            )
    if problems:
        raise AlertRulesError(problems)
    return out
