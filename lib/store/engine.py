"""Database URLs and engines: SQLite (WAL, busy timeout, BEGIN IMMEDIATE for writers) or PostgreSQL."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError

from lib.config import PROJECT_ROOT, ConfigError, read_secrets_file, redact_url

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_SQLITE_NAME",
    "database_url",
    "default_sqlite_url",
    "make_engine",
    "normalize_url",
    "redact_url",
]

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_SQLITE_NAME = "dashboard.sqlite"


def normalize_url(url: str, where: str = "database URL") -> str:
    """``postgres://`` and ``postgresql://`` -> the psycopg driver; only SQLite and PostgreSQL are accepted."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{where}: empty")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"{where}: the value is not a URL such as postgresql://user:password@host/db "
            "(not shown, as it may hold a password)"
        )
    scheme_l = scheme.lower()
    if scheme_l in (
        "postgres",
        "postgresql",
        "postgresql+psycopg",
        "postgresql+psycopg2",
        "postgres+psycopg",
    ):
        url = "postgresql+psycopg://" + rest
    elif scheme_l not in ("sqlite", "sqlite+pysqlite"):
        raise ConfigError(
            f"{where}: {redact_url(url)!r}: only PostgreSQL (postgresql://...) and SQLite (sqlite:///path) "
            "are supported"
        )
    try:
        make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"{where}: {redact_url(url)!r} is not a valid database URL") from None
    return url


def default_sqlite_url(data_dir: Path | None = None) -> str:
    folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(folder / DEFAULT_SQLITE_NAME).resolve()}"


def database_url(
    env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None
) -> str:
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
    configured = section.get("url")
    if configured not in (None, ""):
        if not isinstance(configured, str):
            raise ConfigError("secrets.toml [database] url: expected text")
        return normalize_url(configured, "secrets.toml [database] url")
    return default_sqlite_url()


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


def make_engine(url: str, echo: bool = False) -> Engine:
    """An engine for a normalized URL (see :func:`normalize_url`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, echo)
    else:
        engine = _postgres_engine(parsed, echo)
    log.info("database engine for %s", redact_url(url))
    return engine


def _sqlite_engine(parsed, echo: bool) -> Engine:
    from sqlalchemy.pool import StaticPool

    database = parsed.database or ""
    memory = database in ("", ":memory:") or "mode=memory" in database
    if not memory:
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30},
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
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
        conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get("store_write") else "BEGIN"
        )

    return engine


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
