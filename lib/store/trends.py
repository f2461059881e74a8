"""Trends added up in the database: seats and spend per snapshot date and group, by SQL GROUP BY.

The same account snapshot stands for each account on each day as in :meth:`HistoryMixin.history`
(the day's last good snapshot, else the last good one before it); the rows are never loaded
into memory. Spend is at today's prices, sent in as a temporary table (TREND_PRICE_COLUMNS);
given a ``pricing``, the reads the trend rollup keys are served from it (:mod:`lib.store.rollup`).
:func:`lib.analytics.trends.trend_from_sums` turns the sums into the trend table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from lib.schema import LICENSE_COLUMNS, TREND_PRICE_COLUMNS, TREND_SUM_COLUMNS
from lib.store._bulk import _empty_frame, _pylist
from lib.store.rollup import ROLLUP_GROUPS, RollupMixin, TrendPricing

# The text columns a trend may be grouped by (column names go into the SQL: only these).
GROUPABLE = ("integration", "integration_label", "tenant_id", "account_id", "license_name")


def _lower(value: object) -> str | None:
    """Python's lower case, for SQLite (whose lower() only knows ASCII): the same as the pandas filters."""
    return value.lower() if isinstance(value, str) else None


class TrendMixin(RollupMixin):
    def trend_sums(
        self,
        config_key: str,
        since: datetime | None = None,
        group: Sequence[str] = ("integration_label",),
        prices: pd.DataFrame | None = None,
        *,
        tenants: Sequence[str] = (),
        integrations: Sequence[str] = (),
        accounts: Sequence[str] = (),
        paid_only: bool = False,
        active_only: bool = False,
        search: str = "",
        top: int | None = None,
        pricing: TrendPricing | None = None,
    ) -> pd.DataFrame:
        """Per snapshot date (``day``) and ``group`` columns: TREND_SUM_COLUMNS, summed in SQL.

        ``prices``: TREND_PRICE_COLUMNS, one row per (account, license, organization, product);
        a row without a price, bought seats not reported, or whose price has no exchange rate
        (unless its cost is 0) has no cost, and a group with such a row has no ``cost_cents``
        (not known, never the known part passed off as the whole). The filters are those of
        :func:`lib.analytics.views.apply_filters` (paid: the vendor says paid, or does not say
        and today's annual price is above 0; search: Python's lower case on SQLite, the server's
        ``lower()`` on PostgreSQL). ``top``: only the ``top`` groups with the most seats bought
        at the latest date (ties by name). In no particular order.

        ``pricing`` (:func:`lib.analytics.trends.trend_pricing`): read from the trend rollup
        (:mod:`lib.store.rollup`, built first where days are missing or priced at other prices)
        when the groups and filters are among those it keeps (integration, license name, paid,
        active); otherwise (tenant, account or search filters, other groups) every row is added
        up. Either way each row is priced by its license class, as
        :func:`lib.analytics.trends.trend_frame` prices it, a license gone from today's snapshot
        too. Without ``pricing``, every row is added up and priced by ``prices``: a license
        without a row there (gone from today's snapshot, or named otherwise that day) has no price.
        """
        group = list(group)
        bad = [c for c in group if c not in GROUPABLE]
        if bad or not group or len(set(group)) != len(group):
            raise ValueError(
                f"cannot group trends by {group!r}; choose from {', '.join(GROUPABLE)}"
            )
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise ValueError(f"top must be a whole number >= 1, not {top!r}")
        out_columns = {
            "day": TREND_SUM_COLUMNS["day"],
            **{c: LICENSE_COLUMNS[c] for c in group},
            **{c: t for c, t in TREND_SUM_COLUMNS.items() if c != "day"},
        }
        if (
            pricing is not None
            and set(group) <= set(ROLLUP_GROUPS)
            and not tenants
            and not accounts
            and not (search or "").strip()
        ):
            frame = self._rollup_sums(
                config_key,
                since,
                group,
                pricing,
                integrations,
                paid_only,
                active_only,
                top,
                out_columns,
            )
            if frame is not None:
                return frame
        by_class = False
        if pricing is not None:
            # every row priced by its license class, as the rollup prices it: the classes of every
            # day asked for are those the rollup's build found and priced
            self.ensure_trend_rollup(config_key, pricing, since)
            by_class = True
        prices = _checked_prices(prices)
        with self._read(consistent=True) as conn:
            if by_class and pricing is not None and not self._classes_at(conn, pricing.token):
                by_class = False  # repriced meanwhile at other prices: today's prices per license
            chosen = self._day_pairs(conn, config_key, since, None)
            if chosen is None:
                return _empty_frame(out_columns)
            pairs = chosen[0]
            if not self.is_sqlite:
                # this transaction only: hash the sums in memory, not on disk; and no JIT (it
                # spent 1.5 s compiling at 7.3M rows, more than it saved)
                conn.exec_driver_sql("SET LOCAL work_mem = '128MB'")
                conn.exec_driver_sql("SET LOCAL jit = off")
            self._temp_tables(conn, pairs, prices)
            try:
                where, params = self._trend_where(
                    conn, tenants, integrations, accounts, paid_only, active_only, search
                )
                keep = None
                if top is not None:
                    latest = int(pairs["day"].max())
                    keep = self._top_groups(conn, group, where, params, latest, top, by_class)
                    if not keep:
                        return _empty_frame(out_columns)
                    # In SQL, each column among the kept groups' values (a few more groups may
                    # pass: plain IN lists keep the planner's estimates sound); then exactly.
                    for i, c in enumerate(group):
                        values = sorted({"" if k[i] is None else k[i] for k in keep})
                        where += (
                            f" AND COALESCE(r.{c}, '') IN ({', '.join([self._ph] * len(values))})"
                        )
                        params = (*params, *values)
                sid_range = (int(pairs["id"].min()), int(pairs["id"].max()))
                frame = self._sum_by_day(
                    conn, group, where, params, sid_range, out_columns, by_class
                )
            finally:
                self._drop_temp(conn)
        if keep is not None:
            wanted = set(keep)
            rows = zip(*(frame[c].astype(object).where(frame[c].notna(), None) for c in group))
            frame = frame[[k in wanted for k in rows]].reset_index(drop=True)
        return frame

    # ------------------------------------------------------------ the temporary tables

    def _temp_tables(self, conn: Connection, pairs: pd.DataFrame, prices: pd.DataFrame) -> None:
        text = "TEXT"
        real = "DOUBLE PRECISION" if not self.is_sqlite else "REAL"
        big = "BIGINT" if not self.is_sqlite else "INTEGER"
        tail = "" if self.is_sqlite else " ON COMMIT DROP"
        self._drop_temp(conn)
        cur = self._cursor(conn)
        try:
            cur.execute(f"CREATE TEMPORARY TABLE trend_pairs (sid {big}, day_us {big}){tail}")
            cur.execute(
                f"CREATE TEMPORARY TABLE trend_prices (account_id {text}, lid {text}, "
                f"license_id {text}, organization_id {text}, product {text}, "
                f"annual_unit {real}, rate {real}){tail}"
            )
        finally:
            cur.close()
        self._insert_rows(
            conn,
            "trend_pairs",
            ["sid", "day_us"],
            [pairs["id"].astype(np.int64).tolist(), pairs["day"].astype(np.int64).tolist()],
        )
        if len(prices):
            cols = {
                c: _pylist(prices[c], t, self.is_sqlite) for c, t in TREND_PRICE_COLUMNS.items()
            }
            lid = ["" if v is None else v for v in cols["license_id"]]
            self._insert_rows(
                conn,
                "trend_prices",
                [
                    "account_id",
                    "lid",
                    "license_id",
                    "organization_id",
                    "product",
                    "annual_unit",
                    "rate",
                ],
                [
                    cols["account_id"],
                    lid,
                    cols["license_id"],
                    cols["organization_id"],
                    cols["product"],
                    cols["annual_unit_price"],
                    cols["rate"],
                ],
            )
        cur = self._cursor(conn)
        try:
            cur.execute("CREATE INDEX trend_prices_key ON trend_prices (account_id, lid)")
            cur.execute("CREATE INDEX trend_pairs_sid ON trend_pairs (sid)")
            if not self.is_sqlite:
                cur.execute("ANALYZE trend_pairs")
                cur.execute("ANALYZE trend_prices")
        finally:
            cur.close()

    def _drop_temp(self, conn: Connection) -> None:
        self._drop_temp_tables(conn, ("trend_pairs", "trend_prices"))

    # ------------------------------------------------------------ the queries

    def _lower_sql(self, column: str) -> str:
        return f"py_lower({column})" if self.is_sqlite else f"lower({column})"

    def _trend_where(
        self,
        conn: Connection,
        tenants: Sequence[str],
        integrations: Sequence[str],
        accounts: Sequence[str],
        paid_only: bool,
        active_only: bool,
        search: str,
    ) -> tuple[str, tuple]:
        clauses: list[str] = []
        params: list = []
        for column, values in (
            ("tenant_id", tenants),
            ("integration_label", integrations),
            ("account_id", accounts),
        ):
            if values:
                values = [str(v) for v in values]
                clauses.append(f"r.{column} IN ({', '.join([self._ph] * len(values))})")
                params.extend(values)
        if paid_only:
            clauses.append("(r.is_paid IS TRUE OR (r.is_paid IS NULL AND pr.annual_unit > 0))")
        if active_only:
            clauses.append(f"(r.status IS NULL OR {self._lower_sql('r.status')} <> 'inactive')")
        text = (search or "").strip().lower()
        if (text or active_only) and self.is_sqlite:
            conn.connection.driver_connection.create_function(  # type: ignore[union-attr]
                "py_lower", 1, _lower, deterministic=True
            )
        if text:
            find = "instr" if self.is_sqlite else "strpos"
            hits = [
                f"COALESCE({find}({self._lower_sql('r.' + c)}, {self._ph}) > 0, FALSE)"
                for c in ("license_name", "integration_label", "organization_name", "license_id")
            ]
            clauses.append("(" + " OR ".join(hits) + ")")
            params.extend([text] * len(hits))
        return (" AND ".join(clauses) if clauses else "TRUE"), tuple(params)

    def _joined(self, where: str, by_class: bool = False) -> str:
        """FROM ... WHERE: each day's license rows with today's price."""
        return self._priced(where, by_class).replace(
            "FROM license_rows r",
            "FROM license_rows r JOIN trend_pairs p ON r.account_snapshot_id = p.sid",
            1,
        )

    def _priced(self, where: str, by_class: bool = False) -> str:
        """FROM ... WHERE: license rows with today's price (``by_class``: their class's price)."""
        if by_class:
            return f"FROM license_rows r {self._class_join('pr')} WHERE {where}"
        return (
            "FROM license_rows r"
            " LEFT JOIN trend_prices pr ON pr.account_id = r.account_id"
            " AND pr.lid = COALESCE(r.license_id, '')"
            f" AND {self._same('pr.license_id', 'r.license_id')}"
            f" AND {self._same('pr.organization_id', 'r.organization_id')}"
            f" AND {self._same('pr.product', 'r.product')}"
            f" WHERE {where}"
        )

    def _top_groups(
        self,
        conn: Connection,
        group: list[str],
        where: str,
        params: tuple,
        day_us: int,
        top: int,
        by_class: bool = False,
    ) -> list[tuple]:
        keys = ", ".join(f"r.{c}" for c in group)
        order = ", ".join(
            f"r.{c} IS NULL, r.{c}" if self.is_sqlite else f"r.{c} NULLS LAST" for c in group
        )
        sql = (
            f"SELECT {keys} {self._joined(where + f' AND p.day_us = {self._ph}', by_class)} "
            f"GROUP BY {keys} ORDER BY SUM(r.total_seats) IS NULL, SUM(r.total_seats) DESC, "
            f"{order} LIMIT {int(top)}"
        )
        cur = self._cursor(conn)
        try:
            cur.execute(sql, (*params, day_us))
            return [tuple(row) for row in cur.fetchall()]
        finally:
            cur.close()

    def _cents(self) -> str:
        """Each row's annual cost in the reporting currency in cents, before rounding (computed in
        the order lib.analytics.metrics computes it, so the same float), or NULL when not priced:
        no price, bought seats not reported, or no exchange rate for a cost other than 0."""
        return (
            "(CASE WHEN pr.annual_unit IS NULL OR r.total_seats IS NULL THEN NULL"
            " WHEN pr.rate IS NULL THEN"
            " (CASE WHEN pr.annual_unit * r.total_seats = 0 THEN 0.0 ELSE NULL END)"
            " ELSE pr.annual_unit * r.total_seats * pr.rate * 100 END)"
        )

    def _sum_by_day(
        self,
        conn: Connection,
        group: list[str],
        where: str,
        params: tuple,
        sid_range: tuple[int, int],
        out_columns: dict[str, str],
        by_class: bool = False,
    ) -> pd.DataFrame:
        keys = [f"g{i}" for i in range(len(group))]
        inner_keys = ", ".join(f"r.{c} AS g{i}" for i, c in enumerate(group))
        if self.is_sqlite:  # round() is half away from zero in SQLite: halves go to even here
            rounded = (
                "(CASE WHEN v - CAST(v AS INTEGER) IN (0.5, -0.5) THEN 2 * round(v / 2)"
                " ELSE round(v) END)"
            )
        else:  # round(double precision) is rint(): half to even
            rounded = "round(v)"
        # Two steps: each account snapshot's rows added up once (priced row by row), then those
        # sums per day (a snapshot carried over failed days stands for several).
        row = (
            f"SELECT r.account_snapshot_id AS sid, {inner_keys}, r.assigned_seats AS a, "
            f"r.total_seats AS t, {self._cents()} AS v {self._priced(where, by_class)}"
            f" AND r.account_snapshot_id BETWEEN {self._ph} AND {self._ph}"
        )
        both = "a IS NOT NULL AND t IS NOT NULL"
        per_snapshot = (
            f"SELECT sid, {', '.join(keys)}, SUM(a) AS a, SUM(t) AS t, "
            f"SUM(CASE WHEN {both} THEN a END) AS ab, SUM(CASE WHEN {both} THEN t END) AS tb, "
            f"CASE WHEN COUNT(v) = COUNT(*) THEN SUM({rounded}) END AS c, COUNT(*) AS n "
            f"FROM ({row}) x GROUP BY sid, {', '.join(keys)}"
        )
        exprs: list[tuple[str, str]] = [
            ("p.day_us", "int64"),
            *[(f"s.{k}", "string") for k in keys],
            ("SUM(s.a)", "Int64"),
            ("SUM(s.t)", "Int64"),
            ("COALESCE(SUM(s.ab), 0)", "Int64"),
            ("COALESCE(SUM(s.tb), 0)", "Int64"),
            # the cost only when every row's is known: empty, never a sum that counts unknown as 0
            ("CASE WHEN COUNT(s.c) = COUNT(*) THEN CAST(SUM(s.c) AS BIGINT) END", "Int64"),
            ("SUM(s.n)", "Int64"),
        ]
        tail = (
            f"FROM ({per_snapshot}) s JOIN trend_pairs p ON p.sid = s.sid "
            f"GROUP BY p.day_us, {', '.join('s.' + k for k in keys)}"
        )
        data = self._columns(conn, exprs, tail, (*params, *sid_range))
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
        return frame.astype(out_columns)[list(out_columns)]


def _checked_prices(prices: pd.DataFrame | None) -> pd.DataFrame:
    """TREND_PRICE_COLUMNS, one row per key; a key given two different prices gets none (no guess)."""
    if prices is None or len(prices) == 0:
        return _empty_frame(TREND_PRICE_COLUMNS)
    missing = [c for c in TREND_PRICE_COLUMNS if c not in prices.columns]
    if missing:
        raise ValueError(f"the trend prices lack the column(s) {', '.join(missing)}")
    df = prices[list(TREND_PRICE_COLUMNS)].astype(TREND_PRICE_COLUMNS).drop_duplicates()
    key = ["account_id", "license_id", "organization_id", "product"]
    return df[~df.duplicated(key, keep=False)].reset_index(drop=True)
