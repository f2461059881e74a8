"""What every writer needs of the trend rollup (:mod:`lib.store.rollup`): its lock, forgetting days,
and the fingerprint of the account snapshots standing for a day."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Connection

from lib.store._bulk import _chunks
from lib.store.tables import TREND_ROLLUP, TREND_ROLLUP_DAYS

# The PostgreSQL advisory lock held (to the end of the transaction) while the rollup is built and
# while anything that changes history forgets rollup days: two app processes never build at once,
# and a build never reads history a write is changing.
ROLLUP_LOCK_KEY = 0x7472_6E64


def lock_rollup(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROLLUP_LOCK_KEY})


def forget_rollup(
    conn: Connection,
    config_key: str,
    from_day_us: int | None = None,
    days: Iterable[int] | None = None,
) -> None:
    """Drop the rollup of ``config_key``'s days from ``from_day_us`` on, or of exactly ``days``
    (both None: every day); they are built again on the next read."""
    lock_rollup(conn)
    for table in (TREND_ROLLUP, TREND_ROLLUP_DAYS):
        where = table.c.config_key == config_key
        if days is not None:
            for chunk in _chunks(sorted({int(d) for d in days})):
                conn.execute(delete(table).where(where, table.c.day.in_(chunk)))
            continue
        if from_day_us is not None:
            where = where & (table.c.day >= int(from_day_us))
        conn.execute(delete(table).where(where))


def fingerprints(pairs: pd.DataFrame) -> dict[int, tuple[int, str]]:
    """Per day (integer microseconds): how many account snapshots stand for it, and a fingerprint
    of their ids (a sum of hashes: the same set gives the same text)."""
    if pairs.empty:
        return {}
    order = np.argsort(pairs["day"].to_numpy(np.int64), kind="stable")
    days = pairs["day"].to_numpy(np.int64)[order]
    hashes = pd.util.hash_array(pairs["id"].to_numpy(np.int64)[order])
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    sums = np.add.reduceat(hashes, starts)  # uint64: wraps, which is fine for a fingerprint
    counts = np.diff(np.r_[starts, len(days)])
    return {
        int(d): (int(n), f"{int(n)}:{int(s):016x}") for d, n, s in zip(days[starts], counts, sums)
    }


_NONE = (0, "0:" + "0" * 16)  # the fingerprint of a day no account snapshot stands for


def forget_changed_days(
    conn: Connection, config_key: str, pairs: Callable[[], pd.DataFrame | None]
) -> int:
    """After retention: forget the rollup days of ``config_key`` whose account snapshots (from
    ``pairs()``, only called when there are days built) are no longer those the day was built
    from; returns how many."""
    D = TREND_ROLLUP_DAYS
    built = dict(
        conn.execute(select(D.c.day, D.c.fingerprint).where(D.c.config_key == config_key)).all()
    )
    if not built:
        return 0
    chosen = pairs()
    now = fingerprints(chosen) if chosen is not None else {}
    changed = [int(d) for d, f in built.items() if now.get(int(d), _NONE)[1] != f]
    if changed:
        forget_rollup(conn, config_key, days=changed)
    return len(changed)
