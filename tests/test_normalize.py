from datetime import UTC, datetime

import pandas as pd
import pytest

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
