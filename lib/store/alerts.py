"""Contracts, alert rules, the state of each alert and the deliveries of alert messages.

Plain data in and out: contracts come validated by the caller
(``lib.analytics.contracts.validate_contracts``) and rules as dicts checked by
``lib.analytics.alert_rules.validate_rules``; the store still refuses anything that is
not in the checked shape, before writing anything (all or nothing). Changes to
contracts and rules are admin-only and go to the audit log, as the price book does.

Alert state is kept per snapshot key (``config_key``): one row per alert key, open
while its condition holds. Each delivery attempt is one row; a failed one is
pending until an attempt on the same channel succeeds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, func, insert, select, text, update

from lib.schema import CONTRACT_COLUMNS, CONTRACT_DATE_COLUMNS, CONTRACT_DTYPES
from lib.store._bulk import _chunks
from lib.store.settings import SettingsMixin
from lib.store.tables import (
    ALERT_DELIVERIES,
    ALERT_RULES,
    ALERT_STATE,
    AUDIT_LOG,
    CONTRACTS,
    SETTINGS,
    utcnow,
)

log = logging.getLogger(__name__)

RULE_FIELDS = ("id", "kind", "threshold", "enabled", "channels", "paid_only")
ALERT_FIELDS = (
    "key",
    "rule_id",
    "kind",
    "severity",
    "title",
    "detail",
    "channels",
    "integration",
    "account_id",
    "license_id",
)
STATE_COLUMNS = [
    *ALERT_FIELDS,
    "first_fired_at",
    "last_seen_at",
    "cleared_at",
    "open",
    "times_fired",
]
DELIVERY_COLUMNS = ["alert_key", "channel", "attempted_at", "ok", "error"]
_TERMS = ("monthly", "annual", "multi_year")
_SOURCES = ("vendor", "edited")


def _checked_key(config_key: str) -> str:
    """The settings-table key that records when the alert rules last ran on ``config_key``."""
    return f"alerts_checked_at:{config_key}"


def _none(value: Any) -> Any:
    """None for every kind of missing value; numpy scalars as Python values."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _day(value: Any) -> date | None:
    value = _none(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def empty_contract_frame() -> pd.DataFrame:
    return _contract_frame([])


def _contract_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    data = {}
    for c, dtype in CONTRACT_DTYPES.items():
        values = [r[c] for r in rows]
        if dtype.startswith("datetime"):
            data[c] = pd.Series(
                [pd.Timestamp(v) if v is not None else pd.NaT for v in values], dtype=dtype
            )
        else:
            data[c] = pd.Series(pd.array(values, dtype=dtype))
    return pd.DataFrame(data)


def checked_contracts(contracts: Any) -> list[dict[str, Any]]:
    """Validated contracts as rows to write; ValueError when they are not in the validated shape."""
    hint = "validate them first (lib.analytics.contracts.validate_contracts)"
    if contracts is None:
        return []
    if not isinstance(contracts, pd.DataFrame):
        raise ValueError(f"contracts are a table, not {type(contracts).__name__}: {hint}")
    if list(contracts.columns) != CONTRACT_COLUMNS:
        raise ValueError(f"the contracts' columns must be {', '.join(CONTRACT_COLUMNS)}: {hint}")
    rows = []
    bad = []
    for pos, rec in enumerate(contracts.to_dict("records")):
        row = {c: _none(rec[c]) for c in CONTRACT_COLUMNS}
        try:
            for c in CONTRACT_DATE_COLUMNS:
                row[c] = _day(row[c])
        except (TypeError, ValueError):
            bad.append(pos)
            continue
        ok = isinstance(row["integration"], str) and row["integration"].strip() != ""
        ok = ok and row["contract_end"] is not None and row["source"] in _SOURCES
        ok = ok and (row["term"] is None or row["term"] in _TERMS)
        for c in ("notice_days", "committed_seats"):
            ok = ok and (row[c] is None or (isinstance(row[c], int) and row[c] >= 0))
        value = row["contract_value"]
        ok = ok and (value is None or (isinstance(value, (int, float)) and math.isfinite(value)))
        ok = ok and (value is None or row["currency"] is not None)
        if not ok:
            bad.append(pos)
        row["position"] = pos
        rows.append(row)
    if bad:
        raise ValueError(
            f"contract row(s) {', '.join(str(i + 1) for i in bad[:10])} are not valid: {hint}"
        )
    return rows


def contract_row_label(row: Mapping[str, Any]) -> str:
    """How a contract is named in the audit log: integration · license (account)."""
    name = row.get("license_name") or row.get("license_id") or "all licenses"
    account = f" (account {row['account_id']})" if row.get("account_id") else ""
    return f"{row['integration']} · {name}{account}"


def checked_rules(rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rules as rows to write; ValueError when one is not in the checked shape."""
    hint = "check them first (lib.analytics.alert_rules.validate_rules)"
    out = []
    seen = set()
    for pos, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or set(rule) != set(RULE_FIELDS):
            raise ValueError(f"rule {pos + 1} must have exactly {', '.join(RULE_FIELDS)}: {hint}")
        rid = rule["id"]
        channels = rule["channels"]
        threshold = _none(rule["threshold"])
        ok = isinstance(rid, str) and bool(rid) and rid not in seen
        ok = ok and isinstance(rule["kind"], str) and bool(rule["kind"])
        ok = ok and isinstance(rule["enabled"], bool) and isinstance(rule["paid_only"], bool)
        ok = (
            ok and isinstance(channels, (list, tuple)) and all(isinstance(c, str) for c in channels)
        )
        ok = ok and (
            threshold is None
            or (
                isinstance(threshold, (int, float))
                and not isinstance(threshold, bool)
                and math.isfinite(threshold)
            )
        )
        if not ok:
            raise ValueError(f"rule {pos + 1} ({rid!r}) is not valid: {hint}")
        seen.add(rid)
        out.append(
            {
                "position": pos,
                "id": rid,
                "kind": rule["kind"],
                "threshold": None if threshold is None else float(threshold),
                "enabled": rule["enabled"],
                "channels": ",".join(channels),
                "paid_only": rule["paid_only"],
            }
        )
    return out


class AlertsMixin(SettingsMixin):
    # ------------------------------------------------------------ contracts

    def get_contracts(self) -> pd.DataFrame:
        """The saved contracts (columns :data:`lib.schema.CONTRACT_COLUMNS`), in the order saved."""
        with self._read() as conn:
            rows = conn.execute(
                select(*(CONTRACTS.c[c] for c in CONTRACT_COLUMNS)).order_by(CONTRACTS.c.position)
            ).all()
        return _contract_frame([dict(r._mapping) for r in rows])

    def save_contracts(self, contracts: pd.DataFrame | None, actor) -> int:
        """Replace the contracts with validated ones; admins only, audited; all or nothing.

        Returns the number of contracts saved.
        """
        self._require_editor(actor)
        rows = checked_contracts(contracts)
        cols = CONTRACT_COLUMNS
        with self._write() as conn:
            old = [
                dict(r._mapping)
                for r in conn.execute(select(*(CONTRACTS.c[c] for c in cols))).all()
            ]
            conn.execute(delete(CONTRACTS))
            if rows:
                conn.execute(insert(CONTRACTS), rows)

            def keyed(recs) -> dict[str, tuple]:
                return {contract_row_label(r): tuple(r[c] for c in cols) for r in recs}

            was, now = keyed(old), keyed(rows)
            changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
            self._audit(
                conn,
                actor,
                "contracts",
                {"entries_before": len(old), "entries_after": len(rows), "changed": changed},
            )
        log.info("contracts saved by %s: %d (was %d)", actor.label, len(rows), len(old))
        return len(rows)

    def replace_vendor_contracts(
        self,
        vendor: pd.DataFrame | None,
        accounts: Iterable[str],
        actor,
        merge: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame],
    ) -> int:
        """Replace the contracts prefilled from the vendor (source ``vendor``) of ``accounts`` (and of
        every account in ``vendor``) with ``vendor``; all or nothing, audited when anything changed.

        Edited contracts are never touched (nor are the vendor contracts of other accounts, e.g. one
        whose billing listing failed this time). Which new vendor rows stay is ``merge(vendor,
        edited)`` (:func:`lib.analytics.vendor_contracts.merge_contracts`: an edited contract with
        the same key wins), run on the edited contracts as stored, inside the same transaction.
        Returns the number of vendor contracts now stored for those accounts.
        """
        self._require_editor(actor)
        rows = checked_contracts(vendor)
        if any(r["source"] != "vendor" for r in rows):
            raise ValueError("only contracts with source 'vendor' can be replaced from billing")
        replaced = set(accounts) | {r["account_id"] for r in rows}
        cols = CONTRACT_COLUMNS
        with self._write() as conn:
            if self.dialect == "postgresql":
                # A person saving the contracts at the same time waits, or is waited for.
                conn.execute(text("LOCK TABLE contracts IN SHARE ROW EXCLUSIVE MODE"))
            current = [
                dict(r._mapping)
                for r in conn.execute(
                    select(CONTRACTS.c.position, *(CONTRACTS.c[c] for c in cols)).order_by(
                        CONTRACTS.c.position
                    )
                ).all()
            ]
            edited = [r for r in current if r["source"] != "vendor"]
            stale = [r for r in current if r["source"] == "vendor" and r["account_id"] in replaced]
            kept = merge(_contract_frame(rows), _contract_frame(edited))
            fresh = [r for r in checked_contracts(kept) if r["source"] == "vendor"]

            def keyed(recs) -> dict[str, tuple]:
                return {contract_row_label(r): tuple(r[c] for c in cols) for r in recs}

            was, now = keyed(stale), keyed(fresh)
            changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
            if not changed:
                return len(fresh)
            if stale:
                conn.execute(
                    delete(CONTRACTS).where(
                        CONTRACTS.c.position.in_([r["position"] for r in stale])
                    )
                )
            start = max((r["position"] for r in current), default=-1) + 1
            for i, r in enumerate(fresh):
                r["position"] = start + i
            if fresh:
                conn.execute(insert(CONTRACTS), fresh)
            self._audit(
                conn,
                actor,
                "vendor_contracts",
                {
                    "accounts": sorted(a for a in replaced if a),
                    "entries_before": len(stale),
                    "entries_after": len(fresh),
                    "changed": changed,
                },
            )
        log.info("vendor contracts saved by %s: %d (was %d)", actor.label, len(fresh), len(stale))
        return len(fresh)

    def contracts_saved(self) -> bool:
        """True once anyone (or the demo seeding) saved contracts in this database."""
        with self._read() as conn:
            return bool(
                conn.execute(
                    select(func.count())
                    .select_from(AUDIT_LOG)
                    .where(AUDIT_LOG.c.action == "contracts")
                ).scalar()
            )

    # ---------------------------------------------------------------- rules

    def get_alert_rules(self) -> list[dict[str, Any]] | None:
        """The saved rules as dicts (``RULE_FIELDS``), or None when none were ever saved (the caller
        then uses its defaults)."""
        with self._read() as conn:
            rows = conn.execute(select(ALERT_RULES).order_by(ALERT_RULES.c.position)).all()
            if not rows:
                saved = conn.execute(
                    select(func.count())
                    .select_from(AUDIT_LOG)
                    .where(AUDIT_LOG.c.action == "alert_rules")
                ).scalar()
                if not saved:
                    return None
        return [
            {
                "id": r.id,
                "kind": r.kind,
                "threshold": r.threshold,
                "enabled": bool(r.enabled),
                "channels": tuple(c for c in r.channels.split(",") if c),
                "paid_only": bool(r.paid_only),
            }
            for r in rows
        ]

    def save_alert_rules(self, rules: Iterable[Mapping[str, Any]], actor) -> int:
        """Replace the alert rules with checked ones; admins only, audited; all or nothing."""
        self._require_editor(actor)
        rows = checked_rules(rules)
        with self._write() as conn:
            before = conn.execute(select(ALERT_RULES.c.id).order_by(ALERT_RULES.c.position)).all()
            conn.execute(delete(ALERT_RULES))
            if rows:
                conn.execute(insert(ALERT_RULES), rows)
            self._audit(
                conn,
                actor,
                "alert_rules",
                {"before": [r.id for r in before], "after": [r["id"] for r in rows]},
            )
        log.info("alert rules saved by %s: %d rules", actor.label, len(rows))
        return len(rows)

    # ---------------------------------------------------------- alert state

    def alert_states(self, config_key: str, open_only: bool = False) -> pd.DataFrame:
        """Every alert seen under ``config_key`` (open first, newest first): :data:`STATE_COLUMNS`."""
        query = select(*(ALERT_STATE.c[c] for c in STATE_COLUMNS)).where(
            ALERT_STATE.c.config_key == config_key
        )
        if open_only:
            query = query.where(ALERT_STATE.c.open.is_(True))
        query = query.order_by(
            ALERT_STATE.c.open.desc(), ALERT_STATE.c.first_fired_at.desc(), ALERT_STATE.c.key
        )
        with self._read() as conn:
            rows = [tuple(r) for r in conn.execute(query).all()]
        df = pd.DataFrame(rows, columns=STATE_COLUMNS)
        for c in ("first_fired_at", "last_seen_at", "cleared_at"):
            df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[us, UTC]")
        df["open"] = df["open"].astype(bool)
        df["times_fired"] = df["times_fired"].astype("int64")
        return df.astype({c: "string" for c in ALERT_FIELDS})

    def alerts_checked_at(self, config_key: str) -> datetime | None:
        """When the alert rules last ran on ``config_key``'s data (:meth:`update_alert_state`),
        found something or not; None when they never ran on this database."""
        with self._read() as conn:
            value = conn.execute(
                select(SETTINGS.c.updated_at).where(SETTINGS.c.key == _checked_key(config_key))
            ).scalar()
        return None if value is None else pd.Timestamp(value).tz_convert("UTC").to_pydatetime()

    def open_alert_keys(self, config_key: str) -> set[str]:
        with self._read() as conn:
            return set(
                conn.execute(
                    select(ALERT_STATE.c.key).where(
                        ALERT_STATE.c.config_key == config_key, ALERT_STATE.c.open.is_(True)
                    )
                ).scalars()
            )

    def update_alert_state(
        self,
        config_key: str,
        fired: Sequence[Mapping[str, Any]],
        still_open: Sequence[Mapping[str, Any]],
        cleared: Iterable[str],
        now: datetime | None = None,
    ) -> None:
        """One transaction: alerts that fired (opened, or opened again after clearing), alerts still
        open (last seen, last detail), and the keys that cleared. Alerts are dicts with
        :data:`ALERT_FIELDS` (``channels`` a list)."""
        now = now or utcnow()
        t = ALERT_STATE

        def values(a: Mapping[str, Any]) -> dict[str, Any]:
            out = {f: _none(a.get(f)) for f in ALERT_FIELDS if f != "key"}
            out["channels"] = ",".join(a.get("channels") or ())
            return out

        fired = list({a["key"]: a for a in fired}.values())  # an alert's key is its identity
        keys = [a["key"] for a in fired]
        with self._write() as conn:
            # Set-wise (one query per thousand keys, one executemany per kind of change): at
            # thousands of accounts, a statement per alert took most of a sync's last 20 s.
            known: dict[str, int] = {}
            for chunk in _chunks(keys):
                known.update(
                    (k, int(n))
                    for k, n in conn.execute(
                        select(t.c.key, t.c.times_fired).where(
                            t.c.config_key == config_key, t.c.key.in_(chunk)
                        )
                    ).all()
                )
            opened = [
                {
                    "config_key": config_key,
                    "key": a["key"],
                    **values(a),
                    "first_fired_at": now,
                    "last_seen_at": now,
                    "cleared_at": None,
                    "open": True,
                    "times_fired": 1,
                }
                for a in fired
                if a["key"] not in known
            ]
            if opened:
                conn.execute(insert(t), opened)
            again = [
                {
                    "b_key": a["key"],
                    **values(a),
                    "first_fired_at": now,
                    "last_seen_at": now,
                    "cleared_at": None,
                    "open": True,
                    "times_fired": known[a["key"]] + 1,
                }
                for a in fired
                if a["key"] in known
            ]
            by_key = update(t).where(t.c.config_key == config_key, t.c.key == bindparam("b_key"))
            if again:
                conn.execute(by_key, again)
            seen = [
                {"b_key": a["key"], **values(a), "last_seen_at": now, "open": True}
                for a in still_open
            ]
            if seen:
                conn.execute(by_key, seen)
            keys = list(cleared)
            if keys:
                conn.execute(
                    update(t)
                    .where(t.c.config_key == config_key, t.c.key.in_(keys), t.c.open.is_(True))
                    .values(open=False, cleared_at=now)
                )
            # When the rules ran (alerts_checked_at), in the key-value table the settings use:
            # a run that finds nothing leaves no other trace.
            conn.execute(delete(SETTINGS).where(SETTINGS.c.key == _checked_key(config_key)))
            conn.execute(
                insert(SETTINGS).values(
                    key=_checked_key(config_key),
                    value="null",
                    updated_at=now,
                    updated_by="alert rules",
                )
            )

    # ----------------------------------------------------------- deliveries

    def record_deliveries(self, config_key: str, attempts: Sequence[Mapping[str, Any]]) -> None:
        """One row per attempt: dicts with :data:`DELIVERY_COLUMNS` (``error`` "" when ok)."""
        if not attempts:
            return
        rows = [
            {
                "config_key": config_key,
                "alert_key": str(a["alert_key"]),
                "channel": str(a["channel"]),
                "attempted_at": a.get("attempted_at") or utcnow(),
                "ok": bool(a["ok"]),
                "error": str(a.get("error") or ""),
            }
            for a in attempts
        ]
        with self._write() as conn:
            conn.execute(insert(ALERT_DELIVERIES), rows)

    def deliveries(self, config_key: str, limit: int = 500) -> pd.DataFrame:
        """The latest delivery attempts, newest first: :data:`DELIVERY_COLUMNS`."""
        t = ALERT_DELIVERIES
        with self._read() as conn:
            rows = conn.execute(
                select(*(t.c[c] for c in DELIVERY_COLUMNS))
                .where(t.c.config_key == config_key)
                .order_by(t.c.attempted_at.desc(), t.c.id.desc())
                .limit(limit)
            ).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=DELIVERY_COLUMNS)
        df["attempted_at"] = pd.to_datetime(df["attempted_at"], utc=True).astype(
            "datetime64[us, UTC]"
        )
        df["ok"] = df["ok"].astype(bool)
        return df.astype({"alert_key": "string", "channel": "string", "error": "string"})

    def pending_deliveries(self, config_key: str) -> pd.DataFrame:
        """(alert_key, channel) whose latest attempt failed, with attempts and the last error.

        Columns: alert_key, channel, attempts, last_attempt_at, error. The caller decides which are
        still worth sending (e.g. only alerts still open).
        """
        t = ALERT_DELIVERIES
        cols = ["alert_key", "channel", "attempts", "last_attempt_at", "error"]
        with self._read() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.alert_key, t.c.channel, t.c.attempted_at, t.c.ok, t.c.error)
                .where(t.c.config_key == config_key)
                .order_by(t.c.attempted_at, t.c.id)
            ).all()
        latest: dict[tuple[str, str], list] = {}
        for r in rows:
            k = (r.alert_key, r.channel)
            if r.ok:
                latest.pop(k, None)
                continue
            entry = latest.setdefault(k, [0, None, ""])
            entry[0] += 1
            entry[1], entry[2] = r.attempted_at, r.error
        df = pd.DataFrame([(k[0], k[1], *v) for k, v in latest.items()], columns=cols)
        df["last_attempt_at"] = pd.to_datetime(df["last_attempt_at"], utc=True).astype(
            "datetime64[us, UTC]"
        )
        return df.astype({"alert_key": "string", "channel": "string", "error": "string"}).astype(
            {"attempts": "int64"}
        )

    def delivered(self, config_key: str, alert_key: str, channel: str) -> bool:
        """True when a message for ``alert_key`` reached ``channel`` at least once."""
        t = ALERT_DELIVERIES
        with self._read() as conn:
            return bool(
                conn.execute(
                    select(func.count())
                    .select_from(t)
                    .where(
                        t.c.config_key == config_key,
                        t.c.alert_key == alert_key,
                        t.c.channel == channel,
                        t.c.ok.is_(True),
                    )
                ).scalar()
            )
