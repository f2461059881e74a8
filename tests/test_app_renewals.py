"""The Renewals and Alerts pages under AppTest, on the demo data (with its demo contracts), each with
its own database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pandas as pd

from lib.analytics.alert_rules import KIND_LABELS, KINDS
from lib.auth import OPEN_ACTOR
from lib.jobs.alerts import run_alerts
from lib.store import Store
from tests import test_app
from tests.test_app import app, metric_values, no_exception, signed_in

db = test_app.db  # the fixture: a database of its own

HEADER = (
    b"integration,account_id,license_id,license_name,contract_start,contract_end,term,auto_renew,"
    b"notice_days,committed_seats,true_up_date,contract_value,currency,source\n"
)


def test_renewals_page_shows_the_demo_renewals_within_each_horizon(db):
    at = app("pages/renewals.py")
    no_exception(at)
    shown = metric_values(at)
    # The demo contracts (days from today): Zoom ends in 20 (notice 14: opt-out in 6), GitHub in 25
    # (notice 30: its opt-out deadline passed 5 days ago), Microsoft 365 E3 in 80 (opt-out in 50), Jira in
    # 88 (notice 45: opt-out in 43), Salesforce in 200 (notice 90: opt-out in 110). Prefilled from the
    # demo's billing (no notice period reported): ClickUp's month ends in 18, Zoom's year in 45,
    # DocuSign's in 100.
    assert shown["Renewals in the next 90 days"] == "6"
    assert shown["Opt-out deadlines"] == "3"
    table = at.dataframe[0].value
    github = table[table["organization_name"] == "acme-labs"].iloc[0]
    today = datetime.now(UTC).date()
    passed = (today + timedelta(days=25 - 30)).isoformat()
    renews = (today + timedelta(days=25)).isoformat()
    # 40 bought, 12 assigned: 12 + 10% buffer = 13.2, so 14 recommended, 26 fewer than bought.
    assert (github["total_seats"], github["assigned_seats"], github["recommended_seats"]) == (
        40,
        12,
        14,
    )
    assert github["seat_change"] == -26
    assert github["what_to_do"] == (
        f"Opt-out deadline passed on {passed}: renews on {renews} with 26 seats more than recommended"
    )
    assert github["days_to_renewal"] == 25 and github["days_to_opt_out"] == -5
    other = table[table["organization_name"] == "acme-platform"].iloc[0]
    # Issue 22, point 12: 182 of 200 assigned; 182 + 10% = 201 > 200, but 18 seats are still
    # unassigned: nothing to buy (it read "Buy 1 seat"), and the row says why.
    assert (other["total_seats"], other["assigned_seats"], other["recommended_seats"]) == (
        200,
        182,
        201,
    )
    assert other["seat_change"] == 0
    assert other["what_to_do"] == (
        f"Renews as is on {renews} (18 seats still unassigned: the recommended 201 is the 182 "
        "assigned plus the buffer, so none to buy)"
    )
    assert set(table["source_label"]) == {"Entered here", "Vendor (prefilled from billing)"}
    vendor = table[table["source_label"] == "Vendor (prefilled from billing)"]
    # Zoom's account contract covers Zoom Basic; Zoom Workplace Business has its own edited contract.
    assert sorted(vendor["license_name"]) == [
        "ClickUp Business",
        "ClickUp Free Forever",
        "Zoom Basic",
    ]
    zoom = vendor[vendor["license_name"] == "Zoom Basic"].iloc[0]
    zoom_renews = (today + timedelta(days=45)).isoformat()
    assert zoom["renewal_date"] == pd.Timestamp(today + timedelta(days=45))
    assert zoom["days_to_renewal"] == 45
    assert zoom["what_to_do"] == f"Free license: renews at no cost on {zoom_renews}"
    assert pd.isna(zoom["opt_out_deadline"])  # the vendor reports no notice period: not a date
    zoom_edited = table[table["license_name"] == "Zoom Workplace Business"].iloc[0]
    assert zoom_edited["source_label"] == "Entered here"
    assert at.get_by_key("chart-renewals") is not None
    assert any("3 row(s) marked **vendor**" in c.value for c in at.caption)

    at.segmented_control(key="horizon").set_value(30).run()
    no_exception(at)
    shown = metric_values(at)
    assert shown["Renewals in the next 30 days"] == "3"  # Zoom, GitHub and ClickUp's month
    assert shown["Opt-out deadlines"] == "1"  # Zoom's; GitHub's passed
    assert set(at.dataframe[0].value["license_name"]) == {
        "GitHub Enterprise",
        "Zoom Workplace Business",
        "ClickUp Business",
        "ClickUp Free Forever",
    }
    at.segmented_control(key="horizon").set_value(120).run()
    assert metric_values(at)["Opt-out deadlines"] == "4"  # + Salesforce (110)


def test_a_contracts_file_with_problems_is_rejected_whole_and_a_good_one_replaces_them(db):
    at = app("pages/renewals.py")
    seeded = Store(db).get_contracts()
    assert len(seeded) == 8  # 5 entered, 3 prefilled from the demo's billing
    bad = HEADER + (
        b"GitHub,,,GitHub Enterprise,2026-02-01,31/01/2027,annual,true,30,,,,,\n"
        b",,,Zoom,,2027-03-31,weekly,maybe,-3,,,100,,\n"
    )
    at.file_uploader(key="contracts-upload").set_value(("bad.csv", bad, "text/csv")).run()
    no_exception(at)
    shown = " ".join(m.value for m in at.markdown)
    for words in (
        "row 2, column contract\\_end",
        "row 3, column integration",
        "row 3, column term",
        "row 3, column auto\\_renew",
        "row 3, column notice\\_days",
        "row 3, column currency",
    ):
        assert words in shown, words
    pd.testing.assert_frame_equal(Store(db).get_contracts(), seeded)  # nothing half applied

    good = HEADER + b"Zoom,,,Zoom Workplace Business,,2031-03-31,annual,false,30,,,,,\n"
    at.file_uploader(key="contracts-upload").set_value(("good.csv", good, "text/csv")).run()
    at.button(key="apply-contracts-upload").click().run()
    no_exception(at)
    saved = Store(db).get_contracts()
    assert list(saved["license_name"]) == ["Zoom Workplace Business"]
    assert saved["source"].iloc[0] == "edited" and saved["notice_days"].iloc[0] == 30
    assert Store(db).audit_log()["action"].iloc[0] == "contracts"


def test_a_viewer_sees_the_contracts_but_cannot_edit_them(db):
    at = signed_in(
        "pages/renewals.py",
        {"is_logged_in": True, "email": "vic@acme.com", "name": "Vic", "email_verified": True},
    )
    no_exception(at)
    assert any("only admins can change them" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "save-contracts"]
    assert all(f.key != "contracts-upload" for f in at.get("file_uploader"))


def test_alerts_page_shows_open_alerts_failed_deliveries_and_history(db):
    app("pages/renewals.py")  # the demo data and its contracts
    store = Store(db)
    run = run_alerts(store, "demo", {})  # no channel configured: listed on the page only
    assert run.fired and not run.deliveries
    first = run.fired[0]
    store.record_deliveries(
        "demo",
        [
            {
                "alert_key": first.key,
                "channel": "email",
                "ok": False,
                "error": "could not connect to the SMTP server 127.0.0.1:1 (connection refused)",
            }
        ],
    )
    store.save_alert_rules([], OPEN_ACTOR)  # every alert clears at the next check
    at = app("pages/alerts.py")
    no_exception(at)
    shown = metric_values(at)
    assert shown["Open alerts"] == str(len(run.fired)) and shown["Messages not delivered"] == "1"
    assert any("could not be delivered" in w.value for w in at.warning)
    deliveries = at.get_by_key("deliveries")
    assert deliveries is not None
    frames = {d.value.columns[0]: d.value for d in at.dataframe}
    sent = frames["attempted_at"]
    assert list(sent["status"]) == ["Failed"] and sent["alert"].iloc[0] == first.title
    assert "connection refused" in sent["error"].iloc[0]

    run_alerts(store, "demo", {})  # with no rules, every open alert clears
    at = app("pages/alerts.py")
    assert metric_values(at)["Open alerts"] == "0"
    history = [d.value for d in at.dataframe if "cleared_at" in d.value.columns][0]
    assert len(history) == len(run.fired) and first.title in set(history["title"])


def test_alerts_rules_editor_starts_with_the_default_rules(db):
    at = app("pages/alerts.py")
    no_exception(at)
    editor = at.data_editor(key="rules-editor")
    assert list(editor.value["id"]) == [
        "over-allocated-paid",
        "account-failed",
        "deadline-60-days",
        "under-used-paid",
    ]
    assert Store(db).get_alert_rules() is None


def test_a_vendor_contract_edited_on_the_page_wins_over_the_next_fetch_of_billing(db):
    from lib.config import Settings
    from lib.jobs.refresh import refresh
    from lib.truto.source import fetch
    from tests.test_app import _edit

    at = app("pages/renewals.py")
    seeded = Store(db).get_contracts()
    vendor = seeded[seeded["source"] == "vendor"]
    assert sorted(vendor["integration"]) == ["ClickUp", "DocuSign", "Zoom"]
    assert vendor["account_id"].notna().all() and vendor["notice_days"].isna().all()
    row = int(vendor.index[vendor["integration"] == "Zoom"][0])
    zoom_account = seeded["account_id"].iloc[row]
    _edit(at, "contracts-editor", {row: {"notice_days": 30}})
    at.button(key="save-contracts").click().run()
    no_exception(at)
    saved = Store(db).get_contracts()
    mine = saved[saved["account_id"] == zoom_account]
    assert len(mine) == 1 and mine["source"].iloc[0] == "edited"  # changed here: theirs now
    assert mine["notice_days"].iloc[0] == 30

    # The next fetch lists the same billing again: the edited contract stays, no vendor twin.
    outcome = refresh(Store(db), "demo", lambda: fetch(Settings(demo=True)))
    assert outcome.fetched and outcome.vendor_contracts == 2
    after = Store(db).get_contracts()
    mine = after[after["account_id"] == zoom_account]
    assert (
        len(mine) == 1 and mine["source"].iloc[0] == "edited" and mine["notice_days"].iloc[0] == 30
    )
    assert sorted(after.loc[after["source"] == "vendor", "integration"]) == ["ClickUp", "DocuSign"]

    at = app("pages/renewals.py")
    no_exception(at)
    table = at.dataframe[0].value
    basic = table[table["license_name"] == "Zoom Basic"].iloc[0]
    assert basic["source_label"] == "Entered here"
    today = datetime.now(UTC).date()
    assert basic["opt_out_deadline"] == pd.Timestamp(today + timedelta(days=45 - 30))


def test_renewals_follow_the_sidebar_filters(db):
    # Issue 22, point 6: with integration = Adobe (no contract) the page listed the 6 renewals of
    # Zoom, ClickUp, GitHub, Atlassian and Microsoft 365, with blank license and account columns.
    at = app("pages/renewals.py", query={"integration": ["Adobe"]})
    no_exception(at)
    shown = metric_values(at)
    assert shown["Renewals in the next 90 days"] == "0"
    assert shown["Opt-out deadlines"] == "0"
    assert not [d for d in at.dataframe if "what_to_do" in d.value.columns]
    assert any("Nothing renews" in s.value for s in at.success)
    # GitHub: its own contract only, every row naming its license and account.
    at = app("pages/renewals.py", query={"integration": ["GitHub"]})
    no_exception(at)
    table = at.dataframe[0].value
    assert set(table["integration_label"]) == {"GitHub"}
    assert table["license_name"].notna().all() and table["account_id"].notna().all()
    assert metric_values(at)["Renewals in the next 90 days"] == "1"


def test_the_renewal_window_is_in_the_url(db):
    # Issue 22, point 12: the window (30/60/90/120 days) in the URL like Reclaim's days.
    at = app("pages/renewals.py", query={"horizon": "30"})
    no_exception(at)
    shown = metric_values(at)
    assert shown["Renewals in the next 30 days"] == "3"
    assert at.segmented_control(key="horizon").value == 30
    assert at.query_params["horizon"] == "30"
    at = app("pages/renewals.py", query={"horizon": "45"})  # not a window: the default, 90
    no_exception(at)
    assert "Renewals in the next 90 days" in metric_values(at)


def test_alerts_page_shows_what_holds_now_and_when_the_rules_ran(db):
    # Issue 22, point 8: a green "No open alerts." beside "Holding now, not yet checked: 14".
    from lib.jobs.alerts import evaluate_latest, rules_in_force

    app("pages/renewals.py")  # the demo data and its contracts
    store = Store(db)
    today = datetime.now(UTC).date()
    holding = evaluate_latest(store, "demo", today, rules_in_force(store)).alerts
    assert holding
    at = app("pages/alerts.py")
    no_exception(at)
    shown = metric_values(at)
    assert shown["Holding now"] == str(len(holding)) and shown["Open alerts"] == "0"
    assert not at.success  # nothing green while conditions hold
    assert any("not raised yet" in w.value for w in at.warning)
    assert any("have not run on this data yet" in c.value for c in at.caption)
    now = [d.value for d in at.dataframe if "raised" in d.value.columns][0]
    assert set(now["title"]) == {a.title for a in holding}
    assert set(now["raised"]) == {"Not yet raised: at the next check"}
    assert now["severity"].iloc[0] == "critical"  # critical first

    run_alerts(store, "demo", {})
    assert store.alerts_checked_at("demo") is not None
    at = app("pages/alerts.py")
    assert any("alert rules last ran just now" in c.value for c in at.caption)
    now = [d.value for d in at.dataframe if "raised" in d.value.columns][0]
    assert set(now["raised"]) == {"Open alert"} and now["first_fired_at"].notna().all()
    assert not at.warning

    store.save_alert_rules([], OPEN_ACTOR)  # no rule: nothing holds
    run_alerts(store, "demo", {})
    at = app("pages/alerts.py")
    assert metric_values(at)["Holding now"] == "0"
    assert any(s.value == "Nothing holds on the latest data." for s in at.success)


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
VIEWER = {"is_logged_in": True, "email": "vic@acme.com", "name": "Vic", "email_verified": True}


def test_editors_pick_rule_kinds_in_words_and_accounts_by_name(db):
    """The rules editor keeps each kind's machine name but shows its words; the contracts editor
    saves an account's full ID but shows it as integration · tenant · the start of the ID."""
    at = app("pages/alerts.py")
    no_exception(at)
    kinds = json.loads(at.data_editor(key="rules-editor").proto.columns)["kind"]["type_config"]
    assert [o["value"] for o in kinds["options"]] == list(KINDS)
    assert [o["label"] for o in kinds["options"]] == [KIND_LABELS[k] for k in KINDS]
    # The scheduled sync in words; the command only in the help, for admins.
    assert "python -m" not in at.caption[0].value and "python -m lib sync" in at.caption[0].help
    at = app("pages/renewals.py")
    no_exception(at)
    column = json.loads(at.data_editor(key="contracts-editor").proto.columns)["account_id"]
    options = {o["value"]: o["label"] for o in column["type_config"]["options"]}
    assert options["7d383c7a-068a-505e-bab4-623667e26571"] == "Zoom · acme-europe · 7d383c7a"
    assert not any(UUID.search(label) for label in options.values())


def test_viewers_read_rule_kinds_in_words_and_contract_accounts_by_name(db):
    at = signed_in("pages/alerts.py", VIEWER)
    no_exception(at)
    rules = at.get_by_key("rules-table")
    frame = [d.value for d in at.dataframe if "kind" in d.value.columns][0]
    assert rules is not None and set(frame["kind"]) <= set(KIND_LABELS.values())
    at = signed_in("pages/renewals.py", VIEWER)
    no_exception(at)
    frame = [d.value for d in at.dataframe if "Account (empty: every account)" in d.value.columns][
        0
    ]
    accounts = frame["Account (empty: every account)"].dropna().tolist()
    assert "Zoom · acme-corp · 79605be7" in accounts
    assert not any(UUID.search(a) for a in accounts)


def test_the_alerts_page_on_the_first_day_speaks_of_the_scheduled_sync_not_commands(db):
    """Issue 22, point 10: before the rules first ran, the Alerts page said `python -m lib sync` and
    `python -m lib alerts` in its text (the commands stay in the help, for admins)."""
    at = app("pages/alerts.py")
    no_exception(at)
    text = " ".join(
        [c.value for c in at.caption]
        + [w.value for w in at.warning]
        + [m.value for m in at.markdown]
    )
    assert "python -m" not in text
    assert "have not run on this data yet" in text and "scheduled sync" in text
