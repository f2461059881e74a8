"""Raw Truto license records -> one validated, tidy pandas table.

Rules (issue 2):
- A number sent as a string is read when unambiguous ("12", " 12 ", "12.0").
- A negative, fractional or non-numeric quantity, a missing id, or an id seen
  twice in one listing is reported as a problem for that account. The row is
  kept (the bad field becomes "not reported"), except a duplicate, which is
  reported and kept once so its seats are not counted twice.
- A field the integration does not send stays null: "not reported", never 0.

Validation works column by column with fast paths for clean data: when no record is a problem, all
listings are read at once (one pass per field, one Arrow conversion per column); a problem anywhere
sends the build listing by listing, so each problem is reported in its listing's words
(``bench/metrics.py`` times a million records). Text that Arrow's buffers show to be plain ASCII with no
space around it is not stripped or cleaned again (:func:`_plain_ascii`); tests/test_normalize_fast_paths.py
pins every fast path to the slow one.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.integrations import integration_label
from lib.schema import LICENSE_COLUMNS, PROBLEM_COLUMNS
from lib.truto.text import _UNSAFE_RE2, _text, clean_text
from lib.truto.values import (
    _amount_array,
    _booleans,
    _currency_array,
    _quantities,
)


@dataclass
class Listing:
    """The records of one license listing (one account, one organization or product)."""

    account_id: str
    integration: str | None
    tenant_id: str | None
    records: Sequence[Any]
    fetched_at: datetime
    organization_id: str | None = None
    organization_name: str | None = None
    product: str | None = None
    remaining_seats: bool = False  # available_quantity means seats left, not bought


@dataclass
class Problem:
    account_id: str
    integration_label: str
    resource: str
    record_id: str | None
    field: str
    kind: str
    detail: str
    count: int = 1  # the problems this row stands for: more than one for "and N more" (not stored)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "count"}

    def sentence(self) -> str:
        rec = f"record {self.record_id}" if self.record_id else "a record"
        return f"{self.integration_label} account {self.account_id}: {self.resource} {rec}: {self.detail}"


_ROW_COLUMNS = (
    "license_id",
    "license_name",
    "is_paid",
    "status",
    "assigned",
    "available",
    "vendor_unit_amount",
    "vendor_currency",
)


_NULL_TEXT = pa.scalar(None, pa.large_string())
_TRIM_RE2 = r"^\s|\s$|^$"  # leading or trailing space, or empty


def _where(listing: Listing) -> str:
    """Which listing a problem came from, in words."""
    return (
        "licenses"
        + (f" of organization {listing.organization_id}" if listing.organization_id else "")
        + (f" for product {listing.product}" if listing.product else "")
    )


def _strings(raw: list) -> pa.Array:
    """Text as an arrow array (converted in C when every value is text or None; elementwise otherwise)."""
    try:
        return pa.array(raw, type=pa.large_string())
    except (
        pa.ArrowInvalid,
        pa.ArrowTypeError,
        UnicodeEncodeError,
    ):  # the latter: an unpaired surrogate
        return pa.array(
            [_text(v) if not isinstance(v, str) else clean_text(v) for v in raw],
            type=pa.large_string(),
        )


def _plain_ascii(arr: pa.Array) -> bool:
    """True when every value that is not null is printable ASCII (U+0020 to U+007E), not empty, and
    neither starts nor ends with a space: text that :func:`clean_text`, ``str.strip`` and :func:`_trimmed`
    all leave as it is.

    Read from the Arrow buffers (the bytes' minimum and maximum, and each value's first and last byte),
    not value by value. False whenever that cannot be told cheaply, which only means the slower checks run.
    """
    if not (pa.types.is_large_string(arr.type) or pa.types.is_string(arr.type)):
        return False
    n = len(arr)
    if arr.null_count == n:
        return True
    _, offsets_buf, data_buf = arr.buffers()
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width, count=arr.offset + n + 1)[
        arr.offset :
    ].astype(np.int64, copy=False)
    lo, hi = int(offsets[0]), int(offsets[-1])
    if data_buf is None or hi <= lo:
        return False  # every value empty, and at least one is not null
    data = np.frombuffer(data_buf, dtype=np.uint8, count=hi)
    region = data[lo:]  # also the bytes under nulls, if any: it can only say no too often
    if region.min() < 0x20 or region.max() > 0x7E:
        return False
    starts, ends = offsets[:-1], offsets[1:]
    if arr.null_count:
        valid = np.asarray(arr.is_valid())
        starts, ends = starts[valid], ends[valid]
    if (ends <= starts).any():
        return False  # an empty text (it becomes null)
    return not ((data[starts] == 0x20).any() or (data[ends - 1] == 0x20).any())


def _trimmed(arr: pa.Array, few_values: bool = False) -> pa.Array:
    """Whitespace trimmed, empty -> null, control and bidi characters as :func:`clean_text`: once per column,
    after the listings are joined.

    Plain ASCII text with no space around it (:func:`_plain_ascii`, read from the buffers) is returned as
    it is. ``few_values`` (license names, statuses: a handful per listing): the distinct values are
    cleaned and the column rebuilt from them, so each distinct text is read once, not once per row. A
    dictionary array (the bulk read's names and statuses) is cleaned through its dictionary and
    returned as plain large_string.
    """
    if pa.types.is_dictionary(arr.type):
        dictionary = arr.dictionary.cast(pa.large_string())
        cleaned = _trimmed(dictionary)
        return pc.take(cleaned, arr.indices)
    if _plain_ascii(arr):
        return arr
    if few_values:
        enc = pc.dictionary_encode(arr)
        if len(enc.dictionary) * 4 < len(arr):
            cleaned = _trimmed(enc.dictionary)
            if cleaned is enc.dictionary:
                return arr
            return pc.take(cleaned, enc.indices)
    if not pc.any(pc.match_substring_regex(arr, f"{_UNSAFE_RE2}|{_TRIM_RE2}")).as_py():
        return arr  # the clean case, one pass: nothing to remove or trim, so no copy
    if pc.any(pc.match_substring_regex(arr, _UNSAFE_RE2)).as_py():
        arr = pc.replace_substring(arr, "\x00", "")  # PostgreSQL text cannot hold NUL
        arr = pc.replace_substring_regex(
            arr, r"[\x{61c}\x{200e}\x{200f}\x{202a}-\x{202e}\x{2066}-\x{2069}]", ""
        )
        arr = pc.replace_substring_regex(arr, r"[\x{1}-\x{1f}\x{7f}-\x{9f}]", " ")
    if not pc.any(pc.match_substring_regex(arr, _TRIM_RE2)).as_py():
        return arr  # nothing to trim: skip copying the column
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), _NULL_TEXT, trimmed)


def _add_listing(
    chunks: dict[str, list], segments: list, listing: Listing, problems: list[Problem]
) -> None:
    label = integration_label(listing.integration)
    where = _where(listing)

    def report(record_id, fieldname, kind, detail):
        problems.append(
            Problem(listing.account_id, label, where, record_id, fieldname, kind, detail)
        )

    # A record that is not an object cannot be read at all: report it and skip it.
    records = listing.records
    if not all(type(r) is dict for r in records):
        good = []
        for pos, rec in enumerate(records):
            if isinstance(rec, dict):
                good.append(rec)
            else:
                report(
                    None,
                    "record",
                    "not_an_object",
                    f"item {pos + 1} is {type(rec).__name__}, not an object; skipped",
                )
        records = good
    n = len(records)
    if n == 0:
        return

    raw_ids = [r.get("id") for r in records]
    # Compare ids as the text they become (1 and "1", "a" and "a " are one id; 1 and True are not).
    ids = (
        [v.strip() for v in raw_ids]
        if set(map(type, raw_ids)) <= {str}
        else [_text(v) for v in raw_ids]
    )
    ids_arr = _strings(ids)
    present = set(ids)
    present.discard(None)
    present.discard("")
    if len(present) + ids.count(None) + ids.count("") != n:
        # The same id twice in one listing (across pages): keep the first, report the rest.
        seen: set = set()
        keep = []
        for rid in ids:
            first = rid in (None, "") or rid not in seen
            keep.append(first)
            if not first:
                report(
                    _text(rid),
                    "id",
                    "duplicate_id",
                    f"license id {_text(rid)} appears more than once; counted once",
                )
            seen.add(rid)
        records = [r for r, k in zip(records, keep) if k]
        ids = [i for i, k in zip(ids, keep) if k]
        ids_arr = ids_arr.filter(pa.array(keep))
        n = len(records)

    assigned = _quantities(
        [r.get("assigned_quantity") for r in records], ids, "assigned_quantity", report
    )
    available = _quantities(
        [r.get("available_quantity") for r in records], ids, "available_quantity", report
    )
    chunks["license_id"].append(ids_arr)
    chunks["license_name"].append(_strings([r.get("name") for r in records]))
    chunks["is_paid"].append(
        pa.array(_booleans([r.get("is_paid") for r in records], ids, report), type=pa.bool_())
    )
    chunks["status"].append(_strings([r.get("status") for r in records]))
    chunks["assigned"].append(assigned)
    chunks["available"].append(available)
    if any("unit_amount" in r or "currency" in r for r in records):
        amounts = _amount_array([r.get("unit_amount") for r in records], ids, report)
        currencies = _currency_array([r.get("currency") for r in records], ids, report)
    else:
        amounts, currencies = pa.nulls(n, pa.float64()), pa.nulls(n, pa.large_string())
    chunks["vendor_unit_amount"].append(amounts)
    chunks["vendor_currency"].append(currencies)
    segments.append((n, listing, label))


class _Dirty(Exception):
    """A value that would need a word in the problems: the bulk read gives way to the listing-by-listing one."""


def _abort(*_args: Any) -> None:
    raise _Dirty


_TEXT_DICTIONARY = pa.dictionary(pa.int32(), pa.large_string())


def _texts(raw: list, counts: np.ndarray) -> list[pa.Array]:
    """A text column in one conversion when every value is text or null; else listing by listing, as
    :func:`_add_listing` converts it (a listing with a value that is not text is read value by value).

    The one conversion makes a dictionary array (license names and statuses repeat: each distinct
    text is stored and cleaned once; :func:`_trimmed` makes it plain text), taking exactly the values a
    large_string conversion takes."""
    try:
        return [pa.array(raw, type=_TEXT_DICTIONARY)]
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        ends = np.cumsum(counts).tolist()
        return [_strings(raw[end - size : end]) for size, end in zip(counts.tolist(), ends)]


def _bulk_columns(listings: list[Listing]) -> tuple[dict[str, list], list] | None:
    """Every listing's columns read at once (one Python pass per field, one Arrow conversion per column),
    when nothing in them is a problem; None otherwise.

    Clean means: every record an object, every id text and none twice in its listing, and every value
    read by lib.truto.values without a word (a reader's ``report`` stops the bulk read). The readers
    work value by value, so on clean listings this gives the very columns :func:`_add_listing` builds
    listing by listing, without its per-listing costs (a thousand small conversions at 1M rows). Any
    problem: None, and the caller reads listing by listing, reporting each in its listing's words.
    """
    segments = [
        (len(x.records), x, integration_label(x.integration)) for x in listings if len(x.records)
    ]
    if not segments:
        return None
    records = [r for s in segments for r in s[1].records]
    if set(map(type, records)) != {dict}:
        return None
    raw_ids = [r.get("id") for r in records]
    if not set(map(type, raw_ids)) <= {str}:
        return None  # numbers or nulls among the ids: read as _add_listing reads them
    try:
        ids_arr = pa.array(raw_ids, type=pa.large_string())
        if _plain_ascii(ids_arr):
            ids = raw_ids  # nothing to strip: the very strings str.strip would give back
        else:
            ids = [v.strip() for v in raw_ids]
            ids_arr = pa.array(ids, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        return None
    del raw_ids
    counts = np.array([s[0] for s in segments], dtype=np.int64)
    start = 0
    for size in counts.tolist():  # an id twice in one listing (an empty id is missing, not twice)
        end = start + size
        distinct = set(ids[start:end])
        if len(distinct) != size and (
            len(distinct) - ("" in distinct) + ids[start:end].count("") != size
        ):
            return None
        start = end
    try:
        assigned = _quantities(
            [r.get("assigned_quantity") for r in records], ids, "assigned_quantity", _abort
        )
        available = _quantities(
            [r.get("available_quantity") for r in records], ids, "available_quantity", _abort
        )
        is_paid = pa.array(
            _booleans([r.get("is_paid") for r in records], ids, _abort), type=pa.bool_()
        )
        raw_amounts = [r.get("unit_amount") for r in records]
        raw_currencies = [r.get("currency") for r in records]
        n = len(records)
        if raw_amounts.count(None) == n and raw_currencies.count(None) == n:
            amounts = pa.nulls(n, pa.float64())
            currencies = pa.nulls(n, pa.large_string())
        else:  # read per listing, as _add_listing: only the listings that send them
            amount_chunks, currency_chunks, start = [], [], 0
            for size in counts.tolist():
                end = start + size
                a, c = raw_amounts[start:end], raw_currencies[start:end]
                if a.count(None) != size or c.count(None) != size:
                    amount_chunks.append(_amount_array(a, ids[start:end], _abort))
                    currency_chunks.append(_currency_array(c, ids[start:end], _abort))
                else:
                    amount_chunks.append(pa.nulls(size, pa.float64()))
                    currency_chunks.append(pa.nulls(size, pa.large_string()))
                start = end
            amounts = pa.concat_arrays(amount_chunks)
            currencies = pa.concat_arrays(currency_chunks)
        del raw_amounts, raw_currencies
    except _Dirty:
        return None
    columns = {
        "license_id": [ids_arr],
        "license_name": _texts([r.get("name") for r in records], counts),
        "is_paid": [is_paid],
        "status": _texts([r.get("status") for r in records], counts),
        "assigned": [assigned],
        "available": [available],
        "vendor_unit_amount": [amounts],
        "vendor_currency": [currencies],
    }
    return columns, segments


_CONTEXT = (
    "account_id",
    "integration",
    "integration_label",
    "tenant_id",
    "organization_id",
    "organization_name",
    "product",
)


def _repeated_strings(values: list, counts: np.ndarray) -> pd.arrays.ArrowStringArray:
    """A string column that repeats each listing's value, built without a Python loop per row.

    The Arrow buffers are made directly: the text repeated per listing (one ``bytes`` join) and the
    offsets (a cumulative sum), so there is no intermediate dictionary to expand and no Arrow
    kernel writing a million strings into fresh memory. Values that are not all text or None take the
    dictionary route, which converts (or refuses) them as before.
    """
    if all(type(v) is str or v is None for v in values):
        try:
            encoded = [b"" if v is None else v.encode() for v in values]
        except UnicodeEncodeError:
            pass  # an unpaired surrogate: refused below as before
        else:
            return _repeated_utf8(encoded, [v is None for v in values], counts)
    return _repeated_by_dictionary(values, counts)


def _repeated_by_dictionary(values: list, counts: np.ndarray) -> pd.arrays.ArrowStringArray:
    """:func:`_repeated_strings` through a dictionary array expanded by Arrow."""
    uniques: dict = {}
    codes = np.array([uniques.setdefault(v, len(uniques)) for v in values], dtype=np.int32)
    dictionary = pa.array(list(uniques), type=pa.string())
    indices = pa.array(np.repeat(codes, counts))
    arr = pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.large_string())
    return pd.array(arr, dtype="string")


def _repeated_utf8(
    encoded: list[bytes], missing: list[bool], counts: np.ndarray
) -> pd.arrays.ArrowStringArray:
    """Each listing's UTF-8 text (``missing``: null) repeated ``counts`` times, as a large_string column."""
    n = int(counts.sum())
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.repeat(lengths, counts), out=offsets[1:])
    data = b"".join([text * count for text, count in zip(encoded, counts.tolist())])
    validity, null_count = None, 0
    if any(missing):
        valid = np.repeat(~np.array(missing, dtype=bool), counts)
        null_count = n - int(np.count_nonzero(valid))
        validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    arr = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(data), validity, null_count
    )
    return pd.array(arr, dtype="string")


def _column(chunks: list[pa.Array]) -> pa.Array:
    return pa.concat_arrays(chunks) if len(chunks) > 1 else chunks[0]


def _int_series(arr: pa.Array) -> pd.Series:
    mask = np.asarray(arr.is_null())
    values = np.asarray(arr.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return pd.Series(pd.arrays.IntegerArray(values, mask))


def seat_arithmetic(assigned: pd.Series, total: pd.Series) -> dict[str, pd.Series]:
    """Unassigned, over-allocated and utilization from assigned and total seats (two columns of one
    table: the same index).

    Each is empty (NA) when an input is not reported; utilization is also empty
    when total is 0. Utilization is 100 x assigned / total rounded half-up to
    one decimal, computed in integers so it is exact.
    """
    if not assigned.index.equals(total.index):
        raise ValueError("assigned and total seats must be columns of one table (the same index)")
    a = assigned.astype("Int64")
    t = total.astype("Int64")
    a_np = a.to_numpy(dtype=np.int64, na_value=0)
    t_np = t.to_numpy(dtype=np.int64, na_value=0)
    na = np.asarray(a.isna()) | np.asarray(t.isna())
    diff = t_np - a_np
    valid = ~na & (t_np > 0)
    safe_t = np.where(valid, t_np, 1)
    tenths = (2000 * a_np + safe_t) // (2 * safe_t)
    index = assigned.index
    return {
        "unassigned_seats": pd.Series(
            pd.arrays.IntegerArray(np.maximum(diff, 0), na.copy()), index=index
        ),
        "over_allocated_seats": pd.Series(
            pd.arrays.IntegerArray(np.maximum(-diff, 0), na), index=index
        ),
        "utilization_pct": pd.Series(pd.arrays.FloatingArray(tenths / 10.0, ~valid), index=index),
    }


def empty_license_table() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in LICENSE_COLUMNS.items()})


def _report_missing_ids(
    ids: pa.Array, names: pa.Array, segments: list, counts: np.ndarray, problems: list[Problem]
) -> None:
    """A missing_id problem for each row without an id, attributed to its listing."""
    rows = np.flatnonzero(np.asarray(ids.is_null()))
    which = np.searchsorted(np.cumsum(counts), rows, side="right")
    for row, seg in zip(rows, which):
        listing, label = segments[seg][1], segments[seg][2]
        name = names[int(row)].as_py()
        problems.append(
            Problem(
                listing.account_id,
                label,
                _where(listing),
                None,
                "id",
                "missing_id",
                f"a license without an id (name {name.strip() if name else None!r}); kept, but it "
                "cannot be matched to a price by id",
            )
        )


def build_license_table(listings: Iterable[Listing]) -> tuple[pd.DataFrame, list[Problem]]:
    """The tidy license table and the problems found on the way."""
    listings = list(listings)
    problems: list[Problem] = []
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of short-lived values, no cycles: the collector only costs time here
    try:
        bulk = _bulk_columns(listings)
        if bulk is not None:
            chunks, segments = bulk
        else:
            chunks, segments = {k: [] for k in _ROW_COLUMNS}, []
            for listing in listings:
                _add_listing(chunks, segments, listing, problems)
    finally:
        if gc_was_on:
            gc.enable()
    if not segments:
        return empty_license_table(), problems

    counts = np.array([s[0] for s in segments], dtype=np.int64)
    assigned = _int_series(_column(chunks["assigned"]))
    available = _int_series(_column(chunks["available"]))
    remaining = np.repeat(np.array([s[1].remaining_seats for s in segments], dtype=bool), counts)
    total = available
    if remaining.any():
        # available_quantity counts seats left: bought = left + assigned.
        total = available.where(~remaining, available + assigned)

    context = {
        "integration_label": [s[2] for s in segments],
        **{c: [getattr(s[1], c) for s in segments] for c in _CONTEXT if c != "integration_label"},
    }
    fetched = np.repeat(
        np.array(
            [
                pd.Timestamp(s[1].fetched_at).tz_convert("UTC").tz_localize(None).to_datetime64()
                for s in segments
            ],
            dtype="datetime64[us]",
        ),
        counts,
    )
    data = {c: _repeated_strings(context[c], counts) for c in _CONTEXT}
    license_ids = _trimmed(_column(chunks["license_id"]))
    if license_ids.null_count:
        _report_missing_ids(
            license_ids, _column(chunks["license_name"]), segments, counts, problems
        )
    paid, amount = _column(chunks["is_paid"]), _column(chunks["vendor_unit_amount"])
    data.update(
        license_id=pd.array(license_ids, dtype="string"),
        license_name=pd.array(_trimmed(_column(chunks["license_name"]), True), dtype="string"),
        is_paid=pd.arrays.BooleanArray(
            np.asarray(paid.fill_null(False).to_numpy(zero_copy_only=False)),
            np.asarray(paid.is_null()),
        ),
        status=pd.array(_trimmed(_column(chunks["status"]), True), dtype="string"),
        assigned_seats=assigned,
        total_seats=total,
        vendor_unit_amount=pd.arrays.FloatingArray(
            np.asarray(amount.fill_null(0.0).to_numpy(zero_copy_only=False), dtype=np.float64),
            np.asarray(amount.is_null()),
        ),
        vendor_currency=pd.array(_column(chunks["vendor_currency"]), dtype="string"),
        fetched_at=pd.Series(fetched).dt.tz_localize("UTC"),
    )
    df = pd.DataFrame(data)
    df = df.assign(**seat_arithmetic(df["assigned_seats"], df["total_seats"]))
    return df[list(LICENSE_COLUMNS)], problems


def problems_table(problems: Sequence[Problem]) -> pd.DataFrame:
    if not problems:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in PROBLEM_COLUMNS.items()})
    df = pd.DataFrame([p.as_dict() for p in problems])
    return df[list(PROBLEM_COLUMNS)].astype(PROBLEM_COLUMNS)
