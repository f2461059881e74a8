"""The view a page draws from, the caches behind it, and the loaders: data, refresh, history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pandas as pd
import streamlit as st

from lib.analytics import trends as T
from lib.analytics import views as D
from lib.analytics.activity import DEFAULT_INACTIVE_DAYS, exemption_lists, reclaim
from lib.analytics.metrics import MetricOptions, add_metrics
from lib.analytics.reclaim_views import filter_seats
from lib.analytics.totals import Summary, prepare, summarize
from lib.auth import Actor
from lib.config import ConfigError, Settings, cache_ttl_seconds, load_settings
from lib.jobs.refresh import metric_options
from lib.jobs.refresh import refresh as refresh_snapshot
from lib.schema import LICENSE_COLUMNS, SEAT_COLUMNS
from lib.store import Store, database_url
from lib.truto.fetch import FetchError

try:
    CACHE_TTL_SECONDS = cache_ttl_seconds()
except ConfigError as _exc:  # reported on the page by load_settings_or_stop
    CACHE_TTL_SECONDS = 15 * 60
    _TTL_ERROR: str | None = str(_exc)
else:
    _TTL_ERROR = None


@dataclass
class View:
    """Everything a page draws from, for the current user, filters and data."""

    settings: Settings
    actor: Actor
    demo: bool
    taken_at: datetime | None
    accounts: pd.DataFrame  # all accounts (latest attempt)
    problems: pd.DataFrame
    metrics: pd.DataFrame  # all license rows with metrics
    filtered: pd.DataFrame  # rows the sidebar filters keep
    accounts_filtered: pd.DataFrame
    options: MetricOptions
    price_book: pd.DataFrame
    filters: D.Filters
    names: dict[str, str]
    store: Store
    store_url: str
    config_key: str
    snapshot_id: int | None
    seats: pd.DataFrame = field(default_factory=pd.DataFrame)  # SEAT_COLUMNS, every account
    activity: pd.DataFrame = field(default_factory=pd.DataFrame)  # ACTIVITY_COLUMNS, per account
    data_token: str = ""  # the snapshot and price book the metrics were computed from
    _summaries: dict = field(default_factory=dict, repr=False)
    _reclaims: dict = field(default_factory=dict, repr=False)

    @cached_property
    def prepared(self):
        """The filtered rows read once for every total and chart of this run."""
        return prepare(self.filtered, self.options)

    def summary(self, paid_only: bool = False) -> Summary:
        if paid_only not in self._summaries:
            self._summaries[paid_only] = summarize(self.prepared, paid_only=paid_only)
        return self._summaries[paid_only]

    @property
    def currency(self) -> str:
        return self.options.reporting_currency

    @cached_property
    def exemptions(self) -> pd.DataFrame:
        """Users and licenses never counted reclaimable (EXEMPTION_COLUMNS)."""
        return self.store.exemptions()

    @cached_property
    def exempt(self) -> tuple[frozenset[str], frozenset[tuple[str | None, str]]]:
        """The exemptions as classify takes them: (users, licenses)."""
        return exemption_lists(self.exemptions)

    def reclaim(self, inactive_days: int = DEFAULT_INACTIVE_DAYS) -> pd.DataFrame:
        """Every seat classified and priced (lib.analytics.activity.reclaim), under the sidebar filters."""
        if inactive_days not in self._reclaims:
            users, licenses = self.exempt
            token = str(pd.util.hash_pandas_object(self.exemptions, index=False).sum())
            priced = _reclaim(
                self.seats,
                self.metrics,
                self.options,
                inactive_days,
                users,
                licenses,
                f"{self.data_token}:{token}",
            )
            self._reclaims[inactive_days] = filter_seats(priced, self.filtered, self.filters)
        return self._reclaims[inactive_days]

    @cached_property
    def audit_log(self) -> pd.DataFrame:
        """The latest 1,000 changes to prices, rates and settings, newest first."""
        return self.store.audit_log(limit=1000)

    @cached_property
    def fx_rates(self) -> dict[str, float]:
        """The saved exchange rates, {currency: reporting-currency units per unit}."""
        return self.store.get_fx_rates()

    @cached_property
    def fx_rates_saved(self) -> pd.DataFrame:
        """The rates with when and by whom each was saved."""
        return self.store.fx_rates_saved()

    @cached_property
    def saved_settings(self) -> dict[str, Any]:
        """Thresholds, buffer, vendor price period and reporting currency, as saved."""
        return self.store.get_settings()


# ------------------------------------------------------------------ data


@st.cache_resource(show_spinner=False)
def get_store(url: str) -> Store:
    return Store(url)


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL_SECONDS, max_entries=8)
def _latest(store_url: str, config_key: str, generation: int):
    """The latest snapshot, read once per generation (bumped by a refresh) and at most every TTL."""
    return get_store(store_url).latest(config_key)


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL_SECONDS, max_entries=8)
def _metrics(
    _licenses: pd.DataFrame,
    _book: pd.DataFrame,
    options: MetricOptions,
    snapshot_token: str,
    book_token: str,
) -> pd.DataFrame:
    return add_metrics(_licenses, _book, options)


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL_SECONDS, max_entries=8)
def _reclaim(
    _seats: pd.DataFrame,
    _metrics: pd.DataFrame,
    options: MetricOptions,
    inactive_days: int,
    exempt_users: frozenset[str],
    exempt_licenses: frozenset[tuple[str | None, str]],
    token: str,
) -> pd.DataFrame:
    return reclaim(_seats, _metrics, options, inactive_days, None, exempt_users, exempt_licenses)


def clear_data_caches() -> None:
    """After a save: recompute metrics with the new prices, rates, settings or exemptions."""
    _metrics.clear()
    _reclaim.clear()
    _trend_sums.clear()


def _generation() -> int:
    return st.session_state.setdefault("_generation", 0)


def refresh(view_store: Store, settings: Settings, config_key: str) -> None:
    """Fetch anew from Truto (one fetch across users and replicas), showing accounts done out of total."""
    from lib.truto.source import fetch

    bar = st.progress(0.0, text="Fetching from Truto…")

    def progress(done: int, total: int, _account: str) -> None:
        bar.progress(done / total if total else 1.0, text=f"Fetched {done} of {total} accounts")

    try:
        outcome = refresh_snapshot(
            view_store,
            config_key,
            lambda: fetch(settings, progress=progress),
            requested_at=datetime.now(UTC),
        )
    except FetchError as exc:
        bar.empty()
        st.error(f"Nothing could be fetched: {D.md_escape(exc)}")
        return
    bar.empty()
    st.session_state["_generation"] = _generation() + 1
    st.session_state["_refresh_note"] = getattr(outcome, "note", None)
    _latest.clear()
    _history.clear()
    _seat_history.clear()
    _trend_sums.clear()


def load_settings_or_stop() -> Settings:
    if _TTL_ERROR:
        st.error(f"The dashboard settings have a problem: {_TTL_ERROR}")
        st.stop()
    try:
        return load_settings()
    except ConfigError as exc:
        st.error(f"The Truto settings have a problem: {exc}")
        st.info(
            "Fix it in `.streamlit/secrets.toml` or the environment, then reload this page. "
            "Without a token the dashboard runs on the demo data."
        )
        st.stop()


def open_store_or_stop() -> tuple[Store, str]:
    """The configured database, or a message that names no password and stops the page."""
    from lib.store import redact_url

    try:
        url = database_url()
    except ConfigError as exc:
        st.error(f"The database setting has a problem: {D.md_escape(exc)}")
        st.stop()
    try:
        return get_store(url), url
    except Exception as exc:  # noqa: BLE001  (driver errors can quote the URL: show the type only)
        st.error(
            f"Could not open the database {D.md_escape(redact_url(url))} ({type(exc).__name__}). "
            "Check DATABASE_URL or [database] url, the server and the credentials."
        )
        st.stop()


def config_key(settings: Settings) -> str:
    from lib.jobs.sync import config_key as key

    return key(settings)


def load_view(actor: Actor) -> View:
    """Settings, database, the latest snapshot with metrics, and the sidebar filters applied."""
    from lib.ui.sidebar import sidebar_filters  # the sidebar draws from the view: one direction

    settings = load_settings_or_stop()
    store, url = open_store_or_stop()
    key = config_key(settings)
    if settings.demo:
        _seed_demo(url, key)
    latest = _latest(url, key, _generation())
    if latest.is_empty:
        refresh(store, settings, key)
        latest = _latest(url, key, _generation())
    options = metric_options(store)
    book = store.get_price_book()
    book_token = str(pd.util.hash_pandas_object(book, index=False).sum()) if len(book) else "empty"
    snapshot_token = f"{key}:{latest.snapshot_id}:{latest.taken_at}"
    metrics = _metrics(latest.licenses, book, options, snapshot_token, book_token)
    filters = sidebar_filters(latest.accounts)
    names = D.account_names(latest.accounts)
    return View(
        settings=settings,
        actor=actor,
        demo=settings.demo,
        taken_at=latest.taken_at,
        accounts=latest.accounts,
        problems=latest.problems,
        metrics=metrics,
        filtered=D.apply_filters(metrics, filters),
        accounts_filtered=D.filter_accounts(latest.accounts, filters),
        options=options,
        price_book=book,
        filters=filters,
        names=names,
        store=store,
        store_url=url,
        config_key=key,
        snapshot_id=latest.snapshot_id,
        seats=latest.seats,
        activity=latest.activity,
        data_token=f"{snapshot_token}:{book_token}:{options}",
    )


@st.cache_resource(show_spinner=False)
def _seed_demo(store_url: str, key: str) -> bool:
    """On a new database: the demo price book and rates, and a year of monthly demo snapshots."""
    from lib.jobs.demo import seed_demo_pricing
    from lib.jobs.demo_history import seed_demo_history

    store = get_store(store_url)
    seed_demo_pricing(store)
    seed_demo_history(store, key, datetime.now(UTC))
    return True


# ------------------------------------------------------------------ history


def _since(days: int | None) -> datetime | None:
    """The start of the last ``days`` UTC days (None: everything kept)."""
    if days is None:
        return None
    return (pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=days)).to_pydatetime()


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL_SECONDS, max_entries=4)
def _history(
    store_url: str, config_key: str, snapshot_id: int | None, days: int | None
) -> pd.DataFrame:
    """Keyed by the latest snapshot's id: a new snapshot (from any user, replica or sync) is a new key."""
    return get_store(store_url).history(config_key, since=_since(days))


def history(view: View, days: int | None = 365) -> pd.DataFrame:
    """License rows of the last ``days`` (None: all kept) with spend at today's prices, under the sidebar filters."""
    hist = _history(view.store_url, view.config_key, view.snapshot_id, days)
    if hist.empty:
        return hist
    with_metrics = add_metrics(hist[list(LICENSE_COLUMNS)], view.price_book, view.options)
    with_metrics["taken_at"] = hist["taken_at"].to_numpy()
    return D.apply_filters(with_metrics, view.filters)


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL_SECONDS, max_entries=8)
def _trend_sums(
    store_url: str,
    config_key: str,
    snapshot_id: int | None,
    days: int | None,
    group: str,
    top: int | None,
    filters: tuple,
    _prices: pd.DataFrame,
    _pricing: T.TrendPricing,
    prices_token: str,
) -> pd.DataFrame:
    """Keyed by the latest snapshot, the period, the group, the filters and today's prices (the
    trend rollup, when the filters are among those it keeps, priced per license class)."""
    return get_store(store_url).trend_sums(
        config_key,
        _since(days),
        T.GROUPS[group],
        _prices,
        top=top,
        pricing=_pricing,
        **dict(filters),
    )


def trends(
    view: View,
    days: int | None = 365,
    group: str = "integration",
    top: int | None = None,
    paid_only: bool = False,
) -> pd.DataFrame:
    """:func:`lib.analytics.trends.trend_frame`'s table for the last ``days`` (None: all kept), added
    up in the database at today's prices, under the sidebar filters; ``top``: only the licenses
    (or integrations) with the most seats bought at the latest date; ``paid_only``: paid licenses
    only (the seat tiles' scope), whatever the sidebar's paid filter."""
    arguments = T.filter_arguments(view.filters)
    arguments["paid_only"] = bool(arguments["paid_only"] or paid_only)
    sums = _trend_sums(
        view.store_url,
        view.config_key,
        view.snapshot_id,
        days,
        group,
        top,
        tuple(arguments.items()),
        T.trend_prices(view.metrics, view.options),
        T.trend_pricing(view.price_book, view.options),
        view.data_token,
    )
    return T.trend_from_sums(sums, group)


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL_SECONDS, max_entries=4)
def _seat_history(
    store_url: str, config_key: str, snapshot_id: int | None, days: int | None
) -> pd.DataFrame:
    return get_store(store_url).seat_history(config_key, since=_since(days))


def seat_history(view: View, days: int | None = 365) -> pd.DataFrame:
    """Seat rows of the last ``days`` (at most 60 dates), classified at 90 days relative to their own
    snapshot and priced at today's prices, under the sidebar filters (with ``taken_at``)."""
    hist = _seat_history(view.store_url, view.config_key, view.snapshot_id, days)
    if hist.empty:
        return hist
    users, licenses = view.exempt
    priced = reclaim(
        hist[list(SEAT_COLUMNS)],
        view.metrics,
        view.options,
        DEFAULT_INACTIVE_DAYS,
        None,
        users,
        licenses,
    )
    priced["taken_at"] = hist["taken_at"].to_numpy()
    return filter_seats(priced, view.filtered, view.filters)
