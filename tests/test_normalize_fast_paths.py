"""The build's fast paths give exactly what the slow paths give.

Each fast path (plain-ASCII text read from the Arrow buffers, names and statuses converted as a
dictionary, vendor amounts and currencies checked in C) is pinned here to the path it short-cuts:
the same values, the same problems, "not reported" still empty, never 0.
"""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lib.truto import normalize
from lib.truto import values as V
from lib.truto.normalize import Listing, build_license_table
from lib.truto.text import clean_text

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# Text of every kind the fast checks must tell apart: plain ASCII, padded, tabs and line breaks,
# non-ASCII letters and spaces (NBSP, U+2003), controls, bidi controls, NUL, empty.
_TEXT = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            " ",
            "Pro",
            " Pro",
            "Pro ",
            "Pro Plan",
            "Caf\u00e9",
            "\u00a0Pro",
            "Pro\u2003",
            "a\tb",
            "\tPro",
            "Pro\n",
            "p\x00ro",
            "E\u200enterprise",
            "\u202eexe.jpg",
            "~!",
            "\x7f",
            "\x1f",
        ]
    ),
    st.text(alphabet=" ab~\u00e9\u00a0\t\n\x00\x7f\x85\u202e", max_size=5),
)


def _reference_plain(values: list) -> bool:
    return all(
        v is None or (v != "" and all(0x20 <= ord(c) <= 0x7E for c in v) and v == v.strip())
        for v in values
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_TEXT, max_size=12),
    st.sampled_from([pa.large_string(), pa.string()]),
    st.integers(0, 3),
    st.integers(0, 3),
)
def test_plain_ascii_is_told_from_the_buffers_exactly(values, kind, cut_front, cut_back):
    arr = pa.array(values, type=kind)
    # A slice of a longer array too: the offsets then do not start at 0.
    padded = pa.array(["\t x"] * cut_front + values + ["\u00e9 "] * cut_back, type=kind)
    sliced = padded.slice(cut_front, len(values))
    expected = _reference_plain(values)
    assert normalize._plain_ascii(arr) is expected
    assert normalize._plain_ascii(sliced) is expected
    if expected:  # what it lets through, the slow cleaning would leave as it is
        assert all(v is None or clean_text(v).strip() == v for v in values)


def _slow_trimmed(monkeypatch, arr, few_values):
    with monkeypatch.context() as m:
        m.setattr(normalize, "_plain_ascii", lambda _arr: False)
        return normalize._trimmed(arr, few_values)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_TEXT, max_size=30), st.booleans())
def test_trimmed_gives_what_the_slow_cleaning_gives(monkeypatch, values, few_values):
    arr = pa.array(values, type=pa.large_string())
    slow = _slow_trimmed(monkeypatch, arr, few_values).to_pylist()
    assert normalize._trimmed(arr, few_values).to_pylist() == slow
    # The bulk read's dictionary form of the same column cleans to the same text.
    as_dictionary = pa.array(values, type=normalize._TEXT_DICTIONARY)
    out = normalize._trimmed(as_dictionary, True)
    assert out.type == pa.large_string() and out.to_pylist() == slow


def test_dictionary_conversion_takes_and_refuses_what_plain_text_conversion_does():
    for raw in (["a", None, b"b"], ["a", 1], ["a", "\ud800"], [True]):
        outcomes = []
        for kind in (pa.large_string(), normalize._TEXT_DICTIONARY):
            try:
                outcomes.append(pa.array(raw, type=kind).to_pylist())
            except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError) as exc:
                outcomes.append(type(exc))
        assert outcomes[0] == outcomes[1]


_AMOUNT = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.sampled_from([0, 7, 2**53, 2**53 + 1, 2**60, 2**70, -(2**70), 10_000_000, 10_000_001]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-0.0, 12.5, 1e7, 1e7 + 0.5, True, False, "3.5", " 12 ", "abc", "", [1]]),
)
_CURRENCY = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "USD",
            "usd",
            "Eur",
            " EUR ",
            "EUR ",
            "usd\n",
            "",
            "US",
            "USDD",
            "\u00dcSD",
            "U1D",
            "\uff35SD",
        ]
    ),
    st.integers(0, 3),
    st.text(alphabet="aZ \u00e9", max_size=4),
)


def _read(reader, raw):
    reports = []
    out = reader(raw, [f"id{i}" for i in range(len(raw))], lambda *a: reports.append(a))
    return out, reports


@settings(max_examples=300, deadline=None)
@given(st.lists(_AMOUNT, max_size=10))
def test_vendor_amounts_in_c_are_the_amounts_read_one_by_one(raw):
    fast, fast_reports = _read(V._amount_array, raw)
    slow, slow_reports = _read(V._amounts, raw)
    assert fast.type == pa.float64()
    assert fast.to_pylist() == slow and fast_reports == slow_reports
    # Not reported stays not reported: an absent amount is empty, never 0.
    assert all(v is None for v, r in zip(fast.to_pylist(), raw) if r is None)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CURRENCY, max_size=10))
def test_vendor_currencies_in_c_are_the_currencies_read_one_by_one(raw):
    fast, fast_reports = _read(V._currency_array, raw)
    slow, slow_reports = _read(V._currencies, raw)
    assert fast.type == pa.large_string()
    assert fast.to_pylist() == slow and fast_reports == slow_reports


# -- the whole build, fast paths on and off


def _slow_build(monkeypatch, listings):
    with monkeypatch.context() as m:
        m.setattr(normalize, "_plain_ascii", lambda _arr: False)
        m.setattr(normalize, "_TEXT_DICTIONARY", pa.large_string())
        m.setattr(
            normalize,
            "_amount_array",
            lambda raw, ids, report: pa.array(V._amounts(raw, ids, report), type=pa.float64()),
        )
        m.setattr(
            normalize,
            "_currency_array",
            lambda raw, ids, report: pa.array(
                V._currencies(raw, ids, report), type=pa.large_string()
            ),
        )
        return build_license_table(listings)


_RECORD = st.fixed_dictionaries(
    {},
    optional={
        "name": _TEXT,
        "status": st.sampled_from([None, "active", " active", "ACTIVE", "", "suspended\u00a0"]),
        "assigned_quantity": st.one_of(st.none(), st.integers(0, 50), st.just("7")),
        "available_quantity": st.one_of(st.none(), st.integers(0, 50)),
        "is_paid": st.sampled_from([None, True, False]),
        "unit_amount": st.sampled_from([None, 0, 12.5, 40, "3.5"]),
        "currency": st.sampled_from([None, "USD", "eur", " GBP ", ""]),
    },
)


@st.composite
def _listing(draw, n: int):
    ids = draw(
        st.lists(
            st.sampled_from(["a1", " b2", "c3 ", "", "d\u00e94", "e 5", "f\t6"])
            | st.text("xyz-", min_size=1, max_size=4),
            max_size=8,
            unique_by=lambda v: v.strip() or object(),
        )
    )
    return Listing(
        f"acct-{n}",
        draw(st.sampled_from(["adobe", "docusign", "github"])),
        draw(st.sampled_from([None, "t1"])),
        [dict(draw(_RECORD), id=i) for i in ids],
        NOW,
        organization_id=draw(st.sampled_from([None, "org-1"])),
        organization_name=draw(st.sampled_from([None, "Org", "Z\u00fcrich AG"])),
    )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.integers(1, 4).flatmap(lambda k: st.tuples(*(_listing(i) for i in range(k)))))
def test_the_build_with_its_fast_paths_is_the_build_without_them(monkeypatch, listings):
    listings = list(listings)
    fast, fast_problems = build_license_table(listings)
    slow, slow_problems = _slow_build(monkeypatch, listings)
    pd.testing.assert_frame_equal(fast, slow)
    assert [p.as_dict() for p in fast_problems] == [p.as_dict() for p in slow_problems]


def test_clean_docusign_prices_are_read_in_c_and_missing_ones_stay_not_reported(monkeypatch):
    def one_by_one(*_args):
        raise AssertionError("a clean amount was read value by value")

    monkeypatch.setattr(V, "_amounts", one_by_one)
    monkeypatch.setattr(V, "_currencies", one_by_one)
    records = [
        {"id": "p1", "name": "Standard", "unit_amount": 25, "currency": "usd"},
        {"id": "p2", "name": "Standard", "unit_amount": 40.0, "currency": "EUR"},
        {"id": "p3", "name": "Caf\u00e9 Plan", "available_quantity": 3},  # no price sent
    ]
    df, problems = build_license_table(
        [
            Listing("a1", "docusign", None, records, NOW),
            Listing("a2", "adobe", None, [{"id": "x"}], NOW),
        ]
    )
    assert problems == []
    assert df["vendor_unit_amount"].tolist()[:2] == [25.0, 40.0]
    assert df["vendor_currency"].tolist()[:2] == ["USD", "EUR"]
    assert pd.isna(df["vendor_unit_amount"].iloc[2]) and pd.isna(df["vendor_currency"].iloc[2])
    assert pd.isna(df["vendor_unit_amount"].iloc[3]) and pd.isna(df["assigned_seats"].iloc[3])
    assert df["license_name"].tolist()[2] == "Caf\u00e9 Plan"


@pytest.mark.parametrize(
    "ids, expected",
    [
        (["a", "b"], ["a", "b"]),
        ([" a", "b "], ["a", "b"]),  # padded: stripped, as before
        (["\u00e9", "b\u00a0"], ["\u00e9", "b"]),  # non-ASCII: read the slow way
        (["", "b"], [None, "b"]),  # empty: missing (and reported), not an id
    ],
)
def test_ids_are_stripped_only_when_the_buffers_say_they_need_it(ids, expected):
    df, problems = build_license_table(
        [Listing("a1", "adobe", None, [{"id": i, "name": "Pro"} for i in ids], NOW)]
    )
    assert df["license_id"].tolist() == [e if e is not None else pd.NA for e in expected]
    assert [p.kind for p in problems] == ["missing_id"] * expected.count(None)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from(["acct-1", "", " Org ", "Z\u00fcrich", "\u202e"])),
            st.integers(0, 4),
        ),
        max_size=8,
    )
)
def test_context_columns_built_from_buffers_are_the_dictionary_route(pairs):
    values = [v for v, _ in pairs]
    counts = np.array([c for _, c in pairs], dtype=np.int64)
    fast = normalize._repeated_strings(values, counts)
    slow = normalize._repeated_by_dictionary(values, counts)
    assert fast.dtype == slow.dtype
    assert fast._pa_array.type == slow._pa_array.type  # large_string, as the schema's "string"
    pd.testing.assert_extension_array_equal(fast, slow)
    fast._pa_array.validate(full=True)
    assert fast.isna().tolist() == [v is None for v, c in pairs for _ in range(c)]
