"""Settings, price book, exchange rates and the audit log of their changes.

The store checks the settings itself (names, ranges, ISO 4217 codes: the rules
and defaults are the base layer's, :data:`lib.schema.SETTINGS_DEFAULTS`). Price
books and rates come validated by the caller (``lib.analytics.pricing``:
``validate_price_book`` / ``validate_fx_rates`` / the loaders); the store still
refuses anything that does not hold the validated shape, before writing anything.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from lib.schema import (
    BILLING_PERIODS,
    CURRENCY_CODES,
    MAX_BUFFER,
    MAX_KEEP_DAYS,
    PRICE_BOOK_COLUMNS,
    PRICE_BOOK_DTYPES,
    SETTINGS_DEFAULTS,
    price_book_diff,
)
from lib.store.base import StoreBase
from lib.store.tables import AUDIT_LOG, FX_RATES, PRICE_BOOK, SETTINGS, utcnow

log = logging.getLogger(__name__)


class SettingsError(ValueError):
    """Settings that were not saved; ``.problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("The settings were not saved: " + "; ".join(self.problems))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _same_setting(old: Any, new: Any) -> bool:
    """A setting saved again: the same, or a number within rounding (the page shows 0.07 as 7.000000000000001 %)."""
    a, b = _number(old), _number(new)
    if a is not None and b is not None and not isinstance(old, str) and not isinstance(new, str):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(old == new)


def validate_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The given settings checked and normalized; raises :class:`SettingsError` listing every problem."""
    problems: list[str] = []
    out: dict[str, Any] = {}
    if not isinstance(values, Mapping):
        raise SettingsError(["expected a mapping of setting names to values"])
    for key, value in values.items():
        if key not in SETTINGS_DEFAULTS:
            problems.append(f"{key!r} is not a setting (known: {', '.join(SETTINGS_DEFAULTS)})")
            continue
        if key == "reporting_currency":
            code = str(value).strip().upper() if isinstance(value, str) else ""
            if code not in CURRENCY_CODES:
                problems.append(f"reporting_currency: {value!r} is not an ISO 4217 currency code")
            else:
                out[key] = code
        elif key == "vendor_price_period":
            period = str(value).strip().lower() if isinstance(value, str) else ""
            if period not in BILLING_PERIODS:
                problems.append(
                    f"vendor_price_period: {value!r} is not one of {', '.join(BILLING_PERIODS)}"
                )
            else:
                out[key] = period
        elif key == "buffer":
            number = _number(value)
            if number is None or not 0 <= number <= MAX_BUFFER:
                problems.append(
                    f"buffer: {value!r} is not a fraction between 0 and {MAX_BUFFER:g} "
                    "(0.10 = 10% headroom)"
                )
            else:
                out[key] = number
        elif key in ("under_used_pct", "at_capacity_pct"):
            number = _number(value)
            if number is None or not 0 <= number <= 100:
                problems.append(f"{key}: {value!r} is not a percentage between 0 and 100")
            else:
                out[key] = number
        elif key == "retention_days":
            number = _number(value)
            if number is None or not number.is_integer() or not 1 <= number <= MAX_KEEP_DAYS:
                problems.append(
                    f"retention_days: {value!r} is not a whole number of days between 1 and "
                    f"{MAX_KEEP_DAYS}"
                )
            else:
                out[key] = int(number)
    if problems:
        raise SettingsError(problems)
    return out


def _empty_price_book() -> pd.DataFrame:
    return pd.DataFrame({c: pd.array([], dtype=t) for c, t in PRICE_BOOK_DTYPES.items()})


def checked_price_book(book: Any) -> pd.DataFrame:
    """A validated price book in the table's dtypes; ValueError when it is not in the validated shape."""
    hint = "validate it first (lib.analytics.pricing.validate_price_book)"
    if book is None:
        return _empty_price_book()
    if not isinstance(book, pd.DataFrame):
        raise ValueError(f"a price book is a table, not {type(book).__name__}: {hint}")
    if list(book.columns) != PRICE_BOOK_COLUMNS:
        raise ValueError(
            f"the price book's columns must be {', '.join(PRICE_BOOK_COLUMNS)}: {hint}"
        )
    try:
        out = book.reset_index(drop=True).astype(PRICE_BOOK_DTYPES)
    except (TypeError, ValueError):
        raise ValueError(f"the price book holds values of the wrong type: {hint}") from None
    price = out["unit_price"].to_numpy(dtype=float, na_value=np.nan)
    bad = (out["integration"].isna() | out["integration"].str.strip().eq("")).to_numpy(
        dtype=bool, na_value=True
    )
    bad |= ~np.isfinite(price) | (np.nan_to_num(price, nan=-1.0) < 0)
    bad |= ~out["currency"].isin(CURRENCY_CODES).to_numpy(dtype=bool, na_value=False)
    bad |= ~out["billing_period"].isin(BILLING_PERIODS).to_numpy(dtype=bool, na_value=False)
    if bad.any():
        raise ValueError(
            f"price book row(s) {', '.join(str(i + 1) for i in np.flatnonzero(bad)[:10])} "
            f"are not valid: {hint}"
        )
    return out


def checked_fx_rates(rates: Any, reporting: str) -> dict[str, float]:
    """Validated rates to ``reporting`` (its own rate 1 added); ValueError when they are not."""
    hint = "validate them first (lib.analytics.pricing.validate_fx_rates)"
    if rates is None:
        return {reporting: 1.0}
    if not isinstance(rates, Mapping):
        raise ValueError(
            f"exchange rates are a mapping of currency to rate, not {type(rates).__name__}: {hint}"
        )
    out: dict[str, float] = {reporting: 1.0}
    for code, rate in rates.items():
        ok = isinstance(code, str) and code in CURRENCY_CODES
        ok = (
            ok
            and not isinstance(rate, bool)
            and isinstance(rate, (int, float, np.integer, np.floating))
        )
        ok = ok and math.isfinite(float(rate)) and float(rate) > 0
        ok = ok and (code != reporting or float(rate) == 1.0)
        if not ok:
            raise ValueError(
                f"exchange rate {code!r}: {rate!r} is not a valid rate to {reporting}: {hint}"
            )
        out[code] = float(rate)
    return out


class SettingsMixin(StoreBase):
    @staticmethod
    def _require_editor(actor: Any) -> None:
        from lib.auth import Actor

        if not isinstance(actor, Actor) or not actor.can_edit:
            who = getattr(actor, "label", None) or "this user"
            raise PermissionError(f"{who} may not change the dashboard's settings: only admins can")

    def _audit(self, conn: Connection, actor, action: str, detail: Mapping[str, Any]) -> None:
        conn.execute(
            insert(AUDIT_LOG).values(
                at=utcnow(),
                actor_email=actor.email,
                actor_name=actor.name,
                actor_role=actor.role,
                action=action,
                detail=json.dumps(detail, sort_keys=True, default=str),
            )
        )

    def audit_log(self, limit: int = 200) -> pd.DataFrame:
        """The latest changes, newest first: at, actor_email, actor_name, actor_role, action, detail."""
        cols = ["at", "actor_email", "actor_name", "actor_role", "action", "detail"]
        with self._read() as conn:
            rows = conn.execute(
                select(*(AUDIT_LOG.c[c] for c in cols))
                .order_by(AUDIT_LOG.c.at.desc(), AUDIT_LOG.c.id.desc())
                .limit(limit)
            ).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
        df["at"] = pd.to_datetime(df["at"], utc=True).astype("datetime64[us, UTC]")
        return df.astype({c: "string" for c in cols if c != "at"})

    # ------------------------------------------------------------ settings

    def _stored_settings(self, conn: Connection) -> dict[str, Any]:
        rows = conn.execute(select(SETTINGS.c.key, SETTINGS.c.value)).all()
        # "alerts_checked_at:<key>" rows record when the alert rules ran (Store.alerts_checked_at)
        return {k: json.loads(v) for k, v in rows if not k.startswith("alerts_checked_at:")}

    def get_settings(self) -> dict[str, Any]:
        with self._read() as conn:
            stored = self._stored_settings(conn)
        return {**SETTINGS_DEFAULTS, **{k: v for k, v in stored.items() if k in SETTINGS_DEFAULTS}}

    def save_settings(self, values: Mapping[str, Any], actor) -> dict[str, Any]:
        """Change some settings (the others keep their values); all are checked before any is written.

        Returns every setting after the save; :meth:`change_settings` says what changed.
        """
        return self.change_settings(values, actor)[0]

    def change_settings(
        self, values: Mapping[str, Any], actor
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """:meth:`save_settings`, and what changed: {setting: {"from": old, "to": new}}.

        Only the settings that change are written and audited; when none does, nothing is written.
        """
        self._require_editor(actor)
        clean = validate_settings(values)
        with self._write() as conn:
            current = {**SETTINGS_DEFAULTS, **self._stored_settings(conn)}
            merged = {**current, **clean}
            if merged["under_used_pct"] > merged["at_capacity_pct"]:
                raise SettingsError(
                    [
                        f"under_used_pct ({merged['under_used_pct']:g}) must not be above "
                        f"at_capacity_pct ({merged['at_capacity_pct']:g})"
                    ]
                )
            if merged["reporting_currency"] != current["reporting_currency"]:
                rates = dict(conn.execute(select(FX_RATES.c.currency, FX_RATES.c.rate)).all())
                if set(rates) - {current["reporting_currency"]}:
                    raise SettingsError(
                        [
                            "reporting_currency: the stored exchange rates are to "
                            f"{current['reporting_currency']}; change the reporting currency together with its rates "
                            "(save_fx_rates(rates, reporting_currency, actor))"
                        ]
                    )
                conn.execute(delete(FX_RATES))
            changes = {
                k: {"from": current.get(k), "to": v}
                for k, v in clean.items()
                if not _same_setting(current.get(k), v)
            }
            if changes:
                self._put_settings(conn, {k: clean[k] for k in changes}, actor)
                self._audit(conn, actor, "settings", changes)
        log.info("settings saved by %s: %s", actor.label, ", ".join(sorted(changes)) or "no change")
        return {**current, **clean}, changes

    def _put_settings(self, conn: Connection, values: Mapping[str, Any], actor) -> None:
        now = utcnow()
        for key, value in values.items():
            conn.execute(delete(SETTINGS).where(SETTINGS.c.key == key))
            conn.execute(
                insert(SETTINGS).values(
                    key=key, value=json.dumps(value), updated_at=now, updated_by=actor.label
                )
            )

    # ---------------------------------------------------------- price book

    def get_price_book(self) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(
                select(*(PRICE_BOOK.c[c] for c in PRICE_BOOK_COLUMNS)).order_by(
                    PRICE_BOOK.c.position
                )
            ).all()
        if not rows:
            return _empty_price_book()
        df = pd.DataFrame([tuple(r) for r in rows], columns=PRICE_BOOK_COLUMNS)
        return df.astype(PRICE_BOOK_DTYPES)

    def save_price_book(self, book: pd.DataFrame | None, actor) -> pd.DataFrame:
        """Replace the price book with a validated one (``lib.analytics.pricing.validate_price_book``).

        Anything not in the validated shape is refused before anything is written: all or nothing.
        Returns the book as checked; :meth:`replace_price_book` also says what changed.
        """
        return self.replace_price_book(book, actor)[0]

    def replace_price_book(
        self, book: pd.DataFrame | None, actor
    ) -> tuple[pd.DataFrame, dict[str, Any] | None]:
        """:meth:`save_price_book`, and the audit entry's detail (None: nothing changed, nothing written).

        The audit entry holds only the rows added, removed or changed, each with its old and new values
        (:func:`lib.schema.price_book_diff`); a save that changes nothing writes nothing.
        """
        self._require_editor(actor)
        book = checked_price_book(book)
        records = pa.Table.from_pandas(book, preserve_index=False).to_pylist()
        cols = [c for c in PRICE_BOOK_COLUMNS if c != "position"]
        with self._write() as conn:
            old = [
                dict(r._mapping)
                for r in conn.execute(
                    select(*(PRICE_BOOK.c[c] for c in cols)).order_by(PRICE_BOOK.c.position)
                ).all()
            ]
            diff = price_book_diff(old, records)
            if not diff["changes"] and not diff["ids_filled"]:
                log.info("price book saved by %s: no change", actor.label)
                return book, None
            conn.execute(delete(PRICE_BOOK))
            if records:
                conn.execute(
                    insert(PRICE_BOOK), [{**rec, "position": i} for i, rec in enumerate(records)]
                )
            detail = {"entries_before": len(old), "entries_after": len(records), **diff}
            self._audit(conn, actor, "price_book", detail)
        log.info(
            "price book saved by %s: %d entries (was %d), %d changed",
            actor.label,
            len(records),
            len(old),
            len(diff["changes"]),
        )
        return book, detail

    # ------------------------------------------------------------------ FX

    def get_fx_rates(self) -> dict[str, float]:
        with self._read() as conn:
            return {
                c: float(r)
                for c, r in conn.execute(
                    select(FX_RATES.c.currency, FX_RATES.c.rate).order_by(FX_RATES.c.currency)
                ).all()
            }

    def fx_rates_saved(self) -> pd.DataFrame:
        """The rates with when (UTC) and by whom each was saved: currency, rate, saved_at, saved_by."""
        with self._read() as conn:
            rows = conn.execute(
                select(
                    FX_RATES.c.currency, FX_RATES.c.rate, FX_RATES.c.saved_at, FX_RATES.c.saved_by
                ).order_by(FX_RATES.c.currency)
            ).all()
        df = pd.DataFrame(
            [tuple(r) for r in rows], columns=["currency", "rate", "saved_at", "saved_by"]
        )
        df["saved_at"] = pd.to_datetime(df["saved_at"], utc=True).astype("datetime64[us, UTC]")
        return df.astype({"currency": "string", "rate": "Float64", "saved_by": "string"})

    def save_fx_rates(
        self, rates: Mapping[str, float] | None, reporting_currency: str | None, actor
    ) -> dict[str, float]:
        """Replace the exchange rates (to ``reporting_currency``, which is saved with them); all or nothing.

        ``rates``: validated rates ({currency: rate}, e.g. ``lib.analytics.pricing.validate_fx_rates``);
        the reporting currency's own rate (1) is added when missing. :meth:`replace_fx_rates` also says
        what changed.
        """
        return self.replace_fx_rates(rates, reporting_currency, actor)[0]

    def replace_fx_rates(
        self, rates: Mapping[str, float] | None, reporting_currency: str | None, actor
    ) -> tuple[dict[str, float], dict[str, Any] | None]:
        """:meth:`save_fx_rates`, and the audit entry's detail (None: nothing changed, nothing written).

        The audit entry holds only what changed: ``changes`` {currency: {"from": old rate or None,
        "to": new rate or None}} (the reporting currency's own rate of 1 is no change), and
        ``reporting_currency_from`` and ``removed`` (the old rates, to it) when the reporting currency changed.
        """
        self._require_editor(actor)
        if reporting_currency is None:
            reporting_currency = self.get_settings()["reporting_currency"]
        reporting = validate_settings({"reporting_currency": reporting_currency})[
            "reporting_currency"
        ]
        clean = checked_fx_rates(rates, reporting)
        with self._write() as conn:
            old = {
                r.currency: r
                for r in conn.execute(
                    select(
                        FX_RATES.c.currency,
                        FX_RATES.c.rate,
                        FX_RATES.c.saved_at,
                        FX_RATES.c.saved_by,
                    )
                ).all()
            }
            was = {**SETTINGS_DEFAULTS, **self._stored_settings(conn)}["reporting_currency"]
            same_target = was == reporting
            before = {c: float(r.rate) for c, r in old.items() if c != was}
            after = {c: r for c, r in clean.items() if c != reporting}
            if same_target:
                changes = {
                    c: {"from": before.get(c), "to": after.get(c)}
                    for c in sorted(set(before) | set(after))
                    if before.get(c) != after.get(c)
                }
            else:  # rates to another currency: every new one is new, the old ones (to `was`) all go
                changes = {c: {"from": None, "to": r} for c, r in sorted(after.items())}
            if same_target and not changes:
                log.info("exchange rates saved by %s: no change", actor.label)
                return clean, None
            now = utcnow()

            def stamp(c: str, r: float) -> dict[str, Any]:
                # A rate saved again unchanged (the editor saves the whole table) keeps the date it was set.
                kept = same_target and c in old and float(old[c].rate) == float(r)
                return (
                    {"saved_at": old[c].saved_at, "saved_by": old[c].saved_by}
                    if kept
                    else {"saved_at": now, "saved_by": actor.label}
                )

            conn.execute(delete(FX_RATES))
            conn.execute(
                insert(FX_RATES),
                [
                    {"currency": c, "rate": float(r), **stamp(c, r)}
                    for c, r in sorted(clean.items())
                ],
            )
            detail: dict[str, Any] = {"reporting_currency": reporting, "changes": changes}
            if not same_target:
                detail["reporting_currency_from"] = was
                detail["removed"] = dict(sorted(before.items()))
                self._put_settings(conn, {"reporting_currency": reporting}, actor)
            self._audit(conn, actor, "fx_rates", detail)
        log.info("exchange rates saved by %s: %d rates to %s", actor.label, len(clean), reporting)
        return clean, detail
