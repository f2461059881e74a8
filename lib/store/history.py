"""History over time (one set of rows per account per UTC day) and retention (prune)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from lib.schema import LICENSE_COLUMNS, MAX_KEEP_DAYS, SEAT_COLUMNS
from lib.store._bulk import BulkMixin, _chunks, _empty_frame
from lib.store._rollup import forget_changed_days
from lib.store.settings import SettingsMixin
from lib.store.snapshots import HISTORY_EXTRA_COLUMNS, drop_abandoned_pending, drop_runs
from lib.store.tables import (
    ACCOUNT_SNAPSHOTS,
    LICENSE_ROWS,
    PROBLEM_ROWS,
    SEAT_ROWS,
    SNAPSHOTS,
    SYNC_CLAIMS,
    SYNC_RUNS,
    _to_us,
    _utc,
    utcnow,
)
from lib.store.tables import DAY_US as _DAY_US

log = logging.getLogger(__name__)
# A sharded sync run unfinished this long after it was created is abandoned (prune drops it).
ABANDONED_AFTER = timedelta(days=1)


class HistoryMixin(SettingsMixin, BulkMixin):
    def seat_history(
        self,
        config_key: str,
        since: datetime | None = None,
        columns: Sequence[str] | None = None,
        max_days: int | None = 60,
    ) -> pd.DataFrame:
        """Seat rows (SEAT_COLUMNS, or ``columns``) over time, chosen per account and day as
        :meth:`history` chooses license rows, so seats and licenses of a day come from the same
        snapshot. ``max_days``: at most this many days, spread evenly over the period and the
        latest always among them (a seat table per day of two years would not fit in memory)."""
        return self._over_time(config_key, since, columns, "seat_rows", SEAT_COLUMNS, max_days)

    def history(
        self, config_key: str, since: datetime | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """License rows over time, one set per account per UTC calendar day that had a sync.

        For each day an account was synced: the rows of its last good
        snapshot of that day; when every attempt that day failed, the rows of
        its last good snapshot before it (``stale`` True), so a failure shows
        as a flat line rather than a drop. Columns: ``day`` (midnight UTC),
        ``taken_at`` (the x-axis: the day's last sync, the same for every row
        of that day, so grouping by it or by ``day`` gives the same points),
        ``data_as_of`` (when the rows shown were fetched; earlier than
        ``taken_at`` for stale rows), ``stale``, then ``columns`` (default:
        all of LICENSE_COLUMNS).
        """
        return self._over_time(config_key, since, columns, "license_rows", LICENSE_COLUMNS, None)

    def _over_time(
        self,
        config_key: str,
        since: datetime | None,
        columns: Sequence[str] | None,
        table: str,
        all_columns: dict[str, str],
        max_days: int | None,
    ) -> pd.DataFrame:
        wanted = list(all_columns) if columns is None else list(columns)
        unknown = [c for c in wanted if c not in all_columns]
        if unknown:
            raise ValueError(f"unknown {table} column(s): {', '.join(unknown)}")
        if "account_id" not in wanted:
            wanted.insert(0, "account_id")
        subset = {c: all_columns[c] for c in wanted}
        out_columns = {**HISTORY_EXTRA_COLUMNS, **subset}
        with self._read(consistent=True) as conn:
            chosen = self._day_pairs(conn, config_key, since, max_days)
            if chosen is None:
                return _empty_frame(out_columns)
            pairs, last_sync = chosen
            ids = sorted(set(pairs["id"].tolist()))
            owners, positions, data = self._read_rows(conn, table, subset, self._id_clauses(ids))
        if not len(owners):
            return _empty_frame(out_columns)
        rows_df = pd.DataFrame({"id": owners, "position": positions, "row": np.arange(len(owners))})
        joined = pairs[["id", "day", "taken_us", "good_day"]].merge(rows_df, on="id", how="inner")
        joined["sync_us"] = last_sync.reindex(joined["day"]).to_numpy()
        joined = joined.sort_values(["day", "id", "position"], kind="stable")
        take = joined["row"].to_numpy()
        out = {c: v[take] for c, v in data.items()}
        df = pd.DataFrame(
            {
                "day": pd.to_datetime(joined["day"].to_numpy(), unit="us", utc=True),
                "taken_at": pd.to_datetime(joined["sync_us"].to_numpy(), unit="us", utc=True),
                "data_as_of": pd.to_datetime(joined["taken_us"].to_numpy(), unit="us", utc=True),
                "stale": pd.array((joined["good_day"] < joined["day"]).to_numpy(), dtype="boolean"),
                **out,
            }
        )
        return df.astype({c: t for c, t in HISTORY_EXTRA_COLUMNS.items() if c != "stale"})[
            list(out_columns)
        ]

    def _day_pairs(
        self, conn: Connection, config_key: str, since: datetime | None, max_days: int | None
    ) -> tuple[pd.DataFrame, pd.Series] | None:
        """Which account snapshot stands for each account on each UTC day that had a sync.

        The day's last good snapshot, else the last good one before it (stale). Returns the
        pairs (``account_id``, ``day``, ``id``, ``taken_us``, ``good_day``; days in integer
        microseconds, ``id`` int64) and each day's last sync time, or None when there are none.
        """
        cur = self._cursor(conn)
        try:
            cur.execute(
                f"SELECT id, account_id, {self._ts('taken_at')}, good FROM account_snapshots "
                f"WHERE config_key = {self._ph}",
                (config_key,),
            )
            rows = cur.fetchall()
        finally:
            cur.close()
        if not rows:
            return None
        snaps = pd.DataFrame(rows, columns=["id", "account_id", "taken_us", "good"])
        snaps["good"] = snaps["good"].astype(bool)
        snaps["day"] = snaps["taken_us"] // _DAY_US * _DAY_US
        snaps = snaps.sort_values(["taken_us", "id"], kind="stable")
        days = snaps.drop_duplicates(["account_id", "day"])[["account_id", "day"]]
        last_sync = snaps.groupby("day")["taken_us"].max()
        good = (
            snaps[snaps["good"]]
            .drop_duplicates(["account_id", "day"], keep="last")[
                ["account_id", "day", "id", "taken_us"]
            ]
            .rename(columns={"day": "good_day"})
        )
        if good.empty:
            return None
        pairs = pd.merge_asof(
            days.sort_values("day"),
            good.sort_values("good_day"),
            left_on="day",
            right_on="good_day",
            by="account_id",
            direction="backward",
        )
        pairs = pairs.dropna(subset=["id"])
        if since is not None:
            pairs = pairs[pairs["day"] >= _to_us(since) // _DAY_US * _DAY_US]
        if max_days is not None and pairs["day"].nunique() > max_days:
            every = np.sort(pairs["day"].unique())
            picks = every[np.unique(np.linspace(0, len(every) - 1, max_days).round().astype(int))]
            pairs = pairs[pairs["day"].isin(picks)]
        if pairs.empty:
            return None
        pairs = pairs.copy()
        pairs["id"] = pairs["id"].astype(np.int64)
        return pairs, last_sync

    def _pair_frame(self, conn: Connection, config_key: str) -> pd.DataFrame | None:
        chosen = self._day_pairs(conn, config_key, None, None)
        return None if chosen is None else chosen[0]

    # ----------------------------------------------------------- retention

    def _drop_abandoned_runs(
        self, conn, now: datetime, config_key: str | None, report: dict[str, int]
    ) -> None:
        R, C = SYNC_RUNS, SYNC_CLAIMS
        query = select(R.c.snapshot_id).where(
            R.c.finished_at.is_(None), R.c.created_at < now - ABANDONED_AFTER
        )
        if config_key is not None:
            query = query.where(R.c.config_key == config_key)
        live = select(C.c.snapshot_id).where(
            C.c.done_at.is_(None), C.c.holder.is_not(None), C.c.expires_at >= now
        )
        runs = sorted(conn.execute(query.where(R.c.snapshot_id.not_in(live))).scalars().all())
        for chunk in _chunks(runs):
            conn.execute(delete(C).where(C.c.snapshot_id.in_(chunk)))
            conn.execute(delete(R).where(R.c.snapshot_id.in_(chunk)))
            drop_runs(conn, chunk, report)
        if runs:
            log.warning("pruned %d sharded sync runs left unfinished: %s", len(runs), runs)

    def prune(
        self,
        keep_days: int | None = None,
        now: datetime | None = None,
        config_key: str | None = None,
    ) -> dict[str, int]:
        """Drop old snapshots; returns how many account snapshots, license rows and runs went.

        Per account: at most one snapshot per UTC calendar day (the day's last
        good one, else its last attempt) and none older than ``keep_days``
        (default: the ``retention_days`` setting, 730). An account's latest
        attempt and latest good snapshot are always kept. A sharded sync run left unfinished
        for more than :data:`ABANDONED_AFTER` (every worker lost, none replaced; never shown) goes
        with everything it had written, unless a worker still holds a live claim on it; so does a
        pending snapshot (:meth:`~lib.store.snapshots.SnapshotMixin.begin_snapshot`) begun more
        than :data:`ABANDONED_AFTER` ago (its sync was killed).
        """
        if keep_days is None:
            keep_days = self.get_settings()["retention_days"]
        if (
            isinstance(keep_days, bool)
            or not isinstance(keep_days, (int, np.integer))
            or not 1 <= keep_days <= MAX_KEEP_DAYS
        ):
            raise ValueError(
                f"keep_days must be a whole number of days from 1 to {MAX_KEEP_DAYS}, not {keep_days!r}"
            )
        now = _utc(now) if now is not None else utcnow()
        cutoff_us = _to_us(now - timedelta(days=int(keep_days)))
        where = f" WHERE config_key = {self._ph}" if config_key is not None else ""
        params = (config_key,) if config_key is not None else ()
        report = {
            "account_snapshots": 0,
            "license_rows": 0,
            "problem_rows": 0,
            "seat_rows": 0,
            "snapshots": 0,
        }
        with self._write() as conn:
            self._drop_abandoned_runs(conn, now, config_key, report)
            drop_abandoned_pending(conn, now - ABANDONED_AFTER, config_key, report)
            cur = self._cursor(conn)
            try:
                cur.execute(
                    f"SELECT id, snapshot_id, config_key, account_id, {self._ts('taken_at')}, good "
                    f"FROM account_snapshots{where}",
                    params,
                )
                rows = cur.fetchall()
                cur.execute(
                    f"SELECT id, config_key, {self._ts('taken_at')} FROM snapshots{where}", params
                )
                runs = cur.fetchall()
            finally:
                cur.close()
            doomed: list[int] = []
            if rows:
                df = pd.DataFrame(
                    rows,
                    columns=["id", "snapshot_id", "config_key", "account_id", "taken_us", "good"],
                )
                df["good"] = df["good"].astype(bool)
                df = df.sort_values(["taken_us", "id"], kind="stable")
                key = ["config_key", "account_id"]
                protected = set(df.groupby(key, sort=False)["id"].last())
                protected |= set(df[df["good"]].groupby(key, sort=False)["id"].last())
                df["day"] = df["taken_us"] // _DAY_US
                keepers = set(
                    df.sort_values(["good", "taken_us", "id"], kind="stable")
                    .groupby([*key, "day"], sort=False)["id"]
                    .last()
                )
                keep = df["id"].isin(protected) | (
                    df["id"].isin(keepers) & (df["taken_us"] >= cutoff_us)
                )
                doomed = sorted(df.loc[~keep, "id"].tolist())
            A = ACCOUNT_SNAPSHOTS
            changed_keys = set(df.loc[~keep, "config_key"]) if rows else set()
            for chunk in _chunks(doomed):
                report["license_rows"] += conn.execute(
                    delete(LICENSE_ROWS).where(LICENSE_ROWS.c.account_snapshot_id.in_(chunk))
                ).rowcount
                report["problem_rows"] += conn.execute(
                    delete(PROBLEM_ROWS).where(PROBLEM_ROWS.c.account_snapshot_id.in_(chunk))
                ).rowcount
                report["seat_rows"] += conn.execute(
                    delete(SEAT_ROWS).where(SEAT_ROWS.c.account_snapshot_id.in_(chunk))
                ).rowcount
                report["account_snapshots"] += conn.execute(
                    delete(A).where(A.c.id.in_(chunk))
                ).rowcount
            if runs:
                rdf = pd.DataFrame(runs, columns=["id", "config_key", "taken_us"]).sort_values(
                    ["taken_us", "id"]
                )
                latest_runs = set(rdf.groupby("config_key")["id"].last())
                alive = set(conn.execute(select(A.c.snapshot_id).distinct()).scalars().all())
                empty_runs = sorted(set(rdf["id"]) - alive - latest_runs)
                for chunk in _chunks(empty_runs):
                    # A sharded run's claims and run row go with it (lib.store.sync_claims).
                    conn.execute(delete(SYNC_CLAIMS).where(SYNC_CLAIMS.c.snapshot_id.in_(chunk)))
                    conn.execute(delete(SYNC_RUNS).where(SYNC_RUNS.c.snapshot_id.in_(chunk)))
                    report["snapshots"] += conn.execute(
                        delete(SNAPSHOTS).where(SNAPSHOTS.c.id.in_(chunk))
                    ).rowcount
                changed_keys |= set(rdf.loc[rdf["id"].isin(empty_runs), "config_key"])
            # the trend rollup: only the days whose account snapshots changed are built again
            for key in sorted(changed_keys):
                forget_changed_days(conn, key, partial(self._pair_frame, conn, key))
        log.info(
            "pruned %s (keep %d days): %d runs, %d account snapshots, %d license rows, %d problem rows, "
            "%d seat rows",
            config_key if config_key is not None else "every config key",
            keep_days,
            report["snapshots"],
            report["account_snapshots"],
            report["license_rows"],
            report["problem_rows"],
            report["seat_rows"],
        )
        return report
