"""Streamlit pieces shared by app.py and the pages: data loading, the sidebar, downloads, tiles.

Everything that computes lives in lib/; this module only wires it to widgets.
"""

from __future__ import annotations

import os
import runpy
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import pandas as pd
import streamlit as st

from lib.analytics import views as D
from lib.analytics.labels import export_frame
from lib.analytics.metrics import MetricOptions, Summary, add_metrics, prepare, summarize
from lib.auth import Actor
from lib.config import ConfigError, Settings, cache_ttl_seconds, load_settings
from lib.export import dated_filename, to_csv_bytes
from lib.jobs.refresh import metric_options
from lib.jobs.refresh import refresh as refresh_snapshot
from lib.schema import LICENSE_COLUMNS
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
    _summaries: dict = field(default_factory=dict, repr=False)

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


def clear_data_caches() -> None:
    """After a save: recompute metrics with the new prices, rates or settings."""
    _metrics.clear()


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
    metrics = _metrics(latest.licenses, book, options, f"{key}:{latest.taken_at}", book_token)
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


# ------------------------------------------------------------------ sidebar


def sidebar_filters(accounts: pd.DataFrame) -> D.Filters:
    """The shared filters, bound to the URL so a copied link opens the same view."""
    choices = D.filter_choices(accounts)
    names = D.account_names(accounts)
    sb = st.sidebar
    sb.subheader("Filters")
    tenants = sb.multiselect(
        "Tenant", choices["tenants"], key="tenant", bind="query-params", placeholder="All tenants"
    )
    integrations = sb.multiselect(
        "Integration",
        choices["integrations"],
        key="integration",
        bind="query-params",
        placeholder="All integrations",
    )
    account_ids = sb.multiselect(
        "Account",
        choices["accounts"],
        key="account",
        bind="query-params",
        format_func=lambda a: names.get(a, a),
        placeholder="All accounts",
    )
    paid = sb.toggle(
        "Paid licenses only",
        key="paid",
        bind="query-params",
        help="Licenses the vendor marks paid, or that have a price when the vendor does not say.",
    )
    active = sb.toggle(
        "Active licenses only",
        key="active",
        bind="query-params",
        help="Hides licenses the vendor marks inactive; licenses without a status stay.",
    )
    search = sb.text_input(
        "Search licenses",
        key="q",
        bind="query-params",
        placeholder="License, integration or organization",
    )
    return D.Filters(
        tuple(tenants),
        tuple(integrations),
        tuple(account_ids),
        bool(paid),
        bool(active),
        search or "",
    )


def sidebar_status(view: View) -> None:
    sb = st.sidebar
    sb.divider()
    if view.demo:
        sb.info(
            "**Demo data.** No Truto API token is configured, so this shows a built-in sample. "
            "Set `TRUTO_API_TOKEN` to see your own accounts.",
            icon=":material/science:",
        )
    fresh = D.freshness(view.accounts, names=view.names)
    sb.caption(f"Data {fresh.headline}.")
    if fresh.per_account:
        with sb.expander("Fetched per account"):
            for name, text in fresh.per_account:
                st.caption(D.md_escape(f"{name}: {text}"))
    if fresh.stale:
        sb.warning(
            f"Showing older data for {len(fresh.stale)} account(s) whose last fetch failed; "
            "see Accounts.",
            icon=":material/history:",
        )
    if sb.button(
        "Refresh from Truto",
        icon=":material/refresh:",
        width="stretch",
        help="Fetch every account anew. Other users share the result.",
    ):
        refresh(view.store, view.settings, view.config_key)
        st.rerun()
    note = st.session_state.pop("_refresh_note", None)
    if note:
        sb.caption(D.md_escape(note))


# ------------------------------------------------------------------ drawing helpers


def tiles(items: list[D.Tile], per_row: int = 4) -> None:
    for start in range(0, len(items), per_row):
        cols = st.columns(per_row)
        for col, tile in zip(cols, items[start : start + per_row]):
            col.metric(
                tile.label,
                tile.value,
                delta=tile.note,
                delta_color="off",
                delta_arrow="off",
                help=tile.help,
                border=True,
            )


def download(
    df: pd.DataFrame, stem: str, label: str = "Download CSV", key: str | None = None
) -> None:
    """A CSV of exactly the rows shown, with a dated file name, safe to open in a spreadsheet.

    Its columns carry the export's names (``seats_bought``, ``idle_annual_cost_usd``: labels.export_frame).
    """
    view = st.session_state.get("_view")
    currency = view.currency if view is not None else "USD"
    # Generated on click: a page with several tables does not build CSVs nobody asked for on every rerun.
    st.download_button(
        label,
        lambda: to_csv_bytes(export_frame(df, currency)),
        file_name=dated_filename(stem),
        mime="text/csv",
        icon=":material/download:",
        key=key or f"dl-{stem}",
        on_click="ignore",
    )


_MONEY_WORDS = ("cost", "spend", "savings", "exposure", "price", "amount")


MISSING = "—"
MISSING_LEGEND = (
    f"{MISSING} = not reported by the vendor, or does not apply (a free license has no recommended "
    "seats); never counted as 0."
)


def table(
    df: pd.DataFrame,
    column_config: dict | None = None,
    height: int | str = "auto",
    key: str | None = None,
    show: tuple[str, ...] = (),
):
    """A dataframe with IT/finance headers, money formats, account names and "—" for empty cells.

    The first column is pinned; machine names and IDs (``D.PLUMBING_COLUMNS``) wait behind "More columns".
    The CSV export (``download``) keeps the export's own columns, account UUIDs included.
    """
    view = st.session_state.get("_view")
    cur = view.currency if view is not None else None
    shown = df
    plumbing = [
        c for c in df.columns if c in D.PLUMBING_COLUMNS and c not in show
    ]  # ``show``: these stay
    if "account_id" in df.columns:
        plumbing.append("account_uuid")
    more = False
    if plumbing and key:
        names = ", ".join(D.headers([c for c in plumbing], cur).values())
        more = st.toggle("More columns", key=f"{key}-more", help=f"Also show: {names}.")
    if "account_id" in df.columns and view is not None:
        ids = df["account_id"]
        shown = shown.assign(
            account_id=ids.map(lambda a: view.names.get(a, a) if isinstance(a, str) else a).astype(
                "string"
            )
        )
        if more:
            shown = shown.assign(account_uuid=ids.astype("string"))
    if not more:
        shown = shown.drop(columns=[c for c in plumbing if c in shown.columns])
    heads = D.headers(shown.columns, cur)
    config = {}
    for col, header in heads.items():
        if any(w in col for w in _MONEY_WORDS) and pd.api.types.is_numeric_dtype(shown[col].dtype):
            config[col] = st.column_config.NumberColumn(header, format="accounting")
        elif col.endswith("_pct") and pd.api.types.is_numeric_dtype(shown[col].dtype):
            config[col] = st.column_config.NumberColumn(
                header, format="%.1f%%"
            )  # one decimal, like the charts
        else:
            config[col] = st.column_config.Column(header)
    if "account_id" in shown.columns:
        config["account_id"] = st.column_config.TextColumn(
            "Account",
            help="Integration · tenant · the start of the account's ID; the full ID is in the CSV "
            "and under More columns.",
        )
    if "account_uuid" in shown.columns:
        config["account_uuid"] = st.column_config.TextColumn("Account ID (Truto)")
    extra = dict(column_config or {})
    config.update({k: v for k, v in extra.items() if k in shown.columns})
    if len(shown.columns):
        first = shown.columns[0]
        pinned = dict(config[first]) if isinstance(config[first], dict) else None
        if pinned is not None:
            pinned["pinned"] = True
            config[first] = pinned
    # The key names a container around the table (a dataframe without selections carries no key in the page).
    with st.container(key=key) if key else nullcontext():
        out = st.dataframe(
            shown,
            hide_index=True,
            column_config=config,
            height=height,
            width="stretch",
            placeholder=MISSING,
        )
        if shown.isna().to_numpy().any():
            st.caption(MISSING_LEGEND)
    return out


def seat_scope(view: View) -> Summary:
    """The summary the seat tiles lead with: paid licenses, unless the user includes free ones."""
    with_free = st.toggle(
        "Include free licenses in the seat figures",
        key="with_free",
        bind="query-params",
        help="Free tiers (thousands of free seats) can hide how well the paid seats are used, "
        "so the tiles count paid licenses unless this is on.",
    )
    return view.summary(paid_only=not with_free)


def empty_state(view: View, what: str) -> bool:
    """Say what to do when there is nothing to show; True when the page should stop."""
    if view.accounts.empty:
        st.info(
            "No integrated accounts found for this Truto token. Connect an account in Truto, or check "
            "`TRUTO_INTEGRATED_ACCOUNT_IDS` and `TRUTO_TENANT_ID`, then press **Refresh from Truto**.",
            icon=":material/link_off:",
        )
        return True
    if (
        view.metrics.empty
        and view.accounts["outcome"].isin(["failed", "needs_reauth", "inactive"]).all()
    ):
        st.error(
            "Every account failed to fetch, so there is nothing to show. The Accounts page says why and "
            "what to do.",
            icon=":material/error:",
        )
        st.page_link(page_path("accounts"), label="Open Accounts", icon=":material/arrow_forward:")
        return True
    if view.filtered.empty:
        st.info(
            f"No {what} match the filters ({view.filters.describe()}). Clear a filter in the sidebar.",
            icon=":material/filter_alt_off:",
        )
        return True
    return False


@dataclass(frozen=True)
class PageSpec:
    """One page of the dashboard: the one registry app.py, page links and tests read."""

    key: str
    file: str  # relative to the project root
    title: str
    icon: str
    url_path: str  # the deep link, /<url_path>


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    PageSpec(
        "utilization", "pages/utilization.py", "Utilization", ":material/group:", "utilization"
    ),
    PageSpec("spend", "pages/spend.py", "Spend", ":material/payments:", "spend"),
    PageSpec("trends", "pages/trends.py", "Trends", ":material/trending_up:", "trends"),
    PageSpec("accounts", "pages/accounts.py", "Accounts", ":material/hub:", "accounts"),
    PageSpec("price_book", "pages/price-book.py", "Price book", ":material/sell:", "price-book"),
    PageSpec("renewals", "pages/renewals.py", "Renewals", ":material/event:", "renewals"),
    PageSpec("alerts", "pages/alerts.py", "Alerts", ":material/notifications:", "alerts"),
)
PAGE_BY_KEY = {p.key: p for p in PAGES}
PAGE_TITLES = {p.key: p.title for p in PAGES}
HOME = "overview"  # what the bare address shows
ROOT = Path(__file__).resolve().parents[2]  # the project: app.py and pages/


def page_path(name: str) -> str:
    return PAGE_BY_KEY[name].file


def navigation_pages() -> list:
    """The st.Page list for st.navigation.

    Streamlit gives its default page the bare address ``/`` and no other, so a
    default Overview would make ``/overview`` a "Page not found". The default is
    instead a hidden page at ``/`` that draws the Overview, and every listed page,
    Overview included, keeps its own deep link.
    """
    home = PAGE_BY_KEY[HOME]
    listed = [
        st.Page(ROOT / p.file, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES
    ]
    start = st.Page(
        ROOT / home.file,
        title=home.title,
        icon=home.icon,
        url_path="home",
        default=True,
        visibility="hidden",
    )
    return [start, *listed]


_ROUTED = threading.local()


@contextmanager
def routed():
    """app.py runs the page inside this, so a page can tell it was reached through the router."""
    _ROUTED.active = True
    try:
        yield
    finally:
        _ROUTED.active = False


def leave_legacy_multipage_mode() -> None:
    """Run app.py (gate, data, sidebar, then this same page) for a page Streamlit ran alone.

    With a ``pages/`` folder beside app.py, Streamlit starts in its legacy
    multipage mode until ``st.navigation`` has run once (AppTest: on every run),
    and a deep link then runs the page file without app.py. Running app.py here,
    in the same script run, calls ``st.navigation``, which ends that mode for the
    server, and draws the page through the router; nothing is rerun, so no widget
    event is lost and the address stays the same. tests/test_routing.py fails the
    day Streamlit names legacy pages differently from this registry.
    """
    runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
    st.stop()  # the page was drawn inside app.py; end the run Streamlit started for it alone


def current_view() -> View:
    """The view app.py built for this run (a page reached without app.py hands over first)."""
    if not getattr(_ROUTED, "active", False):
        leave_legacy_multipage_mode()
    return st.session_state["_view"]


# ------------------------------------------------------------------ access


def _secrets() -> dict:
    """st.secrets as a dict: {} only when no secrets file exists at all.

    A secrets file that exists but cannot be read stops the app (fail closed): it may hold the [auth]
    section, and reading it as "no secrets" would run the dashboard open. Streamlit's
    StreamlitSecretNotFoundError is a FileNotFoundError, so the error alone does not tell the two apart.
    """
    from streamlit import config as st_config

    try:
        return st.secrets.to_dict()
    except Exception as exc:  # noqa: BLE001 - any failure to read an existing file must stop the app
        paths = st_config.get_option("secrets.files") or []
        if isinstance(exc, FileNotFoundError) and not any(os.path.exists(p) for p in paths):
            return {}
        problem = f"{type(exc).__name__}: {exc}"
    st.error(
        "The secrets file could not be read, so sign-in cannot be checked and the dashboard stays closed. "
        f"Fix the file and reload this page. ({D.md_escape(problem)})",
        icon=":material/lock:",
    )
    st.stop()


def streamlit_user() -> dict:
    """What ``st.user`` holds, as a plain dict (the input of lib.auth.decide)."""
    user = st.user
    try:
        data = dict(user.to_dict())
    except AttributeError:
        data = {k: user[k] for k in user}
    data.setdefault("is_logged_in", bool(getattr(user, "is_logged_in", False)))
    return data


def gate() -> Actor:
    """Sign-in and the allow-list when [auth] is configured; open for local use otherwise."""
    from lib.auth import decide, load_access_config

    try:
        config = load_access_config(_secrets())
    except ConfigError as exc:
        st.error(f"The access settings have a problem: {exc}")
        st.stop()
    if config.open:
        return decide({}, config).actor
    decision = decide(streamlit_user(), config)
    if decision.allowed:
        return decision.actor
    st.title("License utilization")
    if not st.user.is_logged_in:
        st.write("Sign in with your company account to see the dashboard.")
        st.button(
            "Sign in", type="primary", on_click=st.login, icon=":material/login:", key="sign-in"
        )
    else:
        st.warning(
            f"You are signed in as {D.md_escape(decision.shown_as)}, which does not have access to this "
            f"dashboard: {D.md_escape(decision.reason)}.",
            icon=":material/lock:",
        )
        st.button("Sign out", on_click=st.logout, icon=":material/logout:", key="sign-out")
    st.stop()


def sidebar_access(actor: Actor) -> None:
    sb = st.sidebar
    if actor.role == "open":
        sb.caption(
            ":material/lock_open: Open access: no sign-in is configured, so anyone who can reach this "
            "address can see and change everything. Configure `[auth]` for a shared deployment."
        )
        return
    who = D.md_escape(actor.email or actor.name or "you")
    sb.caption(f":material/person: Signed in as {who} ({'admin' if actor.can_edit else 'viewer'}).")
    sb.button("Sign out", on_click=st.logout, key="sign-out")


# ------------------------------------------------------------------ history


@st.cache_resource(show_spinner=False, ttl=CACHE_TTL_SECONDS, max_entries=4)
def _history(
    store_url: str, config_key: str, snapshot_id: int | None, days: int | None
) -> pd.DataFrame:
    """Keyed by the latest snapshot's id: a new snapshot (from any user, replica or sync) is a new key."""
    since = (
        None if days is None else pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=days)
    )
    return get_store(store_url).history(
        config_key, since=since.to_pydatetime() if since is not None else None
    )


def history(view: View, days: int | None = 365) -> pd.DataFrame:
    """License rows of the last ``days`` (None: all kept) with spend at today's prices, under the sidebar filters."""
    hist = _history(view.store_url, view.config_key, view.snapshot_id, days)
    if hist.empty:
        return hist
    with_metrics = add_metrics(hist[list(LICENSE_COLUMNS)], view.price_book, view.options)
    with_metrics["taken_at"] = hist["taken_at"].to_numpy()
    return D.apply_filters(with_metrics, view.filters)
