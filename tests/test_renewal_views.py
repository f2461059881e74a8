"""What the Renewals and Alerts pages show (lib.analytics.renewal_views), on hand-computed rows."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pytest

from lib.analytics import renewal_views as R
from lib.analytics.alert_rules import DEFAULT_RULES, AlertRulesError
from lib.analytics.contracts import validate_contracts
from lib.analytics.renewals import renewals
from tests.test_alerts import TODAY, contracts_csv, table


def upcoming(horizon=120):
    # Read as a table, not as an upload (which makes every row edited): the Salesforce row is the sync's.
    contracts = validate_contracts(
        pd.read_csv(
            io.BytesIO(
                contracts_csv(
                    "GitHub,gh-1,g-1,,,2027-01-31,annual,true,30,,,,,",  # opt-out 2027-01-01 (30 days)
                    "Salesforce,,s-1,,,2026-12-10,annual,true,30,,,,,vendor",  # deadline passed: renews in 8
                    "Zoom,,,,,2027-01-15,annual,true,,,,,,",  # every Zoom license, no notice: renews in 44
                )
            ),
            dtype=str,
            keep_default_na=False,
        )
    )
    return renewals(table(), contracts, TODAY, horizon)


def test_tiles_count_contracts_once_and_say_what_is_unknown():
    ren = upcoming()
    assert len(ren) == 5  # GitHub 1, Salesforce 1, Zoom 3 licenses
    tiles = {t.label: t for t in R.renewal_tiles(ren, TODAY, 30, "USD")}
    assert tiles["Renewals in the next 30 days"].value == "1"  # Salesforce (8 days)
    deadlines = tiles["Opt-out deadlines"]
    assert deadlines.value == "1"
    assert deadlines.note == "in the next 30 days; 1 deadline(s) already passed"
    # Saving at recommended seats: GitHub Enterprise 40 bought, 12 assigned -> 14 recommended:
    # 26 x 21 x 12 = 6,552 USD; Salesforce is over-allocated (no saving: 0). Zoom Workplace reports no
    # seats bought and Zoom Rooms no seats assigned: not known, said, never 0.
    # With licenses left out the known sum is a lower bound: "at least" (≥ on the tile), never the
    # sum as if it were all.
    saving = tiles["Saving at renewal"]
    assert saving.value == "≥ USD 6,552"
    assert saving.note == "at least: 2 license(s) without a price or seat counts"
    # True-up exposure: Salesforce 88 assigned, 80 bought: 8 x 165 x 12 = 15,840 USD, at least.
    assert tiles["Annual true-up exposure"].value == "≥ USD 15,840"


def test_tiles_never_say_0_for_money_that_is_not_known():
    # Issue 22, point 7: "Annual saving at recommended seats USD 0.00" and "true-up USD 0.00" beside
    # "3 license(s) without a price". Zoom's three licenses: no seat counts on two, and what is known
    # (Zoom Webinars) saves nothing: the sum is 0 while two are unknown, so it is not known.
    ren = upcoming()
    zoom = ren[ren["integration"] == "zoom"]
    assert zoom["potential_annual_savings_reporting"].isna().sum() == 2
    assert zoom["potential_annual_savings_reporting"].fillna(0).sum() == 0
    tiles = {t.label: t for t in R.renewal_tiles(zoom, TODAY, 120, "USD")}
    for label in ("Saving at renewal", "Annual true-up exposure"):
        assert tiles[label].value == "not known", label
        assert tiles[label].note.endswith("license(s) without a price or seat counts"), label
    # Nothing unknown: the sum, exactly, 0 included.
    known = ren[ren["potential_annual_savings_reporting"].notna()]
    tiles = {t.label: t for t in R.renewal_tiles(known, TODAY, 120, "USD")}
    assert tiles["Saving at renewal"].value == "USD 6,552"
    assert tiles["Saving at renewal"].note == "a year, at recommended seats"  # nothing left out


def test_timeline_has_one_point_per_contract_date_and_marks_a_passed_deadline():
    points = R.timeline(upcoming(), TODAY)
    got = [(p.label, p.day.date().isoformat(), p.kind, p.passed) for p in points.itertuples()]
    assert got == [
        # the factory labels github "Github"
        ("Salesforce: Sales Cloud", "2026-11-10", "Opt-out deadline", True),
        ("Salesforce: Sales Cloud", "2026-12-10", "Renewal", False),
        ("Github: GitHub Enterprise", "2027-01-01", "Opt-out deadline", False),
        ("Zoom: Zoom Rooms, Zoom Webinars, Zoom Workplace", "2027-01-15", "Renewal", False),
        ("Github: GitHub Enterprise", "2027-01-31", "Renewal", False),
    ]


def test_the_table_names_where_each_contract_came_from():
    shown = R.renewal_table(upcoming())
    assert list(shown.columns) == R.RENEWAL_SHOWN
    assert set(shown["source_label"]) == {"Vendor (prefilled from billing)", "Entered here"}
    assert set(shown["source"]) == {"vendor", "edited"}  # one meaning per column name
    heads = R.renewal_headers(R.RENEWAL_SHOWN, "USD")
    assert heads["opt_out_deadline"] == "Opt-out deadline (notice due)"
    assert heads["potential_annual_savings_reporting"].endswith("(USD)")


def test_rules_round_trip_through_the_editor_and_problems_are_listed_by_rule():
    frame = R.rules_frame(DEFAULT_RULES)
    assert list(frame["channels"]) == ["email, webhook"] * 4
    assert R.rules_from_frame(frame) == list(DEFAULT_RULES)
    blank = pd.DataFrame([{c: None for c in frame.columns}])
    assert R.rules_from_frame(pd.concat([frame, blank], ignore_index=True)) == list(DEFAULT_RULES)
    bad = frame.copy()
    bad.loc[2, "threshold"] = 5.5
    bad.loc[3, "channels"] = "pager"
    with pytest.raises(AlertRulesError) as exc:
        R.rules_from_frame(bad)
    assert exc.value.problems == [
        "rule 3 (deadline-60-days), threshold: 5.5 is not a whole number of days",
        "rule 4 (under-used-paid), channels: ['pager']: use any of email, webhook",
    ]


def test_deliveries_name_their_alert_and_the_digest():
    at = datetime(2026, 12, 2, 8, tzinfo=UTC)
    states = pd.DataFrame({"key": ["a"], "title": ["Over-allocated: GitHub"]})
    deliveries = pd.DataFrame(
        {
            "alert_key": ["a", "digest:2026-W49"],
            "channel": ["email", "webhook"],
            "attempted_at": [at, at],
            "ok": [False, True],
            "error": ["refused", ""],
        }
    )
    shown = R.delivery_table(deliveries, states)
    assert shown[["channel", "status", "alert"]].values.tolist() == [
        ["email", "Failed", "Over-allocated: GitHub"],
        ["webhook", "Delivered", "Weekly digest (2026-W49)"],
    ]
    assert shown["error"].iloc[0] == "refused" and pd.isna(
        shown["error"].iloc[1]
    )  # no error: empty


def test_the_overview_attention_list_leads_with_the_open_alerts():
    from lib.analytics import views as D
    from lib.analytics.metrics import MetricOptions
    from lib.analytics.totals import summarize
    from tests.test_alerts import accounts

    df = table()
    open_alerts = pd.DataFrame(
        {
            "severity": ["info", "warning", "critical", "info"],
            "title": ["Under-used: A", "Over-allocated: B", "Zoom account zm-2 failed", "C"],
        }
    )
    items = D.attention(
        df,
        accounts(),
        pd.DataFrame({"account_id": []}),
        summarize(df),
        MetricOptions(),
        open_alerts=open_alerts,
    )
    first = items[0]
    assert (first.kind, first.page, first.count) == ("open_alerts", "alerts", 4)
    assert first.text == (
        "4 alert(s) open, 1 critical — Zoom account zm-2 failed; Over-allocated: B; "
        "Under-used: A and 1 more."
    )
    none = D.attention(
        df, accounts(), pd.DataFrame({"account_id": []}), summarize(df), MetricOptions()
    )
    assert "open_alerts" not in [i.kind for i in none]
