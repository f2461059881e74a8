"""Each metric formula pinned on hand-computed rows, including every empty-input case."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from lib.analytics import groupings, totals
from lib.analytics import labels as L
from lib.analytics import metrics as M
from lib.analytics import rules as R
from lib.analytics.groupings import group_summary
from lib.analytics.metrics import METRIC_COLUMNS, MetricOptions, add_metrics
from lib.analytics.pricing import PriceBookError, load_price_book
from lib.analytics.totals import summarize
from lib.schema import LICENSE_COLUMNS
from lib.truto.normalize import Listing, build_license_table
from tests.factories import lic

T = datetime(2024, 6, 1, tzinfo=UTC)
HEADER = "integration,license_id,license_name,unit_price,currency,billing_period\n"


def table(*listings: tuple) -> pd.DataFrame:
    """Listings given as (integration, [records], account, tenant)."""
    built = [Listing(acc, integ, ten, recs, T) for integ, recs, acc, ten in listings]
    df, problems = build_license_table(built)
    assert not problems
    return df


def book(*rows: str) -> pd.DataFrame:
    return load_price_book((HEADER + "".join(r + "\n" for r in rows)).encode())


def row(df: pd.DataFrame, license_id: str) -> pd.Series:
    found = df[df["license_id"] == license_id]
    assert len(found) == 1
    return found.iloc[0]


def na(value) -> bool:
    return value is pd.NA or (isinstance(value, float) and np.isnan(value))


# A small estate, used by several tests. Prices: GitHub Enterprise 21 USD a month (book, by name),
# Copilot 100 GBP a year (book, by id), DocuSign 40 EUR from the vendor, GitHub Free is free,
# Jira (Atlassian, no seat counts) is paid without a price.
ESTATE = (
    (
        "github",
        [
            lic("E1", "Enterprise", 8, 10, True),
            lic("C1", "Copilot", 12, 10, True),
            lic("F1", "GitHub Free", 3, 5, False),
        ],
        "acct-gh",
        "t1",
    ),
    (
        "docusign",
        [lic("D1", "Business", None, 20, True, unit_amount=40, currency="EUR")],
        "acct-ds",
        "t2",
    ),
    ("atlassian", [lic("J1", "Jira", is_paid=True)], "acct-at", None),
)
BOOK = ("GitHub,,enterprise,21,USD,monthly", "GitHub,C1,Copilot (negotiated),100,GBP,annual")
OPTIONS = MetricOptions(fx_rates={"EUR": 1.1})  # no rate for GBP


@pytest.fixture
def estate() -> pd.DataFrame:
    return add_metrics(table(*ESTATE), book(*BOOK), OPTIONS)


# ------------------------------------------------------------------ per row


def test_columns_come_after_the_tidy_table_in_a_fixed_order(estate):
    assert list(estate.columns) == list(LICENSE_COLUMNS) + METRIC_COLUMNS
    assert set(M.METRIC_DTYPES) == set(METRIC_COLUMNS)
    for col, dtype in M.METRIC_DTYPES.items():
        assert str(estate[col].dtype) == dtype, col


def test_a_monthly_book_price_on_a_fully_reported_license(estate):
    r = row(estate, "E1")  # 8 of 10 seats assigned, 21 USD a month
    assert r["price_source"] == "price_book"
    assert r["unit_price"] == 21.0 and r["currency"] == "USD" and r["billing_period"] == "monthly"
    assert r["annual_unit_price"] == 252.0  # 21 x 12
    assert r["annual_cost"] == 2520.0  # 252 x 10
    assert r["idle_annual_cost"] == 504.0  # 252 x 2
    assert r["true_up_exposure"] == 0.0  # 252 x 0
    assert r["annual_cost_reporting"] == 2520.0 and r["reporting_currency"] == "USD"
    assert r["recommended_seats"] == 9  # ceil(8 x 1.1 = 8.8)
    assert r["potential_annual_savings"] == 252.0  # (10 - 9) x 252
    assert r["flag"] == "ok"  # 80% is between 70 and 95


def test_an_annual_book_price_by_id_in_a_currency_without_a_rate_on_an_over_allocated_license(
    estate,
):
    r = row(estate, "C1")  # 12 assigned, 10 bought, 100 GBP a year, no GBP rate
    assert (
        r["price_source"] == "price_book"
        and r["currency"] == "GBP"
        and r["billing_period"] == "annual"
    )
    assert r["annual_unit_price"] == 100.0
    assert r["annual_cost"] == 1000.0  # 100 x 10, in GBP
    assert r["idle_annual_cost"] == 0.0  # no unassigned seats
    assert r["true_up_exposure"] == 200.0  # 100 x 2 seats beyond those bought
    assert na(r["annual_cost_reporting"])  # no GBP rate: not converted
    assert na(r["true_up_exposure_reporting"])
    assert r["idle_annual_cost_reporting"] == 0.0  # zero is zero in any currency
    assert r["recommended_seats"] == 14  # ceil(12 x 1.1 = 13.2)
    assert r["potential_annual_savings"] == 0.0  # max(10 - 14, 0) x 100
    assert r["potential_annual_savings_reporting"] == 0.0
    assert r["flag"] == "over_allocated"


def test_the_same_row_converted_once_the_rate_is_known():
    df = add_metrics(table(*ESTATE), book(*BOOK), MetricOptions(fx_rates={"EUR": 1.1, "GBP": 1.25}))
    r = row(df, "C1")
    assert r["annual_cost_reporting"] == 1250.0  # 1000 GBP x 1.25
    assert r["true_up_exposure_reporting"] == 250.0  # 200 GBP x 1.25
    assert r["annual_cost"] == 1000.0  # own-currency figure unchanged


def test_a_vendor_priced_docusign_row_without_assigned_seats(estate):
    r = row(estate, "D1")  # 40 EUR from the vendor, 20 bought, assigned not reported
    assert r["price_source"] == "vendor"
    assert r["unit_price"] == 40.0 and r["currency"] == "EUR" and r["billing_period"] == "monthly"
    assert r["annual_unit_price"] == 480.0
    assert r["annual_cost"] == 9600.0  # 480 x 20
    assert r["annual_cost_reporting"] == 10560.0  # 9600 x 1.1
    for col in (
        "idle_annual_cost",
        "idle_annual_cost_reporting",
        "true_up_exposure",
        "recommended_seats",
        "potential_annual_savings",
        "potential_annual_savings_reporting",
    ):
        assert na(r[col]), col  # assigned not reported -> empty, not 0
    assert r["flag"] == "not_reported"


def test_the_vendor_price_period_is_configurable():
    df = add_metrics(
        table(*ESTATE), None, MetricOptions(fx_rates={"EUR": 1.1}, vendor_price_period="annual")
    )
    r = row(df, "D1")
    assert r["billing_period"] == "annual"
    assert (
        r["annual_unit_price"] == 40.0
        and r["annual_cost"] == 800.0
        and r["annual_cost_reporting"] == 880.0
    )


def test_a_free_license_costs_zero_in_every_figure(estate):
    r = row(estate, "F1")  # is_paid false, 3 of 5 assigned, no price anywhere
    assert r["price_source"] == "free"
    assert r["unit_price"] == 0.0 and r["annual_unit_price"] == 0.0
    assert na(r["currency"]) and na(r["billing_period"])
    for col in (
        "annual_cost",
        "idle_annual_cost",
        "true_up_exposure",
        "annual_cost_reporting",
        "idle_annual_cost_reporting",
        "true_up_exposure_reporting",
        "potential_annual_savings",
        "potential_annual_savings_reporting",
    ):
        assert r[col] == 0.0, col
    # 60% assigned, but free: nothing to cut and not under-used.
    assert na(r["recommended_seats"])
    assert r["flag"] == "free"


def test_a_license_priced_at_zero_with_no_paid_status_is_free_and_not_flagged():
    df = add_metrics(
        table(
            (
                "microsoft365",
                [lic("x", "Teams Exploratory", 25, 1000), lic("e", "E3", 25, 1000)],
                "a",
                "t",
            )
        ),
        book("Microsoft 365,,Teams Exploratory,0,USD,monthly", "Microsoft 365,,E3,36,USD,monthly"),
    )
    assert row(df, "x")["flag"] == "free" and na(row(df, "x")["recommended_seats"])
    assert (
        row(df, "e")["flag"] == "under_used" and row(df, "e")["recommended_seats"] == 28
    )  # ceil(27.5)
    s = summarize(df)
    assert s.flag_counts["free"] == 1 and s.flag_counts["under_used"] == 1
    assert (
        s.potential_annual_savings == 419_904.0
    )  # (1000 - 28) x 36 x 12, the free license adds nothing


def test_utilization_numerator_and_denominator_come_from_the_same_rows(estate):
    s = summarize(estate)
    # Rows reporting both: E1 8/10, C1 12/10, F1 3/5; DocuSign (bought only) and Jira (neither) left out.
    assert (s.utilization_assigned_seats, s.utilization_total_seats, s.utilization_rows) == (
        23,
        25,
        3,
    )
    assert s.utilization_pct == round(100 * 23 / 25, 1) == 92.0
    assert (
        s.total_seats == 45 and s.assigned_seats == 23
    )  # all rows reporting each: not the ratio's rows


def test_a_paid_license_without_a_price_or_seat_counts_is_empty_everywhere(estate):
    r = row(estate, "J1")  # Atlassian: no seat counts, paid, nothing in the book
    assert r["price_source"] == "unpriced"
    for col in (
        "unit_price",
        "currency",
        "billing_period",
        "annual_unit_price",
        "annual_cost",
        "idle_annual_cost",
        "true_up_exposure",
        "annual_cost_reporting",
        "idle_annual_cost_reporting",
        "true_up_exposure_reporting",
        "recommended_seats",
        "potential_annual_savings",
        "potential_annual_savings_reporting",
    ):
        assert na(r[col]), col
    assert r["flag"] == "not_reported"
    assert r["reporting_currency"] == "USD"


def test_a_priced_license_without_seat_counts_has_a_price_but_no_cost():
    df = add_metrics(
        table(("atlassian", [lic("J1", "Jira", is_paid=True)], "a", "t")),
        book("Atlassian,,Jira,7,USD,monthly"),
    )
    r = row(df, "J1")
    assert r["unit_price"] == 7.0 and r["annual_unit_price"] == 84.0
    for col in (
        "annual_cost",
        "idle_annual_cost",
        "true_up_exposure",
        "annual_cost_reporting",
        "recommended_seats",
        "potential_annual_savings",
    ):
        assert na(r[col]), col


def test_total_known_but_assigned_not_reported():
    df = add_metrics(
        table(("ciscomeraki", [lic("M1", "MR", None, 30)], "a", "t")),
        book("Cisco Meraki,,MR,10,USD,annual"),
    )
    r = row(df, "M1")
    assert r["annual_cost"] == 300.0
    assert (
        na(r["idle_annual_cost"])
        and na(r["true_up_exposure"])
        and na(r["potential_annual_savings"])
    )
    assert na(r["recommended_seats"]) and r["flag"] == "not_reported"


def test_assigned_known_but_total_not_reported():
    df = add_metrics(
        table(("zoom", [lic("Z1", "Pro", 12, None, True)], "a", "t")),
        book("Zoom,,Pro,15,USD,monthly"),
    )
    r = row(df, "Z1")
    assert r["recommended_seats"] == 14  # ceil(12 x 1.1 = 13.2): assigned is known
    assert na(r["annual_cost"]) and na(r["idle_annual_cost"]) and na(r["potential_annual_savings"])
    assert r["flag"] == "not_reported"


def test_a_row_with_a_vendor_amount_but_no_currency_is_unpriced():
    df = add_metrics(
        table(("docusign", [lic("D1", "Business", None, 5, True, unit_amount=40)], "a", "t")), None
    )
    assert row(df, "D1")["price_source"] == "unpriced"


def test_the_book_wins_over_the_vendor_price_and_over_is_paid_false():
    df = add_metrics(
        table(*ESTATE),
        book(*BOOK, "DocuSign,,business,30,USD,monthly", "GitHub,F1,,1,USD,monthly"),
        OPTIONS,
    )
    assert (
        row(df, "D1")["price_source"] == "price_book" and row(df, "D1")["annual_cost"] == 7200.0
    )  # 30 x 12 x 20
    assert (
        row(df, "F1")["price_source"] == "price_book" and row(df, "F1")["annual_cost"] == 60.0
    )  # 1 x 12 x 5


@pytest.mark.parametrize(
    "assigned, total, flag",
    [
        (69, 100, "under_used"),  # 69.0 < 70
        (70, 100, "ok"),  # at the threshold is not under
        (94, 100, "ok"),
        (95, 100, "at_capacity"),  # at or above 95
        (100, 100, "at_capacity"),
        (101, 100, "over_allocated"),  # over-allocation comes before at_capacity
        (0, 10, "under_used"),
        (5, 0, "over_allocated"),  # seats used, none bought
        (0, 0, "ok"),  # nothing bought, nothing used: utilization unknown, nothing to flag
        (None, 10, "not_reported"),
        (10, None, "not_reported"),
    ],
)
def test_flags(assigned, total, flag):
    df = add_metrics(table(("github", [lic("X", "Pro", assigned, total, True)], "a", "t")), None)
    assert row(df, "X")["flag"] == flag


def test_thresholds_are_compared_on_the_rounded_utilization_and_are_configurable():
    # 6999 / 10000 = 69.99% shows as 70.0, so it is not under 70.
    df = add_metrics(table(("github", [lic("X", "Pro", 6999, 10000, True)], "a", "t")), None)
    assert row(df, "X")["utilization_pct"] == 70.0 and row(df, "X")["flag"] == "ok"
    df = add_metrics(
        table(
            ("github", [lic("X", "Pro", 60, 100, True), lic("Y", "Team", 85, 100, True)], "a", "t")
        ),
        None,
        MetricOptions(under_used_pct=50, at_capacity_pct=85),
    )
    assert row(df, "X")["flag"] == "ok" and row(df, "Y")["flag"] == "at_capacity"


@pytest.mark.parametrize(
    "assigned, buffer, expected",
    [
        (10, 0.10, 11),  # 10 x 1.1 is 11.000000000000002 in floats; exactly 11
        (8, 0.10, 9),
        (0, 0.10, 0),
        (7, 0.0, 7),
        (3, 0.25, 4),  # 3.75
        (4, 0.25, 5),  # exactly 5
        (1, 0.5, 2),  # 1.5
        (100, 0.15, 115),
        (7, 0.15, 9),  # 8.05
    ],
)
def test_recommended_seats_are_exact(assigned, buffer, expected):
    df = add_metrics(
        table(("github", [lic("X", "Pro", assigned, 200, True)], "a", "t")),
        book("GitHub,,Pro,1,USD,annual"),
        MetricOptions(buffer=buffer),
    )
    assert row(df, "X")["recommended_seats"] == expected
    assert row(df, "X")["potential_annual_savings"] == 200 - expected


def test_money_is_rounded_to_cents_halves_to_even():
    df = add_metrics(
        table(
            (
                "github",
                [lic("A", "A", 1, 1, True), lic("B", "B", 1, 1, True), lic("C", "C", 0, 3, True)],
                "a",
                "t",
            )
        ),
        book(
            "GitHub,,A,0.125,USD,annual", "GitHub,,B,0.375,USD,annual", "GitHub,,C,9.99,USD,monthly"
        ),
    )
    assert row(df, "A")["annual_cost"] == 0.12  # 0.125 -> 0.12 (half to even)
    assert row(df, "B")["annual_cost"] == 0.38  # 0.375 -> 0.38
    assert row(df, "C")["annual_unit_price"] == pytest.approx(119.88)  # a rate, kept as computed
    assert row(df, "C")["annual_cost"] == 359.64  # 9.99 x 12 x 3
    assert row(df, "C")["idle_annual_cost"] == 359.64


def test_conversion_to_another_reporting_currency():
    df = add_metrics(
        table(("github", [lic("X", "Pro", 1, 1, True)], "a", "t")),
        book("GitHub,,Pro,10,USD,monthly"),
        MetricOptions(reporting_currency="eur", fx_rates={"usd": 0.9}),
    )
    r = row(df, "X")
    assert r["annual_cost"] == 120.0 and r["currency"] == "USD"
    assert r["annual_cost_reporting"] == 108.0 and r["reporting_currency"] == "EUR"


def test_a_rate_of_one_changes_nothing():
    plain = add_metrics(table(*ESTATE), book(*BOOK), OPTIONS)
    ones = add_metrics(table(*ESTATE), book(*BOOK), MetricOptions(fx_rates={"EUR": 1, "GBP": 1}))
    for own in ("annual_cost", "idle_annual_cost", "true_up_exposure", "potential_annual_savings"):
        pd.testing.assert_series_equal(ones[own + "_reporting"], ones[own], check_names=False)
        pd.testing.assert_series_equal(ones[own], plain[own])


# ---------------------------------------------------------------- matching


def test_matching_by_id_then_exact_name_then_name_ignoring_case():
    df = add_metrics(
        table(
            (
                "microsoft365",
                [
                    lic("sku-1", "E5", 1, 1),
                    lic("sku-2", "E5", 1, 1),
                    lic("sku-3", "e3", 1, 1),
                    lic("sku-4", "E3", 1, 1),
                    lic("sku-5", "Visio", 1, 1),
                ],
                "a",
                "t",
            )
        ),
        book(
            "Microsoft 365,sku-1,Whatever it is called,100,USD,annual",  # by id, whatever the name
            "Microsoft 365,,E5,200,USD,annual",  # sku-2 by exact name
            "microsoft_365,, E3 ,300,USD,annual",  # sku-4 exactly, sku-3 ignoring case
            "Microsoft 365,sku-9,Visio,400,USD,annual",
        ),
    )  # an id entry never matches by name
    assert [row(df, f"sku-{i}")["unit_price"] for i in range(1, 5)] == [100.0, 200.0, 300.0, 300.0]
    assert row(df, "sku-5")["price_source"] == "unpriced"


def test_name_ignoring_case_is_used_only_when_no_exact_name_matches():
    df = add_metrics(
        table(("zoom", [lic("1", "PRO", 1, 1)], "a", "t")), book("Zoom,,pro,5,USD,annual")
    )
    assert row(df, "1")["unit_price"] == 5.0


def test_the_integration_must_match_too():
    df = add_metrics(
        table(
            ("zoom", [lic("1", "Pro", 1, 1)], "a", "t"),
            ("webex", [lic("2", "Pro", 1, 1)], "b", "t"),
        ),
        book("Zoom,,Pro,5,USD,annual"),
    )
    assert row(df, "1")["price_source"] == "price_book"
    assert row(df, "2")["price_source"] == "unpriced"


def test_a_license_without_an_id_is_matched_by_name():
    listing = Listing(
        "a", "zoom", "t", [{"name": "Pro", "assigned_quantity": 1, "available_quantity": 2}], T
    )
    df, _ = build_license_table([listing])
    out = add_metrics(df, book("Zoom,,Pro,5,USD,annual"))
    assert out["price_source"].tolist() == ["price_book"] and out["annual_cost"].tolist() == [10.0]


def test_match_price_book_gives_positions():
    df = table(
        (
            "zoom",
            [lic("1", "Pro", 1, 1), lic("2", "Basic", 1, 1), lic("3", "Other", 1, 1)],
            "a",
            "t",
        )
    )
    b = book("Zoom,,Basic,1,USD,annual", "Zoom,1,,2,USD,annual")
    assert M.match_price_book(df, b).tolist() == [1, 0, -1]


# ------------------------------------------------------------ whole table


def test_add_metrics_again_replaces_the_metric_columns(estate):
    again = add_metrics(estate, book(*BOOK), MetricOptions(fx_rates={"EUR": 1.1}, buffer=0.5))
    assert list(again.columns) == list(estate.columns)
    assert row(again, "E1")["recommended_seats"] == 12  # ceil(8 x 1.5)
    pd.testing.assert_frame_equal(add_metrics(estate, book(*BOOK), OPTIONS), estate)


def test_the_input_table_is_not_changed():
    df = table(*ESTATE)
    before = df.copy()
    add_metrics(df, book(*BOOK), OPTIONS)
    pd.testing.assert_frame_equal(df, before)


def test_an_empty_table_and_no_price_book():
    empty, _ = build_license_table([])
    out = add_metrics(empty, None)
    assert list(out.columns) == list(LICENSE_COLUMNS) + METRIC_COLUMNS and len(out) == 0
    s = summarize(out, MetricOptions())
    assert (
        s.licenses == 0
        and s.total_seats is None
        and s.annual_spend is None
        and s.utilization_pct is None
    )
    assert len(group_summary(out, "integration")) == 0


def test_a_bad_price_book_is_refused_before_anything_is_computed():
    bad = pd.DataFrame(
        {
            "integration": ["GitHub"],
            "license_name": ["Pro"],
            "unit_price": [-1],
            "currency": ["USD"],
            "billing_period": ["monthly"],
        }
    )
    with pytest.raises(PriceBookError):
        add_metrics(table(*ESTATE), bad, OPTIONS)


def test_options_are_hashable_normalised_and_checked():
    a = MetricOptions(reporting_currency="usd", fx_rates={"eur": 1.1})
    b = MetricOptions(fx_rates=M.FrozenRates({"EUR": 1.1, "USD": 1}))
    assert a == b and hash(a) == hash(b)
    assert dict(a.fx_rates) == {"EUR": 1.1, "USD": 1.0}
    assert a.rate("eur") == 1.1 and a.rate("GBP") is None and a.rate(None) is None
    for bad in (
        dict(reporting_currency="XYZ"),
        dict(fx_rates={"EUR": 0}),
        dict(fx_rates={"XYZ": 1}),
        dict(fx_rates={"USD": 2}),
        dict(buffer=-0.1),
        dict(under_used_pct=float("nan")),
        dict(vendor_price_period="weekly"),
    ):
        with pytest.raises(ValueError):
            MetricOptions(**bad)


# -------------------------------------------------------------- summaries


def test_summary_of_all_licenses(estate):
    s = summarize(estate, OPTIONS)
    assert s.licenses == 5
    assert s.total_seats == 45  # 10 + 10 + 5 + 20 (Jira not reported)
    assert s.assigned_seats == 23  # 8 + 12 + 3
    assert s.unassigned_seats == 4  # 2 + 0 + 2
    assert s.over_allocated_seats == 2
    assert s.utilization_pct == 92.0  # 23 / 25 over the three rows reporting both
    assert s.rows_without_seat_counts == 2  # DocuSign and Jira
    assert s.annual_spend == 13080.0  # 2520 + 0 + 10560 (Copilot left out: GBP)
    assert s.idle_annual_spend == 504.0
    assert s.used_annual_spend == 2016.0  # 2520 - 504
    assert s.unsplit_annual_spend == 10560.0  # DocuSign: assigned not reported
    assert s.potential_annual_savings == 252.0
    assert s.true_up_exposure == 0.0  # Copilot's 200 GBP left out
    assert s.excluded_by_currency == {"GBP": 1000.0}
    assert s.excluded_rows_by_currency == {"GBP": 1}
    assert s.rows_without_spend == 2  # Copilot (no rate) and Jira (no price)
    assert s.flag_counts == {
        "over_allocated": 1,
        "under_used": 0,
        "at_capacity": 0,
        "not_reported": 2,
        "not_known": 0,
        "ok": 1,
        "free": 1,
    }  # GitHub Free: free, not under-used
    assert s.unpriced_licenses == 1 and s.unpriced_paid_licenses == 1
    assert s.over_allocated_licenses == 1
    assert s.reporting_currency == "USD" and not s.paid_only
    assert "not activity" in s.measure


def test_summary_of_paid_licenses_only(estate):
    s = summarize(estate, OPTIONS, paid_only=True)
    assert s.paid_only and s.licenses == 4  # GitHub Free left out
    assert s.total_seats == 40 and s.assigned_seats == 20
    assert s.utilization_pct == 100.0  # (8 + 12) / (10 + 10)
    assert s.annual_spend == 13080.0 and s.idle_annual_spend == 504.0
    assert s.flag_counts["under_used"] == 0


def test_paid_means_said_paid_or_priced_when_not_said():
    df = add_metrics(
        table(
            ("microsoft365", [lic("a", "E3", 1, 2), lic("b", "Free trial", 1, 2)], "a", "t"),
            ("github", [lic("c", "Pro", 1, 2, False)], "b", "t"),
        ),
        book(
            "Microsoft 365,,E3,10,USD,monthly",
            "Microsoft 365,,Free trial,0,USD,monthly",
            "GitHub,,Pro,5,USD,monthly",
        ),
    )
    assert R.paid_mask(df).tolist() == [True, False, False]
    assert summarize(df, paid_only=True).annual_spend == 240.0


def test_money_left_out_is_reported_per_currency_and_never_added():
    df = add_metrics(
        table(
            (
                "github",
                [
                    lic("1", "A", 1, 1),
                    lic("2", "B", 1, 1),
                    lic("3", "C", 1, 2),
                    lic("4", "D", 1, 1),
                ],
                "a",
                "t",
            )
        ),
        book(
            "GitHub,,A,100,USD,annual",
            "GitHub,,B,100,EUR,annual",
            "GitHub,,C,100,GBP,annual",
            "GitHub,,D,0,GBP,annual",
        ),
        MetricOptions(fx_rates={"EUR": 2}),
    )
    s = summarize(df)
    assert s.annual_spend == 300.0  # 100 USD + 100 EUR x 2
    assert s.excluded_by_currency == {"GBP": 200.0}  # 100 GBP x 2 seats, kept in GBP
    assert s.excluded_rows_by_currency == {"GBP": 1}  # the 0 GBP license costs 0 in any currency
    assert s.idle_annual_spend == 0.0  # C's 100 GBP idle is left out too
    assert json.loads(json.dumps(s.as_dict()))["excluded_by_currency"] == {"GBP": 200.0}


def test_summary_is_json_ready_with_none_for_not_reported():
    df = add_metrics(table(("atlassian", [lic("J1", "Jira", is_paid=True)], "a", "t")), None)
    d = summarize(df).as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["total_seats"] is None and d["annual_spend"] is None and d["utilization_pct"] is None
    assert d["rows_without_seat_counts"] == 1


def test_options_must_match_the_table(estate):
    with pytest.raises(ValueError, match="computed in USD"):
        summarize(estate, MetricOptions(reporting_currency="EUR"))


def test_totals_do_not_change_the_table(estate):
    before = estate.copy()
    for _ in range(2):
        prepared = totals.prepare(estate, OPTIONS)
        summarize(prepared)
        summarize(prepared, paid_only=True)
        groupings.all_group_summaries(prepared)
        groupings.spend_by_integration(estate, OPTIONS)
    pd.testing.assert_frame_equal(estate, before)
    assert summarize(estate, OPTIONS).annual_spend == 13080.0


def test_summaries_need_the_metric_columns():
    with pytest.raises(ValueError, match="run add_metrics first"):
        summarize(table(*ESTATE))


def test_a_prepared_table_gives_the_same_answers_and_is_a_snapshot(estate):
    prepared = totals.prepare(estate, OPTIONS)
    assert summarize(prepared) == summarize(estate, OPTIONS)
    pd.testing.assert_frame_equal(
        group_summary(prepared, "license"), group_summary(estate, "license")
    )
    first = summarize(prepared)
    first.excluded_by_currency["GBP"] = 0  # the caller's copy; the prepared one keeps its answer
    assert summarize(prepared).excluded_by_currency == {"GBP": 1000.0}


# ------------------------------------------------------------------ groups


def test_group_summary_by_integration(estate):
    g = group_summary(estate, "integration", OPTIONS).set_index("integration_label")
    assert list(g.index) == ["Atlassian", "DocuSign", "GitHub"]
    gh, ds, at = g.loc["GitHub"], g.loc["DocuSign"], g.loc["Atlassian"]
    assert (gh["licenses"], gh["total_seats"], gh["assigned_seats"], gh["utilization_pct"]) == (
        3,
        25,
        23,
        92.0,
    )
    assert (gh["annual_spend"], gh["idle_annual_spend"], gh["used_annual_spend"]) == (
        2520.0,
        504.0,
        2016.0,
    )
    assert gh["not_converted"] == "GBP 1000.00" and gh["rows_not_converted"] == 1
    assert (gh["flag_over_allocated"], gh["flag_under_used"], gh["flag_ok"], gh["flag_free"]) == (
        1,
        0,
        1,
        1,
    )
    assert ds["total_seats"] == 20 and na(ds["assigned_seats"]) and na(ds["utilization_pct"])
    assert (
        ds["annual_spend"] == 10560.0
        and ds["unsplit_annual_spend"] == 10560.0
        and na(ds["used_annual_spend"])
    )
    assert na(at["total_seats"]) and na(at["annual_spend"]) and at["unpriced_paid_licenses"] == 1
    assert list(g.columns) == groupings.GROUP_FIGURES


def test_group_summary_keys_and_empty_keys(estate):
    g = group_summary(estate, "tenant_id", OPTIONS)
    assert g["tenant_id"].tolist()[:2] == ["t1", "t2"] and na(
        g["tenant_id"].tolist()[2]
    )  # Atlassian has none
    assert g["licenses"].tolist() == [3, 1, 1]
    acc = group_summary(estate, "account", OPTIONS)
    assert list(acc.columns[:2]) == ["integration_label", "account_id"]
    assert acc["account_id"].tolist() == ["acct-at", "acct-ds", "acct-gh"]
    lic_groups = group_summary(
        estate, ["integration_label", "license_name"], OPTIONS, paid_only=True
    )
    assert "GitHub Free" not in lic_groups["license_name"].tolist()
    by_flag = group_summary(estate, "flag", OPTIONS).set_index("flag")
    assert by_flag.loc["not_reported", "licenses"] == 2
    with pytest.raises(ValueError, match="no such column"):
        group_summary(estate, "nope", OPTIONS)


def test_chart_helpers(estate):
    top = groupings.top_idle_spend(estate, 10, OPTIONS)
    assert top[["integration_label", "license_name", "idle_annual_spend"]].values.tolist() == [
        ["GitHub", "Enterprise", 504.0]
    ]
    util = groupings.utilization_by_integration(estate, OPTIONS)
    assert util["integration_label"].tolist() == [
        "GitHub",
        "Atlassian",
        "DocuSign",
    ]  # known first, NA last
    spend = groupings.spend_by_integration(estate, OPTIONS)
    assert spend[["integration_label", "part", "amount"]].values.tolist() == [
        ["DocuSign", "not_reported", 10560.0],
        ["GitHub", "used", 2016.0],
        ["GitHub", "idle", 504.0],
    ]
    assert set(spend["reporting_currency"]) == {"USD"}


def test_labels_say_allocation_not_activity():
    for col in list(LICENSE_COLUMNS) + METRIC_COLUMNS + groupings.GROUP_FIGURES:
        assert col in L.LABELS, col
    assert "assigned ÷ bought" in L.LABELS["utilization_pct"]
    assert "not activity" in L.MEASURE
    assert set(L.FLAG_LABELS) == set(M.FLAGS) and set(L.PRICE_SOURCE_LABELS) == set(M.PRICE_SOURCES)
