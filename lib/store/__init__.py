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
- version 3: when and by whom each exchange rate was saved.
- version 4: ``contracts``, ``alert_rules``, ``alert_state``, ``alert_deliveries``.
- version 5: seat activity: the users listing's outcome on ``account_snapshots``
  (``activity``, ``activity_message``, ``users``, ``seat_rows``, ``activity_problems``),
  ``seat_rows`` (one per account, license and user, kept with the account snapshot like its
  license rows) and ``reclaim_exemptions``.
- version 6: ``sync_runs`` and ``sync_claims``: one sync run written by several processes, each
  claiming accounts (:mod:`~lib.store.sync_claims`; PostgreSQL only).
- version 7: ``trend_rollup``, ``trend_rollup_days`` and ``trend_classes``: the trends added up
  per day and license, built on first read and kept in step with every write
  (:mod:`~lib.store.rollup`).

Snapshots. Each fetch writes one *run* (``snapshots``) and, per account, one
*account snapshot* with its outcome; accounts that ended ``ok`` or
``not_supported`` also get their license and problem rows, all in one
transaction. A failed account writes only its outcome, so its last good rows
stay as they were; :meth:`Store.latest` shows them marked stale, with the
failure and its age.

Time is UTC throughout: ``timestamptz`` on PostgreSQL, microseconds since the
epoch on SQLite. Retention counts calendar days in UTC.

The package: :mod:`~lib.store.engine` (URLs, engines), :mod:`~lib.store.tables`
(UTC type, tables), :mod:`~lib.store.migrations`, :mod:`~lib.store.settings`,
:mod:`~lib.store.snapshots`, :mod:`~lib.store.history` (history, retention),
:mod:`~lib.store.trends` (trends added up by SQL GROUP BY),
:mod:`~lib.store._bulk` (Arrow/COPY I/O), :mod:`~lib.store.leases`, composed
into :class:`Store` in :mod:`~lib.store.core`. The store knows nothing of
fetching or metrics: the refresh workflow is :mod:`lib.jobs.refresh`.
"""

from lib.config import redact_url
from lib.schema import DEFAULT_KEEP_DAYS, SETTINGS_DEFAULTS
from lib.store.core import Store
from lib.store.engine import (
    DEFAULT_DATA_DIR,
    DEFAULT_SQLITE_NAME,
    database_url,
    default_sqlite_url,
    normalize_url,
)
from lib.store.exemptions import EXEMPTION_COLUMNS, EXEMPTION_KINDS, ExemptionError
from lib.store.leases import LeaseHeartbeat, new_holder_id
from lib.store.migrations import LATEST_VERSION, MIGRATIONS, Migration, SchemaError
from lib.store.settings import (
    SettingsError,
    checked_fx_rates,
    checked_price_book,
    validate_settings,
)
from lib.store.snapshots import ACCOUNT_EXTRA_COLUMNS, HISTORY_EXTRA_COLUMNS, LatestSnapshot
from lib.store.sync_claims import Claim, ClaimStatus, SyncRun, check_run_key, claim_record
from lib.store.tables import (
    ACCOUNT_SNAPSHOTS,
    AUDIT_LOG,
    FAILED_OUTCOMES,
    FX_RATES,
    GOOD_OUTCOMES,
    LICENSE_ROWS,
    METADATA,
    PRICE_BOOK,
    PROBLEM_ROWS,
    REFRESH_LEASES,
    SCHEMA_VERSION,
    SETTINGS,
    SNAPSHOTS,
    V1,
    UtcTimestamp,
    utcnow,
)

__all__ = [
    "ACCOUNT_EXTRA_COLUMNS",
    "ACCOUNT_SNAPSHOTS",
    "AUDIT_LOG",
    "Claim",
    "ClaimStatus",
    "DEFAULT_DATA_DIR",
    "DEFAULT_KEEP_DAYS",
    "DEFAULT_SQLITE_NAME",
    "EXEMPTION_COLUMNS",
    "EXEMPTION_KINDS",
    "FAILED_OUTCOMES",
    "FX_RATES",
    "GOOD_OUTCOMES",
    "HISTORY_EXTRA_COLUMNS",
    "LATEST_VERSION",
    "LICENSE_ROWS",
    "METADATA",
    "MIGRATIONS",
    "PRICE_BOOK",
    "PROBLEM_ROWS",
    "REFRESH_LEASES",
    "SCHEMA_VERSION",
    "SETTINGS",
    "SETTINGS_DEFAULTS",
    "SNAPSHOTS",
    "V1",
    "ExemptionError",
    "LatestSnapshot",
    "LeaseHeartbeat",
    "Migration",
    "SchemaError",
    "SettingsError",
    "Store",
    "SyncRun",
    "UtcTimestamp",
    "check_run_key",
    "checked_fx_rates",
    "checked_price_book",
    "claim_record",
    "database_url",
    "default_sqlite_url",
    "new_holder_id",
    "normalize_url",
    "redact_url",
    "utcnow",
    "validate_settings",
]
