from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.schema import LICENSE_COLUMNS
from lib.truto.normalize import Listing, build_license_table, seat_arithmetic

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def table(records, **kw):
    df, problems = build_license_table(
        [Listing("acc", kw.pop("integration", "adobe"), "t1", records, NOW, **kw)]
    )
    return df, problems


def test_columns_and_dtypes_match_the_schema():
    df, _ = table(
        [{"id": "a", "name": "A", "assigned_quantity": 1, "available_quantity": 2, "is_paid": True}]
    )
    assert list(df.columns) == list(LICENSE_COLUMNS)
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        c: str(pd.Series(dtype=t).dtype) for c, t in LICENSE_COLUMNS.items()
    }
    assert df.loc[0, "integration_label"] == "Adobe"


@pytest.mark.parametrize(
    "assigned, total, unassigned, over, util",
    [
        (5, 10, 5, 0, 50.0),
        (10, 10, 0, 0, 100.0),
        (12, 10, 0, 2, 120.0),
        (0, 0, 0, 0, None),  # utilization empty when total is 0
        (3, 0, 0, 3, None),
        (None, 10, None, None, None),
        (4, None, None, None, None),
        (2, 3, 1, 0, 66.7),
        (1, 8, 7, 0, 12.5),  # exact half rounds up
        (1, 16, 15, 0, 6.3),  # 6.25 -> 6.3 (half-up, computed in integers)
    ],
)
def test_seat_arithmetic(assigned, total, unassigned, over, util):
    out = seat_arithmetic(pd.Series([assigned], dtype="Int64"), pd.Series([total], dtype="Int64"))
    for name, want in (
        ("unassigned_seats", unassigned),
        ("over_allocated_seats", over),
        ("utilization_pct", util),
    ):
        got = out[name].iloc[0]
        assert pd.isna(got) if want is None else got == want, (name, got, want)


@pytest.mark.parametrize(
    "value, seats, kind",
    [
        ("12", 12, None),
        (" 7 ", 7, None),
        ("12.0", 12, None),
        (12.0, 12, None),
        ("+3", 3, None),
        (-1, None, "negative_quantity"),
        ("-1", None, "negative_quantity"),
        (2.5, None, "fractional_quantity"),
        ("2.5", None, "fractional_quantity"),
        ("1,200", None, "non_numeric_quantity"),
        ("lots", None, "non_numeric_quantity"),
        (True, None, "non_numeric_quantity"),
        ([3], None, "non_numeric_quantity"),
        (float("nan"), None, "non_numeric_quantity"),
        (None, None, None),
        ("", None, None),
    ],
)
def test_quantities_read_when_unambiguous_else_reported(value, seats, kind):
    df, problems = table([{"id": "a", "assigned_quantity": value, "available_quantity": 100}])
    got = df.loc[0, "assigned_seats"]
    assert pd.isna(got) if seats is None else got == seats
    assert [p.kind for p in problems] == ([kind] if kind else [])
    if kind:
        assert (
            problems[0].account_id == "acc"
            and problems[0].record_id == "a"
            and problems[0].field == "assigned_quantity"
        )


def test_booleans_text_and_bad_values():
    df, problems = table(
        [
            {"id": "a", "is_paid": "true"},
            {"id": "b", "is_paid": "FALSE"},
            {"id": "c", "is_paid": 1},
            {"id": "d"},
        ]
    )
    assert list(df["is_paid"].astype(object)) == [True, False, pd.NA, pd.NA]
    assert [p.kind for p in problems] == ["not_boolean"]


def test_vendor_price_and_currency():
    df, problems = table(
        [
            {"id": "a", "unit_amount": "40", "currency": "eur"},
            {"id": "b", "unit_amount": -1, "currency": "EURO"},
        ],
        integration="docusign",
    )
    assert df.loc[0, "vendor_unit_amount"] == 40.0 and df.loc[0, "vendor_currency"] == "EUR"
    assert pd.isna(df.loc[1, "vendor_unit_amount"]) and pd.isna(df.loc[1, "vendor_currency"])
    assert sorted(p.kind for p in problems) == ["bad_currency", "negative_amount"]


def test_missing_and_duplicate_ids_are_reported_not_silently_dropped():
    df, problems = table(
        [
            {"id": "a", "assigned_quantity": 1},
            {"name": "anon", "assigned_quantity": 2},
            {"id": "", "assigned_quantity": 3},
            {"id": "a", "assigned_quantity": 9},
            "not a record",
        ]
    )
    assert list(df["assigned_seats"]) == [1, 2, 3]
    assert sorted(p.kind for p in problems) == [
        "duplicate_id",
        "missing_id",
        "missing_id",
        "not_an_object",
    ]
    dup = next(p for p in problems if p.kind == "duplicate_id")
    assert "counted once" in dup.sentence() and "Adobe account acc" in dup.sentence()


def test_numeric_ids_become_text_and_text_is_trimmed():
    df, _ = table([{"id": 42, "name": "  Pro  ", "status": ""}])
    assert (
        df.loc[0, "license_id"] == "42"
        and df.loc[0, "license_name"] == "Pro"
        and pd.isna(df.loc[0, "status"])
    )


def test_context_columns_repeat_per_listing():
    l1 = Listing("a1", "github", "t1", [{"id": "x"}, {"id": "y"}], NOW, "o1", "Org 1")
    l2 = Listing("a2", "microsoft365", "t2", [{"id": "x"}], NOW, product="onedrive")
    df, _ = build_license_table([l1, l2])
    assert list(df["account_id"]) == ["a1", "a1", "a2"]
    assert list(df["organization_name"].fillna("-")) == ["Org 1", "Org 1", "-"]
    assert list(df["product"].fillna("-")) == ["-", "-", "onedrive"]
    assert list(df["integration_label"]) == ["GitHub", "GitHub", "Microsoft 365"]
    assert (df["fetched_at"] == pd.Timestamp(NOW)).all()


def test_empty_input_gives_an_empty_table_with_the_schema():
    df, problems = build_license_table([])
    assert df.empty and list(df.columns) == list(LICENSE_COLUMNS) and problems == []


def test_ids_are_compared_as_the_text_they_become():
    df, problems = table(
        [
            {"id": 1, "assigned_quantity": 1},
            {"id": "1", "assigned_quantity": 2},
            {"id": "a", "assigned_quantity": 3},
            {"id": "a ", "assigned_quantity": 4},
            {"id": True, "assigned_quantity": 5},
        ]
    )
    assert list(df["assigned_seats"]) == [
        1,
        3,
        5,
    ]  # "1" repeats 1, "a " repeats "a"; True is its own id
    assert [p.kind for p in problems] == ["duplicate_id", "duplicate_id"]


@pytest.mark.parametrize(
    "rec",
    [
        {"id": {"nested": 1}, "assigned_quantity": 1},
        {"id": [1, 2], "assigned_quantity": 1},
        {"id": "x", "assigned_quantity": 2**70},
        {"id": "x", "assigned_quantity": "99999999999999999999999"},
        {"id": "x", "available_quantity": 10**10},
    ],
)
def test_malformed_records_are_reported_not_fatal(rec):
    df, problems = table([rec, {"id": "ok", "assigned_quantity": 3}])
    assert len(df) == 2 and df.loc[1, "assigned_seats"] == 3
    assert len(problems) == 1
    assert problems[0].kind in ("missing_id", "implausible_quantity")


def test_nul_characters_are_removed_from_text():
    df, _ = table([{"id": "a\x00b", "name": "Pro\x00 Plan"}])
    assert df.loc[0, "license_id"] == "ab" and df.loc[0, "license_name"] == "Pro Plan"


# -- the bulk read (every listing at once, when nothing is a problem) and the listing-by-listing read
# give the same table: a listing with a problem sends the whole build through the second one.

_ODD_TEXT = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.sampled_from(["", " ", "Pro", " Pro ", "pro\x00", "E\u200enterprise", "a\tb", "=SUM(A1)"]),
    st.text(alphabet=" ab\u00e9\u202e\x7f\n", max_size=4),
)
_CLEAN_QUANTITY = st.one_of(
    st.none(), st.integers(0, 10**9), st.sampled_from([12.0, 0.0, "12", " 7 ", "3.0", ""])
)
_CLEAN_RECORD = st.fixed_dictionaries(
    {},
    optional={
        "name": _ODD_TEXT,
        "status": _ODD_TEXT,
        "assigned_quantity": _CLEAN_QUANTITY,
        "available_quantity": _CLEAN_QUANTITY,
        "is_paid": st.sampled_from([None, True, False, "true", " FALSE "]),
        "unit_amount": st.sampled_from([None, 0, 12.5, "3.5", 7]),
        "currency": st.sampled_from([None, "", "usd", " EUR "]),
        "extra": st.just({"nested": [1]}),
    },
)


@st.composite
def _clean_listing(draw, n: int):
    ids = draw(
        st.lists(
            st.sampled_from(["a", " b", "c ", "", " ", "d\x01", "e\u2066"])
            | st.text("xyz", min_size=1),
            max_size=6,
            unique_by=lambda v: v.strip() or object(),  # empty ids may repeat: missing, not twice
        )
    )
    records = [dict(draw(_CLEAN_RECORD), id=i) for i in ids]
    return Listing(
        f"acc-{n}",
        draw(st.sampled_from(["adobe", "docusign", "github", "microsoft365"])),
        draw(st.sampled_from([None, "t1", "t2"])),
        records,
        NOW,
        organization_id=draw(st.sampled_from([None, "org-1"])),
        organization_name=draw(st.sampled_from([None, "Org", " Org "])),
        product=draw(st.sampled_from([None, "azure_active_directory"])),
        remaining_seats=draw(st.booleans()),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4).flatmap(lambda k: st.tuples(*(_clean_listing(i) for i in range(k)))))
def test_bulk_read_and_listing_by_listing_read_agree(listings):
    listings = list(listings)
    bulk, bulk_problems = build_license_table(listings)
    # A duplicate id in one more listing: reported, so every listing is read one by one.
    dirty = Listing("dirty", "adobe", None, [{"id": "z"}, {"id": "z"}], NOW)
    each, each_problems = build_license_table([*listings, dirty])
    assert any(p.kind == "duplicate_id" for p in each_problems)
    each = each[each["account_id"] != "dirty"].reset_index(drop=True)
    pd.testing.assert_frame_equal(bulk, each)
    assert [p.as_dict() for p in bulk_problems] == [
        p.as_dict() for p in each_problems if p.account_id != "dirty"
    ]


def test_clean_listings_take_the_bulk_read(monkeypatch):
    from lib.truto import normalize

    def listing_by_listing(*_args):
        raise AssertionError("a clean build read listing by listing")

    monkeypatch.setattr(normalize, "_add_listing", listing_by_listing)
    records = [{"id": f"l{i}", "name": " Pro ", "assigned_quantity": i} for i in range(5)]
    df, problems = build_license_table(
        [Listing("a1", "adobe", "t", records, NOW), Listing("a2", "adobe", "t", records, NOW)]
    )
    assert len(df) == 10 and problems == []
    assert df["license_name"].tolist() == ["Pro"] * 10
    assert df["assigned_seats"].tolist() == list(range(5)) * 2  # the same ids in two listings: fine


def test_a_problem_anywhere_reads_listing_by_listing_and_reports_it():
    clean = [{"id": "a", "assigned_quantity": 1}]
    bad = [{"id": "b", "assigned_quantity": -1}]
    df, problems = build_license_table(
        [Listing("a1", "adobe", "t", clean, NOW), Listing("a2", "slack", "t", bad, NOW)]
    )
    assert df["assigned_seats"].tolist()[0] == 1 and pd.isna(df["assigned_seats"].tolist()[1])
    assert [(p.account_id, p.record_id, p.kind) for p in problems] == [
        ("a2", "b", "negative_quantity")
    ]
