"""The Reclaim page under AppTest, on the demo data (its users and their activity), each test with
its own database: the figures equal what lib computes, the URL carries the threshold and reasons,
names and emails reach admins only, and admins exempt users."""

from __future__ import annotations

import pandas as pd

from lib.analytics import reclaim_views as RV
from lib.analytics.activity import exemption_lists, reclaim, reclaim_summary
from lib.analytics.metrics import add_metrics
from lib.jobs.refresh import metric_options
from lib.store import Store
from tests import test_app
from tests.test_app import app, metric_values, no_exception, signed_in

db = test_app.db  # the fixture: a database of its own
PAGE = "pages/reclaim.py"
VIEWER = {"is_logged_in": True, "email": "vic@acme.com", "name": "Vic", "email_verified": True}
ADMIN = {"is_logged_in": True, "email": "ana@acme.com", "name": "Ana", "email_verified": True}


def expected(db_url: str, days: int = 90):
    """Every seat classified and priced by lib, from the data the app stored."""
    from lib.config import load_settings
    from lib.jobs.sync import config_key

    store = Store(db_url)
    latest = store.latest(config_key(load_settings(env={}, secrets={})))
    options = metric_options(store)
    metrics = add_metrics(latest.licenses, store.get_price_book(), options)
    users, licenses = exemption_lists(store.exemptions())
    return reclaim(latest.seats, metrics, options, days, None, users, licenses), options


def seat_table(at):
    tables = [d.value for d in at.dataframe if "reclaim_reason" in d.value.columns]
    return tables[0] if tables else None


def test_tiles_and_table_equal_what_lib_computes(db):
    at = app(PAGE)
    no_exception(at)
    priced, options = expected(db)
    s = reclaim_summary(priced, options.reporting_currency)
    want = {t.label: t.value for t in RV.reclaim_tiles(s, 90)}
    assert metric_values(at) == want
    assert s.reclaimable_seats > 10 and s.departed_paid_users > 0  # the demo has something to show
    table = seat_table(at)
    assert len(table) == s.reclaimable_seats
    assert set(table["reclaim_reason"]) == set(RV.REASON_FILTER)  # Inactive, Never active, ...
    cost = table["reclaimable_annual_cost_reporting"].to_numpy(dtype=float, na_value=float("nan"))
    known = cost[~(cost != cost)]
    assert list(known) == sorted(known, reverse=True)  # costliest first


def test_threshold_and_reasons_come_from_the_url(db):
    at = app(PAGE, query={"days": "30", "reason": "Departed"})
    no_exception(at)
    priced, options = expected(db, days=30)
    s = reclaim_summary(priced, options.reporting_currency)
    assert metric_values(at)["Reclaimable paid seats"] == f"{s.reclaimable_paid_seats:,}"
    at90 = app(PAGE)
    label = "Reclaimable paid seats"
    assert metric_values(at90)[label] != metric_values(at)[label]
    table = seat_table(at)
    departed = (priced["activity_class"] == "departed") & priced["reclaimable"]
    assert len(table) == int(departed.sum()) > 0
    assert set(table["reclaim_reason"]) == {"Departed"}


def test_a_threshold_that_is_not_a_number_says_so_and_uses_90_days(db):
    at = app(PAGE, query={"days": "ninety"})
    no_exception(at)
    assert any("not a number" in e.value for e in at.error)
    priced, options = expected(db)
    s = reclaim_summary(priced, options.reporting_currency)
    assert metric_values(at)["Reclaimable paid seats"] == f"{s.reclaimable_paid_seats:,}"


def test_a_threshold_beyond_ten_years_says_so_and_uses_90_days(db):
    # Was a TypeError from deep in the classification (days x 86,400 s overflowed): an error box.
    for days in ("100000000000000000000", "3651", "1e400"):
        at = app(PAGE, query={"days": days})
        no_exception(at)
        errors = [e.value for e in at.error]
        assert any("from 1 to 3650" in e and "showing 90 days" in e for e in errors), errors
        assert not any("TypeError" in e or "isfinite" in e for e in errors)
    priced, options = expected(db)
    s = reclaim_summary(priced, options.reporting_currency)
    assert metric_values(at)["Reclaimable paid seats"] == f"{s.reclaimable_paid_seats:,}"


def test_viewers_see_counts_and_costs_but_no_names_or_emails(db):
    at = signed_in(PAGE, VIEWER)
    no_exception(at)
    assert seat_table(at) is None
    assert any("admins only" in i.value for i in at.info)
    priced, _ = expected(db)
    emails = set(priced["user_email"].dropna())
    names = set(priced["user_name"].dropna())
    for d in at.dataframe:
        cells = set(d.value.astype(str).to_numpy().ravel())
        assert not cells & emails and not cells & names
    assert metric_values(at)["Reclaimable paid seats"]  # the figures are there
    assert not [b for b in at.button if b.label == "Exempt"]


def test_admins_see_who_holds_each_seat(db):
    at = signed_in(PAGE, ADMIN)
    no_exception(at)
    table = seat_table(at)
    assert table is not None and table["user_email"].str.contains("@").all()


def test_admin_exempts_a_user_and_the_figures_leave_them_out(db):
    at = app(PAGE)
    before = seat_table(at)
    email = before["user_email"].iloc[0]
    held = int((before["user_email"] == email).sum())
    at.radio(key="exempt-kind").set_value("user")
    at.selectbox(key="exempt-value").set_value(email)
    at.text_input(key="exempt-reason").set_value("")
    [b for b in at.button if b.label == "Exempt"][0].click().run()
    no_exception(at)
    assert any("reason is empty" in e.value for e in at.error)
    assert Store(db).exemptions().empty  # nothing half saved
    at.selectbox(key="exempt-value").set_value(email)
    at.text_input(key="exempt-reason").set_value("CI service account")
    [b for b in at.button if b.label == "Exempt"][0].click().run()
    no_exception(at)
    after = seat_table(at)
    assert len(after) == len(before) - held and email not in set(after["user_email"])
    ex = Store(db).exemptions()
    assert ex["value"].tolist() == [email.lower()] and ex["reason"].tolist() == [
        "CI service account"
    ]
    assert any("Exemption saved" in s.value for s in at.success)


def test_overview_shows_the_reclaimable_cost_and_departed_users_to_act_on(db):
    at = app()
    no_exception(at)
    priced, options = expected(db)
    s = reclaim_summary(priced, options.reporting_currency)
    tile = RV.reclaim_cost_tile(s, 90)
    assert metric_values(at)[tile.label] == tile.value
    text = " ".join(m.value for m in at.markdown).replace("\\", "")
    assert f"{s.departed_paid_users} departed user(s) still hold paid seats" in text
    assert f"{s.reclaimable_paid_seats} paid seat(s) are unused" in text


def test_utilization_shows_activity_per_license_and_right_sizes_by_activity(db):
    at = app("pages/utilization.py")
    no_exception(at)
    table = at.dataframe[0].value
    assert {"active_seats", "users_assigned_seats", "active_utilization_pct"} <= set(table.columns)
    assert "recommended_seats_by_activity" not in table.columns
    at = app("pages/utilization.py", query={"by_activity": "true"})
    table = at.dataframe[0].value.set_index(["integration_label", "license_name"])
    row = table.loc[("Microsoft 365", "Microsoft 365 E3")]
    assert row["recommended_seats_by_activity"] < row["recommended_seats"]
    assert pd.isna(table.loc[("Salesforce", "Chatter Free"), "recommended_seats_by_activity"])


def test_accounts_page_says_which_accounts_report_activity(db):
    at = app("pages/accounts.py")
    no_exception(at)
    tables = [d.value for d in at.dataframe]
    coverage = next(t for t in tables if "activity_outcome" in t.columns)
    assert "Activity not supported" in set(coverage["activity_outcome"])  # DocuSign
    per = next(t for t in tables if "activity_share_pct" in t.columns).set_index(
        "integration_label"
    )
    assert per.loc["Atlassian", "activity_share_pct"] == 0.0  # sends no activity times
    assert per.loc["GitHub", "activity_share_pct"] == 100.0


def test_trends_draw_active_seats_and_reclaimable_cost_over_time(db):
    at = app("pages/trends.py")
    no_exception(at)
    at.selectbox(key="trend-measure").set_value("active_seats").run()
    no_exception(at)
    table = at.dataframe[0].value
    github = table[table["integration_label"] == "GitHub"].sort_values("taken_at")
    assert len(github) == 12 and github["active_seats"].notna().all()
    assert github["active_seats"].iloc[-1] > github["active_seats"].iloc[0]  # the demo grew
    latest = github.iloc[-1]
    priced, _ = expected(db)
    gh = priced[priced["integration_label"] == "GitHub"]
    assert latest["active_seats"] == int((gh["activity_class"] == "active").sum())
    assert latest["reclaimable_seats"] == int(gh["reclaimable"].sum())
    atl = table[table["integration_label"] == "Atlassian"]
    assert atl["active_seats"].isna().all()  # sends no activity times: not reported, not 0
