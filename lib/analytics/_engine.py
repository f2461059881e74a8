"""Private: the fast column reads, Arrow text encoding and grouping behind metrics and totals.

Nothing here is a rule or a word; see :mod:`lib.analytics.rules` and :mod:`lib.analytics.labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _masked(series: pd.Series, dtype: str, np_dtype) -> tuple[np.ndarray, np.ndarray]:
    """(values with NA as 0, NA mask) as numpy arrays. May share the column's memory: do not modify."""
    arr = series.array
    if str(arr.dtype) != dtype:
        arr = pd.array(series, dtype=dtype)
    na_value = False if np_dtype is bool else 0
    return arr.to_numpy(dtype=np_dtype, na_value=na_value), np.asarray(arr.isna())


def _raw(series: pd.Series, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(values, NA mask) of a nullable column without copying when possible.

    The values under the mask are unspecified (not necessarily 0): use only
    where every result computed from them is masked by the same NA mask.
    """
    arr = series.array
    if str(arr.dtype) != dtype:
        arr = pd.array(series, dtype=dtype)
    data, mask = getattr(arr, "_data", None), getattr(arr, "_mask", None)
    if isinstance(data, np.ndarray) and isinstance(mask, np.ndarray) and len(data) == len(arr):
        return data, mask
    return _masked(series, dtype, np.float64 if dtype == "Float64" else np.int64)


def _arrow_strings(series: pd.Series) -> pa.Array:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype("string")
    arr = series.array
    try:
        out = pa.array(arr)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        out = pa.array(pd.array(series, dtype="string"))
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    if not pa.types.is_string(out.type) and not pa.types.is_large_string(out.type):
        out = pa.array(pd.array(series.astype("string"), dtype="string"))
    return out


def _encode(series: pd.Series, na_last: bool = False) -> tuple[np.ndarray, list]:
    """(int32 codes, the distinct values) of a text column; NA is -1, or len(values) with ``na_last``."""
    if len(series) == 0:
        return np.zeros(0, dtype=np.int32), []
    enc = pc.dictionary_encode(_arrow_strings(series))
    indices = enc.indices
    if indices.null_count:
        indices = indices.fill_null(len(enc.dictionary) if na_last else -1)
    return indices.to_numpy(zero_copy_only=False).astype(
        np.int32, copy=False
    ), enc.dictionary.to_pylist()


def _categorical(codes: np.ndarray, labels: Sequence[str]) -> pd.Categorical:
    """A categorical text column from codes into ``labels`` (-1: NA); no Python work per row."""
    return pd.Categorical.from_codes(
        codes.astype(np.int8 if len(labels) < 127 else np.int32, copy=False),
        dtype=pd.CategoricalDtype(list(labels)),
    )


def _codes_of(series: pd.Series, labels: Sequence[str]) -> np.ndarray:
    """int codes of a text column's values in ``labels`` (-1: NA or not one of them)."""
    if isinstance(series.dtype, pd.CategoricalDtype) and list(series.cat.categories) == list(
        labels
    ):
        return series.cat.codes.to_numpy()
    found = pc.index_in(_arrow_strings(series.astype("string")), value_set=pa.array(list(labels)))
    return found.fill_null(-1).to_numpy(zero_copy_only=False)


def _float(values: np.ndarray, mask: np.ndarray) -> pd.arrays.FloatingArray:
    """A nullable float column; ``values`` must be finite (0 where masked), ``mask`` is copied."""
    return pd.arrays.FloatingArray(values, mask.copy())


def _round_cents(values: np.ndarray) -> np.ndarray:
    """Round to cents in place (halves to even, as numpy's round) and return the array."""
    values *= 100
    np.rint(values, out=values)
    values /= 100
    return values


def _buffer_fraction(buffer: float) -> Fraction:
    return Fraction(str(buffer)).limit_denominator(10**6)


class _Grouping:
    """Row -> group codes, with the runs of equal codes when rows come in long runs (faster sums)."""

    def __init__(self, codes: np.ndarray | None, ngroups: int, rows: np.ndarray | None = None):
        # codes None: one group of all rows (rows: the rows in it, as a 0/1 float vector, or None for all).
        self.codes = codes
        self.ngroups = ngroups
        self.rows = rows
        self.starts: np.ndarray | None = None
        self.run_codes: np.ndarray | None = None
        if codes is not None and len(codes) > 1:
            change = codes[1:] != codes[:-1]
            if np.count_nonzero(change) < len(codes) // 8:
                self.starts = np.concatenate([[0], np.flatnonzero(change) + 1])
                self.run_codes = codes[self.starts]

    def sum(self, weights: np.ndarray) -> np.ndarray:
        if self.codes is None:
            return np.array([weights.sum() if self.rows is None else weights @ self.rows])
        if self.starts is not None:
            assert self.run_codes is not None  # set with the starts
            return np.bincount(
                self.run_codes, np.add.reduceat(weights, self.starts), minlength=self.ngroups + 1
            )[: self.ngroups]
        return np.bincount(self.codes, weights, minlength=self.ngroups + 1)[: self.ngroups]


def is_text(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.StringDtype) or series.dtype == object


def column_codes(series: pd.Series) -> tuple[np.ndarray, pd.api.extensions.ExtensionArray]:
    """int64 codes of one column, NA last, and the values they stand for (with NA)."""
    if is_text(series):
        codes, values = _encode(series, na_last=True)
        codes = codes.astype(np.int64)
    else:
        codes, values = pd.factorize(series)
        codes = codes.astype(np.int64)
        codes[codes < 0] = len(values)
    return codes, pd.array(list(values) + [None], dtype=series.dtype)


def combine_codes(columns: list[tuple[np.ndarray, pd.api.extensions.ExtensionArray]], n: int):
    """Codes per row (int64) for the combination of several columns' codes, and per code each column's value.

    Only the combinations that occur get a code when the product is small; some codes may have no rows.
    """
    codes, values = columns[0]
    key_codes = [np.arange(len(values))]
    values_list = [values]
    ngroups = len(values)
    for c, values in columns[1:]:
        width = len(values)
        combined = codes * width
        combined += c
        size = ngroups * width
        if size <= 4 * n + 4096:
            present = np.bincount(combined, minlength=size) > 0
            uniques = np.flatnonzero(present)
            codes = (np.cumsum(present) - 1)[combined]
        else:
            codes, uniques = pd.factorize(combined, sort=True)
            uniques = np.asarray(uniques, dtype=np.int64)
        ngroups = len(uniques)
        key_codes = [k[uniques // width] for k in key_codes] + [uniques % width]
        values_list.append(values)
    return codes, [vals.take(k) for vals, k in zip(values_list, key_codes)]
