"""Bulk column I/O: COPY/executemany in, Arrow arrays out (COPY ... TO STDOUT as CSV on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Connection

from lib.store.base import StoreBase

_CHUNK = 900


def _empty_frame(columns: Mapping[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})


def _pylist(series: pd.Series, dtype: str, sqlite: bool) -> list:
    """A column as Python values for the driver, NA as None (NaN is NA too)."""
    if dtype.startswith("datetime64"):
        stamps = pd.to_datetime(series, utc=True)
        arr = pa.Array.from_pandas(stamps).cast(pa.timestamp("us", tz="UTC"), safe=False)
        return arr.cast(pa.int64()).to_pylist() if sqlite else arr.to_pylist()
    arr = pa.Array.from_pandas(series.astype(dtype))
    if pa.types.is_floating(arr.type):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
    return arr.to_pylist()


_ARROW_TYPES = {
    "string": pa.large_string(),
    "Int64": pa.int64(),
    "Float64": pa.float64(),
    "boolean": pa.bool_(),
    "datetime64[us, UTC]": pa.int64(),
    "int64": pa.int64(),
}


def _arrow_from_values(values: Sequence[Any], dtype: str) -> pa.Array:
    """Driver values (timestamps as integer microseconds, SQLite booleans as 0/1) -> an Arrow array."""
    if dtype == "boolean":
        return pa.array(values, type=pa.int8()).cast(pa.bool_())  # bools are ints in Python too
    return pa.array(values, type=_ARROW_TYPES[dtype])


def _pandas_array(arr: pa.Array, dtype: str):
    """An Arrow column -> the pandas array of ``dtype`` (NA kept as NA; ``int64``: a plain numpy array)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], type=arr.type)
    if dtype == "string":
        return pd.array(arr.cast(pa.large_string()), dtype="string")
    if dtype.startswith("datetime64"):
        return arr.cast(pa.int64()).cast(pa.timestamp("us", tz="UTC")).to_pandas().array
    if dtype == "int64":
        return np.asarray(arr.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    mask = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    filled = arr.fill_null(False if dtype == "boolean" else 0).to_numpy(zero_copy_only=False)
    if dtype == "Int64":
        return pd.arrays.IntegerArray(np.asarray(filled, dtype=np.int64), mask)
    if dtype == "Float64":
        return pd.arrays.FloatingArray(np.asarray(filled, dtype=np.float64), mask)
    if dtype == "boolean":
        return pd.arrays.BooleanArray(np.asarray(filled, dtype=bool), mask)
    raise AssertionError(dtype)


def _conform(df: pd.DataFrame, columns: Mapping[str, str], what: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the {what} table lacks the column(s) {', '.join(missing)}")
    out = df[list(columns)].copy()
    for name, dtype in columns.items():
        if dtype.startswith("datetime64"):
            out[name] = pd.to_datetime(out[name], utc=True).astype(dtype)
        elif str(out[name].dtype) != dtype:
            out[name] = out[name].astype(dtype)
    return out.reset_index(drop=True)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BulkMixin(StoreBase):
    """Column-wise reads and writes shared by snapshots and history."""

    def _drop_temp_tables(self, conn: Connection, names: Sequence[str]) -> None:
        """Drop the temporary tables ``names`` if they exist (the temporary schema only: never a
        table of the database by that name)."""
        cur = self._cursor(conn)
        try:
            for name in names:
                cur.execute(
                    f"DROP TABLE IF EXISTS {'temp' if self.is_sqlite else 'pg_temp'}.{name}"
                )
        finally:
            cur.close()

    def _insert_rows(
        self, conn: Connection, table: str, names: Sequence[str], data: Sequence[list]
    ) -> None:
        """Bulk insert column lists: executemany on SQLite, COPY on PostgreSQL."""
        cur = self._cursor(conn)
        try:
            if self.is_sqlite:
                cur.executemany(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                    list(zip(*data)),
                )
            else:
                with cur.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
                    for row in zip(*data):
                        copy.write_row(row)
        finally:
            cur.close()

    def _arrow_columns(
        self, conn: Connection, exprs: Sequence[tuple[str, str]], tail: str, params: tuple
    ) -> list[pa.Array]:
        """``SELECT <exprs> <tail>`` as Arrow arrays, one per (column, dtype) in ``exprs``.

        SQLite: one fetchall, transposed. PostgreSQL: ``COPY (...) TO STDOUT``
        as CSV parsed by pyarrow, so no Python object is made per value.
        Timestamps come back as integer microseconds either way.
        """
        select_list = ", ".join(self._ts(c) if t.startswith("datetime64") else c for c, t in exprs)
        sql = f"SELECT {select_list} {tail}"
        if self.is_sqlite:
            cur = self._cursor(conn)
            try:
                cur.execute(sql, params)
                rows = cur.fetchall()
            finally:
                cur.close()
            cols = list(zip(*rows)) if rows else [()] * len(exprs)
            return [_arrow_from_values(values, t) for values, (_, t) in zip(cols, exprs)]
        return self._pg_copy_out(conn, sql, params, exprs)

    def _pg_copy_out(
        self, conn: Connection, sql: str, params: tuple, exprs: Sequence[tuple[str, str]]
    ) -> list[pa.Array]:
        import io

        import psycopg
        import pyarrow.csv as pacsv

        raw = conn.connection.driver_connection
        assert raw is not None  # an open connection has its driver's connection
        query = psycopg.ClientCursor(raw).mogrify(sql, params)
        buf = io.BytesIO()
        with raw.cursor() as cur:
            with cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
                for data in copy:
                    buf.write(data)
        names = [f"c{i}" for i in range(len(exprs))]
        if buf.tell() == 0:
            return [pa.array([], type=_ARROW_TYPES[t]) for _, t in exprs]
        table = pacsv.read_csv(
            io.BytesIO(buf.getvalue()),
            read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: _ARROW_TYPES[t] for n, (_, t) in zip(names, exprs)},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
        return [table.column(n) for n in names]

    def _columns(
        self, conn: Connection, exprs: Sequence[tuple[str, str]], tail: str, params: tuple
    ) -> dict[str, Any]:
        arrays = self._arrow_columns(conn, exprs, tail, params)
        return {c: _pandas_array(a, t) for a, (c, t) in zip(arrays, exprs)}

    def _read_rows(
        self,
        conn: Connection,
        table: str,
        columns: Mapping[str, str],
        clauses: Sequence[tuple[str, tuple]],
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """(owner ids, positions, {column: pandas array}) of ``table`` rows matching any of ``clauses``."""
        exprs = [("account_snapshot_id", "int64"), ("position", "int64"), *columns.items()]
        parts: list[list[pa.Array]] = [
            self._arrow_columns(conn, exprs, f"FROM {table} WHERE {where}", params)
            for where, params in clauses
        ]
        if not parts:
            parts = [[pa.array([], type=_ARROW_TYPES[t]) for _, t in exprs]]

        def chunks(i: int) -> list[pa.Array]:
            out: list[pa.Array] = []
            for part in parts:
                out.extend(part[i].chunks if isinstance(part[i], pa.ChunkedArray) else [part[i]])
            return out

        merged = [
            pa.chunked_array(chunks(i), type=_ARROW_TYPES[t]) for i, (_, t) in enumerate(exprs)
        ]
        owners = _pandas_array(merged[0], "int64")
        positions = _pandas_array(merged[1], "int64")
        data = {
            name: _pandas_array(arr, dtype)
            for arr, (name, dtype) in zip(merged[2:], columns.items())
        }
        return owners, positions, data

    def _id_clauses(self, ids: Sequence[int]) -> list[tuple[str, tuple]]:
        return [
            (
                f"account_snapshot_id IN ({', '.join([self._ph] * len(chunk))})",
                tuple(int(i) for i in chunk),
            )
            for chunk in _chunks(list(ids))
        ]

    def _frame(
        self, columns: Mapping[str, str], data: Mapping[str, Any], order: np.ndarray | None
    ) -> pd.DataFrame:
        if order is not None:
            data = {c: v[order] for c, v in data.items()}
        df = pd.DataFrame(data, columns=list(columns))
        return df.astype(dict(columns)) if len(df) == 0 else df

    def _ordered(
        self,
        conn: Connection,
        table: str,
        columns: Mapping[str, str],
        clauses: Sequence[tuple[str, tuple]],
        rank_of_owner: Mapping[int, int],
    ) -> pd.DataFrame:
        if not clauses:
            return _empty_frame(columns)
        owners, positions, data = self._read_rows(conn, table, columns, clauses)
        if not len(owners):
            return _empty_frame(columns)
        lookup = np.array(sorted(rank_of_owner.items()), dtype=np.int64)
        ranks = lookup[np.searchsorted(lookup[:, 0], owners), 1]
        order = np.lexsort((positions, ranks))
        return self._frame(columns, data, order)
