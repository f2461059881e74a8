"""What the Reclaim, Utilization and Accounts pages show of seat activity (lib.analytics.reclaim_views),
on hand-computed rows."""

from __future__ import annotations

import pandas as pd

from lib.analytics import reclaim_views as RV
from lib.analytics import views as D
from lib.analytics.activity import reclaim, reclaim_summary
from lib.analytics.metrics import MetricOptions
from tests.license_tables import FETCHED, license_row, seat_row, seat_table, with_metrics


def ago(days: int) -> pd.Timestamp:
    return FETCHED - pd.Timedelta(days=days)


def licenses():
    return with_metrics(
        [
            license_row("adobe", "L1", "Creative Cloud", 6, 10),  # 10 bought, 6 assigned
            license_row("adobe", "L2", "Express", 3, 50, is_paid=False),
            license_row("adobe", "L3", "Acrobat", 2, 2),
        ],
        [
            ("adobe", "L1", None, 10.0, "USD", "monthly"),
            ("adobe", "L3", None, 100.0, "EUR", "annual"),
        ],
        fx_rates={"EUR": 1.1},
    )


SEATS = [
    # L1: 6 assigned by the license; the users listing names 5 holders.
    seat_row("a1", "L1", user_last_active_at=ago(3)),
    seat_row("a2", "L1", user_last_active_at=ago(10)),
    seat_row("i1", "L1", user_last_active_at=ago(200)),
    seat_row("d1", "L1", user_status="deleted", user_last_active_at=ago(2)),
    seat_row("x1", "L1", user_created_at="2020-01-01T00:00:00Z"),  # never active
    seat_row("f1", "L2", user_last_active_at=ago(300)),
    seat_row("e1", "L3", user_last_active_at=ago(100)),
    seat_row("e2", "L3", user_last_active_at=ago(1), account_id="acct-2", tenant_id="t2"),
]


def priced(**kw):
    return reclaim(seat_table(SEATS), licenses(), MetricOptions(fx_rates={"EUR": 1.1}), **kw)


def test_right_sizing_by_activity_keeps_every_seat_not_known_to_be_unused():
    lic = licenses()
    out = RV.with_activity(lic, priced(), MetricOptions(fx_rates={"EUR": 1.1})).set_index(
        "license_id"
    )
    l1 = out.loc["L1"]
    # 6 assigned - 3 reclaimable (inactive i1, departed d1, never active x1) = 3 needed; +10%: 4.
    assert (l1["active_seats"], l1["users_assigned_seats"], l1["assigned_difference"]) == (2, 5, -1)
    assert l1["recommended_seats_by_activity"] == 4 and l1["recommended_seats"] == 7
    # 10 bought - 4 = 6 seats x 120 a year
    assert l1["potential_annual_savings_by_activity"] == 720.0
    assert l1["potential_annual_savings_by_activity_reporting"] == 720.0
    assert pd.isna(out.loc["L2", "recommended_seats_by_activity"])  # free: nothing to save
    l3 = out.loc["L3"]  # 2 assigned, e1 inactive: 1 needed -> 2 with the buffer, nothing to save
    assert l3["recommended_seats_by_activity"] == 2
    assert l3["potential_annual_savings_by_activity"] == 0.0


def test_by_activity_is_not_known_without_activity_data():
    seats = seat_table([seat_row("n1", "L1", activity_reported=False)])
    p = reclaim(seats, licenses(), MetricOptions())
    out = RV.with_activity(licenses(), p, MetricOptions()).set_index("license_id")
    assert pd.isna(out.loc["L1", "active_seats"])
    assert pd.isna(out.loc["L1", "recommended_seats_by_activity"])
    assert pd.isna(out.loc["L1", "potential_annual_savings_by_activity"])


def test_seat_table_is_costliest_first_and_hides_people_unless_allowed():
    p = priced()
    shown = RV.seat_table(p, show_people=True)
    # USD 120 a year each as listed, then EUR 100 (USD 110), then the free seat (0)
    assert shown["user_id"].tolist() == ["i1", "d1", "x1", "e1", "f1"]
    assert shown.loc[shown["user_id"] == "f1", "reclaimable_annual_cost"].item() == 0.0  # free
    hidden = RV.seat_table(p, show_people=False)
    assert not set(RV.PEOPLE_COLUMNS) & set(hidden.columns) and len(hidden) == len(shown)


def test_license_table_counts_reasons_and_sums_cost_per_license():
    table = RV.license_table(priced()).set_index("license_id")
    l1 = table.loc["L1"]
    assert (l1["reclaimable_seats"], l1["inactive_reclaimable"], l1["departed_reclaimable"]) == (
        3,
        1,
        1,
    )
    assert l1["never_active_reclaimable"] == 1 and l1["reclaimable_annual_cost_reporting"] == 360.0
    assert table.loc["L3", "reclaimable_annual_cost"] == 100.0
    assert table.loc["L3", "reclaimable_annual_cost_reporting"] == 110.0
    assert table.index.tolist()[0] == "L1"  # costliest first


def test_the_sidebar_filters_apply_to_seats_as_to_licenses():
    p = priced()
    lic = licenses()
    f = D.Filters(tenants=("t2",))
    assert RV.filter_seats(p, D.apply_filters(lic, f), f)["user_id"].tolist() == ["e2"]
    paid = D.Filters(paid_only=True)
    kept = RV.filter_seats(p, D.apply_filters(lic, paid), paid)
    assert "f1" not in set(kept["user_id"]) and "i1" in set(kept["user_id"])
    assert RV.filter_seats(p, lic, D.Filters()) is p


def test_reasons_filter_and_tiles():
    p = priced()
    assert set(RV.reasons_kept(p, ["Departed"])["user_id"]) == {"d1"}
    assert set(RV.reasons_kept(p, [])["user_id"]) == {"i1", "d1", "x1", "e1", "f1"}
    tiles = {t.label: t for t in RV.reclaim_tiles(reclaim_summary(p, "USD"), 90)}
    assert tiles["Reclaimable paid seats"].value == "4"  # f1's seat is free
    assert tiles["Reclaimable paid seats"].note.startswith("+1 on free licenses")
    assert tiles["Reclaimable annual cost (USD)"].value == "USD 470.00"  # 3 x 120 + 110
    assert tiles["Departed users holding paid seats"].value == "1"
    assert tiles["Seats with activity data"].value == "100.0%"


def test_unpriced_reclaimable_seats_make_the_cost_a_lower_bound():
    seats = seat_table(SEATS + [seat_row("u1", "L9", user_last_active_at=ago(400))])
    lic = pd.concat([licenses(), with_metrics([license_row("adobe", "L9", "Stock", 1, 1)], [])])
    p = reclaim(seats, lic.reset_index(drop=True), MetricOptions(fx_rates={"EUR": 1.1}))
    tile = {t.label: t for t in RV.reclaim_tiles(reclaim_summary(p, "USD"), 90)}
    cost = tile["Reclaimable annual cost (USD)"]
    assert cost.value == "≥ USD 470.00" and "1 seat(s) without a price" in cost.note


def test_activity_coverage_per_account_and_per_integration():
    accounts = pd.DataFrame(
        {
            "account_id": ["acct-1", "acct-2", "acct-3"],
            "integration_label": ["Adobe", "Adobe", "DocuSign"],
        }
    )
    activity = pd.DataFrame(
        {
            "account_id": ["acct-1", "acct-2", "acct-3"],
            "activity": ["ok", "failed", None],
            "activity_message": [None, "timed out", None],
            "users": pd.array([7, None, None], dtype="Int64"),
            "seat_rows": pd.array([8, None, None], dtype="Int64"),
            "activity_problems": pd.array([0, None, None], dtype="Int64"),
        }
    )
    cov = RV.activity_coverage(accounts, activity)
    assert cov["account_id"].tolist() == ["acct-1", "acct-2"]  # acct-3 lists no licenses
    assert cov["activity_outcome"].tolist() == ["Activity listed", "Activity could not be listed"]
    by = RV.activity_by_integration(
        seat_table(SEATS + [seat_row("n1", "L1", activity_reported=False)])
    )
    assert by.to_dict("records") == [
        {
            "integration_label": "Adobe",
            "activity_seats": 9,
            "seats_with_activity": 8,
            "activity_share_pct": 88.9,
        }
    ]


def test_attention_names_departed_users_unused_paid_seats_and_failed_user_listings():
    from lib.analytics.totals import summarize

    lic = licenses()
    accounts = pd.DataFrame(
        {"account_id": ["acct-1", "acct-2"], "outcome": ["ok", "ok"], "tenant_id": ["t1", "t2"]}
    ).assign(integration_label="Adobe")
    activity = pd.DataFrame({"account_id": ["acct-1", "acct-2"], "activity": ["ok", "failed"]})
    s = reclaim_summary(priced(), "USD")
    items = D.attention(
        lic,
        accounts,
        pd.DataFrame({"account_id": []}),
        summarize(lic),
        MetricOptions(),
        reclaim=s,
        activity=activity,
    )
    by = {i.kind: i for i in items}
    assert by["departed_paid"].page == "reclaim" and by["departed_paid"].count == 1
    # i1, d1, x1 (L1) and e1 (L3) are paid; f1 holds a free seat and is not counted
    assert by["reclaimable"].count == 4 and ", USD 470.00 a year." in by["reclaimable"].text
    assert by["activity_failed"].page == "accounts" and by["activity_failed"].count == 1
    quiet = D.attention(
        lic, accounts, pd.DataFrame({"account_id": []}), summarize(lic), MetricOptions()
    )
    assert not {"departed_paid", "reclaimable", "activity_failed"} & {i.kind for i in quiet}


def test_seat_trends_per_date_and_group_beside_the_license_trends():
    from lib.analytics import trends as T

    early = [
        {**r, "fetched_at": FETCHED - pd.Timedelta(days=30)}
        for r in [seat_row("a1", "L1", user_last_active_at=ago(40)), seat_row("i1", "L1")]
    ]
    hist_seats = seat_table(SEATS + early)
    p = reclaim(hist_seats, licenses(), MetricOptions(fx_rates={"EUR": 1.1}))
    p["taken_at"] = hist_seats["fetched_at"]
    lic = licenses()
    lic_hist = pd.concat(
        [lic.assign(taken_at=FETCHED - pd.Timedelta(days=30)), lic.assign(taken_at=FETCHED)]
    )
    frame = T.with_seat_trends(T.trend_frame(lic_hist, "integration"), p, "integration")
    rows = frame.set_index("taken_at")
    now, then = rows.loc[FETCHED.floor("D")], rows.loc[(FETCHED - pd.Timedelta(days=30)).floor("D")]
    # now: active a1, a2, e2; reclaimable i1, d1, x1 (L1), f1 (free, 0), e1 (L3: 110)
    assert (now["active_seats"], now["reclaimable_seats"]) == (3, 5)
    assert now["reclaimable_annual_cost_reporting"] == 470.0
    # 30 days earlier: a1 was active (10 days idle then); i1 had no activity and no creation date,
    # so "not reported", never reclaimable; nothing reclaimable: the cost is empty, not 0

    assert (then["active_seats"], then["reclaimable_seats"]) == (1, 0)
    assert pd.isna(then["reclaimable_annual_cost_reporting"])
