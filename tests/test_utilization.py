"""The Utilization page's groupings (lib.analytics.utilization) on hand-computed rows."""

from __future__ import annotations

import pandas as pd

from lib.analytics import utilization as U
from lib.analytics.metrics import MetricOptions
from tests.license_tables import license_row, with_metrics

ROWS = [
    # GitHub: one account, two organizations; Slack: two accounts, no organizations
    license_row("github", "gh-ent", "Enterprise", 40, 50, "acct-gh", organization="acme"),
    license_row("github", "gh-cop", "Copilot", 9, 10, "acct-gh", organization="labs"),
    license_row("github", "gh-ent2", "Enterprise", 5, 5, "acct-gh", organization="labs"),
    license_row("slack", "sl-pro", "Pro", 70, 100, "acct-sl1"),
    license_row("slack", "sl-pro", "Pro", 3, None, "acct-sl2"),
    license_row("slack", "sl-x", None, 1, 2, "acct-sl2"),
]


def rows() -> pd.DataFrame:
    return with_metrics(ROWS, [])


def by(frame: pd.DataFrame, column: str) -> dict:
    return {
        k: (int(a) if pd.notna(a) else None, int(t) if pd.notna(t) else None)
        for k, a, t in zip(frame[column], frame["assigned_seats"], frame["total_seats"])
    }


def test_seats_per_integration_add_up_the_counts_each_license_reports():
    groups = U.seat_groups(rows(), "Integration", paid_only=False)
    assert groups.label == "integration_label" and groups.has_counts
    # GitHub 40+9+5 of 50+10+5; Slack assigned 70+3+1, bought 100+2 (the 3-seat row reports no total)
    assert by(groups.rows, "integration_label") == {"Github": (54, 65), "Slack": (74, 102)}
    assert list(groups.export().columns[:2]) == ["integration_label", "licenses"]


def test_seats_per_license_are_the_top_licenses_by_seats_bought_named_with_their_integration():
    groups = U.seat_groups(rows(), "License", paid_only=False, top=2)
    assert list(groups.rows["label"]) == ["Pro (Slack)", "Enterprise (Github)"]
    assert by(groups.rows, "label") == {"Pro (Slack)": (73, 100), "Enterprise (Github)": (45, 55)}
    everything = U.seat_groups(rows(), "License", paid_only=False)
    assert "(no name) (Slack)" in set(everything.rows["label"])
    assert list(everything.export().columns[:2]) == ["integration_label", "license_name"]


def test_no_seat_counts_means_nothing_to_draw():
    bare = with_metrics([license_row("atlassian", "j", "Jira", None, None)], [])
    assert not U.seat_groups(bare, "Integration", paid_only=False).has_counts


def test_the_drill_down_goes_integration_account_organization_license():
    df, opts = rows(), MetricOptions()
    top = U.drill_down(df, opts)
    assert (top.column, top.level) == ("integration_label", "Integration")
    assert by(top.rows, "integration_label") == {"Github": (54, 65), "Slack": (74, 102)}
    accounts = U.drill_down(df, opts, "Slack")
    assert (accounts.column, accounts.level) == ("account_id", "Account")
    assert by(accounts.rows, "account_id") == {"acct-sl1": (70, 100), "acct-sl2": (4, 2)}
    orgs = U.drill_down(df, opts, "Github", "acct-gh")
    assert orgs.level == "Organization"
    assert by(orgs.rows, "organization_name") == {"acme": (40, 50), "labs": (14, 15)}
    licenses = U.drill_down(df, opts, "Github", "acct-gh", "labs")
    assert licenses.level == "License"
    assert by(licenses.rows, "license_name") == {"Copilot": (9, 10), "Enterprise": (5, 5)}
    assert list(licenses.rows.columns) == ["license_name", *U.DRILL_COLUMNS]


def test_an_account_without_organizations_drills_straight_to_its_licenses():
    df = rows()
    assert U.drill_choices(U.drill_scope(df, "Slack", "acct-sl2"), "organization_name") == [U.ALL]
    down = U.drill_down(df, MetricOptions(), "Slack", "acct-sl2")
    assert down.level == "License" and len(down.rows) == 2


def test_drill_choices_start_with_all_and_leave_out_empty_values():
    df = rows()
    assert U.drill_choices(df, "integration_label") == [U.ALL, "Github", "Slack"]
    assert U.drill_choices(U.drill_scope(df, "Github"), "account_id") == [U.ALL, "acct-gh"]
    assert U.drill_choices(df, "license_name") == [U.ALL, "Copilot", "Enterprise", "Pro"]


def test_the_drill_down_counts_what_the_seat_tiles_count():
    # Issue 22, point 6: the drill-down counted free licenses while the tiles are paid-only.
    df = with_metrics(
        [
            *ROWS,
            license_row("github", "gh-free", "Free", 3, 500, "acct-gh", is_paid=False),
            license_row("slack", "sl-?", "Unknown", 1, 40, "acct-sl1", is_paid=None),  # no price
        ],
        [],
    )
    every = U.drill_down(df, MetricOptions())
    assert by(every.rows, "integration_label") == {"Github": (57, 565), "Slack": (75, 142)}
    paid = U.drill_down(df, MetricOptions(), paid_only=True)
    # the free tier and the license neither marked paid nor priced (not known) are left out
    assert by(paid.rows, "integration_label") == {"Github": (54, 65), "Slack": (74, 102)}
