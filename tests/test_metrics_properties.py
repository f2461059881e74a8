"""Invariants of the metrics on generated estates (hypothesis)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from fractions import Fraction

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.analytics import groupings, totals
from lib.analytics import metrics as M
from lib.analytics import rules as R
from lib.analytics.groupings import group_summary
from lib.analytics.metrics import MetricOptions, add_metrics
from lib.analytics.pricing import validate_price_book
from lib.analytics.totals import summarize
from lib.truto.normalize import Listing, build_license_table

settings.register_profile(
    "metrics",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("metrics")

T = datetime(2024, 6, 1, tzinfo=UTC)
INTEGRATIONS = ("github", "zoom", "docusign", "microsoft365")
LABELS = {
    "github": "GitHub",
    "zoom": "Zoom",
    "docusign": "DocuSign",
    "microsoft365": "Microsoft 365",
}
NAMES = ("Pro", "pro", "Team", "Enterprise", "E5")
CURRENCIES = ("USD", "EUR", "GBP", "JPY")
MONEY = ("annual_cost", "idle_annual_cost", "true_up_exposure", "potential_annual_savings")
SEATS = st.none() | st.integers(0, 5000)
PRICE = st.integers(0, 100_000).map(lambda cents: cents / 100)

record = st.fixed_dictionaries(
    {
        "assigned": SEATS,
        "total": SEATS,
        "paid": st.none() | st.booleans(),
        "name": st.sampled_from(NAMES),
        "vendor": st.none() | st.tuples(PRICE, st.sampled_from(CURRENCIES)),
    }
)
listing = st.tuples(
    st.sampled_from(INTEGRATIONS),
    st.lists(record, max_size=8),
    st.sampled_from(("acc-1", "acc-2", "acc-3")),
    st.sampled_from(("t1", "t2", None)),
)
book_entry = st.tuples(
    st.sampled_from(INTEGRATIONS),
    st.sampled_from(NAMES),
    PRICE,
    st.sampled_from(CURRENCIES),
    st.sampled_from(("monthly", "annual")),
)


def make_table(listings) -> pd.DataFrame:
    built = []
    for n, (integration, records, account, tenant) in enumerate(listings):
        raw = []
        for i, r in enumerate(records):
            rec = {"id": f"{n}-{i}", "name": r["name"]}
            if r["assigned"] is not None:
                rec["assigned_quantity"] = r["assigned"]
            if r["total"] is not None:
                rec["available_quantity"] = r["total"]
            if r["paid"] is not None:
                rec["is_paid"] = r["paid"]
            if r["vendor"] is not None and integration == "docusign":
                rec["unit_amount"], rec["currency"] = r["vendor"]
            raw.append(rec)
        built.append(Listing(account, integration, tenant, raw, T))
    df, problems = build_license_table(built)
    assert not problems
    return df


def make_book(entries) -> pd.DataFrame:
    seen, rows = set(), []
    for integration, name, price, currency, period in entries:
        key = (integration, name.casefold())
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "integration": LABELS[integration],
                "license_id": None,
                "license_name": name,
                "unit_price": price,
                "currency": currency,
                "billing_period": period,
            }
        )
    return validate_price_book(pd.DataFrame(rows) if rows else None)


@st.composite
def estates(draw, options=None):
    df = make_table(draw(st.lists(listing, min_size=1, max_size=5)))
    book = make_book(draw(st.lists(book_entry, max_size=12)))
    if options is None:
        rates = draw(
            st.dictionaries(
                st.sampled_from(CURRENCIES[1:]), st.integers(1, 50_000).map(lambda r: r / 1000)
            )
        )
        buffer = draw(st.integers(0, 100).map(lambda b: b / 100))
        options = MetricOptions(fx_rates=rates, buffer=buffer)
    return add_metrics(df, book, options), options


def cents(series: pd.Series) -> int:
    """Exact sum in cents of a money column (NA skipped)."""
    values = series.dropna().to_numpy(dtype=np.float64)
    return int(np.rint(values * 100).astype(np.int64).sum())


def values(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series.tolist()]


# ---------------------------------------------------------------- per row


@PROFILE
@given(estates())
def test_seat_arithmetic_holds(case):
    df, _ = case
    both = df["assigned_seats"].notna() & df["total_seats"].notna()
    sub = df[both]
    a, t = sub["assigned_seats"].astype(int), sub["total_seats"].astype(int)
    u, o = sub["unassigned_seats"].astype(int), sub["over_allocated_seats"].astype(int)
    fine = o == 0
    assert ((u + a)[fine] == t[fine]).all()  # not over-allocated: unassigned + assigned = total
    assert ((a - o)[~fine] == t[~fine]).all() and (u[~fine] == 0).all()
    assert df.loc[~both, "unassigned_seats"].isna().all()  # never 0 for "not reported"


@PROFILE
@given(estates())
def test_no_money_figure_or_seat_count_is_negative(case):
    df, _ = case
    for col in (
        "unit_price",
        "annual_unit_price",
        "recommended_seats",
        *MONEY,
        *(m + "_reporting" for m in MONEY),
    ):
        present = df[col].dropna()
        assert (present >= 0).all(), col


@PROFILE
@given(estates())
def test_empty_inputs_give_empty_figures_never_zero(case):
    df, options = case
    priced = df["price_source"] != "unpriced"
    total_na, assigned_na = df["total_seats"].isna(), df["assigned_seats"].isna()
    assert (df["annual_cost"].isna() == (~priced | total_na)).all()
    assert (df["idle_annual_cost"].isna() == (~priced | df["unassigned_seats"].isna())).all()
    assert (df["potential_annual_savings"].isna() == (~priced | total_na | assigned_na)).all()
    free = pd.Series(R.free_mask(df), index=df.index)
    assert (df["recommended_seats"].isna() == (assigned_na | free)).all()
    assert ((df["flag"] == "free") == free).all()
    assert ((df["flag"] == "not_reported") == ((total_na | assigned_na) & ~free)).all()
    # A converted figure is empty exactly when its own figure is, or it is not 0 and has no rate.
    has_rate = (
        df["currency"]
        .astype("string")
        .map(lambda c: pd.notna(c) and c in options.fx_rates)
        .astype(bool)
    )
    for m in MONEY:
        own, rep = df[m], df[m + "_reporting"]
        assert (rep.isna() == (own.isna() | ((own.fillna(0) != 0) & ~has_rate))).all(), m


@PROFILE
@given(estates())
def test_recommended_seats_are_the_exact_ceiling(case):
    df, options = case
    factor = 1 + Fraction(str(options.buffer))
    free = R.free_mask(df)
    for assigned, recommended, is_free in zip(
        values(df["assigned_seats"]), values(df["recommended_seats"]), free
    ):
        if assigned is None or is_free:
            assert recommended is None
        else:
            assert recommended == math.ceil(assigned * factor)


@PROFILE
@given(estates())
def test_flags_follow_their_precedence(case):
    df, options = case
    for flag, util, over in zip(
        df["flag"], values(df["utilization_pct"]), values(df["over_allocated_seats"])
    ):
        if flag in (
            "not_reported",
            "free",
        ):  # pinned by test_empty_inputs_give_empty_figures_never_zero
            continue
        if flag == "not_known":  # neither paid nor free: never under-used, over or at capacity
            assert R.not_known_mask(df.loc[df["flag"] == "not_known"]).all()
            continue
        if over:
            assert flag == "over_allocated"
        elif util is not None and util < options.under_used_pct:
            assert flag == "under_used"
        elif util is not None and util >= options.at_capacity_pct:
            assert flag == "at_capacity"
        else:
            assert flag == "ok"


@PROFILE
@given(st.data())
def test_converting_with_rate_1_changes_nothing(data):
    df, _ = data.draw(estates(MetricOptions(fx_rates={c: 1 for c in CURRENCIES})))
    for m in MONEY:
        assert values(df[m + "_reporting"]) == values(df[m]), m
    assert summarize(df).excluded_by_currency == {}


# -------------------------------------------------------------- totals


@PROFILE
@given(
    estates(),
    st.sampled_from(["integration", "account", "tenant", "license", ["tenant_id", "flag"]]),
    st.booleans(),
)
def test_group_totals_equal_the_sum_of_their_rows(case, by, paid_only):
    df, options = case
    prepared = totals.prepare(df, options)
    groups = group_summary(prepared, by, paid_only=paid_only)
    keys = totals.GROUPINGS.get(by, by) if isinstance(by, str) else by
    rows = df[R.paid_mask(df)] if paid_only else df
    figures = {
        "annual_spend": "annual_cost_reporting",
        "idle_annual_spend": "idle_annual_cost_reporting",
        "potential_annual_savings": "potential_annual_savings_reporting",
        "true_up_exposure": "true_up_exposure_reporting",
    }
    assert groups["licenses"].sum() == len(rows)
    for _, g in groups.iterrows():
        mask = np.ones(len(rows), dtype=bool)
        for k in keys:
            col = rows[k].astype(object)
            mask &= (col.isna() if pd.isna(g[k]) else (col == g[k])).to_numpy(dtype=bool)
        part = rows[mask]
        assert g["licenses"] == len(part) > 0
        for fig, col in figures.items():
            if part[col].isna().all():
                assert pd.isna(g[fig]), fig
            else:
                assert round(g[fig] * 100) == cents(part[col]), fig
        for col in ("total_seats", "assigned_seats", "unassigned_seats", "over_allocated_seats"):
            expected = part[col].dropna()
            assert pd.isna(g[col]) if expected.empty else g[col] == int(expected.sum()), col
        for f in M.FLAGS:
            assert g[f"flag_{f}"] == int((part["flag"] == f).sum())
    # And the groups add up to the summary.
    s = summarize(prepared, paid_only=paid_only)
    for fig in figures:
        total = getattr(s, fig)
        assert (0 if total is None else round(total * 100)) == round(
            groups[fig].fillna(0).sum() * 100
        ), fig
    assert s.licenses == groups["licenses"].sum()


@PROFILE
@given(estates())
def test_no_total_mixes_currencies(case):
    df, options = case
    s = summarize(df, options)
    has_rate = (
        df["currency"]
        .astype("string")
        .map(lambda c: pd.notna(c) and c in options.fx_rates)
        .astype(bool)
    )
    # Every figure in the total is in the reporting currency: the converted ones, and zeros.
    converted = df["annual_cost_reporting"]
    assert cents(converted) == (0 if s.annual_spend is None else round(s.annual_spend * 100))
    # What was left out is kept per currency, in that currency, and never converted.
    left = df[~has_rate & df["currency"].notna() & (df["annual_cost"].fillna(0) != 0)]
    expected = {
        c: cents(part["annual_cost"]) for c, part in left.groupby(left["currency"].astype(str))
    }
    assert {c: round(v * 100) for c, v in s.excluded_by_currency.items()} == expected
    assert s.excluded_rows_by_currency == {
        c: len(part) for c, part in left.groupby(left["currency"].astype(str))
    }
    assert options.reporting_currency not in s.excluded_by_currency


@PROFILE
@given(estates(), st.integers(2, 1000))
def test_prices_in_a_currency_without_a_rate_do_not_move_the_totals(case, factor):
    df, options = case
    missing = [c for c in CURRENCIES if c not in options.fx_rates]
    if not missing:
        return
    scaled = df.copy()
    rows = scaled["currency"].isin(missing).to_numpy(dtype=bool)
    for col in MONEY:
        scaled.loc[rows, col] = scaled.loc[rows, col] * factor
    before, after = summarize(df, options), summarize(scaled, options)
    assert (before.annual_spend, before.idle_annual_spend, before.true_up_exposure) == (
        after.annual_spend,
        after.idle_annual_spend,
        after.true_up_exposure,
    )


@PROFILE
@given(estates())
def test_spend_splits_into_used_idle_and_not_reported(case):
    df, options = case
    s = summarize(df, options)
    if s.annual_spend is None:
        assert s.used_annual_spend is None and s.unsplit_annual_spend is None
        return
    parts = sum(
        round((x or 0) * 100)
        for x in (s.used_annual_spend, s.idle_annual_spend, s.unsplit_annual_spend)
    )
    assert parts == round(s.annual_spend * 100)
    chart = groupings.spend_by_integration(df, options)
    assert round(chart["amount"].sum() * 100) == round(s.annual_spend * 100)
    assert (chart["amount"] >= 0).all()


@PROFILE
@given(estates())
def test_paid_only_is_part_of_all(case):
    df, options = case
    everything, paid = summarize(df, options), summarize(df, options, paid_only=True)
    assert paid.licenses == int(R.paid_mask(df).sum()) <= everything.licenses
    assert (paid.annual_spend or 0) <= (everything.annual_spend or 0) + 1e-9
    assert sum(paid.flag_counts.values()) == paid.licenses
    assert sum(everything.flag_counts.values()) == everything.licenses


# ---------------------------------------------------------------- a plain pandas reference for the engine


def _reference_groups(df: pd.DataFrame, by: list[str], paid_only: bool) -> pd.DataFrame:
    """group_summary's main figures with a plain pandas groupby (no bits, codes or bincounts)."""
    from lib.analytics.rules import needs_price, paid_mask

    df = df.loc[paid_mask(df)] if paid_only else df
    work = pd.DataFrame({c: df[c].astype("object").where(df[c].notna(), None) for c in by})
    both = (df["assigned_seats"].notna() & df["total_seats"].notna()).to_numpy()
    work["total"] = df["total_seats"].astype("Float64")
    work["assigned"] = df["assigned_seats"].astype("Float64")
    work["both_assigned"] = df["assigned_seats"].astype("Float64").where(both)
    work["both_total"] = df["total_seats"].astype("Float64").where(both)
    work["spend"] = np.rint(df["annual_cost_reporting"].astype("Float64") * 100)
    work["idle"] = np.rint(df["idle_annual_cost_reporting"].astype("Float64") * 100)
    work["needs_price"] = needs_price(df)
    work["over"] = (df["flag"] == "over_allocated").to_numpy(dtype=bool)
    work["free"] = (df["flag"] == "free").to_numpy(dtype=bool)
    out = (
        work.fillna({c: "\0none" for c in by})
        .groupby(by, sort=True)
        .agg(
            licenses=("total", "size"),
            total_seats=("total", lambda s: s.sum(min_count=1)),
            assigned_seats=("assigned", lambda s: s.sum(min_count=1)),
            ua=("both_assigned", lambda s: s.sum(min_count=1)),
            ut=("both_total", lambda s: s.sum(min_count=1)),
            annual_spend=("spend", lambda s: s.sum(min_count=1)),
            idle_annual_spend=("idle", lambda s: s.sum(min_count=1)),
            unpriced_paid_licenses=("needs_price", "sum"),
            flag_over_allocated=("over", "sum"),
            flag_free=("free", "sum"),
        )
        .reset_index()
    )
    return out


def _na(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


@PROFILE
@given(
    estates(),
    st.sampled_from([["integration_label"], ["integration_label", "license_name"], ["tenant_id"]]),
    st.booleans(),
)
def test_the_fast_engine_agrees_with_a_pandas_groupby(case, by, paid_only):
    df, options = case
    got = group_summary(df, by, options, paid_only=paid_only)
    want = _reference_groups(df, by, paid_only)
    assert len(got) == len(want)
    key = lambda row: tuple("\0none" if _na(row[c]) else row[c] for c in by)  # noqa: E731
    got_rows = {key(r): r for r in got.to_dict("records")}
    for w in want.to_dict("records"):
        g = got_rows[key(w)]
        assert g["licenses"] == w["licenses"]
        for name in ("total_seats", "assigned_seats"):
            assert (_na(g[name]) and _na(w[name])) or g[name] == w[name], name
        for name, col in (("utilization_assigned_seats", "ua"), ("utilization_total_seats", "ut")):
            assert (_na(g[name]) and _na(w[col])) or g[name] == w[col], name
        if not _na(w["ut"]) and w["ut"] > 0:
            a, t = int(w["ua"]), int(w["ut"])
            assert g["utilization_pct"] == math.floor(Fraction(1000 * a, t) + Fraction(1, 2)) / 10
        for name in ("annual_spend", "idle_annual_spend"):
            assert (_na(g[name]) and _na(w[name])) or round(g[name] * 100) == w[name], name
        assert g["unpriced_paid_licenses"] == w["unpriced_paid_licenses"]
        assert (
            g["flag_over_allocated"] == w["flag_over_allocated"]
            and g["flag_free"] == w["flag_free"]
        )
    # The one-group summary is the same engine over all rows: it agrees with the sum of the reference.
    s = summarize(df, options, paid_only=paid_only)
    assert s.licenses == int(want["licenses"].sum())
    assert s.unpriced_paid_licenses == int(want["unpriced_paid_licenses"].sum())
    spend = want["annual_spend"].dropna()
    assert (s.annual_spend is None and spend.empty) or round(s.annual_spend * 100) == int(
        spend.sum()
    )
