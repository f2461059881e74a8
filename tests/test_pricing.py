"""The price book and exchange-rate files: what is accepted, and every way a file is rejected."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from lib.analytics.pricing import (
    CURRENCY_CODES,
    PRICE_BOOK_COLUMNS,
    FxRatesError,
    PriceBookError,
    check_price_table,
    fx_rates_to_csv,
    load_fx_rates,
    load_price_book,
    price_book_to_csv,
    read_price_table,
    validate_fx_rates,
    validate_price_book,
)
from lib.analytics.rules import is_currency_code
from lib.schema import ISO_4217_LIST_ONE

HEADER = "integration,license_id,license_name,unit_price,currency,billing_period\n"


def csv(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


def problems_of(source) -> list[str]:
    with pytest.raises(PriceBookError) as info:
        load_price_book(source)
    return info.value.problems


# ------------------------------------------------------------------ ISO 4217


def test_currency_list_has_the_active_codes_and_not_the_withdrawn_ones():
    for code in ("USD", "EUR", "GBP", "JPY", "CHF", "INR", "BRL", "XCG", "ZWG", "SLE", "VES"):
        assert code in CURRENCY_CODES, code
    for code in ("HRK", "ZWL", "ANG", "SLL", "VEF", "DEM", "FRF", "XYZ", "US", "usd"):
        assert code not in CURRENCY_CODES, code
    # Testing and "no currency" are in ISO 4217 but cannot price anything.
    assert {"XTS", "XXX"} <= ISO_4217_LIST_ONE
    assert not {"XTS", "XXX"} & CURRENCY_CODES
    assert all(len(c) == 3 and c.isalpha() and c.isupper() for c in ISO_4217_LIST_ONE)
    assert 170 <= len(ISO_4217_LIST_ONE) <= 185


def test_is_currency_code_ignores_case_and_spaces():
    assert is_currency_code(" eur ")
    assert not is_currency_code("EURO")
    assert not is_currency_code(None)
    assert not is_currency_code(978)


# -------------------------------------------------------------- price book


def test_a_valid_book_is_read_and_normalised():
    book = load_price_book(
        csv(
            "GitHub,,GitHub Enterprise,21,usd,Monthly",
            " Microsoft 365 ,c42b9cae,Microsoft 365 E5, 684.5 ,EUR, ANNUAL ",
            "Zoom,z-1,,0,GBP,monthly",
        )
    )
    assert list(book.columns) == PRICE_BOOK_COLUMNS
    assert book["integration"].tolist() == ["GitHub", "Microsoft 365", "Zoom"]
    assert book["license_id"].isna().tolist() == [True, False, False]
    assert book["license_id"].tolist()[1:] == ["c42b9cae", "z-1"]
    assert book["license_name"].isna().tolist() == [False, False, True]
    assert book["unit_price"].tolist() == [21.0, 684.5, 0.0]
    assert book["currency"].tolist() == ["USD", "EUR", "GBP"]
    assert book["billing_period"].tolist() == ["monthly", "annual", "monthly"]
    assert str(book["unit_price"].dtype) == "Float64"
    assert str(book["license_id"].dtype) == "string"


def test_sources_path_file_like_and_bytes_give_the_same_book(tmp_path):
    data = csv("GitHub,,Enterprise,21,USD,monthly")
    path = tmp_path / "prices.csv"
    path.write_bytes(data)
    expected = load_price_book(data)
    for source in (path, str(path), io.BytesIO(data), io.StringIO(data.decode()), bytearray(data)):
        pd.testing.assert_frame_equal(load_price_book(source), expected)


def test_excel_byte_order_mark_and_crlf_are_accepted():
    data = b"\xef\xbb\xbf" + csv("GitHub,,Enterprise,21,USD,monthly").replace(b"\n", b"\r\n")
    assert load_price_book(data)["integration"].tolist() == ["GitHub"]


@pytest.mark.parametrize(
    "source", [None, b"", b"  \n", HEADER.encode(), (HEADER + "\n,,,,,\n").encode()]
)
def test_an_empty_book_is_valid(source):
    book = load_price_book(source)
    assert len(book) == 0
    assert list(book.columns) == PRICE_BOOK_COLUMNS


def test_columns_may_come_in_any_order_and_the_id_or_name_column_may_be_left_out():
    book = load_price_book(
        b"billing_period,currency,unit_price,license_name,integration\nannual,USD,10,Pro,Zoom\n"
    )
    assert book.loc[0, "license_name"] == "Pro"
    assert pd.isna(book.loc[0, "license_id"])
    assert book.loc[0, "unit_price"] == 10.0


@pytest.mark.parametrize(
    "row, expected",
    [
        (
            "GitHub,,Pro,10,XYZ,monthly",
            "row 2, column currency: 'XYZ' is not an ISO 4217 currency code",
        ),
        ("GitHub,,Pro,10,,monthly", "row 2, column currency: empty"),
        (
            "GitHub,,Pro,10,HRK,monthly",
            "row 2, column currency: 'HRK' is no longer an ISO 4217 currency code (replaced by EUR)",
        ),
        (
            "GitHub,,Pro,10,XXX,monthly",
            "row 2, column currency: 'XXX' is the ISO 4217 code for 'no currency', not a currency",
        ),
        ("GitHub,,Pro,-1,USD,monthly", "row 2, column unit_price: '-1' is negative"),
        ("GitHub,,Pro,ten,USD,monthly", "row 2, column unit_price: 'ten' is not a number"),
        (
            'GitHub,,Pro,"1,5",USD,monthly',
            "row 2, column unit_price: '1,5' is not a number (use a dot for decimals",
        ),
        ("GitHub,,Pro,nan,USD,monthly", "row 2, column unit_price: 'nan' is not a number"),
        ("GitHub,,Pro,inf,USD,monthly", "row 2, column unit_price: 'inf' is not a number"),
        ("GitHub,,Pro,,USD,monthly", "row 2, column unit_price: empty"),
        (
            "GitHub,,Pro,10,USD,weekly",
            "row 2, column billing_period: 'weekly' is not a billing period; use monthly or annual",
        ),
        ("GitHub,,Pro,10,USD,", "row 2, column billing_period: empty"),
        (",,Pro,10,USD,monthly", "row 2, column integration: empty"),
        ("GitHub,,,10,USD,monthly", "row 2, column license_id: empty, and so is license_name"),
        ("GitHub,,Pro,10,USD,monthly,extra", "row 2: 7 cells but the header has 6 columns"),
    ],
)
def test_each_kind_of_problem_names_its_row_and_column(row, expected):
    problems = problems_of(csv(row))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_every_problem_is_listed_and_nothing_is_returned():
    data = csv(
        "GitHub,,Enterprise,21,USD,monthly",  # row 2: fine
        "GitHub,,Copilot,-3,XYZ,weekly",  # row 3: three problems
        "Zoom,,Pro,abc,USD,annual",  # row 4: one
        "github,,ENTERPRISE,5,EUR,annual",  # row 5: duplicate of row 2 (integration and case folded)
    )
    with pytest.raises(PriceBookError) as info:
        load_price_book(data)
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "row 3, column unit_price",
        "row 3, column currency",
        "row 3, column billing_period",
        "row 4, column unit_price",
        "row 5, column license_name",
    ]
    assert "already priced on row 2" in problems[-1]
    text = str(info.value)
    assert text.startswith("The price book was not applied: 5 problems")
    assert all(p in text for p in problems)
    assert isinstance(info.value, ValueError)


def test_duplicate_ids_are_a_problem_but_the_same_id_in_another_integration_is_not():
    problems = problems_of(
        csv(
            "GitHub,L1,,1,USD,monthly",
            "Zoom,L1,,2,USD,monthly",
            "Git Hub,L1,Other name,3,USD,monthly",
        )
    )
    assert len(problems) == 1
    assert problems[0].startswith("row 4, column license_id: duplicate key: GitHub license id 'L1'")
    assert "row 2" in problems[0]


def test_an_id_entry_and_a_name_entry_for_the_same_name_are_different_keys():
    book = load_price_book(
        csv("GitHub,L1,Enterprise,1,USD,monthly", "GitHub,,Enterprise,2,USD,monthly")
    )
    assert len(book) == 2


def test_row_numbers_count_blank_lines_as_a_spreadsheet_does():
    data = (HEADER + "GitHub,,A,1,USD,monthly\n\nGitHub,,B,1,QQQ,monthly\n").encode()
    assert problems_of(data) == ["row 4, column currency: 'QQQ' is not an ISO 4217 currency code"]


def test_a_missing_required_column_is_reported_on_the_header_row():
    problems = problems_of(b"integration,license_name,unit_price\nGitHub,Pro,1\n")
    assert problems == [
        "row 1, column currency: the column is missing (expected columns: "
        + ", ".join(PRICE_BOOK_COLUMNS)
        + ")",
        "row 1, column billing_period: the column is missing (expected columns: "
        + ", ".join(PRICE_BOOK_COLUMNS)
        + ")",
    ]


def test_a_repeated_column_is_a_problem():
    problems = problems_of(
        b"integration,currency,unit_price,currency,billing_period,license_name\n"
    )
    assert problems == ["row 1, column currency: the column appears twice (columns 2 and 4)"]


def test_a_file_that_is_not_utf8_is_rejected():
    problems = problems_of(HEADER.encode() + "GitHub,,Caf\xe9,1,USD,monthly\n".encode("latin-1"))
    assert len(problems) == 1 and "not UTF-8" in problems[0]


def test_validate_a_table_from_an_editor():
    edited = pd.DataFrame(
        {
            "integration": ["GitHub", "Zoom", None, "Zoom"],
            "license_id": [None, np.nan, None, ""],
            "license_name": ["Enterprise", "Pro", None, "Pro"],
            "unit_price": [21, 9.5, np.nan, 4],
            "currency": ["USD", "eur", None, "USD"],
            "billing_period": ["monthly", "annual", None, "monthly"],
        }
    )
    with pytest.raises(PriceBookError) as info:
        validate_price_book(edited)
    # The blank third row is skipped; the fourth (row 5) duplicates row 3.
    assert info.value.problems == [
        "row 5, column license_name: duplicate key: Zoom license name 'Pro' (ignoring case) is already priced on row 3"
    ]
    book = validate_price_book(edited.iloc[:3])
    assert book["unit_price"].tolist() == [21.0, 9.5]
    assert book["currency"].tolist() == ["USD", "EUR"]


def test_validate_reports_bad_numbers_from_an_editor():
    edited = pd.DataFrame(
        {
            "integration": ["GitHub"],
            "license_name": ["Pro"],
            "unit_price": [-2.0],
            "currency": ["USD"],
            "billing_period": ["monthly"],
        }
    )
    with pytest.raises(PriceBookError) as info:
        validate_price_book(edited)
    assert info.value.problems == ["row 2, column unit_price: -2.0 is negative"]


def test_validate_accepts_none_and_an_empty_frame():
    assert len(validate_price_book(None)) == 0
    assert len(validate_price_book(pd.DataFrame())) == 0
    assert len(validate_price_book(pd.DataFrame(columns=PRICE_BOOK_COLUMNS))) == 0


def test_csv_export_round_trips():
    data = csv(
        'GitHub,,"Enterprise, with comma",21,USD,monthly',
        "Microsoft 365,c42b9cae,Microsoft 365 E5,684.5,EUR,annual",
        "Zoom,z-1,,0.125,GBP,monthly",
    )
    book = load_price_book(data)
    out = price_book_to_csv(book)
    # The machine name in integration, the words in integration_label (docs/export.md), which the
    # load does not read: it matches the machine name as it matched the words.
    header = (
        "integration,integration_label,license_id,license_name,unit_price,currency,billing_period"
    )
    assert out.decode().splitlines()[0] == header
    assert (
        out.decode().splitlines()[2]
        == "microsoft365,Microsoft 365,c42b9cae,Microsoft 365 E5,684.5,EUR,annual"
    )
    again = load_price_book(out)
    assert list(again["integration"]) == ["github", "microsoft365", "zoom"]
    pd.testing.assert_frame_equal(
        again, book.assign(integration=book["integration"].str.lower().str.replace(" ", ""))
    )
    assert price_book_to_csv(None).decode() == header + "\r\n"
    assert list(load_price_book(price_book_to_csv(None)).columns) == PRICE_BOOK_COLUMNS


def test_csv_export_refuses_a_bad_book():
    with pytest.raises(PriceBookError):
        price_book_to_csv(
            pd.DataFrame(
                {
                    "integration": ["GitHub"],
                    "license_name": ["Pro"],
                    "unit_price": [1],
                    "currency": ["ABC"],
                    "billing_period": ["monthly"],
                }
            )
        )


# ------------------------------------------------------------------ rates


def test_rates_are_read_with_the_reporting_currency_at_1():
    rates = load_fx_rates(b"currency,rate\neur,1.08\nGBP, 1.27 \nUSD,1\n")
    assert rates == {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
    assert load_fx_rates(None) == {"USD": 1.0}
    assert load_fx_rates(b"currency,rate\n", reporting_currency="eur") == {"EUR": 1.0}


def test_every_rate_problem_is_listed():
    with pytest.raises(FxRatesError) as info:
        load_fx_rates(b"currency,rate\nEUR,0\nUSD,2\nGBP,x\nXYZ,1\nJPY,-0.01\nGBP,1.2\nCHF,\n")
    assert info.value.problems == [
        "row 2, column rate: '0' is zero; a rate must be greater than 0",
        "row 3, column rate: USD is the reporting currency, so its rate is 1, not '2'",
        "row 4, column rate: 'x' is not a number",
        "row 5, column currency: 'XYZ' is not an ISO 4217 currency code",
        "row 6, column rate: '-0.01' is negative",
        "row 7, column currency: duplicate: GBP already has a rate on row 4",
        "row 8, column rate: empty; give a number",
    ]
    assert str(info.value).startswith("The exchange-rate table was not applied: 7 problems")


def test_rates_need_both_columns():
    with pytest.raises(FxRatesError) as info:
        load_fx_rates(b"currency\nEUR\n")
    assert info.value.problems == [
        "row 1, column rate: the column is missing (expected columns: currency, rate)"
    ]


def test_an_unknown_reporting_currency_is_refused():
    with pytest.raises(FxRatesError) as info:
        load_fx_rates(b"currency,rate\nEUR,1.1\n", reporting_currency="DOLLARS")
    assert info.value.problems == ["reporting currency 'DOLLARS' is not an ISO 4217 currency code"]


def test_validate_rates_from_an_editor_and_write_them_back():
    rates = validate_fx_rates(
        pd.DataFrame({"currency": ["EUR", None], "rate": [0.92, None]}), "GBP"
    )
    assert rates == {"GBP": 1.0, "EUR": 0.92}
    assert validate_fx_rates(None, "EUR") == {"EUR": 1.0}
    text = fx_rates_to_csv({"GBP": 1.0, "EUR": 0.92, "USD": 0.79}, "GBP").decode()
    assert text == "currency,rate\r\nEUR,0.92\r\nUSD,0.79\r\n"
    assert load_fx_rates(text.encode(), "GBP") == {"GBP": 1.0, "EUR": 0.92, "USD": 0.79}
    with pytest.raises(FxRatesError):
        validate_fx_rates(pd.DataFrame({"currency": ["EUR"], "rate": [-1]}), "USD")


@pytest.mark.parametrize("source", [b",,,\n", b"\xef\xbb\xbf,,,\n", b'""\n'])
def test_a_file_of_blank_cells_is_an_empty_book_not_a_crash(source):
    assert load_price_book(source).empty


def test_an_unreadable_csv_is_a_listed_problem_not_a_crash():
    with pytest.raises(PriceBookError) as info:
        load_price_book((HEADER + '\nGitHub,,"' + "x" * 200_000 + "\n").encode())
    assert "not readable as CSV" in str(info.value)


def test_our_formula_safe_download_loads_back_unchanged():
    import pandas as pd

    from lib.analytics.pricing import price_book_to_csv

    book = pd.DataFrame(
        {
            "integration": ["Zoom"],
            "license_id": [pd.NA],
            "license_name": ["+Large Meetings"],
            "unit_price": [5.0],
            "currency": ["USD"],
            "billing_period": ["monthly"],
        }
    )
    data = price_book_to_csv(book)
    assert b"'+Large Meetings" in data  # inert in a spreadsheet
    assert list(load_price_book(data)["license_name"]) == ["+Large Meetings"]


# ------------------------------------------------------- a partly filled template


def test_a_partly_filled_template_is_accepted_and_its_blank_prices_stay_unpriced():
    """Issue 22, point 11: Spend's template of unpriced licenses, filled in part, was refused as a whole
    ("unit_price: empty; give a number" on every row left blank)."""
    import pandas as pd

    from lib.analytics import views as D
    from lib.analytics.labels import export_frame
    from lib.export import to_csv_bytes

    unpriced = pd.DataFrame(
        {
            "integration": ["github", "github", "salesforce"],
            "integration_label": ["GitHub", "GitHub", "Salesforce"],
            "license_name": pd.array(["Copilot", "Enterprise", None], dtype="string"),
            "license_id": pd.array(["cop", "ent", "sf1"], dtype="string"),
        }
    )
    template = to_csv_bytes(export_frame(D.price_book_rows_for(unpriced, "USD"), "USD"))
    assert "salesforce,Salesforce,sf1,,,USD,annual" in template.decode()  # no name: by its ID
    lines = template.decode("utf-8-sig").splitlines()
    lines[1] = "github,GitHub,,Copilot,19,USD,monthly"  # one price filled in, two left blank
    filled = ("\n".join(lines) + "\n").encode()
    with pytest.raises(
        PriceBookError
    ):  # the strict reader (the command line's --price-book) refuses
        load_price_book(filled)
    table = read_price_table(filled)
    assert table.book["license_name"].tolist() == ["Copilot"]
    assert float(table.book["unit_price"].iloc[0]) == 19.0
    assert table.left_unpriced == [(3, "GitHub · Enterprise"), (4, "Salesforce · (no name) (sf1)")]
    assert table.unpriced_words() == (
        "2 licenses left without a price, so their spend stays unknown: GitHub · Enterprise, Salesforce · (no name) (sf1)."
    )
    # The same from the editor's table.
    edited = pd.read_csv(io.BytesIO(filled), dtype=str, keep_default_na=False)
    assert check_price_table(edited).left_unpriced == table.left_unpriced


def test_a_template_with_a_real_error_is_still_refused_as_a_whole():
    """Only a blank price is "stays unpriced": a bad price, currency or period anywhere refuses the file,
    every problem listed by row and column."""
    problems = None
    with pytest.raises(PriceBookError) as info:
        read_price_table(
            csv(
                "GitHub,,Copilot,19,USD,monthly",
                "GitHub,,Enterprise,,EURO,annual",  # no price, but a currency that is not one
                "Zoom,,Pro,-4,USD,annual",
                "Adobe,,Acrobat,,USD,weekly",
                ",,,,USD,annual",  # nothing named and no price: an unused row
            )
        )
    problems = info.value.problems
    assert problems == [
        "row 3, column currency: 'EURO' is not an ISO 4217 currency code",
        "row 4, column unit_price: '-4' is negative",
        "row 5, column billing_period: 'weekly' is not a billing period; use monthly or annual",
    ]
    # A blank price on a row that names no license is still a problem when the row says something else.
    with pytest.raises(PriceBookError, match="row 2, column integration: empty"):
        read_price_table(csv(",,Copilot,,USD,monthly"))
