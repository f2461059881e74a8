"""The store on SQLite and PostgreSQL: round trips, upgrade, stale-on-failure, refresh, retention, permissions.

Every test taking ``store`` or ``store_url`` runs on both backends (see the
fixtures at the end of conftest.py); the PostgreSQL cases need
TEST_POSTGRES_URL and are skipped with a message without it (failed under CI=true).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, insert, inspect, select, text

from lib.analytics.metrics import MetricOptions
from lib.analytics.pricing import (
    PRICE_BOOK_DTYPES,
    FxRatesError,
    PriceBookError,
    validate_fx_rates,
    validate_price_book,
)
from lib.auth import OPEN_ACTOR, Actor
from lib.config import ConfigError
from lib.jobs.refresh import metric_options
from lib.schema import ACCOUNT_COLUMNS, LICENSE_COLUMNS, PROBLEM_COLUMNS
from lib.store import (
    LATEST_VERSION,
    V1,
    SchemaError,
    SettingsError,
    Store,
    database_url,
    normalize_url,
    redact_url,
)
from lib.truto.fetch import AccountOutcome, assemble
from lib.truto.normalize import Listing
from tests.factories import lic

ADMIN = Actor("boss@acme.com", "Boss", "admin")
VIEWER = Actor("ana@acme.com", "Ana", "viewer")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
KEY = "test-key"


# ------------------------------------------------------------------ helpers


def make_result(spec: dict, at: datetime = T0):
    """A FetchResult built without HTTP. spec: {account_id: (integration, outcome, records)}."""
    outcomes = []
    for account_id, (integration, outcome, records) in spec.items():
        o = AccountOutcome(account_id, integration, "t1", "active", fetched_at=at, requests=2)
        if outcome == "ok":
            o.listings.append(
                Listing(
                    account_id,
                    integration,
                    "t1",
                    records,
                    at,
                    organization_id=f"org-{account_id}",
                    organization_name=f"Org {account_id}",
                )
            )
        else:
            o.outcome = outcome
            o.message = f"{outcome} at {at:%Y-%m-%d %H:%M}"
            o.action = "Refresh later."
        outcomes.append(o)
    result = assemble(outcomes, at)
    result.finished_at = at
    return result


def seats(assigned_a: int, assigned_b: int | None = 7) -> dict:
    return {
        "acc-a": (
            "github",
            "ok",
            [lic("a1", "GitHub Enterprise", assigned_a, 100, True), lic("a2", "Copilot", None, 20)],
        ),  # assigned not reported
        "acc-b": ("salesforce", "ok", [lic("b1", "Sales Cloud", assigned_b, 10, True)]),
    }


def failed_b(assigned_a: int, outcome: str = "failed") -> dict:
    spec = seats(assigned_a)
    spec["acc-b"] = ("salesforce", outcome, [])
    return spec


def fx(rates: dict, reporting: str) -> dict:
    """Rates as the price-book page validates them before saving."""
    frame = pd.DataFrame({"currency": list(rates), "rate": list(rates.values())}, dtype=object)
    return validate_fx_rates(frame, reporting)


def rows_of(latest, account_id: str) -> pd.DataFrame:
    return latest.licenses[latest.licenses["account_id"] == account_id]


def account(latest, account_id: str) -> pd.Series:
    return latest.accounts.set_index("account_id").loc[account_id]


def count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(store_table(table))).scalar()


def store_table(name: str):
    from lib.store import METADATA

    return METADATA.tables[name]


# ---------------------------------------------------------------------- URLs


def test_database_url_sources(tmp_path, monkeypatch):
    monkeypatch.setattr("lib.store.engine.DEFAULT_DATA_DIR", tmp_path / "data")
    secrets = {"database": {"url": "postgres://u:pw@db.internal:5432/dash"}}
    assert (
        database_url(env={"DATABASE_URL": "postgresql://u:envpw@h/db"}, secrets=secrets)
        == "postgresql+psycopg://u:envpw@h/db"
    )
    assert (
        database_url(env={}, secrets=secrets) == "postgresql+psycopg://u:pw@db.internal:5432/dash"
    )
    url = database_url(env={"DATABASE_URL": "  "}, secrets={})
    assert url == f"sqlite:///{(tmp_path / 'data' / 'dashboard.sqlite').resolve()}"
    assert (tmp_path / "data").is_dir()


def test_bad_urls_are_refused_without_showing_the_password():
    with pytest.raises(ConfigError) as exc:
        database_url(env={"DATABASE_URL": "mysql://root:hunter2@db/x"}, secrets={})
    assert "DATABASE_URL" in str(exc.value) and "hunter2" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"\[database\]: unknown key"):
        database_url(env={}, secrets={"database": {"uri": "x"}})
    assert normalize_url("sqlite:///x.sqlite") == "sqlite:///x.sqlite"


def test_redact_url_hides_the_password():
    assert (
        redact_url("postgresql+psycopg://dash:s3cr3t@db:5432/x")
        == "postgresql+psycopg://dash:***@db:5432/x"
    )
    assert "s3cr3t" not in redact_url("postgres://dash:s3cr3t@db/x?sslmode=require")
    assert redact_url("sqlite:////data/x.sqlite") == "sqlite:////data/x.sqlite"


def test_store_repr_hides_the_password(store):
    if store.is_sqlite:
        assert repr(store).startswith("Store('sqlite:///")
    else:
        password = store.engine.url.password
        assert password and f":{password}@" not in repr(store) and ":***@" in repr(store)


# -------------------------------------------------------------------- schema


def test_fresh_store_is_at_the_latest_version(store):
    assert store.schema_version() == LATEST_VERSION >= 4
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "schema_version",
        "settings",
        "price_book",
        "fx_rates",
        "snapshots",
        "account_snapshots",
        "license_rows",
        "problem_rows",
        "refresh_leases",
        "audit_log",
    } <= tables
    Store(store.url).close()  # opening again changes nothing
    with store.engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(store_table("schema_version"))).scalar()
            == LATEST_VERSION
        )


def test_upgrade_from_version_1_keeps_every_row(store_url):
    old = Store(store_url, upgrade=False)
    assert old.upgrade(target=1) == 1
    names = set(inspect(old.engine).get_table_names())
    assert (
        "problem_rows" not in names and "audit_log" not in names and "refresh_leases" not in names
    )
    assert "good" not in {c["name"] for c in inspect(old.engine).get_columns("account_snapshots")}
    # Rows as version 1 wrote them.
    t = V1.tables
    with old.engine.begin() as conn:
        conn.execute(insert(t["settings"]), [{"key": "buffer", "value": "0.25"}])
        conn.execute(
            insert(t["price_book"]),
            [
                {
                    "position": 0,
                    "integration": "GitHub",
                    "license_id": None,
                    "license_name": "GitHub Enterprise",
                    "unit_price": 21.0,
                    "currency": "USD",
                    "billing_period": "monthly",
                }
            ],
        )
        conn.execute(
            insert(t["fx_rates"]),
            [{"currency": "USD", "rate": 1.0}, {"currency": "EUR", "rate": 1.08}],
        )
        sid = conn.execute(
            insert(t["snapshots"])
            .values(
                config_key=KEY,
                taken_at=T0,
                written_at=T0,
                demo=False,
                exit_code=2,
                accounts=2,
                license_rows=1,
            )
            .returning(t["snapshots"].c.id)
        ).scalar_one()
        base = {
            "snapshot_id": sid,
            "config_key": KEY,
            "taken_at": T0,
            "tenant_id": "t1",
            "account_status": "active",
            "fetched_at": T0,
            "license_rows": 0,
            "problems": 0,
            "requests": 1,
            "retries": 0,
            "rate_limited": 0,
            "wait_seconds": 0.0,
            "elapsed_seconds": 0.1,
            "message": "",
            "action": "",
        }
        ok_id = conn.execute(
            insert(t["account_snapshots"])
            .values(
                account_id="acc-a",
                integration="github",
                integration_label="GitHub",
                outcome="ok",
                **base,
            )
            .returning(t["account_snapshots"].c.id)
        ).scalar_one()
        conn.execute(
            insert(t["account_snapshots"]).values(
                account_id="acc-b",
                integration="zoom",
                integration_label="Zoom",
                outcome="needs_reauth",
                **base,
            )
        )
        conn.execute(
            insert(t["license_rows"]),
            [
                {
                    "account_snapshot_id": ok_id,
                    "position": 0,
                    "account_id": "acc-a",
                    "integration": "github",
                    "integration_label": "GitHub",
                    "tenant_id": "t1",
                    "license_id": "a1",
                    "license_name": "GitHub Enterprise",
                    "is_paid": True,
                    "assigned_seats": 5,
                    "total_seats": None,
                    "fetched_at": T0,
                }
            ],
        )
    old.close()

    store = Store(store_url)  # upgrades in place
    try:
        assert store.schema_version() == LATEST_VERSION
        assert store.get_settings()["buffer"] == 0.25
        assert store.get_price_book()["license_name"].tolist() == ["GitHub Enterprise"]
        assert store.get_fx_rates() == {"EUR": 1.08, "USD": 1.0}
        with store.engine.connect() as conn:
            a = store_table("account_snapshots")
            assert dict(conn.execute(select(a.c.account_id, a.c.good)).all()) == {
                "acc-a": True,
                "acc-b": False,
            }
            assert (
                conn.execute(select(func.count()).select_from(store_table("license_rows"))).scalar()
                == 1
            )
        latest = store.latest(KEY)
        assert latest.licenses["license_id"].tolist() == ["a1"]
        assert latest.licenses["assigned_seats"].tolist() == [5]
        assert latest.licenses["total_seats"].isna().all()  # not reported stays not reported
        assert latest.accounts["outcome"].tolist() == ["ok", "needs_reauth"]
        # Version 2 features work on the upgraded database.
        store.save_settings({"buffer": 0.3}, ADMIN)
        assert len(store.audit_log()) == 1
        store.write_snapshot(make_result(seats(6), T0 + timedelta(days=1)), KEY)
        assert store.latest(KEY).licenses["assigned_seats"].tolist()[0] == 6
    finally:
        store.close()


def test_a_newer_schema_is_refused(store):
    with store.engine.begin() as conn:
        conn.execute(
            insert(store_table("schema_version")).values(
                version=LATEST_VERSION + 1, description="future", applied_at=T0
            )
        )
    with pytest.raises(SchemaError, match="newer"):
        Store(store.url).close()


def test_replicas_starting_together_migrate_once(store_url):
    errors, stores = [], []

    def start():
        try:
            stores.append(Store(store_url))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    with stores[0].engine.connect() as conn:
        versions = conn.execute(select(store_table("schema_version").c.version)).scalars().all()
    assert sorted(versions) == list(range(1, LATEST_VERSION + 1))
    for s in stores:
        s.close()


# ------------------------------------------------- price book, FX, settings

BOOK = pd.DataFrame(
    {
        "integration": ["GitHub", "Microsoft 365"],
        "license_id": [None, "c42b9cae"],
        "license_name": ["GitHub Enterprise", None],
        "unit_price": [21, 684.5],
        "currency": ["usd", "EUR"],
        "billing_period": ["Monthly", "annual"],
    }
)


def test_price_book_round_trip(store):
    assert store.get_price_book().empty
    saved = store.save_price_book(validate_price_book(BOOK), ADMIN)
    got = store.get_price_book()
    pd.testing.assert_frame_equal(got, saved)
    assert got.dtypes.astype(str).to_dict() == {
        c: str(pd.Series(dtype=t).dtype) for c, t in PRICE_BOOK_DTYPES.items()
    }
    assert got["license_id"].isna().tolist() == [True, False]  # empty stays empty
    assert got["currency"].tolist() == ["USD", "EUR"] and got["unit_price"].tolist() == [
        21.0,
        684.5,
    ]
    store.save_price_book(validate_price_book(BOOK.iloc[:1]), ADMIN)
    assert len(store.get_price_book()) == 1


def test_a_bad_price_book_changes_nothing(store):
    store.save_price_book(validate_price_book(BOOK), ADMIN)
    bad = BOOK.copy()
    bad.loc[1, "currency"] = "XYZ"
    bad.loc[0, "unit_price"] = -1
    with pytest.raises(PriceBookError) as exc:
        store.save_price_book(validate_price_book(bad), ADMIN)
    assert len(exc.value.problems) == 2
    # The store itself refuses what was not validated, before writing anything.
    for unchecked in (
        bad,
        BOOK.drop(columns=["billing_period"]),
        BOOK.assign(unit_price=float("nan")),
        "x",
    ):
        with pytest.raises(ValueError, match="validate"):
            store.save_price_book(unchecked, ADMIN)
    pd.testing.assert_frame_equal(
        store.get_price_book(), store.save_price_book(validate_price_book(BOOK), ADMIN)
    )
    # the failed saves left no trace, and the same book saved again is no change: one entry
    assert [r for r in store.audit_log()["action"]] == ["price_book"]


def test_fx_rates_round_trip_and_reporting_currency(store):
    rates = store.save_fx_rates(fx({"EUR": 1.08, "gbp": "1.27"}, "USD"), "USD", ADMIN)
    assert rates == {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
    assert store.get_fx_rates() == rates
    with pytest.raises(FxRatesError):
        store.save_fx_rates(fx({"EUR": 0}, "USD"), "USD", ADMIN)
    # The store itself refuses rates that were not validated, before writing anything.
    for unchecked in (
        {"EUR": 0},
        {"gbp": 1.27},
        {"EUR": "1.1"},
        {"USD": 2.0},
        {"EUR": float("inf")},
        [1.0],
    ):
        with pytest.raises(ValueError, match="validate"):
            store.save_fx_rates(unchecked, "USD", ADMIN)
    assert store.get_fx_rates() == rates
    store.save_fx_rates({"USD": 0.93}, "EUR", ADMIN)
    assert store.get_settings()["reporting_currency"] == "EUR"
    assert store.get_fx_rates() == {"EUR": 1.0, "USD": 0.93}


def test_each_exchange_rate_keeps_when_and_by_whom_it_was_saved(store):
    other = Actor("cfo@acme.com", "CFO", "admin")
    store.save_fx_rates({"EUR": 1.08, "GBP": 1.27}, "USD", ADMIN)
    first = store.fx_rates_saved().set_index("currency")
    assert first.loc["EUR", "saved_by"] == "boss@acme.com" and first["saved_at"].notna().all()
    store.save_fx_rates(
        {"EUR": 1.10, "GBP": 1.27}, "USD", other
    )  # the whole table again, GBP unchanged
    second = store.fx_rates_saved().set_index("currency")
    assert (
        second.loc["EUR", "saved_by"] == "cfo@acme.com"
        and second.loc["EUR", "saved_at"] > first.loc["EUR", "saved_at"]
    )
    assert second.loc["GBP", "saved_by"] == "boss@acme.com"
    assert second.loc["GBP", "saved_at"] == first.loc["GBP", "saved_at"]
    store.save_fx_rates(
        {"USD": 0.93, "GBP": 1.17}, "EUR", other
    )  # a new target currency: every rate is new
    third = store.fx_rates_saved().set_index("currency")
    assert (
        set(third["saved_by"]) == {"cfo@acme.com"}
        and str(third["saved_at"].dtype) == "datetime64[us, UTC]"
    )


def test_upgrade_from_version_2_dates_the_rates_from_the_audit_log(store_url):
    old = Store(store_url, upgrade=False)
    assert old.upgrade(target=2) == 2
    assert "saved_at" not in {c["name"] for c in inspect(old.engine).get_columns("fx_rates")}
    with (
        old.engine.begin() as conn
    ):  # as version 2 wrote them: rates, and the save in the audit log
        conn.execute(
            text("INSERT INTO fx_rates (currency, rate) VALUES ('USD', 1.0), ('EUR', 1.08)")
        )
        conn.execute(
            insert(store_table("audit_log")),
            [
                {
                    "at": T0,
                    "actor_email": "old@acme.com",
                    "actor_name": "Old",
                    "actor_role": "admin",
                    "action": "fx_rates",
                    "detail": "{}",
                },
                {
                    "at": T0 + timedelta(days=2),
                    "actor_email": "boss@acme.com",
                    "actor_name": "Boss",
                    "actor_role": "admin",
                    "action": "fx_rates",
                    "detail": "{}",
                },
                {
                    "at": T0 + timedelta(days=3),
                    "actor_email": "x@acme.com",
                    "actor_name": "X",
                    "actor_role": "admin",
                    "action": "settings",
                    "detail": "{}",
                },
            ],
        )
    old.close()
    store = Store(store_url)
    try:
        assert store.schema_version() == LATEST_VERSION
        saved = store.fx_rates_saved().set_index("currency")
        assert saved["rate"].to_dict() == {"EUR": 1.08, "USD": 1.0}
        assert (saved["saved_at"] == T0 + timedelta(days=2)).all() and set(saved["saved_by"]) == {
            "boss@acme.com"
        }
    finally:
        store.close()


def test_upgrade_from_version_2_without_a_saved_rate_leaves_the_date_empty(store_url):
    old = Store(store_url, upgrade=False)
    old.upgrade(target=2)
    with old.engine.begin() as conn:
        conn.execute(text("INSERT INTO fx_rates (currency, rate) VALUES ('EUR', 1.08)"))
    old.close()
    store = Store(store_url)
    try:
        saved = store.fx_rates_saved()
        assert (
            saved["saved_at"].isna().all() and saved["saved_by"].isna().all()
        )  # not known, not "now"
    finally:
        store.close()


def test_settings_defaults_validation_and_metric_options(store):
    assert store.get_settings() == {
        "reporting_currency": "USD",
        "buffer": 0.10,
        "under_used_pct": 70.0,
        "at_capacity_pct": 95.0,
        "vendor_price_period": "monthly",
        "retention_days": 730,
    }
    store.save_settings(
        {"buffer": "0.2", "under_used_pct": 60, "vendor_price_period": "Annual"}, ADMIN
    )
    s = store.get_settings()
    assert (s["buffer"], s["under_used_pct"], s["vendor_price_period"], s["at_capacity_pct"]) == (
        0.2,
        60.0,
        "annual",
        95.0,
    )
    for bad, needle in [
        ({"buffer": -0.1}, "buffer"),
        ({"under_used_pct": 101}, "under_used_pct"),
        ({"at_capacity_pct": True}, "at_capacity_pct"),
        ({"colour": "red"}, "not a setting"),
        ({"retention_days": 1.5}, "retention_days"),
        ({"reporting_currency": "XXX"}, "ISO 4217"),
        ({"under_used_pct": 96}, "must not be above"),
        ({"buffer": float("nan")}, "buffer"),
    ]:
        with pytest.raises(SettingsError, match=needle):
            store.save_settings(bad, ADMIN)
    # All or nothing: a bad key next to a good one saves neither.
    with pytest.raises(SettingsError):
        store.save_settings({"buffer": 0.5, "colour": "red"}, ADMIN)
    assert store.get_settings() == s
    store.save_fx_rates({"EUR": 1.1}, "USD", ADMIN)
    with pytest.raises(SettingsError, match="save_fx_rates"):
        store.save_settings({"reporting_currency": "EUR"}, ADMIN)  # the stored rates are to USD
    opts = metric_options(store)
    assert opts == MetricOptions(
        reporting_currency="USD",
        fx_rates={"EUR": 1.1},
        buffer=0.2,
        under_used_pct=60.0,
        at_capacity_pct=95.0,
        vendor_price_period="annual",
    )


def test_viewers_cannot_change_anything(store):
    store.save_price_book(validate_price_book(BOOK), ADMIN)
    before = (store.get_price_book(), store.get_fx_rates(), store.get_settings())
    for actor in (VIEWER, None, {"role": "admin"}, "admin"):
        with pytest.raises(PermissionError):
            store.save_price_book(validate_price_book(BOOK.iloc[:1]), actor)
        with pytest.raises(PermissionError):
            store.save_fx_rates({"EUR": 2.0}, "USD", actor)
        with pytest.raises(PermissionError):
            store.save_settings({"buffer": 0.5}, actor)
    pd.testing.assert_frame_equal(store.get_price_book(), before[0])
    assert (store.get_fx_rates(), store.get_settings()) == before[1:]
    store.save_settings({"buffer": 0.5}, OPEN_ACTOR)  # open mode (no sign-in configured) may edit
    log = store.audit_log()
    assert log["action"].tolist() == ["settings", "price_book"]
    assert (
        log["actor_role"].tolist() == ["open", "admin"]
        and log["actor_email"].tolist()[1] == "boss@acme.com"
    )
    assert '"to": 0.5' in log["detail"].iloc[0]


# ---------------------------------------------------------------- snapshots


def test_snapshot_round_trip_keeps_na_and_dtypes(store):
    spec = seats(5)
    spec["acc-c"] = (
        "docusign",
        "ok",
        [
            lic("c1", "eSignature", None, 25, None, unit_amount=40.0, currency="EUR"),
            lic("c2", "Odd", -3, 10, True),
        ],
    )  # a negative count: a problem
    result = make_result(spec)
    licenses = result.licenses.copy()
    licenses.loc[licenses["license_id"] == "a1", "license_name"] = (
        'Quote " comma, newline\nand 100% ünïcode'
    )
    licenses.loc[licenses["license_id"] == "a2", "status"] = ""  # empty text is not NA
    result.licenses = licenses
    assert len(result.problems) == 1
    sid = store.write_snapshot(result, KEY)
    latest = store.latest(KEY, now=T0 + timedelta(hours=1))
    assert (
        latest.snapshot_id == sid
        and latest.taken_at == T0
        and latest.exit_code == 0
        and not latest.is_empty
    )
    pd.testing.assert_frame_equal(latest.licenses, result.licenses)
    pd.testing.assert_frame_equal(latest.problems, result.problems)
    pd.testing.assert_frame_equal(latest.accounts[list(ACCOUNT_COLUMNS)], result.accounts)
    assert latest.licenses.dtypes.astype(str).to_dict() == {
        c: str(pd.Series(dtype=t).dtype) for c, t in LICENSE_COLUMNS.items()
    }
    row = latest.licenses.set_index("license_id")
    assert pd.isna(row.loc["a2", "assigned_seats"]) and pd.isna(row.loc["a2", "utilization_pct"])
    assert pd.isna(row.loc["c1", "is_paid"]) and row.loc["c1", "vendor_unit_amount"] == 40.0
    assert pd.isna(row.loc["a1", "vendor_unit_amount"]) and pd.isna(row.loc["a1", "product"])
    assert row.loc["a2", "status"] == "" and pd.isna(row.loc["a1", "status"])
    assert not latest.accounts["stale"].any() and latest.accounts["data_as_of"].eq(T0).all()


def test_empty_store_and_empty_environment(store):
    latest = store.latest(KEY)
    assert (
        latest.is_empty
        and latest.licenses.empty
        and latest.accounts.empty
        and latest.taken_at is None
    )
    assert list(latest.licenses.columns) == list(LICENSE_COLUMNS)
    assert list(latest.problems.columns) == list(PROBLEM_COLUMNS)
    store.write_snapshot(make_result({}), KEY)  # an environment without accounts
    latest = store.latest(KEY)
    assert not latest.is_empty and latest.licenses.empty and latest.exit_code == 1
    assert store.history(KEY).empty


def test_a_failed_account_keeps_its_last_good_rows_marked_stale(store):
    store.write_snapshot(make_result(seats(5, 7), T0), KEY)
    t1 = T0 + timedelta(hours=6)
    store.write_snapshot(make_result(failed_b(9), t1), KEY, taken_at=t1)
    now = t1 + timedelta(minutes=30)
    latest = store.latest(KEY, now=now)
    # A was fetched anew; B failed and still shows its rows from T0.
    assert rows_of(latest, "acc-a")["assigned_seats"].tolist()[0] == 9
    b_rows = rows_of(latest, "acc-b")
    assert b_rows["license_id"].tolist() == ["b1"] and b_rows["assigned_seats"].tolist() == [7]
    assert b_rows["fetched_at"].tolist() == [pd.Timestamp(T0)]
    b, a = account(latest, "acc-b"), account(latest, "acc-a")
    assert b["outcome"] == "failed" and b["message"].startswith("failed at") and bool(b["stale"])
    assert b["data_as_of"] == pd.Timestamp(T0)
    assert b["stale_for"] == now - T0 == timedelta(hours=6, minutes=30)
    assert not bool(a["stale"]) and pd.isna(a["stale_for"]) and a["data_as_of"] == pd.Timestamp(t1)
    assert list(latest.stale_accounts["account_id"]) == ["acc-b"]
    assert latest.exit_code == 2
    # Another failure, of another kind, still changes nothing of B's rows.
    t2 = t1 + timedelta(hours=6)
    store.write_snapshot(make_result(failed_b(9, "needs_reauth"), t2), KEY, taken_at=t2)
    latest = store.latest(KEY, now=t2)
    assert rows_of(latest, "acc-b")["assigned_seats"].tolist() == [7]
    assert (
        account(latest, "acc-b")["outcome"] == "needs_reauth"
        and account(latest, "acc-b")["stale_for"] == t2 - T0
    )
    # Back to ok: fresh rows, not stale.
    t3 = t2 + timedelta(hours=6)
    store.write_snapshot(make_result(seats(9, 8), t3), KEY, taken_at=t3)
    latest = store.latest(KEY, now=t3)
    assert (
        rows_of(latest, "acc-b")["assigned_seats"].tolist() == [8]
        and not latest.accounts["stale"].any()
    )


def test_an_account_that_never_succeeded_has_no_rows_and_is_not_stale(store):
    store.write_snapshot(make_result(failed_b(5)), KEY)
    latest = store.latest(KEY)
    b = account(latest, "acc-b")
    assert rows_of(latest, "acc-b").empty and not bool(b["stale"]) and pd.isna(b["data_as_of"])


def test_snapshots_are_per_config_key_and_accounts_follow_the_latest_run(store):
    store.write_snapshot(make_result(seats(5)), "key-1")
    store.write_snapshot(make_result({"acc-z": ("zoom", "ok", [lic("z1", "Zoom", 1, 2)])}), "key-2")
    assert set(store.latest("key-1").licenses["account_id"]) == {"acc-a", "acc-b"}
    assert store.latest("key-2").licenses["account_id"].tolist() == ["acc-z"]
    # acc-b left the environment: it is no longer shown.
    only_a = {"acc-a": seats(6)["acc-a"]}
    store.write_snapshot(make_result(only_a, T0 + timedelta(hours=1)), "key-1")
    assert set(store.latest("key-1").accounts["account_id"]) == {"acc-a"}


def test_write_is_all_or_nothing(store):
    result = make_result(seats(5))
    bad = result.licenses.copy()
    bad.loc[0, "account_id"] = "acc-unknown"
    result.licenses = bad
    with pytest.raises(ValueError, match="acc-unknown"):
        store.write_snapshot(result, KEY)
    assert store.latest(KEY).is_empty and count(store, "account_snapshots") == 0


def test_history_one_set_per_account_per_day_with_failures_carried(store):
    days = [T0 + timedelta(days=d) for d in range(4)]
    store.write_snapshot(make_result(seats(5, 7), days[0]), KEY)
    store.write_snapshot(make_result(seats(6, 8), days[1]), KEY)
    store.write_snapshot(
        make_result(seats(7, 9), days[1] + timedelta(hours=2)), KEY
    )  # later that day
    store.write_snapshot(make_result(failed_b(8), days[2]), KEY)
    store.write_snapshot(make_result(seats(9, 11), days[3]), KEY)
    h = store.history(KEY)
    assert list(h.columns[:4]) == ["day", "taken_at", "data_as_of", "stale"]
    assert list(h.columns[4:]) == list(LICENSE_COLUMNS)
    a1 = h[h["license_id"] == "a1"].set_index("day")["assigned_seats"]
    b1 = h[h["license_id"] == "b1"]
    assert a1.tolist() == [5, 7, 8, 9]  # the last of day 1
    assert b1["assigned_seats"].tolist() == [7, 9, 9, 11]  # day 2 failed: day 1's rows, carried
    assert b1["stale"].tolist() == [False, False, True, False]
    assert b1["data_as_of"].iloc[2] == pd.Timestamp(
        days[1] + timedelta(hours=2)
    )  # when the carried rows were fetched
    assert b1["taken_at"].tolist() == [
        pd.Timestamp(days[0]),
        pd.Timestamp(days[1] + timedelta(hours=2)),
        pd.Timestamp(days[2]),
        pd.Timestamp(days[3]),
    ]  # the day's last sync
    assert h.groupby("taken_at").ngroups == h.groupby("day").ngroups == 4
    assert h["day"].dt.hour.eq(0).all() and len(h) == 4 * 3
    recent = store.history(KEY, since=days[2], columns=["license_id", "assigned_seats"])
    assert list(recent.columns) == [
        "day",
        "taken_at",
        "data_as_of",
        "stale",
        "account_id",
        "license_id",
        "assigned_seats",
    ]
    assert sorted(recent["day"].unique()) == [
        pd.Timestamp(days[2].date(), tz="UTC"),
        pd.Timestamp(days[3].date(), tz="UTC"),
    ]


# ---------------------------------------------------------------- retention


def test_retention_keeps_one_per_day_and_never_the_latest(store):
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    old = now - timedelta(days=800)
    d10 = now - timedelta(days=10)

    def spec(assigned: int, b: str = "ok", c: str = "ok") -> dict:
        out = seats(assigned)
        if b != "ok":
            out["acc-b"] = ("salesforce", b, [])
        out["acc-c"] = (
            ("zoom", "ok", [lic("c1", "Zoom", assigned, 50)]) if c == "ok" else ("zoom", c, [])
        )
        return out

    store.write_snapshot(make_result(spec(1), old), KEY)  # too old
    store.write_snapshot(make_result(spec(2, c="failed"), d10), KEY)  # same day x3
    store.write_snapshot(make_result(spec(3, c="failed"), d10 + timedelta(hours=1)), KEY)
    store.write_snapshot(
        make_result(spec(4, b="failed", c="failed"), d10 + timedelta(hours=2)), KEY
    )
    store.write_snapshot(make_result(spec(5, c="failed"), now - timedelta(days=1)), KEY)
    store.write_snapshot(make_result(spec(6, b="failed", c="failed"), now), KEY)
    before = store.latest(KEY, now=now)
    rows_before = count(store, "license_rows")

    report = store.prune(keep_days=730, now=now)

    with store.engine.connect() as conn:
        a = store_table("account_snapshots")
        kept = conn.execute(
            select(a.c.account_id, a.c.taken_at, a.c.outcome).order_by(a.c.account_id, a.c.taken_at)
        ).all()
    by_account: dict = {}
    for acc, taken, outcome in kept:
        by_account.setdefault(acc, []).append((taken, outcome))
    # A: the last of day -10, day -1, today; the 800-day-old one is gone.
    assert [t for t, _ in by_account["acc-a"]] == [
        d10 + timedelta(hours=2),
        now - timedelta(days=1),
        now,
    ]
    # B: on day -10 the last *good* one (its last attempt that day failed), day -1 (latest good), today (failed).
    assert by_account["acc-b"] == [
        (d10 + timedelta(hours=1), "ok"),
        (now - timedelta(days=1), "ok"),
        (now, "failed"),
    ]
    # C: its only good snapshot is 800 days old but is its latest good: kept, and still shown.
    assert by_account["acc-c"][0] == (old, "ok") and by_account["acc-c"][-1] == (now, "failed")
    assert [t for t, _ in by_account["acc-c"]] == [
        old,
        d10 + timedelta(hours=2),
        now - timedelta(days=1),
        now,
    ]
    assert report["account_snapshots"] == 18 - 10 and report["license_rows"] == rows_before - count(
        store, "license_rows"
    )
    assert report["snapshots"] == 1  # the run of day -10, hour 0 has nothing left
    assert len(store.snapshots(KEY)) == 5
    after = store.latest(KEY, now=now)
    pd.testing.assert_frame_equal(after.licenses, before.licenses)
    assert account(after, "acc-c")["data_as_of"] == pd.Timestamp(old) and bool(
        account(after, "acc-c")["stale"]
    )
    assert store.prune(keep_days=730, now=now)["account_snapshots"] == 0  # idempotent


def test_retention_days_setting_is_the_default(store):
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for days_back in (9, 3, 0):
        store.write_snapshot(make_result(seats(days_back), now - timedelta(days=days_back)), KEY)
    assert store.prune(now=now)["account_snapshots"] == 0  # 730 days by default
    store.save_settings({"retention_days": 5}, ADMIN)
    assert store.prune(now=now)["account_snapshots"] == 2  # day -9 of both accounts
    assert len(store.snapshots(KEY)) == 2
    with pytest.raises(ValueError):
        store.prune(keep_days=0)
