"""What the Renewals and Alerts pages show, computed without Streamlit (pinned by unit tests).

Renewals: the tiles over the renewals within the chosen horizon, the table's columns and
headers, and the year's timeline (one point per contract date). Alerts: the open alerts and
their history, each delivery with its alert's title, and the rules as an editable table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from lib.analytics.alert_rules import AlertRule, validate_rules
from lib.analytics.labels import NOT_REPORTED, fmt_money, headers, humanize_age
from lib.analytics.renewals import RENEWAL_LABELS
from lib.analytics.views import Tile, tile_note, tile_value

# The renewal table: the license, the dates, the saving, what to do and the seats (in view at 1440 px);
# the countdowns, the account and the key after them.
RENEWAL_SHOWN = [
    "license_name",
    "organization_name",
    "opt_out_deadline",
    "renewal_date",
    "potential_annual_savings_reporting",
    "what_to_do",
    "seat_change",
    "total_seats",
    "assigned_seats",
    "recommended_seats",
    "true_up_exposure_reporting",
    "account_id",
    "integration_label",
    "days_to_opt_out",
    "days_to_renewal",
    "auto_renew",
    "source_label",
    "source",
]
SOURCE_LABELS = {"vendor": "Vendor (prefilled from billing)", "edited": "Entered here"}


def renewal_headers(columns: Sequence[str], currency: str | None) -> dict[str, str]:
    """Column -> header: the contract words first (RENEWAL_LABELS), else the dashboard's."""
    base = headers(columns, currency)
    return {c: RENEWAL_LABELS.get(c, base[c]) for c in columns}


def _day(value: Any) -> date | None:
    if value is None or value is pd.NaT or (not isinstance(value, date) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date()


def _per_contract(renewals: pd.DataFrame) -> pd.DataFrame:
    """One row per contract renewal (a contract covering several licenses counts once)."""
    return renewals.drop_duplicates(["contract_key", "renewal_date"])


def renewal_tiles(renewals: pd.DataFrame, today: date, horizon: int, currency: str) -> list[Tile]:
    """Renewals and opt-out deadlines within ``horizon`` days, the saving at recommended seats and
    the true-up exposure of the licenses renewing (unknown amounts are said, never 0)."""
    contracts = _per_contract(renewals)
    renew = int((contracts["days_to_renewal"] <= horizon).sum()) if len(contracts) else 0
    to_opt = contracts["days_to_opt_out"]
    deadlines = (
        int(((to_opt >= 0) & (to_opt <= horizon)).fillna(False).sum()) if len(contracts) else 0
    )
    passed = int((to_opt < 0).fillna(False).sum()) if len(contracts) else 0

    def money(column: str) -> tuple[str, str | None]:
        values = renewals[column] if len(renewals) else pd.Series(dtype="Float64")
        known = values.dropna()
        missing = len(values) - len(known)
        total = float(known.sum()) if len(known) else 0.0
        note = f"{missing} license(s) without a price or seat counts" if missing else None
        # Never 0 for what is not known: with licenses left out, "at least" a sum above 0, else
        # "not known" (the same words as the Overview's money tiles: labels.amount_words).
        if not missing:
            text = fmt_money(total, currency) if len(known) else NOT_REPORTED
        elif total > 0:
            text = tile_value("at least " + fmt_money(total, currency))
            note = tile_note("at least ", note)
        else:
            text = "not known"
        return text, note

    saving, saving_note = money("potential_annual_savings_reporting")
    exposure, exposure_note = money("true_up_exposure_reporting")
    return [
        Tile(
            f"Renewals in the next {horizon} days",
            f"{renew:,}",
            "Contracts whose next renewal date is within the period.",
        ),
        # Tile labels fit a quarter of the page at 1440 px (a longer one is cut with "…"): the
        # period goes in the note and the help.
        Tile(
            "Opt-out deadlines",
            f"{deadlines:,}",
            f"Opt-out deadlines in the next {horizon} days. The last day to give notice: the "
            "renewal date minus the notice period.",
            f"in the next {horizon} days"
            + (f"; {passed} deadline(s) already passed" if passed else ""),
        ),
        Tile(
            "Saving at renewal",
            saving,
            "Annual saving at recommended seats: cutting the licenses renewing in the next "
            f"{horizon} days to assigned seats plus the buffer, per year.",
            saving_note or "a year, at recommended seats",
        ),
        Tile(
            "Annual true-up exposure",
            exposure,
            "Seats assigned beyond those bought on the licenses renewing, per year at list price.",
            exposure_note,
        ),
    ]


def renewal_table(renewals: pd.DataFrame) -> pd.DataFrame:
    """The rows as the page shows them (columns :data:`RENEWAL_SHOWN`): ``source`` the machine name
    (vendor, edited), ``source_label`` in words."""
    out = renewals[[c for c in RENEWAL_SHOWN if c in renewals.columns and c != "source_label"]]
    words = out["source"].map(lambda s: SOURCE_LABELS.get(s, s) if isinstance(s, str) else s)
    out = out.assign(source_label=words.astype("string"), source=out["source"].astype("string"))
    return out[[c for c in RENEWAL_SHOWN if c in out.columns]]


def timeline(renewals: pd.DataFrame, today: date) -> pd.DataFrame:
    """One point per contract date in the year ahead: label, day, kind (``Opt-out deadline`` or
    ``Renewal``), passed (a deadline already past), advice. Sorted by day."""
    rows: list[tuple[str, date | None, str, bool, str]] = []
    for rec in _per_contract(renewals).to_dict("records"):
        scope = rec["integration_label"] or rec["integration"]
        group = renewals[
            (renewals["contract_key"] == rec["contract_key"])
            & (renewals["renewal_date"] == rec["renewal_date"])
        ]
        names = sorted({str(n) for n in group["license_name"].dropna()})
        label = f"{scope}: {', '.join(names)}" if names else f"{scope} (all licenses)"
        advice = "; ".join(str(a) for a in group["what_to_do"].dropna())
        renewal = _day(rec["renewal_date"])
        deadline = _day(rec["opt_out_deadline"])
        if deadline is not None:
            rows.append((label, deadline, "Opt-out deadline", deadline < today, advice))
        rows.append((label, renewal, "Renewal", False, advice))
    df = pd.DataFrame(rows, columns=["label", "day", "kind", "passed", "advice"])
    df["day"] = pd.to_datetime(df["day"])
    return df.sort_values(["day", "label"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------ alerts

ALERT_SHOWN = ["severity", "title", "detail", "first_fired_at", "last_seen_at", "times_fired"]
HISTORY_SHOWN = [
    "severity",
    "title",
    "first_fired_at",
    "cleared_at",
    "times_fired",
    "detail",
]
ALERT_HEADERS = {
    "severity": "Severity",
    "raised": "Raised",
    "title": "Alert",
    "detail": "Detail",
    "first_fired_at": "Fired at (UTC)",
    "last_seen_at": "Last seen (UTC)",
    "cleared_at": "Cleared at (UTC)",
    "times_fired": "Times fired",
    "attempted_at": "Attempted at (UTC)",
    "channel": "Channel",
    "status": "Status",
    "error": "Why it failed",
    "alert": "Alert",
}
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


HOLDING_SHOWN = ["severity", "title", "detail", "raised", "first_fired_at"]


def holding_now(holding: Sequence[Any], states: pd.DataFrame) -> pd.DataFrame:
    """Every condition that holds on the latest data (``holding``: the rules evaluated now,
    :class:`lib.analytics.alerts.Alert`), critical first: whether it is raised (an open alert since
    ``first_fired_at``) or not yet (the next check raises and sends it). Columns
    :data:`HOLDING_SHOWN`."""
    open_states = states[states["open"]] if len(states) else states
    since = dict(zip(open_states["key"], open_states["first_fired_at"])) if len(states) else {}
    rows = [
        {
            "severity": a.severity,
            "title": a.title,
            "detail": a.detail,
            "raised": "Open alert" if a.key in since else "Not yet raised: at the next check",
            "first_fired_at": since.get(a.key, pd.NaT),
            "_rank": _SEVERITY_ORDER.get(a.severity, 9),
        }
        for a in holding
    ]
    out = pd.DataFrame(rows, columns=[*HOLDING_SHOWN, "_rank"])
    out["first_fired_at"] = pd.to_datetime(out["first_fired_at"], utc=True)
    out = out.sort_values(["_rank", "title"], kind="stable").drop(columns="_rank")
    return out.astype({c: "string" for c in ("severity", "title", "detail", "raised")}).reset_index(
        drop=True
    )


def no_longer_holding(holding: Sequence[Any], states: pd.DataFrame) -> pd.DataFrame:
    """Open alerts whose condition no longer holds on the latest data: the next check clears them."""
    keys = {a.key for a in holding}
    rows = states[states["open"] & ~states["key"].isin(keys)] if len(states) else states
    return open_alerts(rows) if len(rows) else open_alerts(states.iloc[0:0])


def checked_words(checked_at: Any, now: Any) -> str:
    """When the alert rules last ran, for the Alerts page."""
    if checked_at is None or checked_at is pd.NaT:
        return (
            "The alert rules have not run on this data yet: they run after every scheduled sync "
            "and whenever an admin checks the alerts."
        )
    age = humanize_age((pd.Timestamp(now) - pd.Timestamp(checked_at)).total_seconds())
    return f"The alert rules last ran {age} ({pd.Timestamp(checked_at):%Y-%m-%d %H:%M} UTC)."


def open_alerts(states: pd.DataFrame) -> pd.DataFrame:
    """The open alerts, critical first, then newest."""
    rows = states[states["open"]].copy()
    rows["_rank"] = rows["severity"].map(_SEVERITY_ORDER).fillna(9)
    rows = rows.sort_values(["_rank", "first_fired_at"], ascending=[True, False], kind="stable")
    return rows[ALERT_SHOWN].reset_index(drop=True)


def alert_history(states: pd.DataFrame) -> pd.DataFrame:
    """The alerts that cleared, latest first."""
    rows = states[~states["open"]].sort_values("cleared_at", ascending=False, kind="stable")
    return rows[HISTORY_SHOWN].reset_index(drop=True)


def delivery_table(deliveries: pd.DataFrame, states: pd.DataFrame) -> pd.DataFrame:
    """Each attempt with its alert's title (or "Weekly digest") and "Delivered" / "Failed"."""
    titles = dict(zip(states["key"], states["title"]))

    def name(key: str) -> str:
        if key.startswith("digest:"):
            return f"Weekly digest ({key.removeprefix('digest:')})"
        return titles.get(key, key)

    out = pd.DataFrame(
        {
            "attempted_at": deliveries["attempted_at"],
            "channel": deliveries["channel"],
            "status": deliveries["ok"].map({True: "Delivered", False: "Failed"}),
            "alert": deliveries["alert_key"].map(name),
            "error": deliveries["error"].replace("", pd.NA),
        }
    )
    return out.astype(
        {"channel": "string", "status": "string", "alert": "string", "error": "string"}
    )


RULE_COLUMNS = ["id", "kind", "threshold", "enabled", "paid_only", "channels"]


def rules_frame(rules: Sequence[AlertRule]) -> pd.DataFrame:
    """The rules as an editable table: channels as "email, webhook" text."""
    return pd.DataFrame(
        {
            "id": pd.array([r.id for r in rules], dtype="string"),
            "kind": pd.array([r.kind for r in rules], dtype="string"),
            "threshold": pd.array(
                [None if r.threshold is None else float(r.threshold) for r in rules],
                dtype="Float64",
            ),
            "enabled": pd.array([r.enabled for r in rules], dtype="boolean"),
            "paid_only": pd.array([r.paid_only for r in rules], dtype="boolean"),
            "channels": pd.array([", ".join(r.channels) for r in rules], dtype="string"),
        }
    )


def rules_from_frame(df: pd.DataFrame) -> list[AlertRule]:
    """Rules from the edited table, checked (:func:`validate_rules` raises with every problem)."""
    records = []
    for rec in df.to_dict("records"):
        if all(v is None or v is pd.NA or (isinstance(v, float) and v != v) for v in rec.values()):
            continue  # a blank row the editor added

        def opt(x: Any) -> Any:
            return None if x is None or x is pd.NA or (isinstance(x, float) and x != x) else x

        records.append(
            {
                "id": opt(rec.get("id")),
                "kind": opt(rec.get("kind")),
                "threshold": opt(rec.get("threshold")),
                "enabled": True if opt(rec.get("enabled")) is None else bool(rec["enabled"]),
                "paid_only": True if opt(rec.get("paid_only")) is None else bool(rec["paid_only"]),
                "channels": opt(rec.get("channels")) or "",
            }
        )
    return validate_rules(records)
