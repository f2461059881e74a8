"""Contracts: reading and checking, vendor prefill, renewals with their advice, and the iCal
feed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from lib.analytics.contracts import (
    CONTRACT_COLUMNS,
    CONTRACT_DTYPES,
    ContractsError,
    contracts_to_csv,
    load_contracts,
    validate_contracts,
)
from lib.analytics.ical import to_ics
from lib.analytics.renewals import RENEWAL_COLUMNS, next_renewal, opt_out_deadline, renewals
from lib.analytics.vendor_contracts import contracts_from_billing, merge_contracts
from lib.export import to_csv_bytes
from tests.license_tables import license_row, with_metrics

HEADER = ",".join(CONTRACT_COLUMNS) + "\n"
TODAY = date(2026, 12, 2)


def csv(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


def records(df: pd.DataFrame) -> list[dict]:
    """Rows as dicts, anything not known as None."""
    return [
        {k: (None if not isinstance(v, (list, tuple)) and pd.isna(v) else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def problems_of(data: bytes) -> list[str]:
    with pytest.raises(ContractsError) as info:
        load_contracts(data)
    return info.value.problems


# ------------------------------------------------------------------ reading


def test_a_valid_file_is_read_with_its_types_and_empty_cells_stay_not_entered():
    book = load_contracts(
        csv(
            (
                "GitHub,,,github "
                "enterprise,2026-02-01,2027-01-31,Annual,TRUE,30,40,2026-08-01,8400,usd,"
            ),
            "Microsoft 365,acct-9,,,,2026-12-14,multi-year,no,,,,,,vendor",
        )
    )
    assert list(book.columns) == CONTRACT_COLUMNS
    assert {c: str(t) for c, t in book.dtypes.items()} == CONTRACT_DTYPES
    first, second = records(book)
    assert first["integration"] == "GitHub" and first["license_name"] == "github enterprise"
    assert pd.isna(first["account_id"]) and pd.isna(first["license_id"])
    assert first["contract_start"] == pd.Timestamp("2026-02-01")
    assert first["contract_end"] == pd.Timestamp("2027-01-31")
    assert (first["term"], first["auto_renew"], first["notice_days"]) == ("annual", True, 30)
    assert (first["committed_seats"], first["contract_value"], first["currency"]) == (
        40,
        8400.0,
        "USD",
    )
    assert first["true_up_date"] == pd.Timestamp("2026-08-01")
    assert first["source"] == "edited"  # an upload is the admin's, even a row that says vendor
    assert (second["term"], second["auto_renew"], second["source"]) == (
        "multi_year",
        False,
        "edited",
    )
    # Not entered is NA, never 0 or false.
    assert pd.isna(second["notice_days"]) and pd.isna(second["committed_seats"])
    assert pd.isna(second["contract_value"]) and pd.isna(second["currency"])
    assert pd.isna(second["contract_start"])


def test_every_problem_is_listed_by_row_and_column_and_nothing_is_applied():
    problems = problems_of(
        csv(
            "GitHub,,,GitHub Enterprise,2027-02-01,2027-01-31,annual,true,30,,,,,",
            ",,,X,2026-01-01,2027-13-01,quarterly,maybe,-1,2.5,,12,,",
            "Zoom,,,,1899-01-01,2027-01-01,,,5000,2000000000,,1e13,XTS,robot",
            "Slack,,,Pro,,,,,,,,1,200,",
        )
    )
    assert problems == [
        "row 2, column contract_end: 2027-01-31 is before contract_start 2027-02-01",
        "row 3, column integration: empty; name the integration, e.g. GitHub",
        (
            "row 3, column contract_end: '2027-13-01' is not a date; write it as YYYY-MM-DD, e.g. "
            "2027-01-31"
        ),
        "row 3, column term: 'quarterly' is not a term; use monthly, annual or multi_year",
        "row 3, column auto_renew: 'maybe' is not true or false",
        "row 3, column notice_days: '-1' is negative",
        "row 3, column committed_seats: '2.5' is not a whole number of seats",
        (
            "row 3, column currency: empty; a contract value needs its ISO 4217 currency code, "
            "e.g. USD"
        ),
        (
            "row 4, column contract_start: 1899-01-01 is not a plausible contract date (expected "
            "1990 to 2100)"
        ),
        "row 4, column notice_days: '5000' is more than 730 days, so it cannot be right",
        (
            "row 4, column committed_seats: '2000000000' is more than 1,000,000,000 seats, so it "
            "cannot be right"
        ),
        (
            "row 4, column contract_value: '1e13' is more than 1,000,000,000,000, so it cannot be "
            "right"
        ),
        "row 4, column currency: 'XTS' is the ISO 4217 code reserved for testing, not a currency",
        "row 4, column source: 'robot' is not a source; use vendor or edited (or leave it empty)",
        (
            "row 5, column contract_end: empty; give the date the contract ends or renews, e.g. "
            "2027-01-31"
        ),
        "row 5, column currency: '200' is not an ISO 4217 currency code",
    ]


def test_a_notice_period_reaching_before_the_start_and_duplicate_keys_are_problems():
    problems = problems_of(
        csv(
            "GitHub,,,GitHub Enterprise,2026-12-01,2026-12-31,monthly,true,45,,,,,",
            "github,,,GITHUB ENTERPRISE,,2027-12-31,annual,true,30,,,,,",
            # Another scope: fine.
            "GitHub,acct-1,,GitHub Enterprise,,2027-12-31,annual,true,30,,,,,",
            "GitHub,,lic-1,,,2027-12-31,annual,true,30,,,,,",
            "GitHub,,lic-1,Other name,,2027-12-31,annual,true,30,,,,,",
        )
    )
    assert problems == [
        "row 2, column notice_days: 45 days before 2026-12-31 is before contract_start 2026-12-01",
        (
            "row 3, column integration: duplicate contract: GitHub license name 'GITHUB "
            "ENTERPRISE' "
            "(ignoring case), all accounts is already on row 2"
        ),
        (
            "row 6, column integration: duplicate contract: GitHub license id 'lic-1', all "
            "accounts "
            "is already on row 5"
        ),
    ]


def test_an_unclosed_quote_is_reported_as_such():
    data = csv(
        "GitHub,,,GitHub Enterprise,,2027-01-31,annual,true,30,,,,,",
        '"Zoom,,,,,2027-01-31,annual,true,30,,,,,',
        "Slack,,,,,2027-01-31,annual,true,30,,,,,",
    )
    assert problems_of(data) == [
        (
            'row 3: a quote (") opened in this row is never closed, so the rest of the file would '
            "be read as one cell; close it"
        )
    ]


@pytest.mark.parametrize("name", ["Git\x07Hub", "Evil\u202eName", '"Tab\there"'])
def test_control_characters_are_rejected(name):
    assert problems_of(csv(f"GitHub,,,{name},,2027-01-31,annual,true,30,,,,,")) == [
        (
            "row 2, column license_name: holds a control character (line break, tab or similar); "
            "remove it"
        )
    ]


def test_a_line_break_inside_a_cell_is_refused_as_the_price_book_refuses_it():
    """The shared CSV reader cannot tell a quoted line break from an unclosed quote: both are refused."""
    problems = problems_of(csv('GitHub,,,"Two\nlines",,2027-01-31,annual,true,30,,,,,'))
    assert len(problems) == 1 and problems[0].startswith(
        "row 2, column license_name: unclosed quote"
    )


def test_missing_required_columns_and_an_empty_file():
    with pytest.raises(ContractsError) as info:
        load_contracts(b"integration,license_name\nGitHub,Enterprise\n")
    assert info.value.problems == [
        "row 1, column contract_end: the column is missing (expected columns: "
        + ", ".join(CONTRACT_COLUMNS)
        + ")"
    ]
    assert len(load_contracts(b"")) == 0
    assert len(load_contracts(HEADER.encode())) == 0


def test_the_csv_round_trips_and_formula_like_names_are_neutralised():
    book = load_contracts(
        csv("GitHub,,,=HYPERLINK(1),2026-02-01,2027-01-31,annual,true,30,40,,8400.5,USD,")
    )
    data = contracts_to_csv(book)
    assert b"'=HYPERLINK(1)" in data  # a spreadsheet shows it as text
    again = load_contracts(data)
    assert again["license_name"].iat[0] == "=HYPERLINK(1)"
    # The machine name in integration, the words in integration_label (not read back).
    assert data.decode().splitlines()[0].startswith("integration,integration_label,account_id,")
    assert data.decode().splitlines()[1].startswith("github,GitHub,")
    pd.testing.assert_frame_equal(
        again, book.assign(integration=pd.array(["github"], dtype="string"))
    )


def test_a_data_editor_table_with_dates_as_timestamps_is_checked_like_the_csv():
    book = load_contracts(csv("GitHub,,,Enterprise,2026-02-01,2027-01-31,annual,true,30,,,,,"))
    pd.testing.assert_frame_equal(validate_contracts(book), book)
    edited = book.copy()
    edited.loc[0, "contract_start"] = pd.Timestamp("2027-03-01")
    with pytest.raises(ContractsError) as info:
        validate_contracts(edited)
    assert info.value.problems == [
        "row 2, column contract_end: 2027-01-31 is before contract_start 2027-03-01"
    ]


# ------------------------------------------------------------ vendor billing


def test_billing_records_prefill_one_vendor_contract_per_account_the_latest_period():
    billing = [
        {
            "integration": "zoom",
            "account_id": "z-1",
            "billing_frequency": "yearly",
            "currency": "usd",
            "total_amount": 1200,
            "tax_amount": 100,
            "start_date": "2025-03-01T00:00:00Z",
            "end_date": "2026-02-28T23:59:59Z",
            "description": "Zoom Pro",
        },
        {
            "integration": "zoom",
            "account_id": "z-1",
            "billing_frequency": "yearly",
            "currency": "USD",
            "total_amount": 1440.5,
            "start_date": "2026-03-01",
            "end_date": "2027-02-28",
        },
        {
            "integration": "clickup",
            "account_id": "c-1",
            "billing_frequency": "monthly",
            "currency": "EUR",
            "total_amount": 90,
            "start_date": "2026-11-15",
            "end_date": "2026-12-14",
        },
        {
            "integration": "docusign",
            "account_id": "d-1",
            "billing_frequency": "weird",
            "start_date": "2024-01-01",
            "end_date": "2026-12-31",
        },
        {
            "integration": "zoom",
            "account_id": "z-2",
            "start_date": "2027-01-01",
            "end_date": "2026-01-01",
        },
        {
            "integration": "zoom",
            "account_id": "z-3",
            "total_amount": -5,
            "currency": "USD",
            "end_date": "2027-01-01",
        },
        "not a record",
    ]
    prefill = contracts_from_billing(billing)  # records a trusted caller named the accounts of
    rows = records(prefill.contracts)
    assert [(r["integration"], r["account_id"]) for r in rows] == [
        ("clickup", "c-1"),
        ("docusign", "d-1"),
        ("zoom", "z-1"),
    ]
    clickup, docusign, zoom = rows
    assert (clickup["term"], clickup["contract_value"], clickup["currency"]) == (
        "monthly",
        90.0,
        "EUR",
    )
    assert docusign["term"] == "multi_year"  # frequency unknown, 3 years long
    assert pd.isna(docusign["contract_value"]) and pd.isna(docusign["currency"])
    assert zoom["contract_start"] == pd.Timestamp("2026-03-01")
    assert zoom["contract_end"] == pd.Timestamp("2027-02-28")
    assert (zoom["term"], zoom["contract_value"], zoom["currency"]) == ("annual", 1440.5, "USD")
    for r in rows:
        assert r["source"] == "vendor"
        assert pd.isna(r["license_id"]) and pd.isna(r["license_name"])  # the whole account
        # Not reported by the vendor: left empty, never guessed.
        assert (
            pd.isna(r["auto_renew"]) and pd.isna(r["notice_days"]) and pd.isna(r["committed_seats"])
        )
    assert prefill.skipped == [
        (
            "Zoom account z-2, billing record 5: contract_end: 2026-01-01 is before contract_start "
            "2027-01-01"
        ),
        "Zoom account z-3, billing record 6: contract_value: -5 is negative",
        "billing record 7: not an object",
    ]


def test_an_edited_contract_wins_over_the_vendor_one_with_the_same_key():
    vendor = contracts_from_billing(
        [
            {
                "integration": "zoom",
                "account_id": "z-1",
                "billing_frequency": "yearly",
                "start_date": "2026-03-01",
                "end_date": "2027-02-28",
            },
            {
                "integration": "clickup",
                "account_id": "c-1",
                "billing_frequency": "monthly",
                "start_date": "2026-11-15",
                "end_date": "2026-12-14",
            },
        ]
    ).contracts
    edited = load_contracts(csv("Zoom,z-1,,,2026-03-01,2027-02-28,annual,true,60,,,,,"))
    merged = merge_contracts(vendor, edited)
    assert [(r["integration"], r["source"], r["notice_days"]) for r in records(merged)] == [
        ("Zoom", "edited", 60),
        ("clickup", "vendor", None),
    ]
    assert {c: str(t) for c, t in merged.dtypes.items()} == CONTRACT_DTYPES
    # No vendor contract, or none left: the edited ones, in the contract columns.
    for none in (None, vendor.iloc[0:0]):
        alone = merge_contracts(none, edited)
        assert list(alone.columns) == CONTRACT_COLUMNS and list(alone["source"]) == ["edited"]
    assert merge_contracts(vendor, None)["source"].tolist() == ["vendor", "vendor"]


# ------------------------------------------------------------------ dates


def test_opt_out_deadline_and_next_renewal():
    assert opt_out_deadline(date(2027, 1, 31), 30) == date(2027, 1, 1)
    assert opt_out_deadline(date(2027, 1, 31), 0) == date(2027, 1, 31)
    assert opt_out_deadline(date(2027, 1, 31), None) is None
    # Monthly from the 31st: the end of shorter months, then the 31st again.
    assert next_renewal(date(2026, 1, 31), date(2026, 2, 10), "monthly", True) == date(2026, 2, 28)
    assert next_renewal(date(2026, 1, 31), date(2026, 3, 1), "monthly", True) == date(2026, 3, 31)
    assert next_renewal(date(2025, 12, 31), TODAY, "annual", True) == date(2026, 12, 31)
    # A multi-year contract renews for its own length.
    assert next_renewal(date(2025, 12, 31), TODAY, "multi_year", True, date(2023, 1, 1)) == date(
        2028, 12, 31
    )
    assert next_renewal(date(2025, 12, 31), TODAY, "multi_year", True) is None  # length not known
    assert next_renewal(date(2025, 12, 31), TODAY, "annual", False) is None  # it ended
    assert (
        next_renewal(date(2025, 12, 31), TODAY, "annual", None) is None
    )  # not known: not invented
    assert next_renewal(TODAY, TODAY, "annual", False) == TODAY


# ------------------------------------------------------------------ renewals

BOOK = [
    ("GitHub", "", "GitHub Enterprise", 21, "USD", "monthly"),
    ("Salesforce", "", "Sales Cloud", 165, "USD", "monthly"),
    ("Zoom", "", "Zoom Workplace", 150, "USD", "annual"),
    ("Slack", "", "Slack Pro", 8.75, "USD", "monthly"),
]


def metrics_table():
    return with_metrics(
        [
            license_row(
                "github", "g-1", "GitHub Enterprise", 12, 40, account_id="gh-1", organization="acme"
            ),
            license_row("github", "g-2", "GitHub Free", 9, 9, account_id="gh-1", is_paid=False),
            license_row("salesforce", "s-1", "Sales Cloud", 88, 80, account_id="sf-1"),
            license_row("zoom", "z-1", "Zoom Workplace", 140, None, account_id="zm-1"),
            license_row("slack", "k-1", "Slack Pro", 20, 22, account_id="sk-1"),
            license_row("slack", "k-2", "Slack Pro", 50, 100, account_id="sk-2"),
        ],
        BOOK,
    )


def test_renewals_hand_computed():
    lic = metrics_table()
    contracts = load_contracts(
        csv(
            # GitHub, the whole account: both licenses, each with its advice.
            "GitHub,gh-1,,,2026-02-01,2027-01-31,annual,true,30,40,,8400,USD,",
            # Salesforce by license id, auto-renewed last year: rolled on to 2026-12-31.
            "Salesforce,,s-1,,2024-12-31,2025-12-31,annual,true,90,,2026-12-15,,,",
            # Zoom: seats bought not reported; no notice period entered.
            "Zoom,,,zoom workplace,,2027-01-15,annual,true,,,,,,",
            # Slack: one contract for all accounts, and a more specific one for sk-2 that does
            # not auto-renew.
            "Slack,,,Slack Pro,,2027-03-01,annual,true,120,,,,,",
            "Slack,sk-2,,slack pro,,2027-02-20,annual,false,30,,,,,",
            # Beyond the horizon: left out.
            "Jira,,,,,2027-09-01,annual,true,30,,,,,",
        )
    )
    out = renewals(lic, contracts, TODAY, horizon_days=90)
    assert list(out.columns) == RENEWAL_COLUMNS
    got = [
        (
            r["integration"],
            r["account_id"],
            r["license_name"],
            r["renewal_date"].date(),
            None if r["opt_out_deadline"] is None else r["opt_out_deadline"].date(),
            r["days_to_renewal"],
            r["days_to_opt_out"],
            r["total_seats"],
            r["assigned_seats"],
            r["recommended_seats"],
            r["seat_change"],
            r["potential_annual_savings_reporting"],
            r["true_up_exposure_reporting"],
            r["what_to_do"],
        )
        for r in records(out)
    ]
    NA = None
    assert got == [
        # Salesforce: 88 assigned of 80 -> recommended ceil(96.8) = 97; over by 8 x 1980 a year.
        (
            "salesforce",
            "sf-1",
            "Sales Cloud",
            date(2026, 12, 31),
            date(2026, 10, 2),
            29,
            -61,
            80,
            88,
            97,
            17,
            0.0,
            15840.0,
            "Buy 17 seats at the renewal on 2026-12-31",
        ),
        # GitHub Enterprise: 12 of 40 -> 14 recommended; cut 26, saving 26 x 252 = 6552.
        (
            "github",
            "gh-1",
            "GitHub Enterprise",
            date(2027, 1, 31),
            date(2027, 1, 1),
            60,
            30,
            40,
            12,
            14,
            -26,
            6552.0,
            0.0,
            "Cut 26 seats before 2027-01-01 (opt-out deadline)",
        ),
        (
            "github",
            "gh-1",
            "GitHub Free",
            date(2027, 1, 31),
            date(2027, 1, 1),
            60,
            30,
            9,
            9,
            None,  # a free license gets no recommended seats (issue 9): nothing to cut or buy
            None,
            0.0,
            0.0,
            "Free license: renews at no cost on 2027-01-31",
        ),
        # Soonest upcoming date first: the deadline if still ahead, else the renewal.
        (
            "zoom",
            "zm-1",
            "Zoom Workplace",
            date(2027, 1, 15),
            None,
            44,
            NA,
            NA,
            140,
            154,
            NA,
            NA,
            NA,
            (
                "Seat counts not reported by the vendor: count the seats in use before the "
                "renewal on "
                "2027-01-15 (notice period not entered)"
            ),
        ),
        # Slack sk-2: its own contract; 50 of 100 -> 55.
        (
            "slack",
            "sk-2",
            "Slack Pro",
            date(2027, 2, 20),
            date(2027, 1, 21),
            80,
            50,
            100,
            50,
            55,
            -45,
            4725.0,
            0.0,
            (
                "Does not auto-renew: renew with 55 seats (45 seats fewer than now) by 2027-02-20 "
                "or let it end"
            ),
        ),
        # Slack sk-1 via the all-accounts contract: 20 of 22 -> 22 recommended.
        (
            "slack",
            "sk-1",
            "Slack Pro",
            date(2027, 3, 1),
            date(2026, 11, 1),
            89,
            -31,
            22,
            20,
            22,
            0,
            0.0,
            0.0,
            "Renews as is on 2027-03-01",
        ),
    ]
    first = out.iloc[0]
    assert (
        first["true_up_date"] == pd.Timestamp("2026-12-15") and first["reporting_currency"] == "USD"
    )
    gh = out[out["integration"] == "github"].iloc[0]
    assert (gh["committed_seats"], gh["contract_value"], gh["currency"], gh["source"]) == (
        40,
        8400.0,
        "USD",
        "edited",
    )


def test_the_horizon_takes_a_renewal_whose_opt_out_deadline_falls_inside_it():
    lic = metrics_table()
    contracts = load_contracts(csv("GitHub,,,GitHub Enterprise,,2027-03-02,annual,true,60,,,,,"))
    # Renewal in 90 days, deadline in 30.
    assert renewals(lic, contracts, TODAY, horizon_days=29).empty
    out = renewals(lic, contracts, TODAY, horizon_days=30)
    assert out["what_to_do"].tolist() == ["Cut 26 seats before 2027-01-01 (opt-out deadline)"]


def test_a_contract_no_license_matches_says_so_and_passed_deadlines_say_so():
    lic = metrics_table()
    contracts = load_contracts(
        csv("Jira,,,,,2026-12-20,annual,true,,,,,,", "GitHub,,g-1,,,2026-12-20,annual,true,30,,,,,")
    )
    out = renewals(lic, contracts, TODAY, horizon_days=30)
    assert out["what_to_do"].tolist() == [
        (
            "Opt-out deadline passed on 2026-11-20: renews on 2026-12-20 with 26 seats more than "
            "recommended"
        ),
        (
            "No license in the latest data matches this contract: check it before the renewal on "
            "2026-12-20 "
            "(notice period not entered)"
        ),
    ]
    assert out["total_seats"].isna().tolist() == [False, True]


def test_renewals_from_the_demo_data():
    from lib.analytics.metrics import MetricOptions, add_metrics
    from lib.config import load_settings
    from lib.jobs.demo import demo_price_book
    from lib.truto.source import fetch

    result = fetch(load_settings(env={}, secrets={}))
    lic = add_metrics(result.licenses, demo_price_book(), MetricOptions())
    contracts = load_contracts(
        csv("Salesforce,,,sales cloud enterprise,,2027-01-31,annual,true,60,,,,,")
    )
    out = renewals(lic, contracts, TODAY, horizon_days=120)
    # Sales Cloud Enterprise: 88 of 120 assigned, 97 recommended, 23 x 1980 a year saved.
    assert out[
        [
            "total_seats",
            "assigned_seats",
            "recommended_seats",
            "seat_change",
            "potential_annual_savings_reporting",
        ]
    ].values.tolist() == [[120, 88, 97, -23, 45540.0]]
    assert out["what_to_do"].iat[0] == "Cut 23 seats before 2026-12-02 (opt-out deadline)"


def test_the_renewals_csv_cannot_run_formulas():
    lic = with_metrics([license_row("github", "g-1", "=cmd|' /C calc'!A0", 1, 5)], [])
    contracts = load_contracts(csv("GitHub,,g-1,,,2027-01-31,annual,true,30,,,,,"))
    data = to_csv_bytes(renewals(lic, contracts, TODAY, 120))
    assert b",'=cmd|' /C calc'!A0," in data


# --------------------------------------------------------------------- iCal


def parse_ics(text: str) -> list[dict[str, str]]:
    """A tiny RFC 5545 reader: CRLF lines, unfolding, VEVENTs as {name(;params): unescaped
    value}."""
    assert "\n" not in text.replace("\r\n", "")  # every line ends in CRLF
    physical = text.split("\r\n")
    assert physical[-1] == ""
    for line in physical:
        assert len(line.encode("utf-8")) <= 75, line  # folded at 75 octets
    lines: list[str] = []
    for line in physical[:-1]:
        if line.startswith(" "):
            lines[-1] += line[1:]
        else:
            lines.append(line)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    events, current = [], None
    for line in lines:
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT":
            events.append(current)
            current = None
        elif current is not None:
            name, _, value = line.partition(":")
            out, i = [], 0
            while i < len(value):
                if value[i] == "\\":
                    nxt = value[i + 1]
                    out.append("\n" if nxt in "nN" else nxt)
                    i += 2
                else:
                    assert value[i] not in ",;", f"unescaped {value[i]!r} in {line!r}"
                    out.append(value[i])
                    i += 1
            current[name] = "".join(out)
    return events


def ics_renewals():
    lic = with_metrics(
        [
            license_row(
                "github",
                "g-1",
                'Team, "A"; \\ B\nÜnïcødé name that is long enough to need folding',
                12,
                40,
                account_id="gh-1",
            ),
            license_row("zoom", "z-1", "Zoom Workplace", 140, 150, account_id="zm-1"),
        ],
        BOOK,
    )
    contracts = load_contracts(
        csv(
            "GitHub,gh-1,,,,2027-01-31,annual,true,30,,,,,", "Zoom,,,,,2027-01-15,annual,true,,,,,,"
        )
    )
    return renewals(lic, contracts, TODAY, 120)


def test_ics_has_one_all_day_event_per_renewal_and_per_deadline_with_escaped_text():
    text = to_ics(
        ics_renewals(), "Renewals; Acme, Inc.", now=datetime(2026, 12, 2, 8, 30, tzinfo=UTC)
    )
    assert "X-WR-CALNAME:Renewals\\; Acme\\, Inc.\r\n" in text
    events = parse_ics(text)
    assert [(e["DTSTART;VALUE=DATE"], e["DTEND;VALUE=DATE"], e["SUMMARY"]) for e in events] == [
        (
            "20270101",
            "20270102",
            (
                'Opt-out deadline: Github: Team, "A"; \\ B\nÜnïcødé name that is long '
                "enough to need folding (account gh-1)"
            ),
        ),
        (
            "20270131",
            "20270201",
            (
                'Renewal: Github: Team, "A"; \\ B\nÜnïcødé name that is long enough to '
                "need folding (account gh-1)"
            ),
        ),
        ("20270115", "20270116", "Renewal: Zoom: Zoom Workplace (account zm-1)"),
    ]
    assert all(e["DTSTAMP"] == "20261202T083000Z" for e in events)
    assert events[0]["DESCRIPTION"].split("\n")[:2] == [
        "Renews on 2027-01-31.",
        "Opt-out deadline (notice due): 2027-01-01.",
    ]
    assert events[2]["DESCRIPTION"] == (
        "Renews on 2027-01-15.\nNotice period not entered.\n"
        # 140 of 150 assigned: the buffer (154) is no reason to buy while 10 seats are unassigned
        "Zoom Workplace: Renews as is on 2027-01-15 (10 seats still unassigned: the recommended "
        "154 is the 140 assigned plus the buffer, so none to buy)"
    )
    assert len({e["UID"] for e in events}) == 3


def test_ics_uids_are_stable_across_runs():
    first = parse_ics(to_ics(ics_renewals(), "R", now=datetime(2026, 12, 2, tzinfo=UTC)))
    again = parse_ics(to_ics(ics_renewals(), "R", now=datetime(2026, 12, 9, tzinfo=UTC)))
    assert [e["UID"] for e in first] == [e["UID"] for e in again]
    assert first[0]["DTSTAMP"] != again[0]["DTSTAMP"]
    assert first[0]["UID"].startswith("opt-out-") and first[0]["UID"].endswith(
        "-20270101@license-dashboard"
    )


def test_the_calendar_holds_the_window_and_every_passed_deadline_still_open():
    # Issue 22, point 12: the .ics for 30 and 90 days gave the same 13 events (the year's) and a
    # passed deadline. The window keeps events dated from today to today + window; an opt-out
    # deadline that passed before a renewal still ahead is kept in every window (it says passed).
    from tests.test_renewal_views import upcoming

    year = upcoming(365)

    def events(horizon):
        text = to_ics(
            year, now=datetime(2026, 12, 2, tzinfo=UTC), today=TODAY, horizon_days=horizon
        )
        return [(e["DTSTART;VALUE=DATE"], e["SUMMARY"].split(":")[0]) for e in parse_ics(text)]

    # Salesforce: opt-out passed 2026-11-10, renews 2026-12-10 (8 days); GitHub: opt-out
    # 2027-01-01 (30 days), renews 2027-01-31 (60); Zoom: renews 2027-01-15 (44), no notice.
    passed = ("20261110", "Opt-out deadline passed")
    assert events(30) == [passed, ("20261210", "Renewal"), ("20270101", "Opt-out deadline")]
    assert sorted(events(90)) == sorted(
        [
            passed,
            ("20261210", "Renewal"),
            ("20270101", "Opt-out deadline"),
            ("20270131", "Renewal"),
            ("20270115", "Renewal"),
        ]
    )
    # 30 and 90 differ only by the events dated after 30 days and up to 90.
    extra = set(events(90)) - set(events(30))
    assert extra == {("20270131", "Renewal"), ("20270115", "Renewal")}
    assert set(events(30)) <= set(events(90))
    # Without a window: every event of the rows given, as before.
    assert len(parse_ics(to_ics(year))) == 5
