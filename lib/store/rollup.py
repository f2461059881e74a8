"""The trend rollup: :meth:`lib.store.Store.trend_sums`' sums kept per day, so a Trends read adds up
a few thousand rows instead of every history row.

``trend_rollup`` holds, per config key, day, integration, license name, paid flag and inactive
flag, the sums :meth:`~lib.store.trends.TrendMixin.trend_sums` returns (seats bought, assigned,
both, annual cost in integer cents, rows), for the account snapshots :meth:`HistoryMixin.history`
has stand for that day. Costs are priced per license class (``trend_classes``: integration,
license id and name, paid, the vendor's own price; what :func:`lib.analytics.metrics.add_metrics`
prices by), so every row, a license gone from today's snapshot too, is priced as
:func:`lib.analytics.trends.trend_frame` prices it. The prices come from a :class:`TrendPricing`
(the store knows nothing of metrics): its ``token`` stamps each day built
(``trend_rollup_days``); a day at another token is built again.

Kept in step: a read builds the days missing or at another token (PostgreSQL: under an advisory
lock, so two processes never build at once; the second finds them built); ``python -m lib sync``
builds them after writing its snapshot. Writing snapshots forgets their day and every later one
(a snapshot carried over failed days stands for those too), publishing a sharded run its day, and
retention the days whose account snapshots changed (their fingerprint).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import numpy as np
import pandas as pd
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from lib.schema import TREND_CLASS_COLUMNS, TREND_SUM_COLUMNS
from lib.store._bulk import _chunks, _empty_frame
from lib.store._rollup import _NONE, fingerprints, lock_rollup
from lib.store.history import HistoryMixin
from lib.store.tables import (
    DAY_US,
    TREND_CLASSES,
    TREND_ROLLUP,
    TREND_ROLLUP_DAYS,
    _to_us,
    utcnow,
)

# The groups and filters the rollup keys: the rest (tenant, account, search) need every row.
ROLLUP_GROUPS = ("integration_label", "license_name")
BUILD_DAYS = 90  # days built per transaction


class TrendPricing(Protocol):
    """Prices per license class (:func:`lib.analytics.trends.trend_pricing` makes one)."""

    @property
    def token(self) -> str:
        """A hash of the prices and rates used: equal tokens price every class the same."""
        ...

    def price(self, classes: pd.DataFrame) -> pd.DataFrame:
        """TREND_CLASS_PRICE_COLUMNS for each row of ``classes`` (TREND_CLASS_COLUMNS), in order."""
        ...


def _day_of(since: datetime | None) -> int | None:
    return None if since is None else _to_us(since) // DAY_US * DAY_US


def _none(value):
    return None if value is None or value is pd.NA or value != value else value


def _class_key(row: Sequence) -> tuple:
    integration, license_id, name, paid, amount, currency = (_none(v) for v in row)
    return (
        integration,
        license_id,
        name,
        None if paid is None else bool(paid),
        None if amount is None else float(amount),
        currency,
    )


class RollupMixin(HistoryMixin):
    def _same(self, left: str, right: str) -> str:
        """Null-safe equality."""
        return f"{left} IS {right}" if self.is_sqlite else f"{left} IS NOT DISTINCT FROM {right}"

    def warm_trend_rollup(self, config_key: str, pricing: TrendPricing) -> int:
        """Build the rollup's missing or stale days of ``config_key`` (after a sync writes its
        snapshot, so the next Trends read finds them); returns how many days were built."""
        return self.build_trend_rollup(config_key, pricing)

    def build_trend_rollup(
        self, config_key: str, pricing: TrendPricing, since: datetime | None = None
    ) -> int:
        """Build the days (from ``since``) not built, or built at another price token; returns how
        many. A transaction per ``BUILD_DAYS`` days, each under the rollup's lock (PostgreSQL:
        advisory lock), so that a snapshot written meanwhile (which forgets days under the same
        lock, and on SQLite waits for the write lock) waits for one of them, not for a first build
        of every day (a minute at two years of daily snapshots)."""
        token = pricing.token
        since_day = _day_of(since)
        done, tried = 0, set[int]()
        while True:
            with self._write() as conn:
                lock_rollup(conn)
                expected, built = self._rollup_state(conn, config_key)
                todo = [
                    d
                    for d in expected
                    if (since_day is None or d >= since_day) and built.get(d, ("",))[0] != token
                ]
                gone = sorted(set(built) - set(expected))
                if gone:
                    self._forget_days(conn, config_key, gone)
                if not todo:
                    return done
                # Newest first: the days a Trends read shows first are ready first.
                batch = todo[-BUILD_DAYS:]
                if tried.intersection(batch):  # built but not recorded: never loop on it
                    raise RuntimeError("the trend rollup did not record the days it built")
                tried.update(batch)
                self._build_days(conn, config_key, batch, pricing)
            done += len(batch)

    def _class_join(self, alias: str) -> str:
        """LEFT JOIN of each license row ``r`` with its class in ``trend_classes`` (as ``alias``)."""
        return (
            f"LEFT JOIN trend_classes {alias} ON {alias}.ik = COALESCE(r.integration, '')"
            f" AND {alias}.lk = COALESCE(r.license_id, '')"
            f" AND {alias}.nk = COALESCE(r.license_name, '')"
            + "".join(f" AND {self._same(alias + '.' + k, 'r.' + k)}" for k in TREND_CLASS_COLUMNS)
        )

    def _classes_at(self, conn: Connection, token: str) -> bool:
        """Whether every license class is priced at ``token``."""
        C = TREND_CLASSES
        stale = conn.execute(
            select(C.c.id).where((C.c.prices != token) | C.c.prices.is_(None)).limit(1)
        ).first()
        return stale is None

    # ------------------------------------------------------------ state

    def _rollup_current(
        self,
        expected: list[int],
        built: dict[int, tuple[str, int]],
        wanted: list[int],
        token: str,
    ) -> bool:
        """Whether the ``wanted`` days are built at ``token`` and no day is built that is gone."""
        return all(built.get(d, ("",))[0] == token for d in wanted) and set(built) <= set(expected)

    def ensure_trend_rollup(
        self, config_key: str, pricing: TrendPricing, since: datetime | None = None
    ) -> None:
        """Build what the rollup lacks from ``since``, after a read finding what it lacks (a read
        that finds nothing missing takes no lock)."""
        since_day = _day_of(since)
        with self._read() as conn:
            expected, built = self._rollup_state(conn, config_key)
        wanted = [d for d in expected if since_day is None or d >= since_day]
        if not self._rollup_current(expected, built, wanted, pricing.token):
            self.build_trend_rollup(config_key, pricing, since)

    def _rollup_state(
        self, conn: Connection, config_key: str
    ) -> tuple[list[int], dict[int, tuple[str, int]]]:
        """(the days that had a sync, {day built: (token, account snapshots standing for it)})."""
        cur = self._cursor(conn)
        try:
            cur.execute(
                f"SELECT DISTINCT {self._ts('taken_at')} FROM snapshots WHERE config_key = {self._ph}",
                (config_key,),
            )
            taken = [int(r[0]) for r in cur.fetchall()]
            cur.execute(
                f"SELECT day, prices, pairs FROM trend_rollup_days WHERE config_key = {self._ph}",
                (config_key,),
            )
            built = {int(d): (str(p), int(n)) for d, p, n in cur.fetchall()}
        finally:
            cur.close()
        expected = sorted({t // DAY_US * DAY_US for t in taken})
        return expected, built

    def _forget_days(self, conn: Connection, config_key: str, days: Sequence[int]) -> None:
        for table in (TREND_ROLLUP, TREND_ROLLUP_DAYS):
            for chunk in _chunks(sorted(days)):
                conn.execute(
                    delete(table).where(table.c.config_key == config_key, table.c.day.in_(chunk))
                )

    # ------------------------------------------------------------ building

    def _build_days(
        self, conn: Connection, config_key: str, days: list[int], pricing: TrendPricing
    ) -> None:
        token = pricing.token
        self._forget_days(conn, config_key, days)
        chosen = self._day_pairs(conn, config_key, None, None)
        pairs = chosen[0] if chosen is not None else pd.DataFrame({"day": [], "id": []})
        pairs = pairs[pairs["day"].isin(days)]
        prints = fingerprints(pairs)
        if len(pairs):
            if not self.is_sqlite:
                conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
                conn.exec_driver_sql("SET LOCAL jit = off")
            self._rollup_temp(conn, pairs)
            try:
                self._add_classes(conn, token, pricing)
                self._insert_sums(conn, config_key, token)
            finally:
                self._drop_rollup_temp(conn)
        now = utcnow()
        rows = [
            {
                "config_key": config_key,
                "day": int(d),
                "prices": token,
                "pairs": prints.get(d, _NONE)[0],
                "fingerprint": prints.get(d, _NONE)[1],
                "built_at": now,
            }
            for d in days
        ]
        for chunk in _chunks(rows):
            conn.execute(insert(TREND_ROLLUP_DAYS), chunk)

    def _rollup_temp(self, conn: Connection, pairs: pd.DataFrame) -> None:
        big = "BIGINT" if not self.is_sqlite else "INTEGER"
        tail = "" if self.is_sqlite else " ON COMMIT DROP"
        self._drop_rollup_temp(conn)
        cur = self._cursor(conn)
        try:
            cur.execute(f"CREATE TEMPORARY TABLE rollup_pairs (sid {big}, day_us {big}){tail}")
            cur.execute(f"CREATE TEMPORARY TABLE rollup_sids (sid {big} PRIMARY KEY){tail}")
        finally:
            cur.close()
        self._insert_rows(
            conn,
            "rollup_pairs",
            ["sid", "day_us"],
            [pairs["id"].astype(np.int64).tolist(), pairs["day"].astype(np.int64).tolist()],
        )
        self._insert_rows(
            conn, "rollup_sids", ["sid"], [sorted(set(pairs["id"].astype(np.int64).tolist()))]
        )
        cur = self._cursor(conn)
        try:
            cur.execute("CREATE INDEX rollup_pairs_sid ON rollup_pairs (sid)")
            if not self.is_sqlite:
                cur.execute("ANALYZE rollup_pairs")
                cur.execute("ANALYZE rollup_sids")
        finally:
            cur.close()

    def _drop_rollup_temp(self, conn: Connection) -> None:
        self._drop_temp_tables(conn, ("rollup_pairs", "rollup_sids"))

    def _add_classes(self, conn: Connection, token: str, pricing: TrendPricing) -> None:
        """The license classes of the rows being added up into ``trend_classes``, and every class
        priced at ``token``."""
        cols = list(TREND_CLASS_COLUMNS)
        join = (
            "rollup_sids s CROSS JOIN license_rows r WHERE r.account_snapshot_id = s.sid"
            if self.is_sqlite
            else "rollup_sids s JOIN license_rows r ON r.account_snapshot_id = s.sid"
        )
        cur = self._cursor(conn)
        try:
            cur.execute(f"SELECT DISTINCT {', '.join('r.' + c for c in cols)} FROM {join}")
            found = {_class_key(row) for row in cur.fetchall()}
        finally:
            cur.close()
        C = TREND_CLASSES
        have = {
            _class_key(row[1:-1]): (row[0], row[-1])
            for row in conn.execute(select(C.c.id, *(C.c[c] for c in cols), C.c.prices)).all()
        }
        new = [k for k in found if k not in have]
        if new:
            conn.execute(
                insert(C),
                [
                    {
                        "ik": k[0] or "",
                        "lk": k[1] or "",
                        "nk": k[2] or "",
                        **dict(zip(cols, k)),
                    }
                    for k in new
                ],
            )
        if new and not self.is_sqlite:
            conn.exec_driver_sql("ANALYZE trend_classes")  # the planner joins it by hash
        stale = conn.execute(
            select(C.c.id, *(C.c[c] for c in cols)).where(
                (C.c.prices != token) | C.c.prices.is_(None)
            )
        ).all()
        if not stale:
            return
        keys = [_class_key(row[1:]) for row in stale]
        frame = pd.DataFrame(
            {
                c: pd.array([k[i] for k in keys], dtype=t)
                for i, (c, t) in enumerate(TREND_CLASS_COLUMNS.items())
            }
        )
        priced = pricing.price(frame)
        annual = priced["annual_unit_price"].astype("Float64").tolist()
        rates = priced["rate"].astype("Float64").tolist()
        updates = []
        for row, key, a, r in zip(stale, keys, annual, rates):
            a, r = _none(a), _none(r)
            paid = key[3] is True or (key[3] is None and a is not None and a > 0)
            updates.append(
                {
                    "cid": row[0],
                    "p": token,
                    "a": None if a is None else float(a),
                    "r": None if r is None else float(r),
                    "paid": paid,
                }
            )
        conn.execute(
            update(C)
            .where(C.c.id == bindparam("cid"))
            .values(
                prices=bindparam("p"),
                annual_unit=bindparam("a"),
                rate=bindparam("r"),
                paid=bindparam("paid"),
            ),
            updates,
        )

    def _insert_sums(self, conn: Connection, config_key: str, token: str) -> None:
        if self.is_sqlite:
            rounded = (
                "(CASE WHEN v - CAST(v AS INTEGER) IN (0.5, -0.5) THEN 2 * round(v / 2)"
                " ELSE round(v) END)"
            )
            rows = "rollup_pairs p CROSS JOIN license_rows r"
            on_rows = "WHERE r.account_snapshot_id = p.sid"
        else:
            rounded = "round(v)"
            rows = "rollup_pairs p JOIN license_rows r ON r.account_snapshot_id = p.sid"
            on_rows = ""
        cents = (
            "(CASE WHEN c.annual_unit IS NULL OR r.total_seats IS NULL THEN NULL"
            " WHEN c.rate IS NULL THEN"
            " (CASE WHEN c.annual_unit * r.total_seats = 0 THEN 0.0 ELSE NULL END)"
            " ELSE c.annual_unit * r.total_seats * c.rate * 100 END)"
        )
        classes = self._class_join("c")
        false = "0" if self.is_sqlite else "FALSE"
        inner = (
            "SELECT p.day_us AS day_us, r.integration_label AS g0, r.license_name AS g1, "
            f"COALESCE(c.paid, {false}) AS paid, "
            f"COALESCE(lower(r.status) = 'inactive', {false}) AS inactive, "
            f"r.assigned_seats AS a, r.total_seats AS t, {cents} AS v "
            f"FROM {rows} {classes} {on_rows}"
        )
        both = "a IS NOT NULL AND t IS NOT NULL"
        sql = (
            "INSERT INTO trend_rollup (config_key, day, prices, integration_label, license_name, "
            "paid, inactive, assigned_seats, total_seats, assigned_both, total_both, cost_cents, "
            f"licenses) SELECT {self._ph}, day_us, {self._ph}, g0, g1, paid, inactive, "
            "SUM(a), SUM(t), "
            f"COALESCE(SUM(CASE WHEN {both} THEN a END), 0), "
            f"COALESCE(SUM(CASE WHEN {both} THEN t END), 0), "
            # the cost only when every row's is known (never a sum that passes off unknown as 0)
            f"CASE WHEN COUNT(v) = COUNT(*) THEN CAST(SUM({rounded}) AS BIGINT) END, COUNT(*) "
            f"FROM ({inner}) x "
            "GROUP BY day_us, g0, g1, paid, inactive"
        )
        cur = self._cursor(conn)
        try:
            cur.execute(sql, (config_key, token))
        finally:
            cur.close()

    # ------------------------------------------------------------ reading

    def _rollup_sums(
        self,
        config_key: str,
        since: datetime | None,
        group: list[str],
        pricing: TrendPricing,
        integrations: Sequence[str],
        paid_only: bool,
        active_only: bool,
        top: int | None,
        out_columns: dict[str, str],
    ) -> pd.DataFrame | None:
        """trend_sums from the rollup (built first where days are missing); None when it could not
        be brought up to date (history changing meanwhile): the caller adds up every row."""
        token = pricing.token
        since_day = _day_of(since)
        for attempt in range(2):
            with self._read(consistent=True) as conn:
                expected, built = self._rollup_state(conn, config_key)
                wanted = [d for d in expected if since_day is None or d >= since_day]
                if self._rollup_current(expected, built, wanted, token):
                    with_pairs = [d for d in wanted if built[d][1] > 0]
                    if not with_pairs:
                        return _empty_frame(out_columns)
                    return self._read_rollup(
                        conn,
                        config_key,
                        token,
                        min(with_pairs),
                        max(with_pairs),
                        group,
                        integrations,
                        paid_only,
                        active_only,
                        top,
                        out_columns,
                    )
            if attempt == 0:
                self.build_trend_rollup(config_key, pricing, since)
        return None

    def _read_rollup(
        self,
        conn: Connection,
        config_key: str,
        token: str,
        first: int,
        latest: int,
        group: list[str],
        integrations: Sequence[str],
        paid_only: bool,
        active_only: bool,
        top: int | None,
        out_columns: dict[str, str],
    ) -> pd.DataFrame:
        ph = self._ph
        where = f"config_key = {ph} AND prices = {ph} AND day >= {ph}"
        params: tuple = (config_key, token, first)
        if integrations:
            values = [str(v) for v in integrations]
            where += f" AND integration_label IN ({', '.join([ph] * len(values))})"
            params = (*params, *values)
        if paid_only:
            where += " AND paid IS TRUE"
        if active_only:
            where += " AND inactive IS FALSE"
        keep = None
        if top is not None:
            keys = ", ".join(group)
            order = ", ".join(
                f"{c} IS NULL, {c}" if self.is_sqlite else f"{c} NULLS LAST" for c in group
            )
            cur = self._cursor(conn)
            try:
                cur.execute(
                    f"SELECT {keys} FROM trend_rollup WHERE {where} AND day = {ph} "
                    f"GROUP BY {keys} ORDER BY SUM(total_seats) IS NULL, SUM(total_seats) DESC, "
                    f"{order} LIMIT {int(top)}",
                    (*params, latest),
                )
                keep = [tuple(row) for row in cur.fetchall()]
            finally:
                cur.close()
            if not keep:
                return _empty_frame(out_columns)
            for i, c in enumerate(group):
                values = sorted({"" if k[i] is None else k[i] for k in keep})
                where += f" AND COALESCE({c}, '') IN ({', '.join([ph] * len(values))})"
                params = (*params, *values)
        exprs: list[tuple[str, str]] = [
            ("day", "int64"),
            *[(c, "string") for c in group],
            *[
                (f"CAST(SUM({c}) AS BIGINT)", "Int64")
                for c in ("assigned_seats", "total_seats", "assigned_both", "total_both")
            ],
            # empty when any part's cost is not known
            (
                "CASE WHEN COUNT(cost_cents) = COUNT(*) THEN CAST(SUM(cost_cents) AS BIGINT) END",
                "Int64",
            ),
            ("CAST(SUM(licenses) AS BIGINT)", "Int64"),
        ]
        tail = f"FROM trend_rollup WHERE {where} GROUP BY day, {', '.join(group)}"
        data = self._columns(conn, exprs, tail, params)
        values = list(data.values())
        frame = pd.DataFrame(
            {
                "day": pd.to_datetime(values[0], unit="us", utc=True),
                **{c: values[1 + i] for i, c in enumerate(group)},
                **{
                    c: values[1 + len(group) + i]
                    for i, c in enumerate(c for c in TREND_SUM_COLUMNS if c != "day")
                },
            }
        )
        frame = frame.astype(out_columns)[list(out_columns)]
        if keep is not None:
            wanted = set(keep)
            rows = zip(*(frame[c].astype(object).where(frame[c].notna(), None) for c in group))
            frame = frame[[k in wanted for k in rows]].reset_index(drop=True)
        return frame
