"""Refresh leases: one row per config key in ``refresh_leases``, with an expiry renewed by a heartbeat.

Primitives only (try, renew, release, holder, what was written or failed since);
the refresh workflow built on them is :mod:`lib.jobs.refresh`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Insert, or_, select, update

from lib.store.base import StoreBase
from lib.store.tables import REFRESH_LEASES, SNAPSHOTS, utcnow

log = logging.getLogger(__name__)


def new_holder_id() -> str:
    """A holder name unique to this call: host, process, thread and a random part (no secrets)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


class LeaseHeartbeat:
    """Extends a lease while its holder works, so only a crashed holder's lease runs out.

    ``renew``: what renews it (default: ``store.renew_lease(key, holder, lease_seconds)``; the
    sharded sync renews its account claims); a falsy answer means the lease was lost.
    """

    def __init__(
        self,
        store: LeaseMixin | None,
        key: str,
        holder: str,
        lease_seconds: float,
        renew: Callable[[], bool] | None = None,
    ):
        if renew is None:
            assert store is not None
            lease_store = store

            def renew() -> bool:
                return lease_store.renew_lease(key, holder, lease_seconds)

        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run,
            args=(renew, key, holder, lease_seconds),
            name="store-lease-heartbeat",
            daemon=True,
        )

    def _run(self, renew: Callable[[], bool], key: str, holder: str, lease_seconds: float) -> None:
        held = True
        while not self._stop.wait(max(lease_seconds / 3.0, 0.05)):
            try:
                renewed = renew()
            except Exception as exc:  # noqa: BLE001 - a missed renewal only shortens the lease
                log.warning(
                    "lease on %s: renewal by %s failed (%s)", key, holder, type(exc).__name__
                )
                continue
            if held and not renewed and not self._stop.is_set():
                log.warning(
                    "lease on %s lost by %s: it expired and was taken or released", key, holder
                )
            held = renewed

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


class LeaseMixin(StoreBase):
    """One refresh lease per config key: a row with a holder and an expiry."""

    def try_lease(self, config_key: str, holder: str, lease_seconds: float) -> bool:
        """Take the lease when it is free or expired; True when ``holder`` now holds it."""
        L = REFRESH_LEASES
        now = utcnow()
        expires = now + timedelta(seconds=lease_seconds)
        with self._write() as conn:
            before = conn.execute(
                select(L.c.holder, L.c.expires_at).where(L.c.config_key == config_key)
            ).first()
            taken = conn.execute(
                update(L)
                .where(
                    L.c.config_key == config_key, or_(L.c.holder.is_(None), L.c.expires_at < now)
                )
                .values(holder=holder, acquired_at=now, expires_at=expires)
            ).rowcount
            if taken != 1:
                row = dict(
                    config_key=config_key, holder=holder, acquired_at=now, expires_at=expires
                )
                stmt: Insert  # the dialect's, for ON CONFLICT DO NOTHING
                if self.is_sqlite:
                    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                    stmt = (
                        sqlite_insert(L)
                        .values(**row)
                        .on_conflict_do_nothing(index_elements=["config_key"])
                    )
                else:
                    from sqlalchemy.dialects.postgresql import insert as pg_insert

                    stmt = (
                        pg_insert(L)
                        .values(**row)
                        .on_conflict_do_nothing(index_elements=["config_key"])
                    )
                # RETURNING, not rowcount: psycopg does not report a row count for INSERT ... ON CONFLICT.
                taken = int(conn.execute(stmt.returning(L.c.config_key)).first() is not None)
        if taken != 1:
            return False
        if before is not None and before.holder is not None:
            log.warning(
                "lease on %s: %s's lease expired at %s; taken over by %s",
                config_key,
                before.holder,
                before.expires_at,
                holder,
            )
        log.info("lease on %s taken by %s for %g s", config_key, holder, lease_seconds)
        return True

    def renew_lease(self, config_key: str, holder: str, lease_seconds: float) -> bool:
        """Extend ``holder``'s lease; False when it no longer holds it."""
        L = REFRESH_LEASES
        with self._write() as conn:
            return (
                conn.execute(
                    update(L)
                    .where(L.c.config_key == config_key, L.c.holder == holder)
                    .values(expires_at=utcnow() + timedelta(seconds=lease_seconds))
                ).rowcount
                == 1
            )

    def release_lease(
        self, config_key: str, holder: str, error: str | None = None, *, attempted: bool = True
    ) -> None:
        """Give the lease up; ``attempted``: a fetch ran, so record how it ended (its error, or none)."""
        L = REFRESH_LEASES
        now = utcnow()
        values: dict[str, Any] = {"holder": None, "expires_at": None}
        if attempted:
            values.update(
                last_finished_at=now,
                last_error=error[:2000] if error is not None else None,
                last_error_at=now if error is not None else None,
            )
        with self._write() as conn:
            released = conn.execute(
                update(L).where(L.c.config_key == config_key, L.c.holder == holder).values(**values)
            ).rowcount
        if released:
            log.info(
                "lease on %s released by %s%s",
                config_key,
                holder,
                " after a failed refresh" if error is not None else "",
            )
        else:
            log.warning(
                "lease on %s: %s no longer held it when releasing (it had expired)",
                config_key,
                holder,
            )

    def lease_holder(self, config_key: str) -> str | None:
        """Who is refreshing ``config_key`` now (None when nobody holds an unexpired lease)."""
        L = REFRESH_LEASES
        with self._read() as conn:
            row = conn.execute(
                select(L.c.holder, L.c.expires_at).where(L.c.config_key == config_key)
            ).first()
        if row is None or row.holder is None or row.expires_at is None or row.expires_at < utcnow():
            return None
        return row.holder

    def written_since(self, config_key: str, since: datetime):
        """The (id, exit_code) of the latest run written at or after ``since``, or None."""
        S = SNAPSHOTS
        with self._read() as conn:
            return conn.execute(
                select(S.c.id, S.c.exit_code)
                .where(S.c.config_key == config_key, S.c.written_at >= since)
                .order_by(S.c.written_at.desc(), S.c.id.desc())
                .limit(1)
            ).first()

    def failed_since(
        self, config_key: str, since: datetime, holder: str | None = None
    ) -> str | None:
        """The error of a fetch that failed at or after ``since``.

        None when there is none, or when someone (other than ``holder``) is trying again.
        """
        L = REFRESH_LEASES
        now = utcnow()
        free = or_(L.c.holder.is_(None), L.c.expires_at < now)
        if holder is not None:
            free = or_(free, L.c.holder == holder)
        with self._read() as conn:
            row = conn.execute(
                select(L.c.last_error).where(
                    L.c.config_key == config_key, L.c.last_error_at >= since, free
                )
            ).first()
        return row.last_error if row is not None else None

    @contextmanager
    def lease(
        self,
        config_key: str,
        *,
        lease_seconds: float = 300.0,
        wait_timeout: float = 600.0,
        poll_interval: float = 0.2,
    ) -> Iterator[str]:
        """Hold ``config_key``'s refresh lease for the block.

        Waits for another holder; TimeoutError after ``wait_timeout``.
        """
        holder = new_holder_id()
        deadline = time.monotonic() + wait_timeout
        while not self.try_lease(config_key, holder, lease_seconds):
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"another process has held the refresh lease for {config_key} "
                    f"for more than {wait_timeout:g} s"
                )
            time.sleep(poll_interval)
        try:
            with LeaseHeartbeat(self, config_key, holder, lease_seconds):
                yield holder
        finally:
            self.release_lease(config_key, holder, attempted=False)
