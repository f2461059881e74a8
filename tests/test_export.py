import csv
import io
from datetime import UTC, datetime

import pandas as pd

from lib.export import dated_filename, to_csv_bytes


def test_formulas_are_neutralised_numbers_kept_and_missing_left_empty():
    df = pd.DataFrame(
        {
            "license_name": pd.array(
                ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTab", "Normal", None],
                dtype="string",
            ),
            "assigned_seats": pd.array([-1, 2, 3, None, 5, 6, 7], dtype="Int64"),
        }
    )
    text = to_csv_bytes(df).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["license_name"] for r in rows] == [
        '\'=HYPERLINK("http://x")',
        "'+1",
        "'-2",
        "'@SUM(A1)",
        "'\tTab",
        "Normal",
        "",
    ]
    assert [r["assigned_seats"] for r in rows] == ["-1", "2", "3", "", "5", "6", "7"]


def test_dated_filename():
    assert (
        dated_filename("licenses", datetime(2026, 11, 23, tzinfo=UTC)) == "licenses-2026-11-23.csv"
    )
