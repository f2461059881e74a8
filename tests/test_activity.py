"""Seat activity classes, reclaim and per-license activity, on hand-computed rows (lib.analytics.activity)."""

from __future__ import annotations

import pandas as pd
import pytest

from lib.analytics import activity as A
from lib.analytics.metrics import MetricOptions
from tests.license_tables import FETCHED, license_row, seat_row, seat_table, with_metrics


def ago(days: float) -> pd.Timestamp:
    return FETCHED - pd.Timedelta(days=days)


LONG_AGO = "2025-01-01T00:00:00Z"
SEATS = [
    seat_row("u-active", "L1", license_last_active_at=ago(11)),
    seat_row("u-45", "L1", user_last_active_at=ago(45)),
    seat_row("u-120", "L1", user_last_login_at=ago(120)),
    seat_row("u-400", "L1", user_last_active_at=ago(400), user_last_login_at=ago(1)),
    seat_row("u-never", "L1", user_created_at=LONG_AGO),
    seat_row("u-new", "L1", user_created_at=ago(10)),
    seat_row("u-departed", "L1", user_status="deleted", user_last_active_at=ago(5)),
    seat_row("u-invited", "L1", user_status="invited", user_created_at="2026-01-01T00:00:00Z"),
    seat_row("u-invited-new", "L1", user_status="invited", user_created_at=ago(6)),
    seat_row("u-boundary", "L1", user_last_active_at=ago(90)),
    seat_row(
        "u-noact", "L5", account_id="acct-2", activity_reported=False, user_created_at=LONG_AGO
    ),
    seat_row("u-free", "L2", user_last_active_at=ago(200)),
    seat_row("u-unpriced", "L3", user_last_active_at=ago(200)),
    seat_row("u-eur", "L4", user_last_active_at=ago(200)),
]
EXPECTED = {
    "u-active": ("active", 11),
    "u-45": ("active", 45),
    "u-120": ("inactive", 120),
    "u-400": ("inactive", 400),  # the user's last_active_at comes before last_login_at
    "u-never": ("never_active", None),
    "u-new": ("not_reported", None),
    "u-departed": ("departed", 5),
    "u-invited": ("invited", None),
    "u-invited-new": ("not_reported", None),
    "u-boundary": ("active", 90),
    "u-noact": ("not_reported", None),  # the account reports no activity: never "never active"
    "u-free": ("inactive", 200),
    "u-unpriced": ("inactive", 200),
    "u-eur": ("inactive", 200),
}


def licenses():
    return with_metrics(
        [
            license_row("adobe", "L1", "Creative Cloud", 12, 20),
            license_row("adobe", "L2", "Express", 5, 50, is_paid=False),
            license_row("adobe", "L3", "Stock", 5, 5),
            license_row("adobe", "L4", "Acrobat", 5, 5),
            license_row("adobe", "L5", "Creative Cloud", 1, 10, account_id="acct-2"),
            license_row("adobe", "L6", "Substance", 3, 3),
        ],
        [
            ("adobe", "L1", None, 10.0, "USD", "monthly"),
            ("adobe", "L4", None, 100.0, "EUR", "annual"),
            ("adobe", "L5", None, 10.0, "USD", "monthly"),
        ],
        fx_rates={"EUR": 1.1},
    )


def test_classes_first_match_in_order():
    out = A.classify(seat_table(SEATS), 90).set_index("user_id")
    for uid, (cls, days) in EXPECTED.items():
        assert out.loc[uid, "activity_class"] == cls, uid
        got = out.loc[uid, "days_inactive"]
        assert (pd.isna(got) and days is None) or got == days, uid


def test_per_license_last_active_wins_over_the_users_times():
    rows = [seat_row("u", "L1", license_last_active_at=ago(3), user_last_active_at=ago(300))]
    out = A.classify(seat_table(rows))
    assert out["last_active_at"].item() == ago(3) and out["activity_class"].item() == "active"


def test_threshold_moves_the_line():
    out = A.classify(seat_table(SEATS), 30).set_index("user_id")
    assert out.loc["u-45", "activity_class"] == "inactive"
    assert out.loc["u-active", "activity_class"] == "active"
    assert out.loc["u-new", "activity_class"] == "not_reported"  # created 10 days ago
    out = A.classify(seat_table(SEATS), 500).set_index("user_id")
    assert out.loc["u-400", "activity_class"] == "active"
    assert out.loc["u-invited", "activity_class"] == "not_reported"  # invited 334 days ago


@pytest.mark.parametrize("bad", [0, -5, 1.5, "ninety", True, float("nan")])
def test_threshold_must_be_whole_days(bad):
    with pytest.raises(ValueError):
        A.validate_threshold(bad)


def test_reclaim_costs_and_summary():
    priced = A.reclaim(seat_table(SEATS), licenses(), MetricOptions(fx_rates={"EUR": 1.1}))
    p = priced.set_index("user_id")
    reclaimable = set(p.index[p["reclaimable"].to_numpy(dtype=bool)])
    assert reclaimable == {
        "u-120",
        "u-400",
        "u-never",
        "u-departed",
        "u-invited",
        "u-free",
        "u-unpriced",
        "u-eur",
    }
    assert p.loc["u-120", "annual_cost"] == 120.0 and p.loc["u-120", "currency"] == "USD"
    assert p.loc["u-active", "annual_cost"] == 0.0  # not reclaimable: no reclaimable cost
    assert p.loc["u-free", "annual_cost"] == 0.0 and bool(p.loc["u-free", "is_free_seat"])
    assert pd.isna(p.loc["u-unpriced", "annual_cost"])  # unpriced stays unpriced
    assert p.loc["u-eur", "annual_cost"] == 100.0 and p.loc["u-eur", "currency"] == "EUR"
    assert p.loc["u-eur", "annual_cost_reporting"] == 110.0
    s = A.reclaim_summary(priced, "USD")
    assert s.seats == 14 and s.reclaimable_seats == 8
    assert s.reclaimable_annual_cost == 5 * 120.0 + 110.0
    assert s.unpriced_reclaimable_seats == 1 and s.unconverted_reclaimable_seats == 0
    assert s.departed_paid_users == 1
    assert s.seats_with_activity == 13 and s.activity_share_pct == 92.9
    table = A.reclaimable_seats(priced)
    assert set(table["user_id"].iloc[:5]) == {
        "u-120",
        "u-400",
        "u-never",
        "u-departed",
        "u-invited",
    }
    assert table["user_id"].iloc[-1] == "u-unpriced"  # unpriced last
    assert list(table["annual_cost_reporting"].iloc[:5]) == [120.0] * 5


def test_no_rate_leaves_the_reporting_cost_empty_not_zero():
    priced = A.reclaim(seat_table(SEATS), licenses(), MetricOptions())  # no EUR rate
    p = priced.set_index("user_id")
    assert p.loc["u-eur", "annual_cost"] == 100.0 and pd.isna(
        p.loc["u-eur", "annual_cost_reporting"]
    )
    s = A.reclaim_summary(priced, "USD")
    assert s.reclaimable_annual_cost == 600.0 and s.unconverted_reclaimable_seats == 1


def test_exempt_users_are_not_reclaimable():
    priced = A.reclaim(seat_table(SEATS), licenses(), exempt_users=["U-120@example.com", "u-never"])
    p = priced.set_index("user_id")
    assert not p.loc["u-120", "reclaimable"] and bool(p.loc["u-120", "exempt"])
    assert not p.loc["u-never", "reclaimable"]
    assert A.reclaim_summary(priced, "USD").reclaimable_seats == 6


def test_exempt_licenses_of_one_integration_or_any():
    seats = seat_table(SEATS)
    priced = A.reclaim(seats, licenses(), exempt_licenses=[("Adobe", "L2"), (None, "L3")])
    p = priced.set_index("user_id")
    assert bool(p.loc["u-free", "exempt"]) and bool(p.loc["u-unpriced", "exempt"])
    assert bool(p.loc["u-eur", "reclaimable"])  # L4 is not exempt
    other = A.reclaim(seats, licenses(), exempt_licenses=[("slack", "L2")])
    assert bool(other.set_index("user_id").loc["u-free", "reclaimable"])  # another integration's L2


def test_exemption_lists_from_the_stored_table():
    table = pd.DataFrame(
        {
            "kind": ["user", "license", "license", "user"],
            "value": ["Bot@Acme.com", "L1", "L2", None],
            "integration": [None, "okta", None, None],
        }
    )
    users, lics = A.exemption_lists(table)
    assert users == {"bot@acme.com"} and lics == {("okta", "L1"), (None, "L2")}


def test_seat_matches_its_organization_and_unknown_licenses_stay_unpriced():
    lic = with_metrics(
        [
            license_row("github", "ent", "Enterprise", 1, 2, organization="o1"),
            license_row("github", "ent", "Enterprise", 1, 2, organization="o2"),
        ],
        [("github", "ent", None, 20.0, "USD", "monthly")],
    )
    rows = [
        seat_row("a", "ent", organization_id="o2", user_last_active_at=ago(200)),
        seat_row("b", "ent", user_last_active_at=ago(200)),  # which organization? not matched
        seat_row("c", "gone", license_known=False, user_last_active_at=ago(200)),
    ]
    at = A.match_licenses(seat_table(rows), lic)
    assert at.tolist() == [1, -1, -1]
    priced = A.reclaim(seat_table(rows), lic).set_index("user_id")
    assert priced.loc["a", "annual_cost"] == 240.0
    assert pd.isna(priced.loc["b", "annual_cost"]) and pd.isna(priced.loc["c", "annual_cost"])


def test_license_activity_figures_and_both_seat_counts():
    classified = A.classify(seat_table(SEATS))
    out = A.license_activity(classified, licenses()).set_index(["account_id", "license_id"])
    l1 = out.loc[("acct-1", "L1")]
    assert l1["users_assigned_seats"] == 10 and l1["assigned_seats"] == 12
    assert l1["assigned_difference"] == -2
    assert (l1["active_seats"], l1["inactive_seats"], l1["departed_seats"]) == (3, 3, 1)
    assert (l1["invited_seats"], l1["activity_not_reported_seats"]) == (1, 2)
    assert l1["active_utilization_pct"] == 15.0
    l5 = out.loc[("acct-2", "L5")]  # its account reports no activity
    assert l5["users_assigned_seats"] == 1 and l5["activity_not_reported_seats"] == 1
    assert pd.isna(l5["active_seats"]) and pd.isna(l5["active_utilization_pct"])
    l6 = out.loc[("acct-1", "L6")]  # no seat rows at all: not reported, never 0
    assert pd.isna(l6["users_assigned_seats"]) and pd.isna(l6["active_seats"])
    assert pd.isna(l6["assigned_difference"])


def test_empty_seat_table():
    from lib.truto.users import empty_seat_table

    priced = A.reclaim(empty_seat_table(), licenses())
    assert len(priced) == 0
    s = A.reclaim_summary(priced, "USD")
    assert (
        s.reclaimable_seats == 0
        and s.reclaimable_annual_cost is None
        and s.activity_share_pct is None
    )


def test_reclaimable_seats_order_costliest_then_integration_and_name_then_as_listed():
    lic = with_metrics(
        [
            license_row("zoom", "Z", "Pro", 5, 5),
            license_row("adobe", "B", "Stock", 5, 5),
            license_row("adobe", "A", "Acrobat", 5, 5),
            license_row("adobe", "C", "Cloud", 5, 5),
            license_row("adobe", "N", "No price", 5, 5),
        ],
        [
            ("zoom", "Z", None, 10.0, "USD", "monthly"),
            ("adobe", "B", None, 10.0, "USD", "monthly"),
            ("adobe", "A", None, 10.0, "USD", "monthly"),
            ("adobe", "C", None, 30.0, "USD", "monthly"),
        ],
    )
    names = {"Z": "Pro", "B": "Stock", "A": "Acrobat", "C": "Cloud", "N": "No price"}

    def seat(user, lic_id, days):
        zoom = {"integration": "zoom", "integration_label": "Zoom"} if lic_id == "Z" else {}
        return seat_row(
            user, lic_id, license_name=names[lic_id], user_last_active_at=ago(days), **zoom
        )

    rows = [
        seat("u9", "N", 200),
        seat("u8", "Z", 200),
        seat("u7", "B", 200),
        seat("u6", "A", 200),
        seat("u5", "A", 300),
        seat("u4", "C", 200),
        seat("u3", "C", 5),  # active: not reclaimable
    ]
    table = A.reclaimable_seats(A.reclaim(seat_table(rows), lic))
    # 360 a year first; then the 120s by integration label and license name (Adobe Acrobat,
    # Adobe Stock, Zoom Pro), the two Acrobat seats as listed; the unpriced seat last.
    assert table["user_id"].tolist() == ["u4", "u6", "u5", "u7", "u8", "u9"]
    assert table["annual_cost"].tolist()[:5] == [360.0, 120.0, 120.0, 120.0, 120.0]
    assert pd.isna(table["annual_cost"].iloc[-1])


def test_seat_without_license_id_matches_no_license_without_id():
    lic = with_metrics(
        [license_row("adobe", None, "Unnamed", 5, 5), license_row("adobe", "L1", "Plan", 5, 5)],
        [("adobe", "L1", None, 10.0, "USD", "monthly")],
    )
    rows = [seat_row("a", None, user_last_active_at=ago(200)), seat_row("b", "L1")]
    assert A.match_licenses(seat_table(rows), lic).tolist() == [-1, 1]
