"""CSV export that is safe to open in a spreadsheet.

Vendor text is untrusted: a text cell that a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``, a tab, a carriage
return or a line feed) is prefixed with ``'`` so it shows as text. Numbers stay numbers.
Rows end in CRLF and every cell holding a CR or LF is quoted, so a line break
inside a value can never start a new row (whose first cell could be a formula).
Missing values ("not reported") are written as empty cells, never 0.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")
LINE_END = "\r\n"  # csv quotes a cell holding any character of the line end: CR and LF both


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text columns cannot be run as formulas."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            text = s.astype("string")
            risky = text.str.match(r"^[=+\-@\t\r\n]", na=False)
            if risky.any():
                out[col] = text.where(~risky, "'" + text)
    return out


def to_csv_bytes(df: pd.DataFrame, columns: Sequence[str] | None = None) -> bytes:
    """UTF-8 CSV (with a BOM, so spreadsheets read accents right) of ``df``."""
    if columns is not None:
        df = df[list(columns)]
    buf = io.StringIO()
    neutralise(df).to_csv(
        buf, index=False, date_format="%Y-%m-%dT%H:%M:%SZ", lineterminator=LINE_END
    )
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def write_csv(df: pd.DataFrame, path: str | Path, columns: Sequence[str] | None = None) -> None:
    Path(path).write_bytes(to_csv_bytes(df, columns))


def dated_filename(stem: str, when: datetime | None = None, ext: str = "csv") -> str:
    when = when or datetime.now(UTC)
    return f"{stem}-{when:%Y-%m-%d}.{ext}"
