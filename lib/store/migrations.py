"""Schema versions: the ordered :data:`MIGRATIONS` and :class:`SchemaMixin` (``schema_version``, ``upgrade``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Connection

from lib.store.base import StoreBase
from lib.store.tables import (
    _GOOD_INDEX,
    ACCOUNT_SNAPSHOTS,
    ACTIVITY_SQL_COLUMNS,
    AUDIT_LOG,
    FX_RATES,
    GOOD_OUTCOMES,
    SCHEMA_VERSION,
    V1,
    T,
    utcnow,
)

_ALTER_TYPES = {"string": "TEXT", "Int64": "BIGINT"}

log = logging.getLogger(__name__)


def _migrate_1(conn: Connection) -> None:
    for name in (
        "settings",
        "price_book",
        "fx_rates",
        "snapshots",
        "account_snapshots",
        "license_rows",
    ):
        V1.tables[name].create(conn)


def _migrate_2(conn: Connection) -> None:
    false = "false" if conn.dialect.name == "postgresql" else "0"
    conn.execute(
        text(f"ALTER TABLE account_snapshots ADD COLUMN good BOOLEAN NOT NULL DEFAULT {false}")
    )
    conn.execute(
        update(ACCOUNT_SNAPSHOTS).values(good=ACCOUNT_SNAPSHOTS.c.outcome.in_(GOOD_OUTCOMES))
    )
    _GOOD_INDEX.create(conn)
    for name in ("problem_rows", "refresh_leases", "audit_log"):
        T[name].create(conn)


def _migrate_3(conn: Connection) -> None:
    ts = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "BIGINT"
    conn.execute(text(f"ALTER TABLE fx_rates ADD COLUMN saved_at {ts}"))
    conn.execute(text("ALTER TABLE fx_rates ADD COLUMN saved_by TEXT"))
    # Until now every save replaced all rates: the latest exchange-rate save is when each stored rate was saved.
    last = conn.execute(
        select(
            AUDIT_LOG.c.at, AUDIT_LOG.c.actor_email, AUDIT_LOG.c.actor_name, AUDIT_LOG.c.actor_role
        )
        .where(AUDIT_LOG.c.action == "fx_rates")
        .order_by(AUDIT_LOG.c.at.desc(), AUDIT_LOG.c.id.desc())
        .limit(1)
    ).first()
    if last is not None:
        who = (
            "open access (no sign-in)"
            if last.actor_role == "open"
            else last.actor_email or last.actor_name
        )
        conn.execute(update(FX_RATES).values(saved_at=last.at, saved_by=who or "unknown"))


def _migrate_4(conn: Connection) -> None:
    for name in ("contracts", "alert_rules", "alert_state", "alert_deliveries"):
        T[name].create(conn)


def _migrate_5(conn: Connection) -> None:
    for name, dtype in ACTIVITY_SQL_COLUMNS.items():
        conn.execute(text(f"ALTER TABLE account_snapshots ADD COLUMN {name} {_ALTER_TYPES[dtype]}"))
    for name in ("seat_rows", "reclaim_exemptions"):
        T[name].create(conn)


def _migrate_6(conn: Connection) -> None:
    for name in ("sync_runs", "sync_claims"):
        T[name].create(conn)


def _migrate_7(conn: Connection) -> None:
    for name in ("trend_rollup", "trend_rollup_days", "trend_classes"):
        T[name].create(conn)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "settings, price book, exchange rates, snapshots", _migrate_1),
    Migration(
        2, "good flag on account snapshots, problem rows, refresh leases, audit log", _migrate_2
    ),
    Migration(3, "when and by whom each exchange rate was saved", _migrate_3),
    Migration(4, "contracts, alert rules, alert state and deliveries", _migrate_4),
    Migration(
        5, "seat activity: users-listing outcome per account, seat rows, exemptions", _migrate_5
    ),
    Migration(6, "sharded sync: runs joined by several processes, account claims", _migrate_6),
    Migration(
        7, "trend rollup: sums per day and license, the days built, license classes", _migrate_7
    ),
)
LATEST_VERSION = MIGRATIONS[-1].version
_PG_LOCK_KEY = 0x7465_7275  # the advisory lock that serializes upgrades


class SchemaError(RuntimeError):
    """The database holds a schema this code cannot use."""


class SchemaMixin(StoreBase):
    def schema_version(self) -> int:
        with self._read() as conn:
            if not self.engine.dialect.has_table(conn, "schema_version"):
                return 0
            return int(conn.execute(select(func.max(SCHEMA_VERSION.c.version))).scalar() or 0)

    def upgrade(self, target: int | None = None) -> int:
        """Apply the migrations this database lacks (up to ``target``); returns the version it is at."""
        target = LATEST_VERSION if target is None else target
        if not 0 <= target <= LATEST_VERSION:
            raise ValueError(f"target version must be between 0 and {LATEST_VERSION}")
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            SCHEMA_VERSION.create(conn, checkfirst=True)
            current = int(conn.execute(select(func.max(SCHEMA_VERSION.c.version))).scalar() or 0)
            if current > LATEST_VERSION:
                raise SchemaError(
                    f"the database is at schema version {current}, newer than this code knows "
                    f"({LATEST_VERSION}); run a newer version of the dashboard"
                )
            for migration in MIGRATIONS:
                if current < migration.version <= target:
                    migration.apply(conn)
                    conn.execute(
                        insert(SCHEMA_VERSION).values(
                            version=migration.version,
                            description=migration.description,
                            applied_at=utcnow(),
                        )
                    )
                    current = migration.version
        return current
