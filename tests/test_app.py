"""Every page under streamlit.testing.v1.AppTest, on the demo data, with its own database."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lib.analytics import views as D
from lib.analytics.metrics import add_metrics
from lib.analytics.totals import summarize
from lib.auth import Actor
from lib.jobs.refresh import metric_options
from lib.store import Store
from lib.ui import plot

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "pages/overview.py",
    "pages/utilization.py",
    "pages/spend.py",
    "pages/reclaim.py",
    "pages/trends.py",
    "pages/accounts.py",
    "pages/price-book.py",
]
ADMIN = Actor("ana@acme.com", "Ana", "admin")


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'dashboard.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def charts_drawn(at: AppTest) -> list[dict]:
    """The figures the run drew (lib/ui/plot.py's component), as Plotly JSON."""
    return [
        plot.figure_of(e.proto.json)
        for e in at.get("bidi_component")
        if e.proto.component_name == plot.COMPONENT_NAME
    ]


def app(page: str | None = None, query: dict | None = None, **secrets) -> AppTest:
    """A first run of the app (sidebar filters set through the URL, as a copied link would)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for k, v in secrets.items():
        at.secrets[k] = v
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metric_values(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def expected_rows(db_url: str, **filters):
    """The rows lib computes for the data the app shows (its stored snapshot, price book and options)."""
    from lib.config import load_settings
    from lib.jobs.sync import config_key

    store = Store(db_url)
    latest = store.latest(config_key(load_settings(env={}, secrets={})))
    options = metric_options(store)
    df = add_metrics(latest.licenses, store.get_price_book(), options)
    return D.apply_filters(df, D.Filters(**filters)), options


def expected_summary(db_url: str, paid_only: bool = False, **filters):
    return summarize(expected_rows(db_url, **filters)[0], paid_only=paid_only)


def expected_tiles(db_url: str, paid_only: bool = True, **filters):
    rows, options = expected_rows(db_url, **filters)
    return D.kpi_tiles(summarize(rows, paid_only=paid_only), D.spend_gaps(rows, options))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs_without_exception(db, page):
    at = app(page)
    no_exception(at)
    assert at.title and at.title[0].value


def test_overview_kpis_equal_what_lib_computes(db):
    at = app()
    no_exception(at)
    tiles = {t.label: t.value for t in expected_tiles(db)}  # paid licenses by default
    shown = metric_values(at)
    for label, value in tiles.items():
        assert shown[label] == value, label
    assert shown["Seats bought"] != "not reported"
    # The demo: paid utilization 1,201 / 1,495; spend at least (Zoom counted at seats assigned).
    assert shown["Seat utilization"] == "80.3%" and shown["Seats bought"] == "1,495"
    assert shown["Annual spend (USD)"] == "≥ USD 847,818"
    at.toggle(key="with_free").set_value(True).run()
    shown = metric_values(at)
    assert shown["Seat utilization"] == "19.7%" and shown["Seats bought"] == "7,510"
    reclaim_tile = "Reclaimable annual cost (USD)"  # its own test: tests/test_app_reclaim.py
    assert {k: v for k, v in shown.items() if k != reclaim_tile} == {
        t.label: t.value for t in expected_tiles(db, paid_only=False)
    }


def test_demo_notice_shows_on_demo_data(db):
    at = app()
    notices = [i.value for i in at.sidebar.info]
    assert any("Demo data" in n for n in notices)


def test_a_filter_changes_the_figures_and_the_table(db):
    # AppTest drops the entry script's sidebar on reruns when pages are files, so each view is a first run
    # with its filters in the URL; clicking the sidebar widgets is covered by the browser test.
    before = app("pages/utilization.py")
    after = app("pages/utilization.py", query={"integration": ["GitHub"]})
    no_exception(after)
    assert metric_values(before)["Seats bought"] != metric_values(after)["Seats bought"]
    want = expected_summary(db, paid_only=True, integrations=("GitHub",))
    assert metric_values(after)["Seats bought"] == D.fmt_seats(want.utilization_total_seats)
    assert (
        metric_values(after)["Seats bought"] == "340"
    )  # paid by default: 200 + 100 + 40, not GitHub Free's 9
    assert set(after.dataframe[0].value["integration_label"]) == {"GitHub"}
    assert len(before.dataframe[0].value) > len(after.dataframe[0].value)


def test_filter_from_the_url(db):
    at = app(query={"tenant": "acme-europe", "paid": "true"})
    no_exception(at)
    want = expected_summary(db, tenants=("acme-europe",), paid_only=True)
    assert metric_values(at)["Seats bought"] == D.fmt_seats(want.utilization_total_seats)
    assert at.toggle(key="paid").value is True


def test_filter_that_matches_nothing_says_what_to_do(db):
    at = app(query={"q": "no license is called this"})
    no_exception(at)
    assert any("No licenses match the filters" in i.value for i in at.info)


def test_price_book_rejects_a_bad_file_and_accepts_a_good_one(db):
    at = app("pages/price-book.py")
    seeded = Store(db).get_price_book()
    assert len(seeded) > 0  # the demo starts with list prices
    bad = (
        b"integration,license_id,license_name,unit_price,currency,billing_period\n"
        b"GitHub,,GitHub Enterprise,-5,USD,monthly\nAdobe,,Acrobat Pro,20,EURO,weekly\n"
    )
    at.file_uploader(key="price-upload").set_value(("bad.csv", bad, "text/csv")).run()
    no_exception(at)
    shown = " ".join(m.value for m in at.markdown)
    for words in ("row 2", "unit\\_price", "row 3", "currency", "billing\\_period"):
        assert words in shown, words
    pd.testing.assert_frame_equal(Store(db).get_price_book(), seeded)  # nothing half applied

    good = (
        b"integration,license_id,license_name,unit_price,currency,billing_period\n"
        b"GitHub,,GitHub Enterprise,21,USD,monthly\n"
    )
    at.file_uploader(key="price-upload").set_value(("good.csv", good, "text/csv")).run()
    no_exception(at)
    at.button(key="apply-upload").click().run()
    no_exception(at)
    book = Store(db).get_price_book()
    assert (
        list(book["license_name"]) == ["GitHub Enterprise"]
        and float(book["unit_price"].iloc[0]) == 21.0
    )
    at.switch_page("pages/overview.py").run()
    # Priced now: GitHub Enterprise from the book, 21 x 12 x (200 + 40 seats) = 60,480 USD, and DocuSign's own
    # vendor price, 40 EUR x 12 x 25 seats x 1.08 = 12,960 USD (its 25 GBP licence has no rate: left out).
    assert expected_summary(db).annual_spend == 73_440.0
    # At least: the rest of the paid licenses have no price now.
    assert metric_values(at)["Annual spend (USD)"] == "≥ USD 73,440"


def _frame_with(at: AppTest, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, column
    return found[0]


def test_price_book_shows_license_ids_who_changed_what_and_when_each_rate_was_saved(db):
    at = app("pages/price-book.py")
    no_exception(at)
    book = _frame_with(at, "unit_price")
    rows = book.set_index("license_name")
    # the demo price book names licenses only; the IDs come from the licenses the dashboard knows
    assert Store(db).get_price_book()["license_id"].isna().all()
    assert rows.loc["Microsoft 365 E3", "license_id"] == "lic-01-000"
    assert book["license_id"].notna().sum() >= len(book) - 2
    saved = book.iloc[: len(Store(db).get_price_book())]  # then the paid licenses without a price
    assert set(saved["changed_by"]) == {"demo data"} and saved["changed_at"].notna().all()
    rates = _frame_with(at, "saved_at")
    assert rates["currency"].tolist() == ["EUR"] and rates["saved_by"].tolist() == ["demo data"]
    assert "Change history" in [h.value for h in at.subheader]
    history = _frame_with(at, "what")
    # The demo's first fetch prefilled contracts from the billing of its Zoom, DocuSign and ClickUp.
    assert history["what"].iloc[0].startswith("Contracts prefilled from billing: 0 → 3 rows")
    assert history["who"].iloc[0] == "Truto sync (billing)"
    assert history["what"].iloc[1] == "Exchange rates to USD: EUR 1.08 (new)"
    assert (
        history["what"]
        .iloc[2]
        .startswith("Prices (0 → 18 rows): Adobe · Acrobat Pro added at 239.88 EUR per year; ")
    )

    Store(db).save_fx_rates({"EUR": 1.1}, "USD", ADMIN)
    at.run()
    no_exception(at)
    assert _frame_with(at, "saved_at")["saved_by"].tolist() == ["ana@acme.com"]
    assert _frame_with(at, "what")["what"].iloc[0] == "Exchange rates to USD: EUR 1.08 → 1.1"


def test_trends_name_the_currency_and_show_percentages_with_one_decimal(db):
    import json

    at = app("pages/trends.py")
    no_exception(at)
    options = at.selectbox(key="trend-measure").options
    assert "Annual spend (USD, at today's prices)" in options
    assert not any("reporting currency" in o for o in options)
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["utilization_pct"]["type_config"]["format"] == "%.1f%%"
    assert columns["annual_cost_reporting"]["label"] == "Annual cost of seats bought (USD)"
    at.selectbox(key="trend-measure").set_value("annual_cost_reporting").run()
    no_exception(at)
    fig = charts_drawn(at)[0]
    assert fig["layout"]["yaxis"]["title"]["text"] == "Annual spend (USD, at today's prices)"


def test_accounts_page_explains_failures_and_unreported_fields(db):
    at = app("pages/accounts.py")
    no_exception(at)
    errors = " ".join(e.value for e in at.error)
    assert "Needs reauthorisation" in errors and "Reconnect this account in Truto" in errors
    table = at.dataframe[0].value
    atlassian = table[table["integration_label"] == "Atlassian"].iloc[0]
    assert (
        "assigned seats" in atlassian["fields_not_reported"]
        and "total seats" in atlassian["fields_not_reported"]
    )


def test_spend_page_lists_unpriced_and_unconverted(db):
    at = app("pages/spend.py")
    no_exception(at)
    subheaders = [s.value for s in at.subheader]
    assert "Paid licenses without a price" in subheaders and "Not converted" in subheaders
    # DocuSign's vendor prices are in EUR and GBP, with no exchange rate configured yet
    assert any("no exchange rate" in w.value for w in at.warning)


# -- sign-in and roles -------------------------------------------------------------------

AUTH = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "id",
        "client_secret": "secret",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
    },
    "access": {"allowed_domains": ["acme.com"], "admins": ["ana@acme.com"]},
}


def signed_in(page: str | None, user: dict | None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for k, v in AUTH.items():
        at.secrets[k] = v
    if user is not None:
        at.user = user
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def test_signed_out_sees_only_a_sign_in_button(db):
    at = signed_in(None, {"is_logged_in": False})
    no_exception(at)
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe


def test_not_allowed_sees_who_they_are_and_nothing_more(db):
    at = signed_in(
        None,
        {"is_logged_in": True, "email": "eve@evilacme.com", "name": "Eve", "email_verified": True},
    )
    no_exception(at)
    assert any("eve@evilacme.com" in w.value.replace("\\", "") for w in at.warning)
    assert not at.metric and not at.dataframe


def test_viewer_sees_everything_but_cannot_edit(db):
    at = signed_in(
        "pages/price-book.py",
        {"is_logged_in": True, "email": "vic@acme.com", "name": "Vic", "email_verified": True},
    )
    no_exception(at)
    assert any("only admins can change them" in i.value for i in at.info)
    assert not [b for b in at.button if b.key in ("save-prices", "save-fx")]
    assert all(f.key not in ("price-upload", "fx-upload") for f in at.get("file_uploader"))
    caption = " ".join(c.value for c in at.sidebar.caption).replace("\\", "")
    assert "vic@acme.com" in caption and "viewer" in caption


def test_viewer_cannot_change_settings_by_crafting_a_widget_value(db):
    """The controls are disabled for a viewer; a crafted message could still send values and a submit."""
    at = signed_in(
        "pages/price-book.py",
        {"is_logged_in": True, "email": "vic@acme.com", "name": "Vic", "email_verified": True},
    )
    before = Store(db).get_settings()
    buffer = at.number_input(key="set-buffer")
    assert buffer.disabled
    buffer._value = 55.0  # what a crafted widget value does: bypass the disabled control
    submit = [b for b in at.button if b.label == "Save settings"][0]
    submit._value = True
    at.run()
    no_exception(at)
    assert Store(db).get_settings() == before
    assert at.number_input(key="set-buffer").value == before["buffer"] * 100
    # and below the UI, the store itself refuses a viewer (the guard a crafted message would meet)
    viewer = Actor("vic@acme.com", "Vic", "viewer")
    with pytest.raises(PermissionError):
        Store(db).save_settings({**before, "buffer": 0.55}, viewer)


def test_admin_can_edit(db):
    at = signed_in(
        "pages/price-book.py",
        {"is_logged_in": True, "email": "ana@acme.com", "name": "Ana", "email_verified": True},
    )
    no_exception(at)
    at.number_input(key="set-buffer").set_value(25.0)
    [b for b in at.button if b.label == "Save settings"][0].click().run()
    no_exception(at)
    assert Store(db).get_settings()["buffer"] == pytest.approx(0.25)


@pytest.mark.parametrize("key", ["cookie_secret", "client_secret", "server_metadata_url"])
def test_sign_in_settings_lacking_a_key_keep_the_app_closed(db, key):
    """Streamlit would raise only when Sign in is pressed; the gate says which key is missing, and stops."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.secrets["auth"] = {k: v for k, v in AUTH["auth"].items() if k != key}
    at.secrets["access"] = AUTH["access"]
    at.user = {"is_logged_in": True, "email": "ana@acme.com", "name": "Ana", "email_verified": True}
    at.run()
    no_exception(at)
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "stays closed" in errors and f"{key} is missing" in errors
    assert not at.button and not at.metric and not at.dataframe


def test_open_mode_says_so(db):
    at = app()
    assert any("Open access" in c.value for c in at.sidebar.caption)


def test_admin_changes_the_reporting_currency_with_its_rates(db):
    at = app("pages/price-book.py")
    at.file_uploader(key="fx-upload").set_value(
        ("eur.csv", b"currency,rate\nUSD,0.9\nGBP,1.15\n", "text/csv")
    )
    at.selectbox(key="fx-currency").set_value("EUR").run()
    no_exception(at)
    at.button(key="apply-fx").click().run()
    no_exception(at)
    store = Store(db)
    assert store.get_settings()["reporting_currency"] == "EUR"
    assert store.get_fx_rates() == {"EUR": 1.0, "USD": 0.9, "GBP": 1.15}
    assert metric_options(store).reporting_currency == "EUR"


def _edit(at: AppTest, key: str, edited_rows: dict) -> None:
    """A cell edit in a keyed data editor, as the browser sends it (AppTest seeds the edit state)."""
    at.session_state[key] = {"edited_rows": edited_rows, "added_rows": [], "deleted_rows": []}
    at.run()
    no_exception(at)


def test_price_editor_refuses_a_bad_price_and_saves_a_good_one(db):
    at = app("pages/price-book.py")
    seeded = Store(db).get_price_book()
    first = seeded["license_name"].iloc[0]
    _edit(at, "price-editor", {0: {"unit_price": -3}})
    at.button(key="save-prices").click().run()
    no_exception(at)
    assert any("The prices have problems. Nothing was saved" in e.value for e in at.error)
    assert any("Row 1 of the table, column “Price per seat”" in m.value for m in at.markdown)
    pd.testing.assert_frame_equal(Store(db).get_price_book(), seeded)

    _edit(at, "price-editor", {0: {"unit_price": 99.5}})
    at.button(key="save-prices").click().run()
    no_exception(at)
    # Only the one price changed, old -> new (the license IDs the page fills in are no price change).
    assert [s.value for s in at.success] == [
        f"Saved. Prices: GitHub · {first}: price 21 → 99.5; license ID filled in from Truto for "
        f"{len(seeded) - 1} rows. 2 licenses left without a price, so their spend stays unknown: Adobe · Adobe Express "
        "(lic-08-002), PagerDuty · PagerDuty Stakeholder (lic-09-001)."
    ]
    book = Store(db).get_price_book().set_index("license_name")
    assert float(book.loc[first, "unit_price"]) == 99.5
    audit = Store(db).audit_log(limit=1)
    assert audit["action"].iloc[0] == "price_book" and first in audit["detail"].iloc[0]
    # the metrics were recomputed with the new price: the page's table shows it
    assert (
        float(_frame_with(at, "unit_price").set_index("license_name").loc[first, "unit_price"])
        == 99.5
    )


def test_rate_editor_refuses_a_bad_rate_and_saves_a_good_one(db):
    at = app("pages/price-book.py")
    before = Store(db).get_fx_rates()
    _edit(at, "fx-editor", {0: {"rate": -1.0}})
    at.button(key="save-fx").click().run()
    no_exception(at)
    assert any("The exchange rates have problems. Nothing was saved" in e.value for e in at.error)
    assert Store(db).get_fx_rates() == before

    _edit(at, "fx-editor", {0: {"rate": 1.25}})
    at.button(key="save-fx").click().run()
    no_exception(at)
    assert [s.value for s in at.success] == ["Saved. Exchange rates to USD: EUR 1.08 → 1.25."]
    assert Store(db).get_fx_rates() == {"EUR": 1.25, "USD": 1.0}


def test_settings_that_contradict_each_other_are_not_saved(db):
    at = app("pages/price-book.py")
    before = Store(db).get_settings()
    at.number_input(key="set-under").set_value(90.0)
    at.number_input(key="set-capacity").set_value(50.0)
    [b for b in at.button if b.label == "Save settings"][0].click().run()
    no_exception(at)
    errors = [e.value.replace("\\", "") for e in at.error]
    assert errors == [
        "The settings were not saved: “Under-used below” (90) must not be above “At capacity from” (50)"
    ]
    assert Store(db).get_settings() == before


# -- empty states against a real (emulated) Truto --------------------------------------------


def _against(emulator_fixture, monkeypatch, data, faults=None):
    from tests.factories import TOKEN

    emu = emulator_fixture(data, faults=faults or {})
    monkeypatch.setenv("TRUTO_API_TOKEN", TOKEN)
    monkeypatch.setenv("TRUTO_BASE_URL", emu.base_url)
    return emu


def test_no_accounts_says_what_to_do(db, emulator, monkeypatch):
    from tests.factories import dataset

    _against(emulator, monkeypatch, dataset([]))
    at = app()
    no_exception(at)
    assert any("No integrated accounts found" in i.value for i in at.info)
    assert not any("Demo data" in i.value for i in at.sidebar.info)


def test_every_account_failed_says_so_and_points_to_accounts(db, emulator, monkeypatch):
    from tests.factories import account, dataset, lic

    _against(
        emulator,
        monkeypatch,
        dataset(
            [account("a", "adobe"), account("b", "zoom")],
            {"a": [lic("x", "X", 1, 2)], "b": [lic("y", "Y", 1)]},
        ),
        faults={"a": {"needs_reauth": True}, "b": {"blocked_503": True}},
    )
    at = app()
    no_exception(at)
    assert any("Every account failed to fetch" in e.value for e in at.error)
    at = app("pages/accounts.py")
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "Reconnect this account in Truto" in errors and "blocked" in errors


def test_overview_filtered_to_atlassian_says_its_licenses_report_no_seat_counts(db):
    at = app(query={"integration": ["Atlassian"]})
    no_exception(at)
    assert not at.success, [s.value for s in at.success]  # not "Nothing needs attention"
    text = " ".join(m.value for m in at.markdown)
    assert "report no seat counts through Truto" in text and "Jira Software Cloud Standard" in text
    assert metric_values(at)["Annual spend (USD)"] == "not known"


def test_spend_filtered_to_zoom_says_only_true_things(db):
    at = app("pages/spend.py", query={"integration": ["Zoom"]})
    no_exception(at)
    shown = metric_values(at)
    assert shown["Annual spend (USD)"] == "≥ USD 30,786"  # 140 assigned x 219.90
    infos = " ".join(i.value for i in at.info)
    assert "No priced paid licenses" not in infos and "within its buffer" not in infos
    assert "No savings can be computed" in infos
    assert len(charts_drawn(at)) >= 1  # the lower bound is drawn
    left_out = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert list(left_out["license_name"]) == ["Zoom Workplace Business"]
    priced = next(
        d.value
        for d in at.dataframe
        if "price_source_label" in d.value.columns and "unit_price" in d.value.columns
    )
    assert set(priced["price_source_label"]) == {"Price book"} and "Zoom Basic" not in set(
        priced["license_name"]
    )


def test_user_ids_in_the_malformed_records_are_a_reference_for_viewers_in_full_for_admins(
    db, emulator, monkeypatch
):
    """Issue 23, row 11: a user id that is an email was shown to viewers in the Accounts page's
    malformed-records table ("user dave@acme.com holds license …") and its CSV."""
    from lib.truto.users import user_reference
    from tests.factories import account, dataset, lic, user

    _against(
        emulator,
        monkeypatch,
        dataset(
            [account("a1", "adobe")],
            {"a1": [lic("L1", "CC", 2, 5, True)]},
            users={"a1": [user("dave@acme.com", "L1", "NOPE", last_login_at="yesterday")]},
        ),
    )
    ref = user_reference("a1", "dave@acme.com")

    def problems_table(email: str) -> pd.DataFrame:
        at = signed_in(
            "pages/accounts.py",
            {"is_logged_in": True, "email": email, "name": "X", "email_verified": True},
        )
        no_exception(at)
        return next(d.value for d in at.dataframe if "detail" in d.value.columns)

    viewer = problems_table("vic@acme.com")
    cells = viewer.astype(str).to_numpy().ravel().tolist()
    assert not any("dave" in c for c in cells), viewer
    assert set(viewer["record_id"]) == {ref}
    assert any(f"user {ref} holds license NOPE" in d for d in viewer["detail"])
    admin = problems_table("ana@acme.com")
    assert set(admin["record_id"]) == {"dave@acme.com"}
    assert any("user dave@acme.com holds license NOPE" in d for d in admin["detail"])


# -- the Price book on the first day against a real (emulated) Truto ---------------------------

_NO_VALUE = re.compile(r"\b(None|nan|NaN|NaT)\b|<NA>")


def page_words(at: AppTest) -> list[str]:
    """Every text the run drew (titles, notes, messages, labels), and every text cell of its tables."""
    words = []
    for kind in (
        "title",
        "subheader",
        "caption",
        "markdown",
        "info",
        "warning",
        "error",
        "success",
    ):
        words += [str(e.value) for e in getattr(at, kind)]
    words += [str(b.label) for b in at.button] + [str(t.label) for t in at.tabs]
    for frame in at.dataframe:
        cells = frame.value.astype(object).to_numpy().ravel().tolist()
        words += [c for c in cells if isinstance(c, str)] + [str(c) for c in frame.value.columns]
    return words


def no_missing_value_text(at: AppTest) -> None:
    bad = [w for w in page_words(at) if _NO_VALUE.search(w)]
    assert not bad, bad


_JARGON = re.compile(r"\b[a-z]+_[a-z_]+\b|paid unpriced|unpriced paid", re.IGNORECASE)


def no_jargon(at: AppTest) -> None:
    """The words a finance reader sees: no snake_case names, no "paid unpriced" (the tables' own column
    names are not shown: their headers are)."""
    shown = page_words(at)
    columns = {str(c) for frame in at.dataframe for c in frame.value.columns}
    icons = re.compile(r":material/[a-z_]+:")  # an icon's name is not shown
    bad = [
        w
        for w in shown
        if w not in columns and _JARGON.search(icons.sub("", w.replace("\\_", "_")))
    ]
    assert not bad, bad


def _first_day(emulator, monkeypatch):
    """An empty database, nothing saved, no demo: Truto reports a DocuSign license priced in EUR (no rate
    to USD), a paid Adobe license and a Salesforce license that does not say whether it is paid (both
    unpriced), and a free Adobe license."""
    from tests.factories import account, dataset, lic

    return _against(
        emulator,
        monkeypatch,
        dataset(
            [account("a", "docusign"), account("b", "adobe"), account("c", "salesforce")],
            {
                "a": [lic("d1", "Business Pro", 5, 10, True, unit_amount=40, currency="EUR")],
                "b": [lic("g1", "Acrobat Pro", 30, 40, True), lic("g2", "Express", 3, 3, False)],
                "c": [lic("s1", "Sales Cloud", 80, 100)],
            },
        ),
    )


def test_price_book_on_the_first_day_lists_the_unpriced_licenses_and_saves_a_partly_filled_table(
    db, emulator, monkeypatch
):
    """Issue 22, points 2 and 11: the paid licenses Truto reports without a price are rows of the price
    table (price empty); a save prices the rows filled in, the others stay unpriced, said once."""
    _first_day(emulator, monkeypatch)
    at = app("pages/price-book.py")
    no_exception(at)
    no_missing_value_text(at)
    no_jargon(at)
    assert Store(db).get_price_book().empty and Store(db).audit_log().empty  # no demo seeding
    infos = " ".join(i.value for i in at.info)
    assert "2 paid licenses found in Truto have no price yet" in infos
    assert "Nothing has been changed yet." in infos
    warnings = " ".join(w.value for w in at.warning)
    assert (
        "Licenses priced in EUR have no exchange rate to USD, so their spend is left out of the USD "
        "totals. Add a row for EUR with how many USD one unit buys, and save."
    ) in warnings
    table = _frame_with(at, "unit_price")
    assert table[["integration", "license_id", "license_name"]].values.tolist() == [
        ["Adobe", "g1", "Acrobat Pro"],
        ["Salesforce", "s1", "Sales Cloud"],
    ]
    assert table["unit_price"].isna().all() and table["currency"].tolist() == ["USD", "USD"]

    _edit(at, "price-editor", {0: {"unit_price": 30.0}})
    at.button(key="save-prices").click().run()
    no_exception(at)
    assert [s.value for s in at.success] == [
        "Saved. Prices (0 → 1 rows): Adobe · Acrobat Pro (g1) added at 30 USD per year. "
        "1 license left without a price, so its spend stays unknown: Salesforce · Sales Cloud (s1)."
    ]
    book = Store(db).get_price_book()
    assert book[["license_id", "unit_price"]].values.tolist() == [["g1", 30.0]]
    no_missing_value_text(at)
    assert "1 paid license found in Truto has no price yet" in " ".join(i.value for i in at.info)
    history = _frame_with(at, "what")
    assert history["what"].tolist() == [
        "Prices (0 → 1 rows): Adobe · Acrobat Pro (g1) added at 30 USD per year"
    ]

    # A bad price is named as the table shows it, and nothing is saved.
    _edit(at, "price-editor", {1: {"unit_price": -2.0}})
    at.button(key="save-prices").click().run()
    no_exception(at)
    no_jargon(at)
    assert any(
        m.value.replace("\\", "")
        == "- Row 2 of the table, column “Price per seat”: -2.0 is negative"
        for m in at.markdown
    ), [m.value for m in at.markdown]
    assert len(Store(db).get_price_book()) == 1
    _edit(at, "price-editor", {0: {"unit_price": 30.0}})

    # The same table saved again: nothing changed, nothing logged.
    at.button(key="save-prices").click().run()
    no_exception(at)
    assert any(i.value.startswith("Nothing changed: the prices are as saved.") for i in at.info)
    assert len(Store(db).audit_log()) == 1

    # The settings saved as they are: nothing changed, nothing logged.
    [b for b in at.button if b.label == "Save settings"][0].click().run()
    no_exception(at)
    assert any(i.value == "Nothing changed: the settings are as saved." for i in at.info)
    assert len(Store(db).audit_log()) == 1


def test_price_book_accepts_spends_template_filled_in_part(db, emulator, monkeypatch):
    """Issue 22, point 11: Spend's template with one price filled in was refused as a whole."""
    _first_day(emulator, monkeypatch)
    at = app("pages/price-book.py")
    template = (
        b"integration,license_id,license_name,unit_price,currency,billing_period\n"
        b"Adobe,,Acrobat Pro,19.99,USD,monthly\nSalesforce,,Sales Cloud,,USD,annual\n"
    )
    at.file_uploader(key="price-upload").set_value(("template.csv", template, "text/csv")).run()
    no_exception(at)
    assert [s.value for s in at.success] == [
        "template.csv: 1 prices, all valid. 1 license left without a price, so its spend stays unknown: "
        "Salesforce · Sales Cloud."
    ]
    assert "Replacing the price book with template.csv: 1 added, 0 changed, 0 removed." in [
        c.value for c in at.caption
    ]
    at.button(key="apply-upload").click().run()
    no_exception(at)
    assert Store(db).get_price_book()["license_name"].tolist() == ["Acrobat Pro"]
    # Replacing says beforehand which saved prices a file without them removes.
    other = b"integration,license_id,license_name,unit_price,currency,billing_period\nSalesforce,,Sales Cloud,12,USD,annual\n"
    at.file_uploader(key="price-upload").set_value(("other.csv", other, "text/csv")).run()
    no_exception(at)
    assert [w.value for w in at.warning if "replacing" in w.value] == [
        "1 saved price is not in other.csv, so replacing removes it: Adobe · Acrobat Pro."
    ]
    # The same prices again: nothing to replace.
    at.file_uploader(key="price-upload").set_value(("template.csv", template, "text/csv")).run()
    no_exception(at)
    assert "template.csv holds the prices already saved: replacing changes nothing." in [
        c.value for c in at.caption
    ]
    assert not [b for b in at.button if b.key == "apply-upload"]
    # A real error is still listed by row and column, and nothing is applied.
    bad = template.replace(b"Sales Cloud,,USD", b"Sales Cloud,,EURO")
    at.file_uploader(key="price-upload").set_value(("bad.csv", bad, "text/csv")).run()
    no_exception(at)
    assert any("row 3, column currency" in m.value for m in at.markdown)
    assert len(Store(db).get_price_book()) == 1


def test_price_book_with_no_accounts_says_what_to_do(db, emulator, monkeypatch):
    from tests.factories import dataset

    _against(emulator, monkeypatch, dataset([]))
    at = app("pages/price-book.py")
    no_exception(at)
    no_missing_value_text(at)
    assert any(
        i.value.startswith("No prices yet, and no paid license found in Truto needs one.")
        for i in at.info
    )


def test_price_book_on_the_first_day_for_a_viewer(db, emulator, monkeypatch):
    _first_day(emulator, monkeypatch)
    at = signed_in(
        "pages/price-book.py",
        {"is_logged_in": True, "email": "vic@acme.com", "name": "Vic", "email_verified": True},
    )
    no_exception(at)
    no_missing_value_text(at)
    no_jargon(at)
    assert any(i.value.endswith("An admin can price them here.") for i in at.info)
    assert any(w.value.endswith("An admin can add the rates here.") for w in at.warning)
    table = _frame_with(at, "unit_price")
    assert table["license_name"].tolist() == ["Acrobat Pro", "Sales Cloud"]


# ------------------------------------------------ issue 22: one scope, one paid rule


def _values(v):
    """A Plotly JSON array (plain list, or typed {"dtype", "bdata"}) as a list."""
    import base64

    import numpy as np

    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def utilization_chart(at: AppTest) -> dict[str, float]:
    """Integration -> utilization on the "Utilization per integration" bar chart."""
    for fig in charts_drawn(at):
        for trace in fig["data"]:
            ys = list(trace.get("y") or [])
            if "Salesforce" in ys:
                return dict(zip(ys, _values(trace["x"])))
    raise AssertionError("no utilization-per-integration chart drawn")


@pytest.fixture
def first_day(db, monkeypatch):
    """The demo as on a real Truto environment's first day: no price book yet."""
    monkeypatch.setattr("lib.jobs.demo.seed_demo_pricing", lambda store: False)
    return db


def test_utilization_per_integration_counts_what_the_tiles_count(db):
    # Issue 22, point 6: the chart counted free licenses while the tiles are paid-only, and the
    # "Include free licenses" toggle did not change it: Salesforce 7.6 % (Chatter Free 240 of 5,000).
    paid = utilization_chart(app())
    assert paid["Salesforce"] == 70.5  # 155 of 220: Sales Cloud, Platform and Service Cloud
    every = utilization_chart(app(query={"with_free": "true"}))
    assert every["Salesforce"] == 7.6  # with Chatter Free's 240 of 5,000
    rows, _ = expected_rows(db)
    from lib.analytics.groupings import utilization_by_integration

    want = utilization_by_integration(rows, paid_only=True).set_index("integration_label")
    assert paid == {k: want.at[k, "utilization_pct"] for k in paid}


def test_first_day_tile_attention_and_table_use_one_paid_rule(first_day):
    # Issue 22, point 6: the "Over-allocated licenses" tile said 1 while the attention list and the
    # table listed 2 (Visio Plan 2: Microsoft 365 does not say paid, and it has no price yet), and a
    # free license (Microsoft Teams Exploratory, 25 of 1,000) was flagged under-used.
    at = app()
    no_exception(at)
    shown = metric_values(at)
    assert shown["Over-allocated licenses"] == "1"  # Acrobat Pro
    attention = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "1 license(s) have more seats assigned than bought" in attention
    assert "Visio" not in attention.split("more seats assigned than bought")[1].split(".")[0]
    # The tile says which rule makes a license paid and what it leaves apart.
    assert shown["Seats bought"] == "895"
    notes = [c.value for c in at.caption]  # a tile's note is a caption under its figure
    assert "paid licenses (marked paid, or priced above 0); 5 not known (counted apart)" in notes
    table = app("pages/utilization.py").dataframe[0].value
    flags = dict(zip(table["license_name"], table["flag"]))
    assert sum(f == "⚠ Over-allocated" for f in flags.values()) == 1
    assert flags["Microsoft Teams Exploratory"] == "? Paid or free not known"
    assert flags["Visio Plan 2"] == "? Paid or free not known"
    # Giving the six Microsoft 365 licenses a price (Teams Exploratory 0) moves them from "not
    # known" to paid or free, by the same rule everywhere: the tile, the attention list, the table.
    from lib.jobs.demo import demo_price_book

    Store(first_day).save_price_book(demo_price_book(), ADMIN)
    at = app()
    assert metric_values(at)["Over-allocated licenses"] == "2"
    attention = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert "2 license(s) have more seats assigned than bought" in attention
    table = app("pages/utilization.py").dataframe[0].value
    flags = dict(zip(table["license_name"], table["flag"]))
    assert sum(f == "⚠ Over-allocated" for f in flags.values()) == 2
    assert flags["Microsoft Teams Exploratory"] == "Free (costs nothing)"


def _latest_trend(at: AppTest) -> pd.DataFrame:
    frame = [d.value for d in at.dataframe if "taken_at" in d.value.columns][0]
    return frame[frame["taken_at"] == frame["taken_at"].max()].set_index("integration_label")


def test_trends_count_what_the_tiles_count(db):
    # Issue 22, point 6: utilization per integration on Trends counted free licenses too.
    at = app("pages/trends.py")
    paid = _latest_trend(at)
    assert paid.at["Salesforce", "utilization_pct"] == 70.5
    # (AppTest: the Overview's first run takes ?with_free from the URL, so the toggle is clicked)
    at.toggle(key="with_free").set_value(True).run()
    every = _latest_trend(at)
    assert every.at["Salesforce", "utilization_pct"] == 7.6
    # a cost whose every license is priced is shown (Dropbox: one license, EUR at 1.08)
    assert paid.at["Dropbox - Business", "annual_cost_reporting"] > 0


def test_first_day_trends_never_say_0_for_a_cost_not_known(first_day):
    # Issue 22, point 7: on the first day Trends said annual cost 0.00 for ClickUp, GitHub and
    # Salesforce (their free licenses' 0, their paid ones without a price) while the Overview says
    # "not known".
    at = app("pages/trends.py")
    for with_free in (False, True):
        at.toggle(key="with_free").set_value(with_free).run()
        no_exception(at)
        latest = _latest_trend(at)
        for integration in ("ClickUp", "GitHub", "Salesforce"):
            assert pd.isna(latest.at[integration, "annual_cost_reporting"]), (
                with_free,
                integration,
            )


# -- the first day (issue 22): nothing saved, a real (emulated) Truto --------------------------


def test_first_day_overview_says_no_license_with_idle_seats_has_a_price_and_links_the_price_book(
    db, emulator, monkeypatch
):
    from tests.factories import account, dataset, lic

    _against(
        emulator,
        monkeypatch,
        dataset(
            [account("a", "adobe"), account("d", "docusign")],
            {
                "a": [lic("x", "Acrobat Pro", 3, 10, True)],
                "d": [lic("y", "eSignature", None, 5, True, unit_amount=40.0, currency="EUR")],
            },
        ),
    )
    at = app()
    no_exception(at)
    assert not charts_drawn(at) or all(
        f.get("layout", {}).get("xaxis", {}).get("title", {}).get("text") != "Idle annual spend"
        for f in charts_drawn(at)
    )
    infos = [i.value for i in at.info]
    assert any(
        "none of the 1 license(s) with seats bought but not assigned has a price" in i
        and "Price book" in i
        for i in infos
    ), infos
    block = _keyed_block(at.main, "top-idle-empty")
    assert block is not None
    links = [e.proto.page for e in block.get("page_link")]
    assert links == ["price-book"], links


def _keyed_block(node, key: str):
    """The container drawn with ``key=...`` (Streamlit puts the key in its block's id)."""
    for child in getattr(node, "children", {}).values():
        if type(child).__name__ == "Block" and child.proto.id.endswith(f"-{key}"):
            return child
        found = _keyed_block(child, key)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize(
    "page", ["pages/price-book.py", "pages/renewals.py", "pages/reclaim.py", "pages/alerts.py"]
)
def test_a_saved_note_keeps_the_page_in_place_so_its_tabs_stay_where_they_were(db, page):
    """After a save the page shows the note once; on the next run (the note gone) every element keeps
    its place, or Streamlit draws the tabs anew and the browser jumps back to the first tab."""
    from lib.ui.workflows import _NOTE_KEY

    def layout(note: bool) -> list[tuple[int, str]]:
        at = app(page)
        if note:
            at.session_state[_NOTE_KEY] = "Saved 1 prices."
            at.run()
        no_exception(at)
        assert any("Saved 1 prices." in s.value for s in at.success) == note
        return [(k, type(v).__name__) for k, v in at.main.children.items()]

    assert layout(True) == layout(False)


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/trends.py", "pages/reclaim.py"])
def test_accounts_that_list_no_license_say_so_not_that_a_filter_hides_them(
    db, emulator, monkeypatch, page
):
    from tests.factories import account, dataset

    _against(
        emulator,
        monkeypatch,
        dataset(
            [account("s", "asana"), account("a", "adobe"), account("z", "zoom")],
            {"a": []},
        ),
        faults={"z": {"blocked_503": True}},
    )
    at = app(page)
    no_exception(at)
    infos = [i.value for i in at.info]
    assert not any("match the filters" in i or "No snapshots yet" in i for i in infos), infos
    assert (
        "No licenses yet: of the 3 integrated account(s), 1 listed none; 1 belong to integrations "
        "that do not offer licenses in Truto; 1 could not be fetched." in infos[0]
    ), infos
    assert [e.proto.page for e in at.get("page_link")] == ["accounts"]
