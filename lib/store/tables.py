"""UTC timestamps and the tables: :data:`METADATA` (the latest schema) and :data:`V1` (version 1, frozen)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.types import DateTime, TypeDecorator

from lib.schema import (
    ACCOUNT_COLUMNS,
    ACTIVITY_COLUMNS,
    CONTRACT_DTYPES,
    LICENSE_COLUMNS,
    PROBLEM_COLUMNS,
    SEAT_COLUMNS,
)

GOOD_OUTCOMES = ("ok", "not_supported")
FAILED_OUTCOMES = ("failed", "needs_reauth", "inactive")

_ID = BigInteger().with_variant(Integer, "sqlite")
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_US = 86_400_000_000


def _utc(value: Any) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _to_us(value: datetime) -> int:
    return (_utc(value) - _EPOCH) // _US


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcTimestamp(TypeDecorator):
    """An aware UTC datetime: ``timestamptz`` on PostgreSQL, integer microseconds on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = _utc(value)
        return _to_us(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return _from_us(value)
        return _utc(value)


# ------------------------------------------------------------------ schema
# Version 1 is frozen as it shipped; version 2 is built from it by migration 2.

_SQL_TYPES = {
    "string": Text,
    "boolean": Boolean,
    "Int64": BigInteger,
    "Float64": Float,
    "datetime64[us, UTC]": UtcTimestamp,
}


def _typed_columns(columns: Mapping[str, str], skip: Iterable[str] = ()) -> list[Column]:
    return [
        Column(name, _SQL_TYPES[dtype]())
        for name, dtype in columns.items()
        if name not in set(skip)
    ]


def _schema_version_table(md: MetaData) -> Table:
    return Table(
        "schema_version",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("description", Text, nullable=False),
        Column("applied_at", UtcTimestamp, nullable=False),
    )


def _row_table(md: MetaData, name: str, columns: Mapping[str, str]) -> Table:
    """Rows kept with an account snapshot (license, problem, seat rows): keyed by the account
    snapshot and the row's position in its fetch."""
    return Table(
        name,
        md,
        Column(
            "account_snapshot_id",
            _ID,
            ForeignKey("account_snapshots.id"),
            primary_key=True,
            autoincrement=False,
        ),
        Column("position", Integer, primary_key=True, autoincrement=False),
        *_typed_columns(columns),
    )


def _v1_tables(
    md: MetaData, account_extra: Sequence[Column] = (), account_indexes: Sequence[Index] = ()
) -> None:
    Table(
        "settings",
        md,
        Column("key", Text, primary_key=True),
        Column("value", Text, nullable=False),  # JSON
        Column("updated_at", UtcTimestamp),
        Column("updated_by", Text),
    )
    Table(
        "price_book",
        md,
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("integration", Text, nullable=False),
        Column("license_id", Text),
        Column("license_name", Text),
        Column("unit_price", Float, nullable=False),
        Column("currency", Text, nullable=False),
        Column("billing_period", Text, nullable=False),
    )
    Table(
        "fx_rates",
        md,
        Column("currency", Text, primary_key=True),
        Column("rate", Float, nullable=False),
    )
    Table(
        "snapshots",
        md,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("config_key", Text, nullable=False),
        Column("taken_at", UtcTimestamp, nullable=False),
        Column("started_at", UtcTimestamp),
        Column("finished_at", UtcTimestamp),
        Column("written_at", UtcTimestamp, nullable=False),
        Column("demo", Boolean, nullable=False),
        Column("exit_code", Integer),
        Column("accounts", Integer, nullable=False),
        Column("license_rows", Integer, nullable=False),
        Index("ix_snapshots_key_taken", "config_key", "taken_at"),
        Index("ix_snapshots_key_written", "config_key", "written_at"),
    )
    Table(
        "account_snapshots",
        md,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("snapshot_id", _ID, ForeignKey("snapshots.id"), nullable=False),
        Column("config_key", Text, nullable=False),
        Column("taken_at", UtcTimestamp, nullable=False),
        Column("account_id", Text, nullable=False),
        *_typed_columns(ACCOUNT_COLUMNS, skip=("account_id",)),
        *account_extra,
        Index("ix_account_snapshots_run", "snapshot_id"),
        Index("ix_account_snapshots_account", "config_key", "account_id", "taken_at"),
        *account_indexes,
    )
    _row_table(md, "license_rows", LICENSE_COLUMNS)


V1 = MetaData()
_schema_version_table(V1)
_v1_tables(V1)

METADATA = MetaData()
SCHEMA_VERSION = _schema_version_table(METADATA)
_GOOD_INDEX = Index("ix_account_snapshots_good", "config_key", "account_id", "good", "taken_at")
_v1_tables(
    METADATA, account_extra=[Column("good", Boolean, nullable=False)], account_indexes=[_GOOD_INDEX]
)
METADATA.tables["fx_rates"].append_column(Column("saved_at", UtcTimestamp()))  # version 3
METADATA.tables["fx_rates"].append_column(Column("saved_by", Text))
_row_table(METADATA, "problem_rows", PROBLEM_COLUMNS)
Table(
    "refresh_leases",
    METADATA,
    Column("config_key", Text, primary_key=True),
    Column("holder", Text),
    Column("acquired_at", UtcTimestamp),
    Column("expires_at", UtcTimestamp),
    Column("last_finished_at", UtcTimestamp),
    Column("last_error", Text),
    Column("last_error_at", UtcTimestamp),
)
Table(
    "audit_log",
    METADATA,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("at", UtcTimestamp, nullable=False),
    Column("actor_email", Text),
    Column("actor_name", Text),
    Column("actor_role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("detail", Text, nullable=False),  # JSON
    Index("ix_audit_log_at", "at"),
)

T = METADATA.tables
SETTINGS, PRICE_BOOK, FX_RATES = T["settings"], T["price_book"], T["fx_rates"]
SNAPSHOTS, ACCOUNT_SNAPSHOTS, LICENSE_ROWS = (
    T["snapshots"],
    T["account_snapshots"],
    T["license_rows"],
)
PROBLEM_ROWS, REFRESH_LEASES, AUDIT_LOG = T["problem_rows"], T["refresh_leases"], T["audit_log"]

# ---------------------------------------------------- version 4: renewals and alerts
_CONTRACT_SQL = {
    "string": Text,
    "datetime64[s]": Date,
    "boolean": Boolean,
    "Int64": BigInteger,
    "Float64": Float,
}


def _v4_tables(md: MetaData) -> None:
    Table(
        "contracts",
        md,
        Column("position", Integer, primary_key=True, autoincrement=False),
        *(
            Column(name, _CONTRACT_SQL[dtype](), nullable=name not in ("integration", "source"))
            for name, dtype in CONTRACT_DTYPES.items()
        ),
    )
    Table(
        "alert_rules",
        md,
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("id", Text, nullable=False, unique=True),
        Column("kind", Text, nullable=False),
        Column("threshold", Float),
        Column("enabled", Boolean, nullable=False),
        Column("channels", Text, nullable=False),  # comma-separated: email,webhook
        Column("paid_only", Boolean, nullable=False),
    )
    Table(
        "alert_state",
        md,
        Column("config_key", Text, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("rule_id", Text, nullable=False),
        Column("kind", Text, nullable=False),
        Column("severity", Text, nullable=False),
        Column("title", Text, nullable=False),
        Column("detail", Text, nullable=False),  # the last detail seen
        Column("channels", Text, nullable=False),
        Column("integration", Text),
        Column("account_id", Text),
        Column("license_id", Text),
        Column("first_fired_at", UtcTimestamp, nullable=False),  # when it last started
        Column("last_seen_at", UtcTimestamp, nullable=False),
        Column("cleared_at", UtcTimestamp),
        Column("open", Boolean, nullable=False),
        Column("times_fired", Integer, nullable=False),
        Index("ix_alert_state_open", "config_key", "open"),
    )
    Table(
        "alert_deliveries",
        md,
        Column("id", _ID, primary_key=True, autoincrement=True),
        Column("config_key", Text, nullable=False),
        Column("alert_key", Text, nullable=False),
        Column("channel", Text, nullable=False),
        Column("attempted_at", UtcTimestamp, nullable=False),
        Column("ok", Boolean, nullable=False),
        Column("error", Text, nullable=False),
        Index("ix_alert_deliveries_key", "config_key", "alert_key", "channel", "attempted_at"),
    )


_v4_tables(METADATA)
CONTRACTS, ALERT_RULES = T["contracts"], T["alert_rules"]
ALERT_STATE, ALERT_DELIVERIES = T["alert_state"], T["alert_deliveries"]

# ---------------------------------------------------- version 5: seat activity
# Activity columns on account_snapshots: the users listing's outcome per account attempt.
ACTIVITY_SQL_COLUMNS = {c: t for c, t in ACTIVITY_COLUMNS.items() if c != "account_id"}
for _name, _dtype in ACTIVITY_SQL_COLUMNS.items():
    ACCOUNT_SNAPSHOTS.append_column(Column(_name, _SQL_TYPES[_dtype]()))
_row_table(METADATA, "seat_rows", SEAT_COLUMNS)
Table(
    "reclaim_exemptions",
    METADATA,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),  # user | license
    Column("value", Text, nullable=False),  # user: email or id (lower case); license: license id
    Column("integration", Text),  # license: the integration it belongs to (empty: any)
    Column("reason", Text, nullable=False),
    Column("set_at", UtcTimestamp, nullable=False),
    Column("set_by", Text, nullable=False),
)
SEAT_ROWS, RECLAIM_EXEMPTIONS = T["seat_rows"], T["reclaim_exemptions"]

# ---------------------------------------------------- version 6: sharded sync
# One sync run served by several processes: the run (joined by its key) and one claim per account.
Table(
    "sync_runs",
    METADATA,
    Column("config_key", Text, primary_key=True),
    Column("run_key", Text, primary_key=True),  # --run-id, or the schedule slot
    Column("snapshot_id", _ID, ForeignKey("snapshots.id"), nullable=False),
    # The config key the run's rows carry until the last account is written: the pages never see
    # a run half written (lib.store.sync_claims).
    Column("pending_key", Text, nullable=False),
    Column("created_at", UtcTimestamp, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("accounts", Integer, nullable=False),
    Column("finished_at", UtcTimestamp),
    Column("exit_code", Integer),
)
Table(
    "sync_claims",
    METADATA,
    Column("snapshot_id", _ID, ForeignKey("snapshots.id"), primary_key=True, autoincrement=False),
    Column("account_id", Text, primary_key=True),  # as Truto spells it
    Column("position", Integer, nullable=False),  # the listing's order
    # JSON: the listed account's id, integration, tenant, status and last error (what fetching it
    # needs, nothing more); NULL for an id named in integrated_account_ids (read when fetched).
    Column("account", Text),
    Column("repeated", Boolean, nullable=False),  # Truto listed it more than once
    Column("holder", Text),
    Column("claimed_at", UtcTimestamp),
    Column("expires_at", UtcTimestamp),
    Column("attempts", Integer, nullable=False),
    Column("done_at", UtcTimestamp),
)
SYNC_RUNS, SYNC_CLAIMS = T["sync_runs"], T["sync_claims"]

# ---------------------------------------------------- version 7: trend rollup
# Trends added up per (config key, day, integration, license name, paid, inactive), so the Trends
# page reads a few thousand sums instead of every history row (lib.store.rollup). ``prices`` is the
# token of the prices and rates the costs were computed with; a day is rebuilt when it changes.
Table(
    "trend_rollup",
    METADATA,
    Column("config_key", Text, nullable=False),
    Column("day", BigInteger, nullable=False),  # midnight UTC, microseconds since the epoch
    Column("prices", Text, nullable=False),
    Column("integration_label", Text),
    Column("license_name", Text),
    Column("paid", Boolean, nullable=False),
    Column("inactive", Boolean, nullable=False),
    Column("assigned_seats", BigInteger),  # empty when no row reports it
    Column("total_seats", BigInteger),
    Column("assigned_both", BigInteger, nullable=False),
    Column("total_both", BigInteger, nullable=False),
    Column("cost_cents", BigInteger),  # each row's annual cost rounded to cents; empty: none priced
    Column("licenses", BigInteger, nullable=False),
    Index("ix_trend_rollup_key_day", "config_key", "day"),
)
Table(
    "trend_rollup_days",
    METADATA,
    Column("config_key", Text, primary_key=True),
    Column("day", BigInteger, primary_key=True, autoincrement=False),
    Column("prices", Text, nullable=False),
    Column("pairs", Integer, nullable=False),  # account snapshots standing for the day (0: none)
    Column("fingerprint", Text, nullable=False),  # of those account snapshots' ids
    Column("built_at", UtcTimestamp, nullable=False),
)
# One row per license class: what prices a license row (integration, license id and name, paid,
# the vendor's price), with its price at token ``prices``. ik/lk/nk: the first three with '' for
# empty, the join key.
Table(
    "trend_classes",
    METADATA,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("ik", Text, nullable=False),
    Column("lk", Text, nullable=False),
    Column("nk", Text, nullable=False),
    Column("integration", Text),
    Column("license_id", Text),
    Column("license_name", Text),
    Column("is_paid", Boolean),
    Column("vendor_unit_amount", Float),
    Column("vendor_currency", Text),
    Column("prices", Text),
    Column("annual_unit", Float),  # empty: no price
    Column("rate", Float),  # empty: no exchange rate
    Column("paid", Boolean),  # the paid filter's rule: the vendor says paid, or not and a price > 0
    Index("ix_trend_classes_key", "ik", "lk", "nk"),
)
TREND_ROLLUP, TREND_ROLLUP_DAYS, TREND_CLASSES = (
    T["trend_rollup"],
    T["trend_rollup_days"],
    T["trend_classes"],
)
