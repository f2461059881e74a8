""":class:`Store`: the dashboard's database, composed of the store's parts."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from lib.store.alerts import AlertsMixin
from lib.store.engine import database_url, make_engine, normalize_url
from lib.store.exemptions import ExemptionMixin
from lib.store.history import HistoryMixin
from lib.store.leases import LeaseMixin
from lib.store.migrations import SchemaMixin
from lib.store.settings import SettingsMixin
from lib.store.snapshots import SnapshotMixin
from lib.store.sync_claims import ClaimMixin
from lib.store.trends import TrendMixin


class Store(
    ClaimMixin,
    SchemaMixin,
    SnapshotMixin,
    TrendMixin,
    HistoryMixin,
    AlertsMixin,
    ExemptionMixin,
    SettingsMixin,
    LeaseMixin,
):
    """The dashboard's database. Thread-safe: share one per process (e.g. ``st.cache_resource``).

    Schema and upgrades: :class:`~lib.store.migrations.SchemaMixin`; settings, price book,
    rates, audit log: :class:`~lib.store.settings.SettingsMixin`; snapshots and the latest
    view: :class:`~lib.store.snapshots.SnapshotMixin`; history and retention:
    :class:`~lib.store.history.HistoryMixin`; trends added up in SQL:
    :class:`~lib.store.trends.TrendMixin`; refresh leases: :class:`~lib.store.leases.LeaseMixin`; reclaim exemptions:
    :class:`~lib.store.exemptions.ExemptionMixin`; contracts, alert rules, alert state
    and deliveries: :class:`~lib.store.alerts.AlertsMixin`; the sharded sync's runs and account
    claims: :class:`~lib.store.sync_claims.ClaimMixin`.
    """

    def __init__(self, url: str | None = None, *, upgrade: bool = True, echo: bool = False):
        self.url = normalize_url(url if url is not None else database_url())
        self.dialect = make_url(self.url).get_backend_name()
        self.engine = make_engine(self.url, echo)
        self._writer = self.engine.execution_options(store_write=True)
        self._ph = "?" if self.dialect == "sqlite" else "%s"
        if upgrade:
            self.upgrade()
