"""What a finance user reads (issue 22, point 10): the columns that carry each table's point come
first, tile labels fit, and accounts are named as the dashboard names them (never by a whole UUID)
in alerts, calendar events, the change history and the contract editor. (The spend notes in words:
tests/test_dashboard.py; the pages' text and cut labels in the browser: tests/test_browser_views.py.)"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pandas as pd

from lib.analytics import reclaim_views as RV
from lib.analytics import renewal_views as R
from lib.analytics import views as D
from lib.analytics.alert_rules import AlertRule
from lib.analytics.alerts import evaluate
from lib.analytics.contracts import load_contracts
from lib.analytics.ical import to_ics
from lib.analytics.renewals import renewals
from tests.license_tables import account_table, license_row, with_metrics

TODAY = date(2026, 12, 2)
ZOOM = "7d383c7a-068a-505e-bab4-623667e26571"
GITHUB = "f7a20649-1c2d-5e3f-8a9b-0c1d2e3f4a5b"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BOOK = [
    ("GitHub", "", "GitHub Enterprise", 21, "USD", "monthly"),
    ("Zoom", "", "Zoom Workplace", 150, "USD", "annual"),
]


def shown(columns) -> list[str]:
    """The columns ui.table shows by default: the machine names and IDs wait behind "More columns"."""
    return [c for c in columns if c not in D.PLUMBING_COLUMNS]


# ------------------------------------------------------------------ columns in view at 1440 px
# At 1440 px a table has about 1,000 px in view: the license (pinned) and four or five columns.


def test_utilization_shows_the_seats_assigned_and_bought_beside_the_bar():
    first = shown(D.UTILIZATION_COLUMNS)[:5]
    assert first[:3] == ["license_name", "integration_label", "utilization_pct"]
    assert {"assigned_seats", "total_seats"} <= set(first)
    assert first.index("assigned_seats") < shown(D.UTILIZATION_COLUMNS).index("recommended_seats")


def test_reclaim_per_license_shows_the_annual_cost_before_the_split_by_reason():
    cols = shown(RV.LICENSE_SHOWN)
    assert "reclaimable_annual_cost_reporting" in cols[:5]
    assert cols.index("reclaimable_annual_cost_reporting") < cols.index("inactive_reclaimable")


def test_accounts_show_what_to_do_before_the_long_what_happened():
    cols = shown(D.ACCOUNT_VIEW_COLUMNS)
    assert cols[:3] == ["account_id", "outcome", "action"]
    assert cols.index("action") < cols.index("message")


def test_renewals_show_what_to_do_the_saving_and_the_seats_first():
    cols = shown(R.RENEWAL_SHOWN)
    assert {"what_to_do", "potential_annual_savings_reporting", "seat_change"} <= set(cols[:7])
    assert cols.index("seat_change") < cols.index("days_to_renewal")


def test_renewal_tile_labels_are_short_and_the_period_is_in_the_note():
    tiles = R.renewal_tiles(ics_renewals(), TODAY, 90, "USD")
    by_label = {t.label: t for t in tiles}
    deadlines, saving = by_label["Opt-out deadlines"], by_label["Saving at renewal"]
    assert deadlines.note and deadlines.note.startswith("in the next 90 days")
    assert "90 days" in deadlines.help and "90 days" in saving.help
    assert all(len(t.label) <= 28 for t in tiles), [t.label for t in tiles]


# ------------------------------------------------------------------ accounts by name, not UUID


def accounts():
    return account_table(
        [
            {
                "account_id": ZOOM,
                "integration": "zoom",
                "integration_label": "Zoom",
                "tenant_id": "acme-europe",
                "outcome": "needs_reauth",
                "message": "Zoom refused the stored refresh token.",
            },
            {
                "account_id": GITHUB,
                "integration": "github",
                "integration_label": "GitHub",
                "tenant_id": "acme-corp",
                "outcome": "ok",
            },
        ]
    )


def licenses():
    return with_metrics(
        [
            license_row("github", "g-1", "GitHub Enterprise", 12, 40, account_id=GITHUB),
            license_row("zoom", "z-1", "Zoom Workplace", 140, 150, account_id=ZOOM),
        ],
        BOOK,
    )


def ics_renewals():
    header = (
        "integration,account_id,license_id,license_name,contract_start,contract_end,term,"
        "auto_renew,notice_days,committed_seats,true_up_date,contract_value,currency,source\n"
    )
    rows = f"GitHub,{GITHUB},,,,2027-01-31,annual,true,30,,,,,\nZoom,{ZOOM},,,,2027-01-15,annual,true,,,,,,\n"
    return renewals(licenses(), load_contracts((header + rows).encode()), TODAY, 120)


def test_alerts_name_accounts_by_integration_tenant_and_the_start_of_the_id():
    rules = [
        AlertRule("acct", "account_failed"),
        AlertRule("under", "under_used", 50),
        AlertRule("d", "deadline_within", 60),
    ]
    got = evaluate(rules, licenses(), accounts(), ics_renewals(), TODAY)
    titles = [a.title for a in got]
    assert titles == [
        "Account Zoom · acme-europe · 7d383c7a needs reauthorization",
        "Under-used: Github: GitHub Enterprise (account GitHub · acme-corp · f7a20649)",
        "Opt-out deadline 2027-01-01 (in 30 days): Github: GitHub Enterprise "
        "(account GitHub · acme-corp · f7a20649)",
        "Renewal 2027-01-15 (in 44 days): Zoom: Zoom Workplace (account Zoom · acme-europe · 7d383c7a)",
    ]
    assert not any(UUID.search(a.title + a.detail) for a in got)
    assert {a.account_id for a in got} == {ZOOM, GITHUB}  # the alert keeps the full ID


def test_calendar_titles_name_accounts_and_never_show_a_whole_uuid():
    names = D.account_names(accounts())
    text = to_ics(ics_renewals(), now=datetime(2026, 12, 2, tzinfo=UTC), account_names=names)
    unfolded = text.replace("\r\n ", "")
    summaries = re.findall(r"^SUMMARY:([^\r\n]*)", unfolded, flags=re.M)
    assert "Renewal: Zoom: Zoom Workplace (account Zoom · acme-europe · 7d383c7a)" in summaries
    assert not UUID.search(unfolded)
    # Without the names (an account no longer fetched): the start of its ID, still not the UUID.
    bare = to_ics(ics_renewals(), now=datetime(2026, 12, 2, tzinfo=UTC)).replace("\r\n ", "")
    assert "(account 7d383c7a)" in bare and not UUID.search(bare)


def test_change_history_names_the_accounts_of_the_contracts_changed():
    audit = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-12-01T10:00:00Z"]),
            "actor_email": ["cfo@acme.com"],
            "actor_name": [None],
            "actor_role": ["admin"],
            "action": ["contracts"],
            "detail": [
                json.dumps(
                    {
                        "entries_before": 1,
                        "entries_after": 2,
                        "changed": [f"zoom · all licenses (account {ZOOM})"],
                    }
                )
            ],
        }
    )
    named = D.change_history(audit, D.account_names(accounts()))
    assert named["what"].tolist() == [
        "Contracts: 1 → 2 rows; changed zoom · all licenses (account Zoom · acme-europe · 7d383c7a)"
    ]
    bare = D.change_history(audit)
    assert bare["what"].tolist() == [
        "Contracts: 1 → 2 rows; changed zoom · all licenses (account 7d383c7a)"
    ]


def test_the_contract_editor_picks_accounts_by_name_and_keeps_unknown_saved_ids():
    from lib.analytics.labels import account_label
    from lib.ui.renewals import account_choices

    names = D.account_names(accounts())
    contracts = pd.DataFrame({"account_id": pd.array([GITHUB, None, "gone-1"], dtype="string")})
    choices = account_choices(names, contracts)
    assert choices == [ZOOM, GITHUB, "gone-1"]  # the saved IDs stay: nothing changes on save
    assert [account_label(a, names) for a in choices] == [
        "Zoom · acme-europe · 7d383c7a",
        "GitHub · acme-corp · f7a20649",
        "gone-1",
    ]


def test_a_short_account_id_is_named_only_as_a_whole_word():
    """An account id "ar" turned "per year" into "per yeDocuSign · t1 · ar" in the change history."""
    from lib.analytics.labels import name_accounts

    names = {"ar": "DocuSign · t1 · ar"}
    text = "Prices (0 → 1 rows): Adobe · Acrobat Pro (g1) added at 30 USD per year (account ar)"
    assert name_accounts(text, names) == (
        "Prices (0 → 1 rows): Adobe · Acrobat Pro (g1) added at 30 USD per year "
        "(account DocuSign · t1 · ar)"
    )
