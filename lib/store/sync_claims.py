"""Sharded sync: one run written by several processes, each claiming accounts (PostgreSQL only).

A run (``sync_runs``) is found by its key (``--run-id``, or the schedule slot): the first
process creates it with one claim per account (``sync_claims``); the others join it. Each
process claims free accounts with ``SELECT ... FOR UPDATE SKIP LOCKED`` (so two never take the
same one), renews its claims while it fetches, and writes each account snapshot in the same
transaction that marks the claim done, only while it still holds the claim: an account ends with
exactly one account snapshot in the run. A process that dies leaves its claims to expire; the
next to look takes them over.

The pages never see a run half written: until the last account is written, the run's
``snapshots`` row and its account snapshots carry the run's *pending key* instead of the config
key, so :meth:`~lib.store.snapshots.SnapshotMixin.latest` (and the history) still show the run
before. :meth:`ClaimMixin.finish_run` switches them to the config key in one transaction, with the
run's finish time, counts and exit code, as one :meth:`write_snapshot` would have written it.

SQLite serves one process on one machine: these methods refuse it (``python -m lib sync`` without
``--shards`` is the single-process sync).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from lib.store._bulk import BulkMixin
from lib.store.snapshots import SnapshotMixin, publish_run
from lib.store.tables import (
    SNAPSHOTS,
    SYNC_CLAIMS,
    SYNC_RUNS,
    utcnow,
)

log = logging.getLogger(__name__)

_RUN_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")
# What fetching a listed account needs (lib.truto.fetch.fetch_one); nothing else of Truto's record is kept.
_ACCOUNT_FIELDS = ("id", "tenant_id", "status", "last_error")


def check_run_key(run_key: Any) -> str:
    """The run key as given, or ValueError: 1 to 200 letters, digits and ``. _ : @ -``."""
    if not isinstance(run_key, str) or not _RUN_KEY.fullmatch(run_key):
        raise ValueError(
            "a run id is 1 to 200 letters, digits and . _ : @ - (starting with a letter or digit), "
            f"not {run_key!r}"[:300]
        )
    return run_key


def claim_record(account: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a listed account kept in its claim: id, integration name, tenant, status, last error."""
    out = {k: account.get(k) for k in _ACCOUNT_FIELDS}
    integ = account.get("integration")
    out["integration"] = {"name": integ.get("name")} if isinstance(integ, dict) else integ
    return out


@dataclass(frozen=True)
class SyncRun:
    config_key: str
    run_key: str
    snapshot_id: int
    pending_key: str
    accounts: int
    created_by: str
    created: bool = False  # this call created it
    finished_at: datetime | None = None
    exit_code: int | None = None


@dataclass(frozen=True)
class Claim:
    account_id: str  # as Truto spells it
    account: dict[str, Any] | None  # the listed record (claim_record), None for a named id
    repeated: bool
    taken_from: str | None  # the holder whose claim had expired, when this is a takeover


@dataclass(frozen=True)
class ClaimStatus:
    total: int
    done: int
    held: int  # claimed by a live holder (unexpired), not done
    free: int  # never claimed, or its claim expired

    @property
    def finished(self) -> bool:
        return self.done >= self.total


@dataclass(frozen=True)
class Written:
    written: list[str]  # claim ids whose account snapshot this call wrote
    dropped: list[str]  # claim ids no longer held by the writer (taken over): nothing written


class ClaimMixin(SnapshotMixin, BulkMixin):
    def _need_postgres(self) -> None:
        if self.is_sqlite:
            raise ValueError(
                "a sharded sync needs PostgreSQL: SQLite serves one process on one machine "
                "(run python -m lib sync without --shards)"
            )

    def find_run(self, config_key: str, run_key: str) -> SyncRun | None:
        self._need_postgres()
        R = SYNC_RUNS
        with self._read() as conn:
            row = conn.execute(
                select(R).where(R.c.config_key == config_key, R.c.run_key == run_key)
            ).first()
        return _run(row) if row is not None else None

    def create_run(
        self,
        config_key: str,
        run_key: str,
        holder: str,
        targets: Sequence[tuple[str, Mapping[str, Any] | None, bool]],
        *,
        demo: bool = False,
    ) -> SyncRun:
        """Create the run with one claim per target ``(account id, listed record or None, repeated)``;
        when another process created it first, return that run (its targets, not these)."""
        self._need_postgres()
        check_run_key(run_key)
        R, C = SYNC_RUNS, SYNC_CLAIMS
        now = utcnow()
        pending = f"{config_key}#sync:{run_key}"
        with self._write() as conn:
            # The run's row first, so that a second creator waits on it and then finds it.
            snapshot_id = conn.execute(
                insert(SNAPSHOTS)
                .values(
                    config_key=pending,
                    taken_at=now,
                    started_at=now,
                    written_at=now,
                    demo=bool(demo),
                    accounts=len(targets),
                    license_rows=0,
                )
                .returning(SNAPSHOTS.c.id)
            ).scalar_one()
            created = conn.execute(
                pg_insert(R)
                .values(
                    config_key=config_key,
                    run_key=run_key,
                    snapshot_id=snapshot_id,
                    pending_key=pending,
                    created_at=now,
                    created_by=holder,
                    accounts=len(targets),
                )
                .on_conflict_do_nothing(index_elements=["config_key", "run_key"])
                .returning(R.c.snapshot_id)
            ).first()
            if created is None:
                conn.execute(SNAPSHOTS.delete().where(SNAPSHOTS.c.id == snapshot_id))
            elif targets:
                conn.execute(
                    insert(C),
                    [
                        {
                            "snapshot_id": snapshot_id,
                            "account_id": str(aid),
                            "position": i,
                            "account": json.dumps(dict(record), default=str)
                            if record is not None
                            else None,
                            "repeated": bool(repeated),
                            "attempts": 0,
                        }
                        for i, (aid, record, repeated) in enumerate(targets)
                    ],
                )
        if created is None:
            run = self.find_run(config_key, run_key)
            assert run is not None  # the conflicting row was committed before ours gave way
            return run
        log.info(
            "sync run %s of %s created by %s: snapshot %s, %d accounts",
            run_key,
            config_key,
            holder,
            snapshot_id,
            len(targets),
        )
        return SyncRun(
            config_key, run_key, snapshot_id, pending, len(targets), holder, created=True
        )

    def claim_accounts(
        self, run: SyncRun, holder: str, limit: int, lease_seconds: float
    ) -> list[Claim]:
        """Claim up to ``limit`` accounts of the run nobody holds (never claimed, or the claim
        expired), in listing order; claims locked by another transaction are skipped."""
        self._need_postgres()
        sql = text(
            """
            WITH picked AS (
                SELECT account_id, holder AS taken_from FROM sync_claims
                WHERE snapshot_id = :run AND done_at IS NULL
                  AND (holder IS NULL OR expires_at < now())
                ORDER BY position
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE sync_claims c
            SET holder = :holder, claimed_at = now(),
                expires_at = now() + :lease * interval '1 second', attempts = c.attempts + 1
            FROM picked
            WHERE c.snapshot_id = :run AND c.account_id = picked.account_id
            RETURNING c.account_id, c.account, c.repeated, picked.taken_from, c.position
            """
        )
        with self._write() as conn:
            rows = conn.execute(
                sql,
                {
                    "run": run.snapshot_id,
                    "limit": int(limit),
                    "holder": holder,
                    "lease": float(lease_seconds),
                },
            ).all()
        claims = [
            Claim(
                r.account_id,
                json.loads(r.account) if r.account is not None else None,
                bool(r.repeated),
                r.taken_from,
            )
            for r in sorted(rows, key=lambda r: r.position)
        ]
        for c in claims:
            if c.taken_from is not None:
                log.warning(
                    "sync run %s: account %s: %s's claim expired; taken over by %s",
                    run.run_key,
                    c.account_id,
                    c.taken_from,
                    holder,
                )
        return claims

    def renew_claims(self, run: SyncRun, holder: str, lease_seconds: float) -> int:
        """Extend ``holder``'s unfinished claims; returns how many it still holds."""
        self._need_postgres()
        with self._write() as conn:
            return conn.execute(
                text(
                    "UPDATE sync_claims SET expires_at = now() + :lease * interval '1 second' "
                    "WHERE snapshot_id = :run AND holder = :holder AND done_at IS NULL"
                ),
                {"run": run.snapshot_id, "holder": holder, "lease": float(lease_seconds)},
            ).rowcount

    def release_claims(self, run: SyncRun, holder: str) -> int:
        """Give back ``holder``'s unfinished claims (free at once for the others)."""
        self._need_postgres()
        C = SYNC_CLAIMS
        with self._write() as conn:
            return conn.execute(
                update(C)
                .where(
                    C.c.snapshot_id == run.snapshot_id,
                    C.c.holder == holder,
                    C.c.done_at.is_(None),
                )
                .values(holder=None, expires_at=None)
            ).rowcount

    def write_claimed(
        self, run: SyncRun, holder: str, result: Any, ids: Mapping[str, str]
    ) -> Written:
        """Write the accounts of ``result`` (a FetchResult of claimed accounts) into the run.

        ``ids``: claim id (as Truto spells it) -> the account id in ``result``. In one
        transaction: the claims ``holder`` still holds are locked, their account snapshots (and
        license, problem and seat rows) written and the claims marked done; an account whose
        claim was taken over meanwhile is dropped (its new holder writes it).
        """
        self._need_postgres()
        prep = self._prepare(result, None)  # its time is the run's, set by finish_run
        C = SYNC_CLAIMS
        with self._write() as conn:
            held = set(
                conn.execute(
                    select(C.c.account_id)
                    .where(
                        C.c.snapshot_id == run.snapshot_id,
                        C.c.holder == holder,
                        C.c.done_at.is_(None),
                        C.c.account_id.in_(list(ids)),
                    )
                    .with_for_update()
                )
                .scalars()
                .all()
            )
            written = [cid for cid in ids if cid in held]
            dropped = [cid for cid in ids if cid not in held]
            keep = {ids[cid] for cid in written}
            if dropped:
                prep = _subset(prep, keep)
            self._insert_accounts(conn, run.snapshot_id, run.pending_key, prep, scoped=True)
            if written:
                conn.execute(
                    update(C)
                    .where(C.c.snapshot_id == run.snapshot_id, C.c.account_id.in_(written))
                    .values(done_at=utcnow())
                )
        for cid in dropped:
            log.warning(
                "sync run %s: account %s: %s no longer held its claim (it expired and was taken "
                "over); its result was dropped",
                run.run_key,
                cid,
                holder,
            )
        return Written(written, dropped)

    def claim_status(self, run: SyncRun) -> ClaimStatus:
        self._need_postgres()
        with self._read() as conn:
            row = conn.execute(
                text(
                    "SELECT count(*) AS total, "
                    "count(*) FILTER (WHERE done_at IS NOT NULL) AS done, "
                    "count(*) FILTER (WHERE done_at IS NULL AND holder IS NOT NULL "
                    "AND expires_at >= now()) AS held "
                    "FROM sync_claims WHERE snapshot_id = :run"
                ),
                {"run": run.snapshot_id},
            ).one()
        total, done, held = int(row.total), int(row.done), int(row.held)
        return ClaimStatus(total, done, held, total - done - held)

    def finish_run(self, run: SyncRun) -> tuple[bool, int | None]:
        """Publish the run once every account is written: (True, exit code) for the call that
        published it, (False, exit code) when it already was, (False, None) while accounts are left.

        The run's rows get the config key and the finish time (the pages show it from now on);
        the exit code is a fetch's: 0 every account fetched, 2 some failed, 1 none (or no
        accounts)."""
        self._need_postgres()
        R, C = SYNC_RUNS, SYNC_CLAIMS
        with self._write() as conn:
            state = conn.execute(
                select(R.c.finished_at, R.c.exit_code)
                .where(R.c.config_key == run.config_key, R.c.run_key == run.run_key)
                .with_for_update()
            ).one()
            if state.finished_at is not None:
                return False, state.exit_code
            left = conn.execute(
                select(C.c.account_id)
                .where(C.c.snapshot_id == run.snapshot_id, C.c.done_at.is_(None))
                .limit(1)
            ).first()
            if left is not None:
                return False, None
            now = utcnow()
            n, failed, rows, code = publish_run(
                conn, run.snapshot_id, run.config_key, taken=now, finished=now, written=now
            )
            conn.execute(
                update(R)
                .where(R.c.config_key == run.config_key, R.c.run_key == run.run_key)
                .values(finished_at=now, exit_code=code)
            )
        log.info(
            "sync run %s of %s finished: snapshot %s, %d accounts (%d failed), %d license rows",
            run.run_key,
            run.config_key,
            run.snapshot_id,
            n,
            failed,
            rows,
        )
        return True, code


def _run(row) -> SyncRun:
    return SyncRun(
        row.config_key,
        row.run_key,
        int(row.snapshot_id),
        row.pending_key,
        int(row.accounts),
        row.created_by,
        finished_at=row.finished_at,
        exit_code=row.exit_code,
    )


def _subset(prep: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """``prep`` (SnapshotMixin._prepare) with only the accounts in ``keep``."""
    mask = prep["accounts"]["account_id"].isin(keep).to_numpy(dtype=bool)
    out = dict(prep)
    out["accounts"] = prep["accounts"][mask].reset_index(drop=True)
    out["activity"] = {
        c: s[np.asarray(mask)].reset_index(drop=True) for c, s in prep["activity"].items()
    }
    for name in ("licenses", "problems", "seats"):
        table = prep[name]
        out[name] = table[table["account_id"].isin(keep).to_numpy(dtype=bool)].reset_index(
            drop=True
        )
    return out
