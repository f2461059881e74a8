"""Snapshots: write one fetch (one transaction), the latest view with stale-on-failure, the runs kept.

A fetch too large to hold at once (``python -m lib sync`` at thousands of accounts) is written in
parts: :meth:`SnapshotMixin.begin_snapshot` creates the run under a *pending key*
(``<config key>#pending:<id>``), :meth:`~SnapshotMixin.write_pending` adds finished accounts in
batches, and :meth:`~SnapshotMixin.publish_snapshot` switches the run and its account snapshots to
the config key in one transaction, as :meth:`~SnapshotMixin.write_snapshot` would have written it.
Until then the pages (:meth:`~SnapshotMixin.latest`, the history) read only the config key and
never see the run half written; :meth:`~SnapshotMixin.discard_snapshot` drops a run that failed,
and retention drops one abandoned for more than a day (a killed process).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from lib.schema import (
    ACCOUNT_COLUMNS,
    ACTIVITY_COLUMNS,
    LICENSE_COLUMNS,
    OUTCOMES,
    PROBLEM_COLUMNS,
    SEAT_COLUMNS,
)
from lib.store._bulk import BulkMixin, _chunks, _conform, _empty_frame, _pylist
from lib.store._rollup import forget_rollup
from lib.store.tables import (
    ACCOUNT_SNAPSHOTS,
    ACTIVITY_SQL_COLUMNS,
    DAY_US,
    FAILED_OUTCOMES,
    GOOD_OUTCOMES,
    LICENSE_ROWS,
    PROBLEM_ROWS,
    SEAT_ROWS,
    SNAPSHOTS,
    _to_us,
    _utc,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LatestSnapshot:
    """What the pages show: each account's latest good rows, and its latest attempt."""

    config_key: str
    snapshot_id: int | None
    taken_at: datetime | None
    written_at: datetime | None
    exit_code: int | None
    demo: bool
    licenses: pd.DataFrame
    accounts: pd.DataFrame
    problems: pd.DataFrame
    # Seat activity, from the same account snapshot as each account's license rows:
    # SEAT_COLUMNS (one row per account, license and user) and ACTIVITY_COLUMNS (one per account).
    seats: pd.DataFrame = field(default_factory=lambda: _empty_frame(SEAT_COLUMNS))
    activity: pd.DataFrame = field(default_factory=lambda: _empty_frame(ACTIVITY_COLUMNS))

    @property
    def is_empty(self) -> bool:
        return self.snapshot_id is None

    @property
    def stale_accounts(self) -> pd.DataFrame:
        return self.accounts[self.accounts["stale"].to_numpy(dtype=bool)]


ACCOUNT_EXTRA_COLUMNS = {
    "stale": "boolean",
    "data_as_of": "datetime64[us, UTC]",
    "stale_for": "timedelta64[us]",
}
HISTORY_EXTRA_COLUMNS = {
    "day": "datetime64[us, UTC]",
    "taken_at": "datetime64[us, UTC]",
    "data_as_of": "datetime64[us, UTC]",
    "stale": "boolean",
}


PENDING_MARK = "#pending:"


@dataclass(frozen=True)
class PendingSnapshot:
    """A run being written in parts (:meth:`SnapshotMixin.begin_snapshot`), not yet shown."""

    config_key: str
    snapshot_id: int
    pending_key: str


def _table_of(result, name: str, columns: Mapping[str, str]) -> pd.DataFrame:
    """``result``'s table ``name``, or an empty one (a result from before seat activity has none)."""
    table = getattr(result, name, None)
    return table if table is not None else _empty_frame(columns)


def publish_run(
    conn: Connection,
    snapshot_id: int,
    config_key: str,
    *,
    taken: datetime,
    finished: datetime,
    written: datetime,
) -> tuple[int, int, int, int]:
    """Show a run written in parts (a streamed sync's, a sharded one's): its account snapshots and
    itself get ``config_key`` and the time taken, the run its counts and exit code (0 every account
    fetched, 2 some failed, 1 none, or no accounts); the trend rollup of its day and every later one
    is forgotten (as :meth:`SnapshotMixin.write_snapshots` forgets them). Returns (accounts, failed,
    license rows, exit code)."""
    A = ACCOUNT_SNAPSHOTS
    outcomes = conn.execute(
        select(A.c.outcome, A.c.good, A.c.license_rows).where(A.c.snapshot_id == snapshot_id)
    ).all()
    n = len(outcomes)
    failed = sum(1 for o in outcomes if o.outcome in FAILED_OUTCOMES)
    rows = sum(int(o.license_rows or 0) for o in outcomes if o.good)
    code = 1 if n == 0 or failed == n else (2 if failed else 0)
    conn.execute(
        update(A)
        .where(A.c.snapshot_id == snapshot_id)
        .values(config_key=config_key, taken_at=taken)
    )
    conn.execute(
        update(SNAPSHOTS)
        .where(SNAPSHOTS.c.id == snapshot_id)
        .values(
            config_key=config_key,
            taken_at=taken,
            finished_at=finished,
            written_at=written,
            exit_code=code,
            accounts=n,
            license_rows=rows,
        )
    )
    forget_rollup(conn, config_key, from_day_us=_to_us(taken) // DAY_US * DAY_US)
    return n, failed, rows, code


def drop_runs(conn: Connection, ids: Sequence[int], report: dict[str, int]) -> None:
    """Delete runs ``ids`` with their account snapshots and rows, counting them in ``report``."""
    A = ACCOUNT_SNAPSHOTS
    for chunk in _chunks(ids):
        owned = select(A.c.id).where(A.c.snapshot_id.in_(chunk)).scalar_subquery()
        for table, name in (
            (LICENSE_ROWS, "license_rows"),
            (PROBLEM_ROWS, "problem_rows"),
            (SEAT_ROWS, "seat_rows"),
        ):
            report[name] = report.get(name, 0) + (
                conn.execute(delete(table).where(table.c.account_snapshot_id.in_(owned))).rowcount
            )
        report["account_snapshots"] = report.get("account_snapshots", 0) + (
            conn.execute(delete(A).where(A.c.snapshot_id.in_(chunk))).rowcount
        )
        report["snapshots"] = report.get("snapshots", 0) + (
            conn.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.id.in_(chunk))).rowcount
        )


def drop_abandoned_pending(
    conn: Connection, before: datetime, config_key: str | None, report: dict[str, int]
) -> None:
    """Drop the pending runs (:meth:`SnapshotMixin.begin_snapshot`) begun before ``before``: a
    sync killed while writing (one that failed drops its own at once)."""
    S = SNAPSHOTS
    prefix = f"{config_key}{PENDING_MARK}" if config_key is not None else None
    query = select(S.c.id).where(S.c.written_at < before)
    query = query.where(
        S.c.config_key.startswith(prefix, autoescape=True)
        if prefix is not None
        else S.c.config_key.contains(PENDING_MARK, autoescape=True)
    )
    ids = sorted(conn.execute(query).scalars().all())
    if ids:
        log.warning("dropping %d abandoned pending snapshots (begun before %s)", len(ids), before)
        drop_runs(conn, ids, report)


class SnapshotMixin(BulkMixin):
    def write_snapshot(self, result, config_key: str, taken_at: datetime | None = None) -> int:
        """Write one fetch as a snapshot (one transaction); returns its id."""
        return self.write_snapshots([(result, taken_at)], config_key)[0]

    def write_snapshots(
        self, items: Iterable[tuple[Any, datetime | None]], config_key: str
    ) -> list[int]:
        """Write several fetches (e.g. seeded history) in one transaction; returns their ids."""
        if not isinstance(config_key, str) or not config_key.strip():
            raise ValueError("config_key must be non-empty text")
        started = time.perf_counter()
        prepared = [self._prepare(result, taken_at) for result, taken_at in items]
        ids = []
        with self._write() as conn:
            for prep in prepared:
                ids.append(self._insert_snapshot(conn, config_key, prep))
            if prepared:  # the trend rollup of that day and every later one (carried over)
                first = min(_to_us(p["taken_at"]) for p in prepared)
                forget_rollup(conn, config_key, from_day_us=first // DAY_US * DAY_US)
        took_ms = (time.perf_counter() - started) * 1000
        for snapshot_id, prep in zip(ids, prepared):
            log.info(
                "snapshot %s written for %s: %d accounts, %d license rows, %d problem rows, %d seat rows, took %.0f ms",
                snapshot_id,
                config_key,
                len(prep["accounts"]),
                len(prep["licenses"]),
                len(prep["problems"]),
                len(prep["seats"]),
                took_ms,
            )
        return ids

    def begin_snapshot(
        self, config_key: str, *, demo: bool = False, started_at: datetime | None = None
    ) -> PendingSnapshot:
        """Create a run to be written in parts, under a pending key the pages never read."""
        if not isinstance(config_key, str) or not config_key.strip():
            raise ValueError("config_key must be non-empty text")
        now = utcnow()
        pending = f"{config_key}{PENDING_MARK}{uuid.uuid4().hex[:16]}"
        with self._write() as conn:
            snapshot_id = conn.execute(
                insert(SNAPSHOTS)
                .values(
                    config_key=pending,
                    taken_at=now,
                    started_at=_utc(started_at) if started_at is not None else now,
                    written_at=now,
                    demo=bool(demo),
                    accounts=0,
                    license_rows=0,
                )
                .returning(SNAPSHOTS.c.id)
            ).scalar_one()
        log.info("pending snapshot %s begun for %s", snapshot_id, config_key)
        return PendingSnapshot(config_key, int(snapshot_id), pending)

    def write_pending(self, pending: PendingSnapshot, result) -> int:
        """Add the accounts of ``result`` (a FetchResult of some accounts) to the pending run, in
        one transaction; returns how many. An account already in the run is refused (ValueError)."""
        prep = self._prepare(result, None)  # its time is the run's, set by publish_snapshot
        ids = prep["accounts"]["account_id"].tolist()
        if not ids:
            return 0
        A = ACCOUNT_SNAPSHOTS
        with self._write() as conn:
            for chunk in _chunks(ids):
                there = conn.execute(
                    select(A.c.account_id)
                    .where(A.c.snapshot_id == pending.snapshot_id, A.c.account_id.in_(chunk))
                    .limit(1)
                ).first()
                if there is not None:
                    raise ValueError(f"account {there[0]} is already in the pending snapshot")
            self._insert_accounts(conn, pending.snapshot_id, pending.pending_key, prep, scoped=True)
        return len(ids)

    def publish_snapshot(
        self,
        pending: PendingSnapshot,
        *,
        finished_at: datetime | None = None,
        taken_at: datetime | None = None,
    ) -> tuple[int, int]:
        """Show the pending run: in one transaction it and its account snapshots get the config
        key, the time taken (default: now) and the run's counts and exit code (0 every account
        fetched, 2 some failed, 1 none, or no accounts). Returns (snapshot id, exit code)."""
        now = utcnow()
        taken = _utc(taken_at) if taken_at is not None else now
        with self._write() as conn:
            state = conn.execute(
                select(SNAPSHOTS.c.config_key).where(SNAPSHOTS.c.id == pending.snapshot_id)
            ).first()
            if state is None or state.config_key != pending.pending_key:
                raise ValueError(
                    f"snapshot {pending.snapshot_id} is no longer pending (published or pruned)"
                )
            n, failed, rows, code = publish_run(
                conn,
                pending.snapshot_id,
                pending.config_key,
                taken=taken,
                finished=_utc(finished_at) if finished_at is not None else now,
                written=utcnow(),
            )
        log.info(
            "snapshot %s published for %s: %d accounts (%d failed), %d license rows",
            pending.snapshot_id,
            pending.config_key,
            n,
            failed,
            rows,
        )
        return pending.snapshot_id, code

    def discard_snapshot(self, pending: PendingSnapshot) -> int:
        """Drop a pending run with every row written into it (a sync that failed); returns the
        account snapshots dropped. A published run is never touched."""
        report: dict[str, int] = {}
        with self._write() as conn:
            still = conn.execute(
                select(SNAPSHOTS.c.id).where(
                    SNAPSHOTS.c.id == pending.snapshot_id,
                    SNAPSHOTS.c.config_key == pending.pending_key,
                )
            ).first()
            if still is not None:
                drop_runs(conn, [pending.snapshot_id], report)
        return report.get("account_snapshots", 0)

    def _prepare(self, result, taken_at: datetime | None) -> dict[str, Any]:
        accounts = _conform(result.accounts, ACCOUNT_COLUMNS, "accounts")
        licenses = _conform(result.licenses, LICENSE_COLUMNS, "licenses")
        problems = _conform(result.problems, PROBLEM_COLUMNS, "problems")
        seats = _conform(_table_of(result, "seats", SEAT_COLUMNS), SEAT_COLUMNS, "seats")
        activity = _conform(
            _table_of(result, "activity", ACTIVITY_COLUMNS), ACTIVITY_COLUMNS, "activity"
        )
        if activity["account_id"].duplicated().any():
            raise ValueError("an account appears twice in the activity table")
        if accounts["account_id"].isna().any():
            raise ValueError("an account row has no account_id")
        if accounts["account_id"].duplicated().any():
            dup = accounts.loc[accounts["account_id"].duplicated(), "account_id"].iloc[0]
            raise ValueError(f"account {dup} appears twice in the accounts table")
        bad = sorted(set(accounts["outcome"].dropna()) - set(OUTCOMES)) + (
            ["(empty)"] if accounts["outcome"].isna().any() else []
        )
        if bad:
            raise ValueError(f"unknown account outcome(s): {', '.join(bad)}")
        known = set(accounts["account_id"])
        strays = sorted(set(activity["account_id"].dropna()) - known)
        if strays:
            raise ValueError(
                f"activity rows for account(s) without an account row: {', '.join(strays)}"
            )
        for name, table in (("license", licenses), ("problem", problems), ("seat", seats)):
            strays = sorted(set(table["account_id"].dropna()) - known)
            if strays or table["account_id"].isna().any():
                raise ValueError(
                    f"{name} rows for account(s) without an account row: {', '.join(strays) or '(empty id)'}"
                )
        started = getattr(result, "started_at", None)
        finished = getattr(result, "finished_at", None)
        taken = _utc(taken_at) if taken_at is not None else _utc(finished or utcnow())
        exit_code = result.exit_code() if callable(getattr(result, "exit_code", None)) else None
        # The users listing's outcome per account, beside the account's own columns.
        by_account = activity.set_index("account_id")
        activity_cols = {
            c: by_account[c].reindex(accounts["account_id"]).reset_index(drop=True).astype(t)
            for c, t in ACTIVITY_SQL_COLUMNS.items()
        }
        return {
            "accounts": accounts,
            "activity": activity_cols,
            "licenses": licenses,
            "problems": problems,
            "seats": seats,
            "taken_at": taken,
            "started_at": _utc(started) if started else None,
            "finished_at": _utc(finished) if finished else None,
            "demo": bool(getattr(result, "demo", False)),
            "exit_code": exit_code,
        }

    def _insert_snapshot(self, conn: Connection, config_key: str, prep: dict[str, Any]) -> int:
        accounts, licenses = prep["accounts"], prep["licenses"]
        good_ids = set(
            accounts.loc[accounts["outcome"].isin(GOOD_OUTCOMES).to_numpy(dtype=bool), "account_id"]
        )
        lic_mask = licenses["account_id"].isin(good_ids).to_numpy(dtype=bool)
        taken = prep["taken_at"]
        snapshot_id = conn.execute(
            insert(SNAPSHOTS)
            .values(
                config_key=config_key,
                taken_at=taken,
                started_at=prep["started_at"],
                finished_at=prep["finished_at"],
                written_at=utcnow(),
                demo=prep["demo"],
                exit_code=prep["exit_code"],
                accounts=len(accounts),
                license_rows=int(lic_mask.sum()),
            )
            .returning(SNAPSHOTS.c.id)
        ).scalar_one()
        self._insert_accounts(conn, snapshot_id, config_key, prep)
        return snapshot_id

    def _insert_accounts(
        self,
        conn: Connection,
        snapshot_id: int,
        config_key: str,
        prep: dict[str, Any],
        scoped: bool = False,
    ) -> None:
        """The account snapshots of ``prep`` in run ``snapshot_id``, with the license, problem and
        seat rows of its good accounts. ``scoped``: the run may already hold other accounts (a
        sharded sync writes it in parts), so only these accounts' ids are read back."""
        accounts, licenses, problems = prep["accounts"], prep["licenses"], prep["problems"]
        seats, activity = prep["seats"], prep["activity"]
        if not len(accounts):
            return
        good_ids = set(
            accounts.loc[accounts["outcome"].isin(GOOD_OUTCOMES).to_numpy(dtype=bool), "account_id"]
        )
        lic_mask = licenses["account_id"].isin(good_ids).to_numpy(dtype=bool)
        prob_mask = problems["account_id"].isin(good_ids).to_numpy(dtype=bool)
        seat_mask = seats["account_id"].isin(good_ids).to_numpy(dtype=bool)
        taken = prep["taken_at"]
        n = len(accounts)
        sqlite = self.is_sqlite
        names = [
            "snapshot_id",
            "config_key",
            "taken_at",
            "good",
            *ACCOUNT_COLUMNS,
            *ACTIVITY_SQL_COLUMNS,
        ]
        data = [
            [snapshot_id] * n,
            [config_key] * n,
            [_to_us(taken) if sqlite else taken] * n,
            accounts["outcome"].isin(GOOD_OUTCOMES).to_numpy(dtype=bool).tolist(),
            *(_pylist(accounts[c], t, sqlite) for c, t in ACCOUNT_COLUMNS.items()),
            *(_pylist(activity[c], t, sqlite) for c, t in ACTIVITY_SQL_COLUMNS.items()),
        ]
        self._insert_rows(conn, "account_snapshots", names, data)
        A = ACCOUNT_SNAPSHOTS
        query = select(A.c.account_id, A.c.id).where(A.c.snapshot_id == snapshot_id)
        if scoped:
            query = query.where(A.c.account_id.in_(accounts["account_id"].tolist()))
        id_of = dict(conn.execute(query).all())
        for table, columns, df, mask in (
            ("license_rows", LICENSE_COLUMNS, licenses, lic_mask),
            ("problem_rows", PROBLEM_COLUMNS, problems, prob_mask),
            ("seat_rows", SEAT_COLUMNS, seats, seat_mask),
        ):
            if mask.any():
                rows = df[mask]
                data = [
                    [id_of[a] for a in rows["account_id"].tolist()],
                    np.flatnonzero(mask).tolist(),
                    *(_pylist(rows[c], t, sqlite) for c, t in columns.items()),
                ]
                self._insert_rows(conn, table, ["account_snapshot_id", "position", *columns], data)

    def has_snapshots(self, config_key: str) -> bool:
        with self._read() as conn:
            return (
                conn.execute(
                    select(SNAPSHOTS.c.id).where(SNAPSHOTS.c.config_key == config_key).limit(1)
                ).first()
                is not None
            )

    def latest_snapshot_id(self, config_key: str) -> int | None:
        """The id of the latest run (cheap; a cache key for the pages)."""
        with self._read() as conn:
            return conn.execute(
                select(SNAPSHOTS.c.id)
                .where(SNAPSHOTS.c.config_key == config_key)
                .order_by(SNAPSHOTS.c.taken_at.desc(), SNAPSHOTS.c.id.desc())
                .limit(1)
            ).scalar()

    def snapshots(self, config_key: str) -> pd.DataFrame:
        """The runs kept for ``config_key``, oldest first."""
        cols = ["id", "taken_at", "written_at", "exit_code", "accounts", "license_rows", "demo"]
        with self._read() as conn:
            rows = conn.execute(
                select(*(SNAPSHOTS.c[c] for c in cols))
                .where(SNAPSHOTS.c.config_key == config_key)
                .order_by(SNAPSHOTS.c.taken_at, SNAPSHOTS.c.id)
            ).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
        for c in ("taken_at", "written_at"):
            df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[us, UTC]")
        return df.astype(
            {
                "id": "Int64",
                "exit_code": "Int64",
                "accounts": "Int64",
                "license_rows": "Int64",
                "demo": "boolean",
            }
        )

    def latest(self, config_key: str, now: datetime | None = None) -> LatestSnapshot:
        """Each account of the latest run: its latest attempt, and the rows of its latest good snapshot.

        ``accounts`` has ACCOUNT_COLUMNS (the latest attempt) plus ``stale``
        (the attempt failed and older rows are shown), ``data_as_of`` (when
        the rows shown were taken) and ``stale_for`` (now - data_as_of, for
        stale accounts). ``licenses``/``problems`` have the schema's columns
        and dtypes. Accounts no longer in the latest run are left out.
        """
        now = _utc(now) if now is not None else utcnow()
        A = ACCOUNT_SNAPSHOTS
        account_dtypes = {**ACCOUNT_COLUMNS, **ACCOUNT_EXTRA_COLUMNS}
        with self._read(consistent=True) as conn:
            run = conn.execute(
                select(SNAPSHOTS)
                .where(SNAPSHOTS.c.config_key == config_key)
                .order_by(SNAPSHOTS.c.taken_at.desc(), SNAPSHOTS.c.id.desc())
                .limit(1)
            ).first()
            if run is None:
                return LatestSnapshot(
                    config_key,
                    None,
                    None,
                    None,
                    None,
                    False,
                    _empty_frame(LICENSE_COLUMNS),
                    _empty_frame(account_dtypes),
                    _empty_frame(PROBLEM_COLUMNS),
                )
            att = self._columns(
                conn,
                [
                    ("id", "int64"),
                    ("taken_at", "datetime64[us, UTC]"),
                    ("good", "boolean"),
                    *ACCOUNT_COLUMNS.items(),
                    *ACTIVITY_SQL_COLUMNS.items(),
                ],
                f"FROM account_snapshots WHERE snapshot_id = {self._ph} ORDER BY id",
                (run.id,),
            )
            good = att["good"].to_numpy(dtype=bool, na_value=False)
            account_ids = att["account_id"].to_numpy(dtype=object)
            # Accounts whose latest attempt is good show that attempt; the others their latest good one.
            fallback: dict[str, tuple[int, datetime]] = {}
            for chunk in _chunks(sorted(set(account_ids[~good]))):
                ranked = (
                    select(
                        A.c.id,
                        A.c.account_id,
                        A.c.taken_at,
                        func.row_number()
                        .over(
                            partition_by=A.c.account_id,
                            order_by=(A.c.taken_at.desc(), A.c.id.desc()),
                        )
                        .label("rn"),
                    )
                    .where(
                        A.c.config_key == config_key, A.c.good.is_(True), A.c.account_id.in_(chunk)
                    )
                    .subquery()
                )
                for row in conn.execute(
                    select(ranked.c.id, ranked.c.account_id, ranked.c.taken_at).where(
                        ranked.c.rn == 1
                    )
                ).all():
                    fallback[row.account_id] = (row.id, row.taken_at)
            rank = {acc: i for i, acc in enumerate(account_ids)}
            rank_of_owner: dict[int, int] = {
                int(i): int(r) for i, r in zip(att["id"][good], np.flatnonzero(good))
            }
            rank_of_owner.update({snap_id: rank[acc] for acc, (snap_id, _) in fallback.items()})
            clauses = (
                [
                    (
                        f"account_snapshot_id IN (SELECT id FROM account_snapshots WHERE snapshot_id = {self._ph} "
                        f"AND good = {self._ph})",
                        (run.id, True),
                    )
                ]
                if good.any()
                else []
            )
            clauses += self._id_clauses(sorted(snap_id for snap_id, _ in fallback.values()))
            licenses = self._ordered(conn, "license_rows", LICENSE_COLUMNS, clauses, rank_of_owner)
            problems = self._ordered(conn, "problem_rows", PROBLEM_COLUMNS, clauses, rank_of_owner)
            seats = self._ordered(conn, "seat_rows", SEAT_COLUMNS, clauses, rank_of_owner)
            # A stale account's seat activity is that of the snapshot its license rows come from.
            fallback_activity: dict[str, tuple] = {}
            for where, params in self._id_clauses(sorted(i for i, _ in fallback.values())):
                cols = self._columns(
                    conn,
                    [("account_id", "string"), *ACTIVITY_SQL_COLUMNS.items()],
                    f"FROM account_snapshots WHERE {where.replace('account_snapshot_id', 'id')}",
                    params,
                )
                for i, acc in enumerate(cols["account_id"]):
                    fallback_activity[acc] = tuple(cols[c][i] for c in ACTIVITY_SQL_COLUMNS)

        accounts = pd.DataFrame({c: att[c] for c in ACCOUNT_COLUMNS})
        stale = np.array(
            [not g and acc in fallback for g, acc in zip(good, account_ids)], dtype=bool
        )
        taken_us = np.asarray(
            att["taken_at"].asi8, dtype=np.int64
        )  # microseconds (the array's unit)
        as_of_us = np.array(
            [
                taken_us[i] if good[i] else (_to_us(fallback[acc][1]) if acc in fallback else -1)
                for i, acc in enumerate(account_ids)
            ],
            dtype=np.int64,
        )
        as_of = pd.array(
            pa.array(as_of_us, mask=as_of_us < 0).cast(pa.timestamp("us", tz="UTC")).to_pandas()
        )
        accounts["stale"] = pd.array(stale, dtype="boolean")
        accounts["data_as_of"] = as_of
        age = (pd.Timestamp(now).as_unit("us") - accounts["data_as_of"]).astype("timedelta64[us]")
        accounts["stale_for"] = age.where(stale, pd.NaT).astype("timedelta64[us]")
        activity = pd.DataFrame(
            {"account_id": att["account_id"], **{c: att[c] for c in ACTIVITY_SQL_COLUMNS}}
        )
        for acc, values in fallback_activity.items():
            at = np.flatnonzero(account_ids == acc)
            if len(at):
                activity.loc[at[0], list(ACTIVITY_SQL_COLUMNS)] = list(values)
        return LatestSnapshot(
            config_key,
            run.id,
            run.taken_at,
            run.written_at,
            run.exit_code,
            bool(run.demo),
            licenses,
            accounts.astype(account_dtypes),
            problems,
            seats,
            activity.astype(ACTIVITY_COLUMNS),
        )
