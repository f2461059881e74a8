"""Alert rules: checking, evaluation with hand-computed numbers, fire-once state, the weekly
digest."""

from __future__ import annotations

from datetime import date

import pytest

from lib.analytics.alert_rules import DEFAULT_RULES, AlertRule, AlertRulesError, validate_rules
from lib.analytics.alerts import Alert, alert_key, evaluate, transition
from lib.analytics.contracts import CONTRACT_COLUMNS, load_contracts
from lib.analytics.digest import digest
from lib.analytics.renewals import renewals
from lib.config import ConfigError
from tests.license_tables import account_table, license_row, with_metrics

TODAY = date(2026, 12, 2)
BOOK = [
    ("GitHub", "", "GitHub Enterprise", 21, "USD", "monthly"),
    ("Salesforce", "", "Sales Cloud", 165, "USD", "monthly"),
    ("Zoom", "", "Zoom Workplace", 150, "USD", "annual"),
    ("Zoom", "", "Zoom Webinars", 150, "USD", "annual"),
    ("Adobe", "", "Acrobat Pro", 20, "GBP", "monthly"),  # no GBP rate: costs not converted
]


def table():
    return with_metrics(
        [
            license_row(
                "github", "g-1", "GitHub Enterprise", 12, 40, account_id="gh-1", organization="acme"
            ),
            license_row("github", "g-2", "GitHub Free", 1, 100, account_id="gh-1", is_paid=False),
            license_row("salesforce", "s-1", "Sales Cloud", 88, 80, account_id="sf-1"),
            license_row(
                "salesforce", "s-2", "Chatter Free", 300, 200, account_id="sf-1", is_paid=False
            ),
            license_row("zoom", "z-1", "Zoom Workplace", 140, None, account_id="zm-1"),
            license_row("zoom", "z-2", "Zoom Rooms", None, 10, account_id="zm-1"),
            license_row("adobe", "a-1", "Acrobat Pro", 10, 30, account_id="ad-1"),
            license_row("zoom", "z-3", "Zoom Webinars", 48, 50, account_id="zm-1", is_paid=None),
        ],
        BOOK,
    )


def accounts():
    return account_table(
        [
            {
                "account_id": "gh-1",
                "integration": "github",
                "integration_label": "GitHub",
                "outcome": "ok",
            },
            {
                "account_id": "zm-2",
                "integration": "zoom",
                "integration_label": "Zoom",
                "outcome": "needs_reauth",
                "message": "Zoom refused the stored refresh token.",
                "action": "Reconnect this account in Truto.",
            },
            {
                "account_id": "pd-1",
                "integration": "pagerduty",
                "integration_label": "PagerDuty",
                "outcome": "failed",
                "message": "",
                "action": "",
            },
            {
                "account_id": "ms-1",
                "integration": "microsoft365",
                "integration_label": "Microsoft 365",
                "outcome": "not_supported",
                "message": "No licenses for this integration.",
            },
        ]
    )


def contracts_csv(*rows):
    return ("\n".join([",".join(CONTRACT_COLUMNS), *rows]) + "\n").encode()


# ------------------------------------------------------------------- rules


def test_the_defaults_are_the_issue_s_list_and_valid():
    assert [(r.id, r.kind, r.threshold, r.paid_only) for r in DEFAULT_RULES] == [
        ("over-allocated-paid", "over_allocated", None, True),
        ("account-failed", "account_failed", None, False),
        ("deadline-60-days", "deadline_within", 60, False),
        ("under-used-paid", "under_used", None, True),
    ]
    assert validate_rules(DEFAULT_RULES) == list(DEFAULT_RULES)


def test_rules_from_storage_are_checked_and_every_problem_listed():
    good = validate_rules(
        [
            {"id": "idle-1k", "kind": "idle_cost_above", "threshold": "1000", "channels": "email"},
            {"id": "few", "kind": "free_seats_below", "threshold": 5.0, "enabled": "false"},
        ]
    )
    assert good == [
        AlertRule("idle-1k", "idle_cost_above", 1000.0, True, ("email",), True),
        AlertRule("few", "free_seats_below", 5, False, ("email", "webhook"), True),
    ]
    with pytest.raises(AlertRulesError) as info:
        validate_rules(
            [
                {"id": "Bad Id", "kind": "over_allocated"},
                {"id": "x", "kind": "sometimes"},
                {"id": "x", "kind": "over_allocated", "threshold": 3},
                {"id": "d", "kind": "deadline_within"},
                {"id": "d2", "kind": "deadline_within", "threshold": 4.5},
                {"id": "u", "kind": "under_used", "threshold": 120},
                {"id": "i", "kind": "idle_cost_above", "threshold": "lots", "channels": ["sms"]},
                {"id": "e", "kind": "account_failed", "enabled": "perhaps", "colour": "red"},
                "not a rule",
            ]
        )
    assert isinstance(info.value, ConfigError)  # the CLI exits 1 on it
    assert info.value.problems == [
        "rule 1, id: 'Bad Id' is not a rule id (lower-case letters, digits, - and _, up to 64)",
        (
            "rule 2 (x), kind: 'sometimes' is not one of under_used, free_seats_below, "
            "over_allocated, "
            "deadline_within, account_failed, idle_cost_above, reclaimable_cost_above"
        ),
        "rule 3 (x), id: already used by rule 2",
        "rule 3 (x), threshold: over_allocated takes no threshold",
        "rule 4 (d), threshold: deadline_within needs a number (days)",
        "rule 5 (d2), threshold: 4.5 is not a whole number of days",
        "rule 6 (u), threshold: 120 is outside 0 to 100 % utilization",
        "rule 7 (i), threshold: 'lots' is not a number",
        "rule 7 (i), channels: ['sms']: use any of email, webhook",
        "rule 8: unknown setting 'colour'",
        "rule 8 (e), enabled: 'perhaps' is not true or false",
        "rule 9: not a rule",
    ]


# -------------------------------------------------------------- evaluation


def by_rule(alerts):
    out = {}
    for a in alerts:
        out.setdefault(a.rule_id, []).append(a)
    return out


def test_license_rules_hand_computed_and_free_licenses_never_alert_on_cost_or_use():
    rules = [
        AlertRule("under", "under_used"),
        AlertRule("under-50", "under_used", 50),
        AlertRule("over", "over_allocated"),
        AlertRule("over-all", "over_allocated", paid_only=False),
        AlertRule("few", "free_seats_below", 3),
        AlertRule("idle", "idle_cost_above", 7000),
        AlertRule("off", "over_allocated", enabled=False),
    ]
    got = by_rule(evaluate(rules, table(), None, None, TODAY))
    # Under-used at the dashboard's threshold (70%): GitHub Enterprise 30%, Acrobat 33.3%. Not
    # the free
    # GitHub (1%), not Zoom Rooms (assigned not reported).
    # An account is named as the dashboard names it: integration · tenant · the start of its ID.
    assert [a.title for a in got["under"]] == [
        "Under-used: Github: GitHub Enterprise (organization acme, account Github · t1 · gh-1)",
        "Under-used: Adobe: Acrobat Pro (account Adobe · t1 · ad-1)",
    ]
    assert got["under"][0].detail == (
        "12 of 40 seats assigned (30.0%), below the under-used threshold. Annual cost of "
        "unassigned "
        "seats: 7,056.00 USD. Potential annual savings at 14 seats: 6,552.00 USD."
    )
    # Acrobat is priced in GBP without a rate: not known, never 0.
    assert got["under"][1].detail == (
        "10 of 30 seats assigned (33.3%), below the under-used threshold. Annual cost of "
        "unassigned "
        "seats: not known (no price or no exchange rate). Potential annual savings at 11 seats: "
        "not known "
        "(no price or no exchange rate)."
    )
    assert [a.license_id for a in got["under-50"]] == ["g-1", "a-1"]
    # Over-allocated: paid Sales Cloud (88 of 80); the free Chatter only when the rule says all.
    assert [a.license_id for a in got["over"]] == ["s-1"]
    assert got["over"][0].detail == (
        "88 seats assigned, 80 bought: 8 seats beyond those bought. "
        "Annual true-up exposure: 15,840.00 USD."
    )
    assert [a.license_id for a in got["over-all"]] == ["s-1", "s-2"]
    # Few unassigned seats: Zoom Webinars (2 of 50; paid because it has a price). Over-allocated
    # rows
    # are the other rule's; free GitHub is paid_only's.
    assert [(a.license_id, a.detail) for a in got["few"]] == [
        ("z-3", "2 seats of 50 not assigned (48 assigned), fewer than 3.")
    ]
    # Idle spend above 7000: GitHub Enterprise 28 x 252 = 7056; Acrobat has no converted cost.
    assert [(a.license_id, a.detail) for a in got["idle"]] == [
        (
            "g-1",
            "Annual cost of unassigned seats 7,056.00 USD (28 seats of 40), above 7,000.00 USD.",
        )
    ]
    assert "off" not in got
    assert got["under"][0].key == "under:github:gh-1:acme::g-1"


def test_account_failures_alert_with_the_fetch_layer_s_rule():
    got = evaluate([AlertRule("acct", "account_failed")], None, accounts(), None, TODAY)
    assert [(a.key, a.severity, a.title, a.detail) for a in got] == [
        (
            "acct:zoom:zm-2",
            "critical",
            "Account Zoom · no tenant · zm-2 needs reauthorization",
            "Zoom refused the stored refresh token. Reconnect this account in Truto.",
        ),
        (
            "acct:pagerduty:pd-1",
            "critical",
            "Account PagerDuty · no tenant · pd-1 failed",
            "The last sync of this account ended: failed.",
        ),
    ]


def test_deadline_alerts_come_from_the_renewals():
    lic = table()
    contracts = load_contracts(
        contracts_csv(
            "GitHub,gh-1,,,,2027-01-31,annual,true,30,,,,,",  # deadline 2027-01-01: in 30 days
            "Salesforce,,s-1,,,2026-12-10,annual,true,30,,,,,",  # deadline passed, renews in 8 days
            "Zoom,,,,,2027-01-15,annual,true,,,,,,",  # no notice: renewal in 44 days
            "Adobe,,,,,2027-03-01,annual,true,10,,,,,",  # deadline in 79 days: outside
        )
    )
    ren = renewals(lic, contracts, TODAY, 120)
    got = evaluate([AlertRule("d60", "deadline_within", 60)], lic, None, ren, TODAY)
    assert [(a.key, a.severity, a.title) for a in got] == [
        (
            "d60:salesforce%7C%7Cid%3As-1:renewal:2026-12-10",
            "warning",
            "Renewal 2026-12-10 (in 8 days): Salesforce: Sales Cloud (account sf-1)",
        ),
        (
            "d60:github%7Cgh-1%7C:opt_out:2027-01-01",
            "warning",
            (
                "Opt-out deadline 2027-01-01 (in 30 days): Github: GitHub Enterprise, GitHub Free "
                "(account gh-1)"
            ),
        ),
        (
            "d60:zoom%7C%7C:renewal:2027-01-15",
            "warning",
            (
                "Renewal 2027-01-15 (in 44 days): Zoom: Zoom Rooms, Zoom Webinars, Zoom Workplace "
                "(account zm-1)"
            ),
        ),
    ]
    assert got[1].detail == (
        "Give notice by 2027-01-01; the contract renews on 2027-01-31. GitHub Enterprise (acme): "
        "Cut 26 "
        "seats before 2027-01-01 (opt-out deadline). GitHub Free: Free license: renews at no "
        "cost on "
        "2027-01-31."
    )
    assert got[0].detail.startswith(
        "Renews on 2026-12-10; the opt-out deadline passed on 2026-11-10. "
    )
    # Two weeks or less before an opt-out deadline is critical.
    soon = evaluate(
        [AlertRule("d60", "deadline_within", 60)],
        lic,
        None,
        renewals(lic, contracts, date(2026, 12, 20), 120),
        date(2026, 12, 20),
    )
    assert [a.severity for a in soon if "opt_out" in a.key] == ["critical"]


def test_not_reported_counts_never_trigger_numeric_rules():
    lic = with_metrics(
        [license_row("zoom", "z-1", "Zoom Workplace", None, None, account_id="zm-1")], BOOK
    )
    rules = [
        AlertRule("u", "under_used", 100),
        AlertRule("f", "free_seats_below", 10**9),
        AlertRule("o", "over_allocated", paid_only=False),
        AlertRule("i", "idle_cost_above", 0),
    ]
    assert evaluate(rules, lic, None, None, TODAY) == []


def test_hostile_vendor_text_loses_its_control_characters():
    lic = with_metrics(
        [license_row("github", "g-1", "Evil\r\nBcc: x@y\u202e<script>", 1, 10)], BOOK
    )
    (alert,) = evaluate([AlertRule("u", "under_used")], lic, None, None, TODAY)
    assert (
        alert.title == "Under-used: Github: Evil  Bcc: x@y <script> (account Github · t1 · acct-1)"
    )
    assert "\r" not in alert.title + alert.detail and "\n" not in alert.title + alert.detail


def test_keys_keep_subjects_apart():
    assert alert_key("r", "a:b", "c") != alert_key("r", "a", "b:c")
    assert alert_key("r", None, "x") == "r::x"


# ------------------------------------------------------------ state machine


def alert(key):
    return Alert(key, "r", "over_allocated", "warning", key, "")


def test_an_alert_fires_once_when_it_starts_and_again_only_after_it_cleared():
    a, b = alert("a"), alert("b")
    fired, still, cleared = transition(set(), [a, b])
    assert (fired, still, cleared) == ([a, b], [], [])
    fired, still, cleared = transition({"a", "b"}, [a, b])  # still holds: silent
    assert (fired, still, cleared) == ([], [a, b], [])
    fired, still, cleared = transition({"a", "b"}, [b])  # a cleared
    assert (fired, still, cleared) == ([], [b], ["a"])
    fired, still, cleared = transition({"b"}, [a, b])  # a starts again: fires again
    assert (fired, still, cleared) == ([a], [b], [])


def test_a_whole_sync_cycle_with_evaluate():
    lic = table()
    rules = [AlertRule("over", "over_allocated")]
    first = evaluate(rules, lic, None, None, TODAY)
    fired, _, _ = transition(set(), first)
    open_now = {x.key for x in fired}
    assert len(fired) == 1
    fired, still, _ = transition(open_now, evaluate(rules, lic, None, None, TODAY))
    assert fired == [] and [x.key for x in still] == list(open_now)


# ------------------------------------------------------------------ digest


def test_the_digest_has_idle_spend_deadlines_and_open_alerts():
    lic = table()
    contracts = load_contracts(
        contracts_csv(
            "GitHub,gh-1,,,,2027-01-31,annual,true,30,,,,,", "Zoom,,,,,2027-03-15,annual,true,,,,,,"
        )
    )
    ren = renewals(lic, contracts, TODAY, 120)
    open_alerts = evaluate(list(DEFAULT_RULES), lic, accounts(), ren, TODAY)
    notice = digest(lic, ren, open_alerts, TODAY, top_n=3, deadline_days=30)
    assert notice.title == "Weekly license digest, 2026-12-02"
    idle, deadlines, alerts = notice.sections
    # Idle spend of paid licenses in the reporting currency: GitHub 28 x 252; Zoom Webinars 2 x 150.
    assert idle.items == (
        ("Github: GitHub Enterprise", "7,056.00 USD a year on 28 seats not assigned"),
        ("Zoom: Zoom Webinars", "300.00 USD a year on 2 seats not assigned"),
    )
    assert deadlines.items == (
        (
            "Github: GitHub Enterprise (acme)",
            (
                "opt-out deadline 2027-01-01, renews 2027-01-31: Cut 26 seats "
                "before 2027-01-01 (opt-out deadline)"
            ),
        ),
        (
            "Github: GitHub Free",
            (
                "opt-out deadline 2027-01-01, renews 2027-01-31: Free license: renews at no "
                "cost on 2027-01-31"
            ),
        ),
    )
    assert [h for h, _ in alerts.items] == [
        "[CRITICAL] Account Zoom · no tenant · zm-2 needs reauthorization",
        "[CRITICAL] Account PagerDuty · no tenant · pd-1 failed",
        "[WARNING] Over-allocated: Salesforce: Sales Cloud (account Salesforce · t1 · sf-1)",
        (
            "[WARNING] Opt-out deadline 2027-01-01 (in 30 days): Github: GitHub Enterprise, "
            "GitHub Free "
            "(account GitHub · no tenant · gh-1)"
        ),
        "[INFO] Under-used: Github: GitHub Enterprise (organization acme, account GitHub · no tenant · gh-1)",
        "[INFO] Under-used: Adobe: Acrobat Pro (account Adobe · t1 · ad-1)",
    ]


def test_an_empty_digest_says_so():
    lic = with_metrics([], [])
    notice = digest(lic, None, [], TODAY)
    assert [(s.heading, s.items, s.empty) for s in notice.sections] == [
        ("Top 5 idle spend (paid licenses)", (), "No idle spend on paid licenses with a price."),
        ("Deadlines in the next 30 days", (), "No renewals or opt-out deadlines."),
        ("Open alerts", (), "No open alerts."),
    ]


def test_reclaimable_cost_rule_fires_per_paid_license_above_the_amount():
    import pandas as pd

    from lib.analytics.activity import reclaim
    from lib.analytics.metrics import MetricOptions
    from lib.analytics.reclaim_views import with_reclaim_cost
    from tests.license_tables import FETCHED, license_row, seat_row, seat_table, with_metrics

    lic = with_metrics(
        [
            license_row("adobe", "L1", "Creative Cloud", 3, 4),
            license_row("adobe", "L2", "Express", 2, 9, is_paid=False),
            license_row("adobe", "L3", "Stock", 1, 1),
        ],
        [
            ("adobe", "L1", None, 100.0, "USD", "monthly"),
            ("adobe", "L3", None, 10.0, "USD", "annual"),
        ],
    )
    old = FETCHED - pd.Timedelta(days=200)
    seats = seat_table(
        [
            seat_row("u1", "L1", user_last_active_at=old),
            seat_row("u2", "L1", user_status="deleted"),
            seat_row("u3", "L1", user_last_active_at=FETCHED),
            seat_row("u4", "L2", user_last_active_at=old),
            seat_row("u5", "L3", user_last_active_at=old),
        ]
    )
    table = with_reclaim_cost(lic, reclaim(seats, lic, MetricOptions()))
    assert table["reclaimable_annual_cost_reporting"].tolist() == [2400.0, 0.0, 10.0]
    rules = [AlertRule("rec", "reclaimable_cost_above", 1000)]
    got = evaluate(rules, table, None, None, TODAY)
    assert [(a.license_id, a.title) for a in got] == [
        ("L1", "Reclaimable seats: Adobe: Creative Cloud (account Adobe · t1 · acct-1)")
    ]
    assert (
        got[0].detail.startswith("2 seats assigned but unused") and "2,400.00 USD" in got[0].detail
    )
    assert not evaluate(
        [AlertRule("rec", "reclaimable_cost_above", 5000)], table, None, None, TODAY
    )
