"""Everything the dashboard keeps: price book, exchange rates, settings and snapshots.

One database through SQLAlchemy: an SQLite file under ``data/`` by default, or
PostgreSQL when a URL is configured (``DATABASE_URL``, else ``[database] url``
in ``.streamlit/secrets.toml``). The same code runs on both.

Schema versions. ``schema_version`` records every migration applied;
:data:`MIGRATIONS` is the ordered list. :class:`Store` upgrades in place when
it opens, under a lock (PostgreSQL advisory lock / SQLite write lock) so
replicas starting together migrate once. A migration only adds and backfills:
it never drops or rewrites rows.

- version 1: settings, price book, exchange rates, snapshots (runs), account
  snapshots, license rows.
- version 2: ``account_snapshots.good`` (backfilled from the outcome, indexed
  for the latest-good lookup), ``problem_rows``, ``refresh_leases``,
  ``audit_log``.
- version 3: ``fx_rates.saved_at`` and ``saved_by``: when and by whom each
  rate was saved (backfilled from the latest exchange-rate entry in the
  audit log; empty when there is none).

Snapshots. Each fetch writes one *run* (``snapshots``) and, per account, one
*account snapshot* with its outcome; accounts that ended ``ok`` or
``not_supported`` also get their license and problem rows, all in one
transaction. A failed account writes only its outcome, so its last good rows
stay as they were; :meth:`Store.latest` shows them marked stale, with the
failure and its age.

Time is UTC throughout: ``timestamptz`` on PostgreSQL, microseconds since the
epoch on SQLite. Retention counts calendar days in UTC.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.types import DateTime, TypeDecorator

from .config import PROJECT_ROOT, ConfigError, read_secrets_file, redact_url  # noqa: F401  (redact_url: re-exported)
from .pricing import (
    BILLING_PERIODS,
    CURRENCY_CODES,
    PRICE_BOOK_COLUMNS,
    PRICE_BOOK_DTYPES,
    empty_price_book,
    price_row_label,
    validate_fx_rates,
    validate_price_book,
)
from .schema import ACCOUNT_COLUMNS, LICENSE_COLUMNS, OUTCOMES, PROBLEM_COLUMNS

DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_SQLITE_NAME = "dashboard.sqlite"
GOOD_OUTCOMES = ("ok", "not_supported")
FAILED_OUTCOMES = ("failed", "needs_reauth", "inactive")
DEFAULT_KEEP_DAYS = 730

_ID = BigInteger().with_variant(Integer, "sqlite")
_US = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAY_US = 86_400_000_000
_CHUNK = 900


# ------------------------------------------------------------------- URLs

def normalize_url(url: str, where: str = "database URL") -> str:
    """``postgres://`` and ``postgresql://`` -> the psycopg driver; only SQLite and PostgreSQL are accepted."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: empty")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"{where}: the value is not a URL such as postgresql://user:password@host/db "
                          "(not shown, as it may hold a password)")
    scheme_l = scheme.lower()
    if scheme_l in ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "postgres+psycopg"):
        url = "postgresql+psycopg://" + rest
    elif scheme_l not in ("sqlite", "sqlite+pysqlite"):
        raise ConfigError(f"{where}: {redact_url(url)!r}: only PostgreSQL (postgresql://...) and SQLite (sqlite:///path) "
                          "are supported")
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"{where}: {redact_url(url)!r} is not a valid database URL") from None
    return url


def default_sqlite_url(data_dir: Path | None = None) -> str:
    folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / DEFAULT_SQLITE_NAME).resolve()}"


def database_url(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> str:
    """``DATABASE_URL`` if set, else ``[database] url`` in secrets.toml, else ``sqlite:///<root>/data/dashboard.sqlite``."""
    env = os.environ if env is None else env
    value = str(env.get("DATABASE_URL", "") or "").strip()
    if value:
        return normalize_url(value, "DATABASE_URL")
    if secrets is None:
        secrets = read_secrets_file()
    section = secrets.get("database", {}) or {}
    if not isinstance(section, Mapping):
        raise ConfigError("secrets.toml: [database] must be a table")
    unknown = sorted(set(section) - {"url"})
    if unknown:
        raise ConfigError(f"secrets.toml [database]: unknown key {unknown[0]!r}")
    value = section.get("url")
    if value not in (None, ""):
        if not isinstance(value, str):
            raise ConfigError("secrets.toml [database] url: expected text")
        return normalize_url(value, "secrets.toml [database] url")
    return default_sqlite_url()


# ------------------------------------------------------------------- types

def _utc(value: Any) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC)."""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _to_us(value: datetime) -> int:
    return (_utc(value) - _EPOCH) // _US


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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

_SQL_TYPES = {"string": Text, "boolean": Boolean, "Int64": BigInteger, "Float64": Float,
              "datetime64[us, UTC]": UtcTimestamp}


def _typed_columns(columns: Mapping[str, str], skip: Iterable[str] = ()) -> list[Column]:
    return [Column(name, _SQL_TYPES[dtype]()) for name, dtype in columns.items() if name not in set(skip)]


def _schema_version_table(md: MetaData) -> Table:
    return Table("schema_version", md,
                 Column("version", Integer, primary_key=True, autoincrement=False),
                 Column("description", Text, nullable=False),
                 Column("applied_at", UtcTimestamp, nullable=False))


def _v1_tables(md: MetaData, account_extra: Sequence[Column] = (), account_indexes: Sequence[Index] = ()) -> None:
    Table("settings", md,
          Column("key", Text, primary_key=True),
          Column("value", Text, nullable=False),      # JSON
          Column("updated_at", UtcTimestamp),
          Column("updated_by", Text))
    Table("price_book", md,
          Column("position", Integer, primary_key=True, autoincrement=False),
          Column("integration", Text, nullable=False),
          Column("license_id", Text),
          Column("license_name", Text),
          Column("unit_price", Float, nullable=False),
          Column("currency", Text, nullable=False),
          Column("billing_period", Text, nullable=False))
    Table("fx_rates", md,
          Column("currency", Text, primary_key=True),
          Column("rate", Float, nullable=False))
    Table("snapshots", md,
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
          Index("ix_snapshots_key_written", "config_key", "written_at"))
    Table("account_snapshots", md,
          Column("id", _ID, primary_key=True, autoincrement=True),
          Column("snapshot_id", _ID, ForeignKey("snapshots.id"), nullable=False),
          Column("config_key", Text, nullable=False),
          Column("taken_at", UtcTimestamp, nullable=False),
          Column("account_id", Text, nullable=False),
          *_typed_columns(ACCOUNT_COLUMNS, skip=("account_id",)),
          *account_extra,
          Index("ix_account_snapshots_run", "snapshot_id"),
          Index("ix_account_snapshots_account", "config_key", "account_id", "taken_at"),
          *account_indexes)
    Table("license_rows", md,
          Column("account_snapshot_id", _ID, ForeignKey("account_snapshots.id"), primary_key=True,
                 autoincrement=False),
          Column("position", Integer, primary_key=True, autoincrement=False),
          *_typed_columns(LICENSE_COLUMNS))


V1 = MetaData()
_schema_version_table(V1)
_v1_tables(V1)

METADATA = MetaData()
SCHEMA_VERSION = _schema_version_table(METADATA)
_GOOD_INDEX = Index("ix_account_snapshots_good", "config_key", "account_id", "good", "taken_at")
_v1_tables(METADATA, account_extra=[Column("good", Boolean, nullable=False)], account_indexes=[_GOOD_INDEX])
METADATA.tables["fx_rates"].append_column(Column("saved_at", UtcTimestamp()))    # version 3
METADATA.tables["fx_rates"].append_column(Column("saved_by", Text))
Table("problem_rows", METADATA,
      Column("account_snapshot_id", _ID, ForeignKey("account_snapshots.id"), primary_key=True, autoincrement=False),
      Column("position", Integer, primary_key=True, autoincrement=False),
      *_typed_columns(PROBLEM_COLUMNS))
Table("refresh_leases", METADATA,
      Column("config_key", Text, primary_key=True),
      Column("holder", Text),
      Column("acquired_at", UtcTimestamp),
      Column("expires_at", UtcTimestamp),
      Column("last_finished_at", UtcTimestamp),
      Column("last_error", Text),
      Column("last_error_at", UtcTimestamp))
Table("audit_log", METADATA,
      Column("id", _ID, primary_key=True, autoincrement=True),
      Column("at", UtcTimestamp, nullable=False),
      Column("actor_email", Text),
      Column("actor_name", Text),
      Column("actor_role", Text, nullable=False),
      Column("action", Text, nullable=False),
      Column("detail", Text, nullable=False),     # JSON
      Index("ix_audit_log_at", "at"))

T = METADATA.tables
SETTINGS, PRICE_BOOK, FX_RATES = T["settings"], T["price_book"], T["fx_rates"]
SNAPSHOTS, ACCOUNT_SNAPSHOTS, LICENSE_ROWS = T["snapshots"], T["account_snapshots"], T["license_rows"]
PROBLEM_ROWS, REFRESH_LEASES, AUDIT_LOG = T["problem_rows"], T["refresh_leases"], T["audit_log"]


def _migrate_1(conn: Connection) -> None:
    for name in ("settings", "price_book", "fx_rates", "snapshots", "account_snapshots", "license_rows"):
        V1.tables[name].create(conn)


def _migrate_2(conn: Connection) -> None:
    false = "false" if conn.dialect.name == "postgresql" else "0"
    conn.execute(text(f"ALTER TABLE account_snapshots ADD COLUMN good BOOLEAN NOT NULL DEFAULT {false}"))
    conn.execute(update(ACCOUNT_SNAPSHOTS).values(good=ACCOUNT_SNAPSHOTS.c.outcome.in_(GOOD_OUTCOMES)))
    _GOOD_INDEX.create(conn)
    for name in ("problem_rows", "refresh_leases", "audit_log"):
        T[name].create(conn)


def _migrate_3(conn: Connection) -> None:
    ts = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "BIGINT"
    conn.execute(text(f"ALTER TABLE fx_rates ADD COLUMN saved_at {ts}"))
    conn.execute(text("ALTER TABLE fx_rates ADD COLUMN saved_by TEXT"))
    # Until now every save replaced all rates: the latest exchange-rate save is when each stored rate was saved.
    last = conn.execute(select(AUDIT_LOG.c.at, AUDIT_LOG.c.actor_email, AUDIT_LOG.c.actor_name, AUDIT_LOG.c.actor_role)
                        .where(AUDIT_LOG.c.action == "fx_rates")
                        .order_by(AUDIT_LOG.c.at.desc(), AUDIT_LOG.c.id.desc()).limit(1)).first()
    if last is not None:
        who = "open access (no sign-in)" if last.actor_role == "open" else last.actor_email or last.actor_name
        conn.execute(update(FX_RATES).values(saved_at=last.at, saved_by=who or "unknown"))


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "settings, price book, exchange rates, snapshots", _migrate_1),
    Migration(2, "good flag on account snapshots, problem rows, refresh leases, audit log", _migrate_2),
    Migration(3, "when and by whom each exchange rate was saved", _migrate_3),
)
LATEST_VERSION = MIGRATIONS[-1].version
_PG_LOCK_KEY = 0x7465_7275  # the advisory lock that serializes upgrades


class SchemaError(RuntimeError):
    """The database holds a schema this code cannot use."""


# --------------------------------------------------------------- settings

SETTINGS_DEFAULTS: dict[str, Any] = {
    "reporting_currency": "USD",
    "buffer": 0.10,
    "under_used_pct": 70.0,
    "at_capacity_pct": 95.0,
    "vendor_price_period": "monthly",
    "retention_days": DEFAULT_KEEP_DAYS,
}


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
                problems.append(f"vendor_price_period: {value!r} is not one of {', '.join(BILLING_PERIODS)}")
            else:
                out[key] = period
        elif key == "buffer":
            number = _number(value)
            if number is None or not 0 <= number <= 10:
                problems.append(f"buffer: {value!r} is not a fraction between 0 and 10 (0.10 = 10% headroom)")
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
            if number is None or not number.is_integer() or not 1 <= number <= 36500:
                problems.append(f"retention_days: {value!r} is not a whole number of days between 1 and 36500")
            else:
                out[key] = int(number)
    if problems:
        raise SettingsError(problems)
    return out


# ---------------------------------------------------------------- results

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

    @property
    def is_empty(self) -> bool:
        return self.snapshot_id is None

    @property
    def stale_accounts(self) -> pd.DataFrame:
        return self.accounts[self.accounts["stale"].to_numpy(dtype=bool)]


@dataclass(frozen=True)
class RefreshOutcome:
    """What :meth:`Store.refresh` did.

    ``reason``: ``fetched`` (this call fetched and wrote ``snapshot_id``),
    ``joined`` (another user or replica was fetching; its snapshot is
    ``snapshot_id``), ``fresh`` (a snapshot written after ``requested_at``
    already existed), ``failed`` (the concurrent fetch this call waited for
    failed: ``error``), ``timeout`` (waited ``wait_timeout`` for another
    holder; ``snapshot_id`` is the latest there is).
    """

    reason: str
    snapshot_id: int | None
    fetched: bool = False
    waited: bool = False
    result: Any = None          # the FetchResult, when this call fetched
    error: str | None = None
    exit_code: int | None = None

    @property
    def note(self) -> str | None:
        """A sentence for the person who asked, when something other than their own fetch happened."""
        if self.reason == "joined":
            return "Someone else was already refreshing; this shows the data their refresh fetched."
        if self.reason == "fresh":
            return "Data fetched after you asked was already there, so nothing was fetched again."
        if self.reason == "failed":
            return f"The refresh already under way failed: {self.error}"
        if self.reason == "timeout":
            return f"Another refresh is still running ({self.error}); showing the latest data stored."
        return None


ACCOUNT_EXTRA_COLUMNS = {"stale": "boolean", "data_as_of": "datetime64[us, UTC]", "stale_for": "timedelta64[us]"}
HISTORY_EXTRA_COLUMNS = {"day": "datetime64[us, UTC]", "taken_at": "datetime64[us, UTC]",
                         "data_as_of": "datetime64[us, UTC]", "stale": "boolean"}


def _empty_frame(columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


# ---------------------------------------------------------- column helpers

def _pylist(series: pd.Series, dtype: str, sqlite: bool) -> list:
    """A column as Python values for the driver, NA as None (NaN is NA too)."""
    if dtype.startswith("datetime64"):
        stamps = pd.to_datetime(series, utc=True)
        arr = pa.Array.from_pandas(stamps).cast(pa.timestamp("us", tz="UTC"), safe=False)
        return arr.cast(pa.int64()).to_pylist() if sqlite else arr.to_pylist()
    arr = pa.Array.from_pandas(series.astype(dtype))
    if pa.types.is_floating(arr.type):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
    return arr.to_pylist()


_ARROW_TYPES = {"string": pa.large_string(), "Int64": pa.int64(), "Float64": pa.float64(), "boolean": pa.bool_(),
                "datetime64[us, UTC]": pa.int64(), "int64": pa.int64()}


def _arrow_from_values(values: Sequence[Any], dtype: str) -> pa.Array:
    """Driver values (timestamps as integer microseconds, SQLite booleans as 0/1) -> an Arrow array."""
    if dtype == "boolean":
        return pa.array(values, type=pa.int8()).cast(pa.bool_())   # bools are ints in Python too
    return pa.array(values, type=_ARROW_TYPES[dtype])


def _pandas_array(arr: pa.Array, dtype: str):
    """An Arrow column -> the pandas array of ``dtype`` (NA kept as NA; ``int64``: a plain numpy array)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=arr.type)
    if dtype == "string":
        return pd.array(arr.cast(pa.large_string()), dtype="string")
    if dtype.startswith("datetime64"):
        return arr.cast(pa.int64()).cast(pa.timestamp("us", tz="UTC")).to_pandas().array
    if dtype == "int64":
        return np.asarray(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    filled = arr.fill_null(False if dtype == "boolean" else 0).to_numpy(zero_copy_only=False)
    if dtype == "Int64":
        return pd.arrays.IntegerArray(np.asarray(filled, dtype=np.int64), mask)
    if dtype == "Float64":
        return pd.arrays.FloatingArray(np.asarray(filled, dtype=np.float64), mask)
    if dtype == "boolean":
        return pd.arrays.BooleanArray(np.asarray(filled, dtype=bool), mask)
    raise AssertionError(dtype)


def _conform(df: pd.DataFrame, columns: Mapping[str, str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the {what} table lacks the column(s) {', '.join(missing)}")
    out = df[list(columns)].copy()
    for name, dtype in columns.items():
        if dtype.startswith("datetime64"):
            out[name] = pd.to_datetime(out[name], utc=True).astype(dtype)
        elif str(out[name].dtype) != dtype:
            out[name] = out[name].astype(dtype)
    return out.reset_index(drop=True)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


class _Heartbeat:
    """Extends a lease while its holder works, so only a crashed holder's lease runs out."""

    def __init__(self, store: "Store", key: str, holder: str, lease_seconds: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(store, key, holder, lease_seconds),
                                        name="store-lease-heartbeat", daemon=True)

    def _run(self, store: "Store", key: str, holder: str, lease_seconds: float) -> None:
        while not self._stop.wait(max(lease_seconds / 3.0, 0.05)):
            try:
                store._renew_lease(key, holder, lease_seconds)
            except Exception:  # noqa: BLE001 - a missed renewal only shortens the lease
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


# ------------------------------------------------------------------ store

def _set_wal(cur, seconds: float = 30.0) -> None:
    """Switch a SQLite file to WAL. SQLite answers "database is locked" at once, without its busy
    handler, while another connection (a replica starting at the same moment) is doing the same;
    so retry for a bounded time."""
    import sqlite3

    deadline = time.monotonic() + seconds
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Store:
    """The dashboard's database. Thread-safe: share one per process (e.g. ``st.cache_resource``)."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True, echo: bool = False):
        self.url = normalize_url(url if url is not None else database_url())
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(parsed, echo)
        else:
            self.engine = self._postgres_engine(parsed, echo)
        self._writer = self.engine.execution_options(store_write=True)
        self._ph = "?" if self.dialect == "sqlite" else "%s"
        if upgrade:
            self.upgrade()

    def __repr__(self) -> str:
        return f"Store({redact_url(self.url)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @staticmethod
    def _sqlite_engine(parsed, echo: bool) -> Engine:
        from sqlalchemy.pool import StaticPool

        database = parsed.database or ""
        memory = database in ("", ":memory:") or "mode=memory" in database
        if not memory:
            Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                               **({"poolclass": StaticPool} if memory else {}))

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None   # we issue BEGIN ourselves (below)
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            if not memory:
                _set_wal(cur)
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            # Writers take the write lock up front, so two writers queue (busy_timeout)
            # instead of failing on a lock upgrade; readers read a consistent snapshot.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("store_write") else "BEGIN")

        return engine

    @staticmethod
    def _postgres_engine(parsed, echo: bool) -> Engine:
        engine = create_engine(parsed, pool_pre_ping=True, echo=echo)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            dbapi_connection.execute("SET TIME ZONE 'UTC'")
            dbapi_connection.execute("SET client_encoding TO 'UTF8'")
            dbapi_connection.autocommit = autocommit

        return engine

    def close(self) -> None:
        self.engine.dispose()

    # -------------------------------------------------------- transactions

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, consistent: bool = False) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if consistent and self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def _cursor(self, conn: Connection):
        return conn.connection.cursor()

    def _ts(self, column: str) -> str:
        """SQL reading a timestamp column as integer microseconds since the epoch."""
        if self.is_sqlite:
            return column
        return f"CAST(ROUND(EXTRACT(EPOCH FROM {column}) * 1000000) AS BIGINT)"

    # ------------------------------------------------------------- schema

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
                raise SchemaError(f"the database is at schema version {current}, newer than this code knows "
                                  f"({LATEST_VERSION}); run a newer version of the dashboard")
            for migration in MIGRATIONS:
                if current < migration.version <= target:
                    migration.apply(conn)
                    conn.execute(insert(SCHEMA_VERSION).values(version=migration.version,
                                                               description=migration.description,
                                                               applied_at=utcnow()))
                    current = migration.version
        return current

    # ---------------------------------------------------------- permission

    @staticmethod
    def _require_editor(actor: Any) -> None:
        from .auth import Actor

        if not isinstance(actor, Actor) or not actor.can_edit:
            who = getattr(actor, "label", None) or "this user"
            raise PermissionError(f"{who} may not change the dashboard's settings: only admins can")

    def _audit(self, conn: Connection, actor, action: str, detail: Mapping[str, Any]) -> None:
        conn.execute(insert(AUDIT_LOG).values(at=utcnow(), actor_email=actor.email, actor_name=actor.name,
                                              actor_role=actor.role, action=action,
                                              detail=json.dumps(detail, sort_keys=True, default=str)))

    def audit_log(self, limit: int = 200) -> pd.DataFrame:
        """The latest changes, newest first: at, actor_email, actor_name, actor_role, action, detail."""
        cols = ["at", "actor_email", "actor_name", "actor_role", "action", "detail"]
        with self._read() as conn:
            rows = conn.execute(select(*(AUDIT_LOG.c[c] for c in cols))
                                .order_by(AUDIT_LOG.c.at.desc(), AUDIT_LOG.c.id.desc()).limit(limit)).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
        df["at"] = pd.to_datetime(df["at"], utc=True).astype("datetime64[us, UTC]")
        return df.astype({c: "string" for c in cols if c != "at"})

    # ------------------------------------------------------------ settings

    def _stored_settings(self, conn: Connection) -> dict[str, Any]:
        rows = conn.execute(select(SETTINGS.c.key, SETTINGS.c.value)).all()
        return {k: json.loads(v) for k, v in rows}

    def get_settings(self) -> dict[str, Any]:
        with self._read() as conn:
            stored = self._stored_settings(conn)
        return {**SETTINGS_DEFAULTS, **{k: v for k, v in stored.items() if k in SETTINGS_DEFAULTS}}

    def save_settings(self, values: Mapping[str, Any], actor) -> dict[str, Any]:
        """Change some settings (the others keep their values); all are checked before any is written."""
        self._require_editor(actor)
        clean = validate_settings(values)
        with self._write() as conn:
            current = {**SETTINGS_DEFAULTS, **self._stored_settings(conn)}
            merged = {**current, **clean}
            if merged["under_used_pct"] > merged["at_capacity_pct"]:
                raise SettingsError([f"under_used_pct ({merged['under_used_pct']:g}) must not be above "
                                     f"at_capacity_pct ({merged['at_capacity_pct']:g})"])
            if merged["reporting_currency"] != current["reporting_currency"]:
                rates = dict(conn.execute(select(FX_RATES.c.currency, FX_RATES.c.rate)).all())
                if set(rates) - {current["reporting_currency"]}:
                    raise SettingsError([
                        "reporting_currency: the stored exchange rates are to "
                        f"{current['reporting_currency']}; change the reporting currency together with its rates "
                        "(save_fx_rates(rates, reporting_currency, actor))"])
                conn.execute(delete(FX_RATES))
            changes = {k: {"from": current.get(k), "to": v} for k, v in clean.items() if current.get(k) != v}
            self._put_settings(conn, clean, actor)
            if changes:
                self._audit(conn, actor, "settings", changes)
        return {**current, **clean}

    def _put_settings(self, conn: Connection, values: Mapping[str, Any], actor) -> None:
        now = utcnow()
        for key, value in values.items():
            conn.execute(delete(SETTINGS).where(SETTINGS.c.key == key))
            conn.execute(insert(SETTINGS).values(key=key, value=json.dumps(value), updated_at=now,
                                                 updated_by=actor.label))

    # ---------------------------------------------------------- price book

    def get_price_book(self) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(select(*(PRICE_BOOK.c[c] for c in PRICE_BOOK_COLUMNS))
                                .order_by(PRICE_BOOK.c.position)).all()
        if not rows:
            return empty_price_book()
        df = pd.DataFrame([tuple(r) for r in rows], columns=PRICE_BOOK_COLUMNS)
        return df.astype(PRICE_BOOK_DTYPES)

    def save_price_book(self, df: pd.DataFrame | None, actor) -> pd.DataFrame:
        """Replace the price book (checked first with ``validate_price_book``: all or nothing)."""
        self._require_editor(actor)
        book = validate_price_book(df)
        records = pa.Table.from_pandas(book, preserve_index=False).to_pylist()
        for i, rec in enumerate(records):
            rec["position"] = i
        cols = [c for c in PRICE_BOOK_COLUMNS if c != "position"]
        with self._write() as conn:
            old = [dict(r._mapping) for r in conn.execute(select(*(PRICE_BOOK.c[c] for c in cols))).all()]
            before = len(old)
            conn.execute(delete(PRICE_BOOK))
            if records:
                conn.execute(insert(PRICE_BOOK), records)

            def rows(recs) -> dict[str, tuple]:
                return {price_row_label(r["integration"], r["license_id"], r["license_name"]):
                        tuple(r[c] for c in cols) for r in recs}

            was, now = rows(old), rows(records)
            # the rows added, changed or removed, by name: each price-book row's last change is in the audit log
            changed = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
            self._audit(conn, actor, "price_book", {"entries_before": before, "entries_after": len(records),
                                                    "changed": changed})
        return book

    # ------------------------------------------------------------------ FX

    def get_fx_rates(self) -> dict[str, float]:
        with self._read() as conn:
            return {c: float(r) for c, r in conn.execute(select(FX_RATES.c.currency, FX_RATES.c.rate)
                                                         .order_by(FX_RATES.c.currency)).all()}

    def fx_rates_saved(self) -> pd.DataFrame:
        """The rates with when (UTC) and by whom each was saved: currency, rate, saved_at, saved_by."""
        with self._read() as conn:
            rows = conn.execute(select(FX_RATES.c.currency, FX_RATES.c.rate, FX_RATES.c.saved_at, FX_RATES.c.saved_by)
                                .order_by(FX_RATES.c.currency)).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=["currency", "rate", "saved_at", "saved_by"])
        df["saved_at"] = pd.to_datetime(df["saved_at"], utc=True).astype("datetime64[us, UTC]")
        return df.astype({"currency": "string", "rate": "Float64", "saved_by": "string"})

    def save_fx_rates(self, rates: Mapping[str, float] | pd.DataFrame | None, reporting_currency: str | None,
                      actor) -> dict[str, float]:
        """Replace the exchange rates (to ``reporting_currency``, which is saved with them); all or nothing."""
        self._require_editor(actor)
        if reporting_currency is None:
            reporting_currency = self.get_settings()["reporting_currency"]
        if isinstance(rates, pd.DataFrame) or rates is None:
            frame = rates
        else:
            frame = pd.DataFrame({"currency": list(rates.keys()), "rate": list(rates.values())}, dtype=object)
        clean = validate_fx_rates(frame, reporting_currency)
        reporting = validate_settings({"reporting_currency": reporting_currency})["reporting_currency"]
        with self._write() as conn:
            old = {r.currency: r for r in conn.execute(select(FX_RATES.c.currency, FX_RATES.c.rate,
                                                              FX_RATES.c.saved_at, FX_RATES.c.saved_by)).all()}
            before = {c: r.rate for c, r in old.items()}
            same_target = {**SETTINGS_DEFAULTS, **self._stored_settings(conn)}["reporting_currency"] == reporting
            now = utcnow()

            def stamp(c: str, r: float) -> dict[str, Any]:
                # A rate saved again unchanged (the editor saves the whole table) keeps the date it was set.
                kept = same_target and c in old and float(old[c].rate) == float(r)
                return {"saved_at": old[c].saved_at, "saved_by": old[c].saved_by} if kept else \
                    {"saved_at": now, "saved_by": actor.label}

            conn.execute(delete(FX_RATES))
            conn.execute(insert(FX_RATES), [{"currency": c, "rate": float(r), **stamp(c, r)}
                                            for c, r in sorted(clean.items())])
            self._put_settings(conn, {"reporting_currency": reporting}, actor)
            self._audit(conn, actor, "fx_rates", {"reporting_currency": reporting, "before": before, "after": clean})
        return clean

    def metric_options(self):
        """:class:`lib.metrics.MetricOptions` from the stored settings and exchange rates."""
        from .metrics import MetricOptions

        s = self.get_settings()
        rates = self.get_fx_rates()
        return MetricOptions(reporting_currency=s["reporting_currency"], fx_rates=rates, buffer=s["buffer"],
                             under_used_pct=s["under_used_pct"], at_capacity_pct=s["at_capacity_pct"],
                             vendor_price_period=s["vendor_price_period"])

    # ----------------------------------------------------------- snapshots

    def write_snapshot(self, result, config_key: str, taken_at: datetime | None = None) -> int:
        """Write one fetch as a snapshot (one transaction); returns its id."""
        return self.write_snapshots([(result, taken_at)], config_key)[0]

    def write_snapshots(self, items: Iterable[tuple[Any, datetime | None]], config_key: str) -> list[int]:
        """Write several fetches (e.g. seeded history) in one transaction; returns their ids."""
        if not isinstance(config_key, str) or not config_key.strip():
            raise ValueError("config_key must be non-empty text")
        prepared = [self._prepare(result, taken_at) for result, taken_at in items]
        ids = []
        with self._write() as conn:
            for prep in prepared:
                ids.append(self._insert_snapshot(conn, config_key, prep))
        return ids

    def _prepare(self, result, taken_at: datetime | None) -> dict[str, Any]:
        accounts = _conform(result.accounts, ACCOUNT_COLUMNS, "accounts")
        licenses = _conform(result.licenses, LICENSE_COLUMNS, "licenses")
        problems = _conform(result.problems, PROBLEM_COLUMNS, "problems")
        if accounts["account_id"].isna().any():
            raise ValueError("an account row has no account_id")
        if accounts["account_id"].duplicated().any():
            dup = accounts.loc[accounts["account_id"].duplicated(), "account_id"].iloc[0]
            raise ValueError(f"account {dup} appears twice in the accounts table")
        bad = sorted(set(accounts["outcome"].dropna()) - set(OUTCOMES)) + (
            ["(empty)"] if accounts["outcome"].isna().any() else [])
        if bad:
            raise ValueError(f"unknown account outcome(s): {', '.join(bad)}")
        known = set(accounts["account_id"])
        for name, table in (("license", licenses), ("problem", problems)):
            strays = sorted(set(table["account_id"].dropna()) - known)
            if strays or table["account_id"].isna().any():
                raise ValueError(f"{name} rows for account(s) without an account row: {', '.join(strays) or '(empty id)'}")
        started = getattr(result, "started_at", None)
        finished = getattr(result, "finished_at", None)
        taken = _utc(taken_at) if taken_at is not None else _utc(finished or utcnow())
        exit_code = result.exit_code() if callable(getattr(result, "exit_code", None)) else None
        return {"accounts": accounts, "licenses": licenses, "problems": problems, "taken_at": taken,
                "started_at": _utc(started) if started else None, "finished_at": _utc(finished) if finished else None,
                "demo": bool(getattr(result, "demo", False)), "exit_code": exit_code}

    def _insert_snapshot(self, conn: Connection, config_key: str, prep: dict[str, Any]) -> int:
        accounts, licenses, problems = prep["accounts"], prep["licenses"], prep["problems"]
        good_ids = set(accounts.loc[accounts["outcome"].isin(GOOD_OUTCOMES).to_numpy(dtype=bool), "account_id"])
        lic_mask = licenses["account_id"].isin(good_ids).to_numpy(dtype=bool)
        prob_mask = problems["account_id"].isin(good_ids).to_numpy(dtype=bool)
        taken = prep["taken_at"]
        snapshot_id = conn.execute(insert(SNAPSHOTS).values(
            config_key=config_key, taken_at=taken, started_at=prep["started_at"], finished_at=prep["finished_at"],
            written_at=utcnow(), demo=prep["demo"], exit_code=prep["exit_code"], accounts=len(accounts),
            license_rows=int(lic_mask.sum())).returning(SNAPSHOTS.c.id)).scalar_one()
        if not len(accounts):
            return snapshot_id
        n = len(accounts)
        sqlite = self.is_sqlite
        names = ["snapshot_id", "config_key", "taken_at", "good", *ACCOUNT_COLUMNS]
        data = [[snapshot_id] * n, [config_key] * n, [_to_us(taken) if sqlite else taken] * n,
                accounts["outcome"].isin(GOOD_OUTCOMES).to_numpy(dtype=bool).tolist(),
                *(_pylist(accounts[c], t, sqlite) for c, t in ACCOUNT_COLUMNS.items())]
        self._insert_rows(conn, "account_snapshots", names, data)
        A = ACCOUNT_SNAPSHOTS
        id_of = dict(conn.execute(select(A.c.account_id, A.c.id).where(A.c.snapshot_id == snapshot_id)).all())
        for table, columns, df, mask in (("license_rows", LICENSE_COLUMNS, licenses, lic_mask),
                                         ("problem_rows", PROBLEM_COLUMNS, problems, prob_mask)):
            if mask.any():
                rows = df[mask]
                data = [[id_of[a] for a in rows["account_id"].tolist()], np.flatnonzero(mask).tolist(),
                        *(_pylist(rows[c], t, sqlite) for c, t in columns.items())]
                self._insert_rows(conn, table, ["account_snapshot_id", "position", *columns], data)
        return snapshot_id

    def _insert_rows(self, conn: Connection, table: str, names: Sequence[str], data: Sequence[list]) -> None:
        """Bulk insert column lists: executemany on SQLite, COPY on PostgreSQL."""
        cur = self._cursor(conn)
        try:
            if self.is_sqlite:
                cur.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                list(zip(*data)))
            else:
                with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in zip(*data):
                        copy.write_row(row)
        finally:
            cur.close()

    def _arrow_columns(self, conn: Connection, exprs: Sequence[tuple[str, str]], tail: str,
                       params: tuple) -> list[pa.Array]:
        """``SELECT <exprs> <tail>`` as Arrow arrays, one per (column, dtype) in ``exprs``.

        SQLite: one fetchall, transposed. PostgreSQL: ``COPY (...) TO STDOUT``
        as CSV parsed by pyarrow, so no Python object is made per value.
        Timestamps come back as integer microseconds either way.
        """
        select_list = ", ".join(self._ts(c) if t.startswith("datetime64") else c for c, t in exprs)
        sql = f"SELECT {select_list} {tail}"
        if self.is_sqlite:
            cur = self._cursor(conn)
            try:
                cur.execute(sql, params)
                rows = cur.fetchall()
            finally:
                cur.close()
            cols = list(zip(*rows)) if rows else [()] * len(exprs)
            return [_arrow_from_values(values, t) for values, (_, t) in zip(cols, exprs)]
        return self._pg_copy_out(conn, sql, params, exprs)

    def _pg_copy_out(self, conn: Connection, sql: str, params: tuple, exprs: Sequence[tuple[str, str]]
                     ) -> list[pa.Array]:
        import io

        import psycopg
        import pyarrow.csv as pacsv

        raw = conn.connection.driver_connection
        query = psycopg.ClientCursor(raw).mogrify(sql, params)
        buf = io.BytesIO()
        with raw.cursor() as cur:
            with cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
                for data in copy:
                    buf.write(data)
        names = [f"c{i}" for i in range(len(exprs))]
        if buf.tell() == 0:
            return [pa.array([], type=_ARROW_TYPES[t]) for _, t in exprs]
        table = pacsv.read_csv(
            io.BytesIO(buf.getvalue()),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: _ARROW_TYPES[t] for n, (_, t) in zip(names, exprs)},
                null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
                true_values=["t"], false_values=["f"]),
        )
        return [table.column(n) for n in names]

    def _columns(self, conn: Connection, exprs: Sequence[tuple[str, str]], tail: str, params: tuple
                 ) -> dict[str, Any]:
        arrays = self._arrow_columns(conn, exprs, tail, params)
        return {c: _pandas_array(a, t) for a, (c, t) in zip(arrays, exprs)}

    def _read_rows(self, conn: Connection, table: str, columns: Mapping[str, str],
                   clauses: Sequence[tuple[str, tuple]]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """(owner ids, positions, {column: pandas array}) of ``table`` rows matching any of ``clauses``."""
        exprs = [("account_snapshot_id", "int64"), ("position", "int64"), *columns.items()]
        parts: list[list[pa.Array]] = [
            self._arrow_columns(conn, exprs, f"FROM {table} WHERE {where}", params) for where, params in clauses]
        if not parts:
            parts = [[pa.array([], type=_ARROW_TYPES[t]) for _, t in exprs]]
        def chunks(i: int) -> list[pa.Array]:
            out: list[pa.Array] = []
            for part in parts:
                out.extend(part[i].chunks if isinstance(part[i], pa.ChunkedArray) else [part[i]])
            return out

        merged = [pa.chunked_array(chunks(i), type=_ARROW_TYPES[t]) for i, (_, t) in enumerate(exprs)]
        owners = _pandas_array(merged[0], "int64")
        positions = _pandas_array(merged[1], "int64")
        data = {name: _pandas_array(arr, dtype) for arr, (name, dtype) in zip(merged[2:], columns.items())}
        return owners, positions, data

    def _id_clauses(self, ids: Sequence[int]) -> list[tuple[str, tuple]]:
        return [(f"account_snapshot_id IN ({', '.join([self._ph] * len(chunk))})", tuple(int(i) for i in chunk))
                for chunk in _chunks(list(ids))]

    def _frame(self, columns: Mapping[str, str], data: Mapping[str, Any], order: np.ndarray | None) -> pd.DataFrame:
        if order is not None:
            data = {c: v[order] for c, v in data.items()}
        df = pd.DataFrame(data, columns=list(columns))
        return df.astype(dict(columns)) if len(df) == 0 else df

    def has_snapshots(self, config_key: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(SNAPSHOTS.c.id).where(SNAPSHOTS.c.config_key == config_key).limit(1)).first() \
                is not None

    def latest_snapshot_id(self, config_key: str) -> int | None:
        """The id of the latest run (cheap; a cache key for the pages)."""
        with self._read() as conn:
            return conn.execute(select(SNAPSHOTS.c.id).where(SNAPSHOTS.c.config_key == config_key)
                                .order_by(SNAPSHOTS.c.taken_at.desc(), SNAPSHOTS.c.id.desc()).limit(1)).scalar()

    def snapshots(self, config_key: str) -> pd.DataFrame:
        """The runs kept for ``config_key``, oldest first."""
        cols = ["id", "taken_at", "written_at", "exit_code", "accounts", "license_rows", "demo"]
        with self._read() as conn:
            rows = conn.execute(select(*(SNAPSHOTS.c[c] for c in cols)).where(SNAPSHOTS.c.config_key == config_key)
                                .order_by(SNAPSHOTS.c.taken_at, SNAPSHOTS.c.id)).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
        for c in ("taken_at", "written_at"):
            df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[us, UTC]")
        return df.astype({"id": "Int64", "exit_code": "Int64", "accounts": "Int64", "license_rows": "Int64",
                          "demo": "boolean"})

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
            run = conn.execute(select(SNAPSHOTS).where(SNAPSHOTS.c.config_key == config_key)
                               .order_by(SNAPSHOTS.c.taken_at.desc(), SNAPSHOTS.c.id.desc()).limit(1)).first()
            if run is None:
                return LatestSnapshot(config_key, None, None, None, None, False, _empty_frame(LICENSE_COLUMNS),
                                      _empty_frame(account_dtypes), _empty_frame(PROBLEM_COLUMNS))
            att = self._columns(conn, [("id", "int64"), ("taken_at", "datetime64[us, UTC]"), ("good", "boolean"),
                                       *ACCOUNT_COLUMNS.items()],
                                f"FROM account_snapshots WHERE snapshot_id = {self._ph} ORDER BY id", (run.id,))
            good = att["good"].to_numpy(dtype=bool, na_value=False)
            account_ids = att["account_id"].to_numpy(dtype=object)
            # Accounts whose latest attempt is good show that attempt; the others their latest good one.
            fallback: dict[str, tuple[int, datetime]] = {}
            for chunk in _chunks(sorted(set(account_ids[~good]))):
                ranked = (select(A.c.id, A.c.account_id, A.c.taken_at,
                                 func.row_number().over(partition_by=A.c.account_id,
                                                        order_by=(A.c.taken_at.desc(), A.c.id.desc())).label("rn"))
                          .where(A.c.config_key == config_key, A.c.good.is_(True), A.c.account_id.in_(chunk))
                          .subquery())
                for row in conn.execute(select(ranked.c.id, ranked.c.account_id, ranked.c.taken_at)
                                        .where(ranked.c.rn == 1)).all():
                    fallback[row.account_id] = (row.id, row.taken_at)
            rank = {acc: i for i, acc in enumerate(account_ids)}
            rank_of_owner = {int(i): r for i, r in zip(att["id"][good], np.flatnonzero(good))}
            rank_of_owner.update({snap_id: rank[acc] for acc, (snap_id, _) in fallback.items()})
            clauses = [(f"account_snapshot_id IN (SELECT id FROM account_snapshots WHERE snapshot_id = {self._ph} "
                        f"AND good = {self._ph})", (run.id, True))] if good.any() else []
            clauses += self._id_clauses(sorted(snap_id for snap_id, _ in fallback.values()))
            licenses = self._ordered(conn, "license_rows", LICENSE_COLUMNS, clauses, rank_of_owner)
            problems = self._ordered(conn, "problem_rows", PROBLEM_COLUMNS, clauses, rank_of_owner)

        accounts = pd.DataFrame({c: att[c] for c in ACCOUNT_COLUMNS})
        stale = np.array([not g and acc in fallback for g, acc in zip(good, account_ids)], dtype=bool)
        taken_us = np.asarray(att["taken_at"].asi8, dtype=np.int64)   # microseconds (the array's unit)
        as_of_us = np.array([taken_us[i] if good[i] else (_to_us(fallback[acc][1]) if acc in fallback else -1)
                             for i, acc in enumerate(account_ids)], dtype=np.int64)
        as_of = pd.array(pa.array(as_of_us, mask=as_of_us < 0).cast(pa.timestamp("us", tz="UTC")).to_pandas())
        accounts["stale"] = pd.array(stale, dtype="boolean")
        accounts["data_as_of"] = as_of
        age = (pd.Timestamp(now).as_unit("us") - accounts["data_as_of"]).astype("timedelta64[us]")
        accounts["stale_for"] = age.where(stale, pd.NaT).astype("timedelta64[us]")
        return LatestSnapshot(config_key, run.id, run.taken_at, run.written_at, run.exit_code, bool(run.demo),
                              licenses, accounts.astype(account_dtypes), problems)

    def _ordered(self, conn: Connection, table: str, columns: Mapping[str, str],
                 clauses: Sequence[tuple[str, tuple]], rank_of_owner: Mapping[int, int]) -> pd.DataFrame:
        if not clauses:
            return _empty_frame(columns)
        owners, positions, data = self._read_rows(conn, table, columns, clauses)
        if not len(owners):
            return _empty_frame(columns)
        lookup = np.array(sorted(rank_of_owner.items()), dtype=np.int64)
        ranks = lookup[np.searchsorted(lookup[:, 0], owners), 1]
        order = np.lexsort((positions, ranks))
        return self._frame(columns, data, order)

    def history(self, config_key: str, since: datetime | None = None,
                columns: Sequence[str] | None = None) -> pd.DataFrame:
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
        wanted = list(LICENSE_COLUMNS) if columns is None else list(columns)
        unknown = [c for c in wanted if c not in LICENSE_COLUMNS]
        if unknown:
            raise ValueError(f"unknown license column(s): {', '.join(unknown)}")
        if "account_id" not in wanted:
            wanted.insert(0, "account_id")
        subset = {c: LICENSE_COLUMNS[c] for c in wanted}
        out_columns = {**HISTORY_EXTRA_COLUMNS, **subset}
        with self._read(consistent=True) as conn:
            cur = self._cursor(conn)
            try:
                cur.execute(f"SELECT id, account_id, {self._ts('taken_at')}, good FROM account_snapshots "
                            f"WHERE config_key = {self._ph}", (config_key,))
                rows = cur.fetchall()
            finally:
                cur.close()
            if not rows:
                return _empty_frame(out_columns)
            snaps = pd.DataFrame(rows, columns=["id", "account_id", "taken_us", "good"])
            snaps["good"] = snaps["good"].astype(bool)
            snaps["day"] = snaps["taken_us"] // _DAY_US * _DAY_US
            snaps = snaps.sort_values(["taken_us", "id"], kind="stable")
            days = snaps.drop_duplicates(["account_id", "day"])[["account_id", "day"]]
            last_sync = snaps.groupby("day")["taken_us"].max()
            good = (snaps[snaps["good"]].drop_duplicates(["account_id", "day"], keep="last")
                    [["account_id", "day", "id", "taken_us"]].rename(columns={"day": "good_day"}))
            if good.empty:
                return _empty_frame(out_columns)
            pairs = pd.merge_asof(days.sort_values("day"), good.sort_values("good_day"), left_on="day",
                                  right_on="good_day", by="account_id", direction="backward")
            pairs = pairs.dropna(subset=["id"])
            if since is not None:
                pairs = pairs[pairs["day"] >= _to_us(since) // _DAY_US * _DAY_US]
            if pairs.empty:
                return _empty_frame(out_columns)
            pairs["id"] = pairs["id"].astype(np.int64)
            ids = sorted(set(pairs["id"].tolist()))
            owners, positions, data = self._read_rows(conn, "license_rows", subset, self._id_clauses(ids))
        if not len(owners):
            return _empty_frame(out_columns)
        rows_df = pd.DataFrame({"id": owners, "position": positions, "row": np.arange(len(owners))})
        joined = pairs[["id", "day", "taken_us", "good_day"]].merge(rows_df, on="id", how="inner")
        joined["sync_us"] = last_sync.reindex(joined["day"]).to_numpy()
        joined = joined.sort_values(["day", "id", "position"], kind="stable")
        take = joined["row"].to_numpy()
        out = {c: v[take] for c, v in data.items()}
        df = pd.DataFrame({
            "day": pd.to_datetime(joined["day"].to_numpy(), unit="us", utc=True),
            "taken_at": pd.to_datetime(joined["sync_us"].to_numpy(), unit="us", utc=True),
            "data_as_of": pd.to_datetime(joined["taken_us"].to_numpy(), unit="us", utc=True),
            "stale": pd.array((joined["good_day"] < joined["day"]).to_numpy(), dtype="boolean"),
            **out,
        })
        return df.astype({c: t for c, t in HISTORY_EXTRA_COLUMNS.items() if c != "stale"})[list(out_columns)]

    # ----------------------------------------------------------- retention

    def prune(self, keep_days: int | None = None, now: datetime | None = None,
              config_key: str | None = None) -> dict[str, int]:
        """Drop old snapshots; returns how many account snapshots, license rows and runs went.

        Per account: at most one snapshot per UTC calendar day (the day's last
        good one, else its last attempt) and none older than ``keep_days``
        (default: the ``retention_days`` setting, 730). An account's latest
        attempt and latest good snapshot are always kept.
        """
        if keep_days is None:
            keep_days = self.get_settings()["retention_days"]
        if isinstance(keep_days, bool) or not isinstance(keep_days, (int, np.integer)) or keep_days < 1:
            raise ValueError(f"keep_days must be a whole number of days >= 1, not {keep_days!r}")
        now = _utc(now) if now is not None else utcnow()
        cutoff_us = _to_us(now - timedelta(days=int(keep_days)))
        where = f" WHERE config_key = {self._ph}" if config_key is not None else ""
        params = (config_key,) if config_key is not None else ()
        report = {"account_snapshots": 0, "license_rows": 0, "problem_rows": 0, "snapshots": 0}
        with self._write() as conn:
            cur = self._cursor(conn)
            try:
                cur.execute(f"SELECT id, snapshot_id, config_key, account_id, {self._ts('taken_at')}, good "
                            f"FROM account_snapshots{where}", params)
                rows = cur.fetchall()
                cur.execute(f"SELECT id, config_key, {self._ts('taken_at')} FROM snapshots{where}", params)
                runs = cur.fetchall()
            finally:
                cur.close()
            doomed: list[int] = []
            if rows:
                df = pd.DataFrame(rows, columns=["id", "snapshot_id", "config_key", "account_id", "taken_us", "good"])
                df["good"] = df["good"].astype(bool)
                df = df.sort_values(["taken_us", "id"], kind="stable")
                key = ["config_key", "account_id"]
                protected = set(df.groupby(key, sort=False)["id"].last())
                protected |= set(df[df["good"]].groupby(key, sort=False)["id"].last())
                df["day"] = df["taken_us"] // _DAY_US
                keepers = set(df.sort_values(["good", "taken_us", "id"], kind="stable")
                              .groupby([*key, "day"], sort=False)["id"].last())
                keep = df["id"].isin(protected) | (df["id"].isin(keepers) & (df["taken_us"] >= cutoff_us))
                doomed = sorted(df.loc[~keep, "id"].tolist())
            A = ACCOUNT_SNAPSHOTS
            for chunk in _chunks(doomed):
                report["license_rows"] += conn.execute(
                    delete(LICENSE_ROWS).where(LICENSE_ROWS.c.account_snapshot_id.in_(chunk))).rowcount
                report["problem_rows"] += conn.execute(
                    delete(PROBLEM_ROWS).where(PROBLEM_ROWS.c.account_snapshot_id.in_(chunk))).rowcount
                report["account_snapshots"] += conn.execute(delete(A).where(A.c.id.in_(chunk))).rowcount
            if runs:
                rdf = pd.DataFrame(runs, columns=["id", "config_key", "taken_us"]).sort_values(["taken_us", "id"])
                latest_runs = set(rdf.groupby("config_key")["id"].last())
                alive = set(conn.execute(select(A.c.snapshot_id).distinct()).scalars().all())
                empty_runs = sorted(set(rdf["id"]) - alive - latest_runs)
                for chunk in _chunks(empty_runs):
                    report["snapshots"] += conn.execute(delete(SNAPSHOTS).where(SNAPSHOTS.c.id.in_(chunk))).rowcount
        return report

    # ------------------------------------------------------- coordination

    def _try_lease(self, config_key: str, holder: str, lease_seconds: float) -> bool:
        L = REFRESH_LEASES
        now = utcnow()
        expires = now + timedelta(seconds=lease_seconds)
        with self._write() as conn:
            taken = conn.execute(update(L).where(L.c.config_key == config_key,
                                                 or_(L.c.holder.is_(None), L.c.expires_at < now))
                                 .values(holder=holder, acquired_at=now, expires_at=expires)).rowcount
            if taken == 1:
                return True
            if self.is_sqlite:
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            stmt = dialect_insert(L).values(config_key=config_key, holder=holder, acquired_at=now,
                                            expires_at=expires).on_conflict_do_nothing(index_elements=["config_key"])
            # RETURNING, not rowcount: psycopg does not report a row count for INSERT ... ON CONFLICT.
            return conn.execute(stmt.returning(L.c.config_key)).first() is not None

    def _renew_lease(self, config_key: str, holder: str, lease_seconds: float) -> bool:
        L = REFRESH_LEASES
        with self._write() as conn:
            return conn.execute(update(L).where(L.c.config_key == config_key, L.c.holder == holder)
                                .values(expires_at=utcnow() + timedelta(seconds=lease_seconds))).rowcount == 1

    def _release_lease(self, config_key: str, holder: str, error: str | None = None, *, attempted: bool = True
                       ) -> None:
        """Give the lease up; ``attempted``: a fetch ran, so record how it ended (its error, or none)."""
        L = REFRESH_LEASES
        now = utcnow()
        values: dict[str, Any] = {"holder": None, "expires_at": None}
        if attempted:
            values.update(last_finished_at=now, last_error=error[:2000] if error is not None else None,
                          last_error_at=now if error is not None else None)
        with self._write() as conn:
            conn.execute(update(L).where(L.c.config_key == config_key, L.c.holder == holder).values(**values))

    def lease_holder(self, config_key: str) -> str | None:
        """Who is refreshing ``config_key`` now (None when nobody holds an unexpired lease)."""
        L = REFRESH_LEASES
        with self._read() as conn:
            row = conn.execute(select(L.c.holder, L.c.expires_at).where(L.c.config_key == config_key)).first()
        if row is None or row.holder is None or row.expires_at is None or row.expires_at < utcnow():
            return None
        return row.holder

    def _written_since(self, config_key: str, since: datetime):
        S = SNAPSHOTS
        with self._read() as conn:
            return conn.execute(select(S.c.id, S.c.exit_code).where(S.c.config_key == config_key,
                                                                    S.c.written_at >= since)
                                .order_by(S.c.written_at.desc(), S.c.id.desc()).limit(1)).first()

    def _failed_since(self, config_key: str, since: datetime, holder: str | None = None) -> str | None:
        """The error of a fetch that failed at or after ``since``, unless someone (not ``holder``) is trying again."""
        L = REFRESH_LEASES
        now = utcnow()
        free = or_(L.c.holder.is_(None), L.c.expires_at < now)
        if holder is not None:
            free = or_(free, L.c.holder == holder)
        with self._read() as conn:
            row = conn.execute(select(L.c.last_error).where(
                L.c.config_key == config_key, L.c.last_error_at >= since, free)).first()
        return row.last_error if row is not None else None

    @contextmanager
    def lease(self, config_key: str, *, lease_seconds: float = 300.0, wait_timeout: float = 600.0,
              poll_interval: float = 0.2) -> Iterator[str]:
        """Hold ``config_key``'s refresh lease for the block (waits for another holder; TimeoutError after ``wait_timeout``)."""
        holder = _holder_id()
        deadline = time.monotonic() + wait_timeout
        while not self._try_lease(config_key, holder, lease_seconds):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"another process has held the refresh lease for {config_key} "
                                   f"for more than {wait_timeout:g} s")
            time.sleep(poll_interval)
        try:
            with _Heartbeat(self, config_key, holder, lease_seconds):
                yield holder
        finally:
            self._release_lease(config_key, holder, attempted=False)

    def refresh(self, config_key: str, fetch_fn: Callable[[], Any], requested_at: datetime | None = None, *,
                lease_seconds: float = 300.0, wait_timeout: float = 600.0, poll_interval: float = 0.2
                ) -> RefreshOutcome:
        """Fetch anew, unless another user or replica already is (then wait for its snapshot).

        ``requested_at``: when the user asked (default: now). A snapshot
        written at or after it is fresh enough: nothing is fetched. Otherwise
        this call takes the lease (a row in ``refresh_leases`` with an expiry,
        renewed while fetching, so a crashed holder blocks for at most
        ``lease_seconds``), calls ``fetch_fn()`` and writes the snapshot. If
        someone else holds the lease it polls until their snapshot is written
        (``joined``), their fetch fails (``failed``; their error) or
        ``wait_timeout`` passes (``timeout``). Exceptions from ``fetch_fn`` are
        re-raised after the lease is released.
        """
        requested_at = _utc(requested_at) if requested_at is not None else utcnow()
        holder = _holder_id()
        deadline = time.monotonic() + wait_timeout
        waited = False
        while True:
            done = self._written_since(config_key, requested_at)
            if done is not None:
                return RefreshOutcome("joined" if waited else "fresh", done.id, waited=waited,
                                      exit_code=done.exit_code)
            error = self._failed_since(config_key, requested_at)
            if error is not None:
                return RefreshOutcome("failed", self.latest_snapshot_id(config_key), waited=waited, error=error)
            if self._try_lease(config_key, holder, lease_seconds):
                break
            waited = True
            if time.monotonic() >= deadline:
                return RefreshOutcome("timeout", self.latest_snapshot_id(config_key), waited=True,
                                      error=f"another refresh has been running for more than {wait_timeout:g} s")
            time.sleep(poll_interval * (0.75 + 0.5 * np.random.random()))
        try:
            # Another holder may have finished between our checks and taking the lease.
            done = self._written_since(config_key, requested_at)
            error = None if done is not None else self._failed_since(config_key, requested_at, holder)
            if done is not None or error is not None:
                self._release_lease(config_key, holder, attempted=False)
                if done is not None:
                    return RefreshOutcome("joined" if waited else "fresh", done.id, waited=waited,
                                          exit_code=done.exit_code)
                return RefreshOutcome("failed", self.latest_snapshot_id(config_key), waited=waited, error=error)
            with _Heartbeat(self, config_key, holder, lease_seconds):
                result = fetch_fn()
                snapshot_id = self.write_snapshot(result, config_key)
        except BaseException as exc:
            # Only Truto's own error (FetchError: written for people, no secrets) is kept verbatim; any other
            # exception's text could carry a header or URL, so only its type is stored and shown to others.
            from .fetch import FetchError

            if isinstance(exc, FetchError):
                message = f"FetchError: {exc}"
            elif isinstance(exc, Exception):
                message = f"{type(exc).__name__} (details in the server log of the replica that fetched)"
            else:
                message = "the refresh was interrupted"
            self._release_lease(config_key, holder, error=message)
            raise
        self._release_lease(config_key, holder)
        exit_code = result.exit_code() if callable(getattr(result, "exit_code", None)) else None
        return RefreshOutcome("fetched", snapshot_id, fetched=True, waited=waited, result=result, exit_code=exit_code)
