"""Hostile input and faults (issue 12): a hostile Truto stand-in on loopback, crafted files, secrets and claims.

The principle: one bad account, record, header, file or claim fails *that* thing with a clear message, never
the whole fetch, never open access.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import replace
from datetime import UTC

import pytest

from lib.config import Secret, Settings
from lib.jobs import cli, cli_format
from lib.truto.fetch import fetch_all
from tests.hostile import HostileTruto, Reply, active, seat, timed, truto

TOKEN = "hostile-test-token-0042"


def settings(server: HostileTruto, **overrides) -> Settings:
    base = Settings(
        api_token=Secret(TOKEN),
        base_url=server.base_url,
        backoff_base=0.01,
        backoff_max=0.05,
        connect_timeout=2.0,
        read_timeout=2.0,
        max_workers=4,
    )
    return replace(base, **overrides)


def outcome(result, account_id):
    return next(o for o in result.outcomes if o.account_id == account_id)


def read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """Run ``python -m lib`` in-process against a server: ``run(server, *args)`` -> (exit code, stdout, stderr)."""
    monkeypatch.setattr("lib.config.DEFAULT_SECRETS_PATH", tmp_path / "no-secrets.toml")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'store.sqlite'}")

    def run(server, *args, capsys=None, **env):
        monkeypatch.setenv("TRUTO_API_TOKEN", TOKEN)
        monkeypatch.setenv("TRUTO_BASE_URL", server.base_url)
        monkeypatch.setenv("TRUTO_READ_TIMEOUT", "2")
        monkeypatch.setenv("TRUTO_BACKOFF_BASE", "0.01")
        monkeypatch.setenv("TRUTO_BACKOFF_MAX", "0.05")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        return cli.main(list(args))

    return run


# ------------------------------------------------------------------ 1. CR/LF in CSV exports

HOSTILE_TEXTS = [
    "Pro\r=cmd|' /C calc'!A0",
    "Pro\n=cmd|' /C calc'!A0",
    "Pro\r\n=cmd|' /C calc'!A0",
    "\r=cmd|' /C calc'!A0",
]


def _no_formula_cells(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r", "\n")), (cell, row)
            assert "\r" not in cell and "\n" not in cell, (cell, row)


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_line_breaks_in_vendor_text_cannot_start_a_row_in_the_export(cli_env, tmp_path, text):
    accounts = [active(f"acc{text}", "github", tenant=f"ten{text}"), active("plain")]
    orgs = {f"acc{text}": [{"id": f"org{text}", "name": f"Org{text}"}]}
    server = HostileTruto(
        truto(
            accounts,
            {f"acc{text}": [seat(f"id{text}", text, 2, 4)], "plain": [seat("p", "Plain", 1, 2)]},
            organizations=orgs,
        )
    )
    out = tmp_path / "export.csv"
    with server:
        code = cli_env(server, "export", "--out", str(out), "--quiet")
    assert code == 0
    rows = read_csv(out.read_bytes())
    header = rows[0]
    assert all(len(r) == len(header) for r in rows)  # no cell broke its row
    assert len(rows) == 3  # header + two licenses, nothing more
    _no_formula_cells(rows)
    from lib.truto.text import clean_text

    hostile = next(r for r in rows[1:] if r[header.index("account_id")] != "plain")
    shown = clean_text(text).strip()
    assert hostile[header.index("license_name")] == (
        "'" + shown if shown.startswith("=") else shown
    )
    assert hostile[header.index("license_id")] == clean_text(f"id{text}")
    assert hostile[header.index("tenant_id")] == clean_text(f"ten{text}")
    assert hostile[header.index("organization_name")] == clean_text(f"Org{text}")
    assert hostile[header.index("seats_assigned")] == "2"
    assert out.read_bytes().count(b"\r\n") == 3  # CRLF line ends, one per row


def test_line_breaks_in_the_writer_are_quoted_whatever_the_text():
    import pandas as pd

    from lib.export import to_csv_bytes

    df = pd.DataFrame({"name": HOSTILE_TEXTS + ["fine"], "seats": [1, 2, 3, 4, 5]})
    rows = read_csv(to_csv_bytes(df))
    assert len(rows) == 6 and [r[1] for r in rows[1:]] == ["1", "2", "3", "4", "5"]
    assert rows[1][0] == HOSTILE_TEXTS[0]  # one cell, read back whole
    assert rows[4][0].startswith("'")  # a cell starting with CR is neutralised


def test_error_messages_with_line_breaks_stay_in_their_cell(cli_env, tmp_path):
    bad = lambda *a: Reply.json({"message": "boom\r=cmd|' /C calc'!A0\nrow"}, 400)  # noqa: E731
    server = HostileTruto(
        truto([active("bad"), active("good")], {"good": [seat("g", "G")]}, hostile={"bad": bad})
    )
    with server:
        result = fetch_all(settings(server))
    from lib.export import to_csv_bytes

    rows = read_csv(to_csv_bytes(result.accounts))
    assert len(rows) == 3 and all(len(r) == len(rows[0]) for r in rows)
    _no_formula_cells(rows)
    assert "boom =cmd" in outcome(result, "bad").message


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_price_book_download_keeps_line_breaks_in_their_cell(text):
    import pandas as pd

    from lib.analytics.pricing import price_book_to_csv

    book = pd.DataFrame(
        {
            "integration": ["GitHub"],
            "license_id": [None],
            "license_name": ["ok"],
            "unit_price": [1.0],
            "currency": ["USD"],
            "billing_period": ["monthly"],
        }
    )
    rows = read_csv(price_book_to_csv(book))
    assert len(rows) == 2
    # A name holding a line break cannot be saved at all (point 11: control characters are refused).
    from lib.analytics.pricing import PriceBookError, validate_price_book

    with pytest.raises(PriceBookError, match="row 2, column license_name"):
        validate_price_book(book.assign(license_name=[f"Name{text}"]))


# ------------------------------------------------------------------ 3. Retry-After: nan


@pytest.mark.parametrize("header", ["Retry-After", "ratelimit-reset"])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-5"])
def test_an_unusable_retry_after_fails_only_that_account(header, value):
    limited = lambda *a: Reply.json({"message": "slow down"}, 429, **{header: value})  # noqa: E731
    server = HostileTruto(
        truto([active("bad"), active("good")], {"good": [seat("g", "G")]}, hostile={"bad": limited})
    )
    with server:
        result = fetch_all(settings(server, max_attempts=3))
    assert (
        outcome(result, "bad").outcome == "failed"
        and "gave up after 3 attempts" in outcome(result, "bad").message
    )
    assert outcome(result, "good").outcome == "ok"
    assert result.exit_code() == 2


def test_retry_after_nan_in_the_export_still_writes_the_csv(cli_env, tmp_path):
    limited = lambda *a: Reply.json({"message": "slow down"}, 429, **{"Retry-After": "nan"})  # noqa: E731
    server = HostileTruto(
        truto([active("bad"), active("good")], {"good": [seat("g", "G")]}, hostile={"bad": limited})
    )
    out = tmp_path / "x.csv"
    with server:
        code = cli_env(server, "export", "--out", str(out), "--quiet", TRUTO_MAX_ATTEMPTS="2")
    assert code == 2 and [r[0] for r in read_csv(out.read_bytes())[1:]] == ["good"]


@pytest.mark.parametrize(
    "limit, remaining, reset",
    [("nan", "0", "5"), ("10;w=10", "-1", "5"), ("10;w=10", "0", "nan"), ("x" * 5000, "0", "9")],
)
def test_unreadable_rate_limit_headers_hold_nothing_back(limit, remaining, reset):
    base = truto([active("a"), active("b")], {"a": [seat("x", "X")], "b": [seat("y", "Y")]})
    headers = {"ratelimit-limit": limit, "ratelimit-remaining": remaining, "ratelimit-reset": reset}

    def answer(path, params, request_headers):
        reply = base(path, params, request_headers)
        reply.headers.update(headers)
        return reply

    with HostileTruto(answer) as server:
        result, seconds = timed(lambda: fetch_all(settings(server)))
    assert result.exit_code() == 0 and sorted(result.licenses["account_id"]) == ["a", "b"]
    assert seconds < 2.0  # no figure read from them: nothing waited for a "reset"


# ------------------------------------------------------------------ 4. deeply nested JSON


def test_deeply_nested_json_is_malformed_for_that_account_only():
    deep = lambda *a: Reply(200, {"Content-Type": "application/json"}, b"[" * 200_000)  # noqa: E731
    server = HostileTruto(
        truto([active("deep"), active("good")], {"good": [seat("g", "G")]}, hostile={"deep": deep})
    )
    with server:
        result = fetch_all(settings(server))
    bad = outcome(result, "deep")
    assert (
        bad.outcome == "failed"
        and "not valid JSON" in bad.message
        and "nested too deeply" in bad.message
    )
    assert outcome(result, "good").outcome == "ok" and list(result.licenses["license_id"]) == ["g"]


def test_deeply_nested_account_list_is_a_clear_fetch_error():
    from lib.truto.fetch import FetchError

    deep = lambda *a: Reply(
        200, {"Content-Type": "application/json"}, b'{"result": ' + b"[" * 200_000
    )  # noqa: E731
    with HostileTruto(truto([], hostile={"/integrated-account": deep})) as server:
        with pytest.raises(FetchError, match="not valid JSON"):
            fetch_all(settings(server))


# ------------------------------------------------------------------ 5. unpaired surrogates


def _raw_json(text: str) -> Reply:
    return Reply(200, {"Content-Type": "application/json"}, text.encode())


def test_an_unpaired_surrogate_in_an_error_message_does_not_break_export_or_sync(cli_env, tmp_path):
    bad = lambda *a: Reply(
        400, {"Content-Type": "application/json"}, b'{"message": "bad \\ud83d thing"}'
    )  # noqa: E731
    server = HostileTruto(
        truto([active("bad"), active("good")], {"good": [seat("g", "G")]}, hostile={"bad": bad})
    )
    out = tmp_path / "x.csv"
    with server:
        assert cli_env(server, "export", "--out", str(out), "--quiet") == 2
        assert cli_env(server, "sync", "--quiet") == 2
    import os

    from lib.store import Store

    latest = Store(os.environ["DATABASE_URL"]).latest(
        __import__("lib.jobs.sync", fromlist=["config_key"]).config_key(settings(server))
    )
    msg = latest.accounts.set_index("account_id").loc["bad", "message"]
    assert "bad \ufffd thing" in msg


def test_an_unpaired_surrogate_in_one_name_affects_only_that_value():
    body = (
        '{"result": [{"id": "a", "name": "Bad \\ud83d name", "assigned_quantity": 1, "available_quantity": 2},'
        ' {"id": "b", "name": "Good \\ud83d\\ude00", "assigned_quantity": 3, "available_quantity": 4}],'
        ' "next_cursor": null}'
    )
    lic = lambda *a: _raw_json(body)  # noqa: E731
    server = HostileTruto(
        truto(
            [active("acc")],
            hostile={
                "acc": lambda p, q, h: (
                    lic()
                    if p.endswith("licenses")
                    else Reply.json({"result": [], "next_cursor": None})
                )
            },
        )
    )
    with server:
        result = fetch_all(settings(server))
    assert outcome(result, "acc").outcome == "ok"
    names = dict(zip(result.licenses["license_id"], result.licenses["license_name"]))
    assert names == {"a": "Bad \ufffd name", "b": "Good \U0001f600"}


def test_invalid_utf8_bytes_affect_only_that_value():
    body = b'{"result": [{"id": "a", "name": "Caf\xe9", "assigned_quantity": 1, "available_quantity": 2}]}'
    server = HostileTruto(
        truto(
            [active("acc")],
            hostile={
                "acc": lambda p, q, h: (
                    Reply(200, {}, body) if p.endswith("licenses") else Reply.json({"result": []})
                )
            },
        )
    )
    with server:
        result = fetch_all(settings(server))
    assert list(result.licenses["license_name"]) == ["Caf\ufffd"]


# ------------------------------------------------------------------ 6. an account listed twice


def test_an_account_listed_twice_is_fetched_and_counted_once(cli_env, tmp_path, capsys):
    pages = [[active("a1"), active("a2")], [active("a1")]]
    server = HostileTruto(
        truto(pages, {"a1": [seat("x", "X", 5, 10)], "a2": [seat("y", "Y", 1, 2)]})
    )
    with server:
        result = fetch_all(settings(server))
        assert (
            sum(
                1
                for path, params in server.log
                if path.endswith("licenses") and params.get("integrated_account_id") == "a1"
            )
            == 1
        )
        assert sorted(o.account_id for o in result.outcomes) == ["a1", "a2"]
        assert int(result.licenses["total_seats"].sum()) == 12
        assert any("listed more than once" in d for d in result.problems["detail"])
        capsys.readouterr()
        assert cli_env(server, "summary", "--json") == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["all_licenses"]["total_seats"] == 12
        assert cli_env(server, "sync", "--quiet") == 0


# ------------------------------------------------------------------ 17. bidi controls and other invisible text


def test_bidi_and_control_characters_are_removed_from_vendor_text():
    name = "Invoice\u202egpj.exe"
    accounts = [active("acc\u202e1", tenant="t\u2066x\u2069", integration="github\u200f")]
    server = HostileTruto(
        truto(
            accounts,
            {"acc\u202e1": [seat("id\u202e", name, 1, 2, status="act\x07ive")]},
            organizations={"acc\u202e1": [{"id": "o1", "name": "Org\u202eA"}]},
        )
    )
    with server:
        result = fetch_all(settings(server))
    row = result.licenses.iloc[0]
    assert (
        row["license_name"] == "Invoicegpj.exe"
        and row["license_id"] == "id"
        and row["status"] == "act ive"
    )
    assert (
        row["account_id"] == "acc1"
        and row["tenant_id"] == "tx"
        and row["organization_name"] == "OrgA"
    )
    texts = [
        str(v)
        for v in result.licenses.to_numpy().ravel().tolist()
        + result.accounts.to_numpy().ravel().tolist()
    ]
    assert not any(ch in t for t in texts for ch in "\u202e\u2066\u2069\u200f\x07")


# ------------------------------------------------------------------ 2. a broken secrets file fails closed


@pytest.fixture
def secrets_files(tmp_path, monkeypatch):
    """Point Streamlit's secrets.files at the given files (re-read on the next access), restored afterwards."""
    import streamlit as st
    from streamlit import config as st_config

    saved = st_config.get_option("secrets.files")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.sqlite'}")

    def use(*paths):
        st_config.set_option("secrets.files", [str(p) for p in paths])
        st.secrets._reset()

    yield use
    st_config.set_option("secrets.files", saved)
    st.secrets._reset()


VALID_AUTH = """
[auth]
redirect_uri = "http://localhost:8501/oauth2callback"
cookie_secret = "x"
client_id = "id"
client_secret = "secret"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"

[access]
admins = ["ana@acme.com"]
"""


def _run_app():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(
        str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=90
    )
    at.run()
    return at


def test_a_broken_secrets_file_beside_a_valid_one_keeps_the_app_closed(secrets_files, tmp_path):
    broken = tmp_path / "home-secrets.toml"
    broken.write_text("[auth\nthis is = not toml")
    valid = tmp_path / "project-secrets.toml"
    valid.write_text(VALID_AUTH)
    secrets_files(broken, valid)
    at = _run_app()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("secrets file could not be read" in e and "stays closed" in e for e in errors), (
        errors
    )
    shown = " ".join(m.value for m in at.markdown) + " ".join(e.value for e in at.caption)
    assert "Open access" not in shown
    assert not at.button and not at.metric and not at.dataframe  # nothing to see, nothing to press


def test_no_secrets_file_at_all_still_runs_open(secrets_files, tmp_path):
    secrets_files(tmp_path / "none-here.toml", tmp_path / "nor-here.toml")
    at = _run_app()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Open access" in c.value for c in at.sidebar.caption)


# ------------------------------------------------------------------ 7. look-alike addresses; 10. email_verified


AUTH_TABLE = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "x" * 32,
    "client_id": "x",
    "client_secret": "y",
    "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
}


def _access(**access):
    from lib.auth import load_access_config

    return load_access_config({"auth": AUTH_TABLE, "access": access})


@pytest.mark.parametrize(
    "email, access",
    [
        ("eve@straße.de", {"admins": ["strasse.de"]}),
        ("eve@STRASSE.de", {"admins": ["straße.de"]}),
        ("\u212aim@acme.com", {"admins": ["kim@acme.com"]}),  # KELVIN SIGN, which casefolds to "k"
        ("staﬀ@acme.com", {"admins": ["staff@acme.com"]}),  # the "ff" ligature
        (
            "staﬀ@acme.com",
            {"allowed_domains": ["acme.com"]},
        ),  # a non-ASCII local part is refused outright
        ("ana@\u212acme.com", {"allowed_domains": ["kcme.com"]}),
    ],
)
def test_look_alike_addresses_do_not_match(email, access):
    from lib.auth import decide

    d = decide({"is_logged_in": True, "email": email, "email_verified": True}, _access(**access))
    assert not d.allowed and d.actor is None


def test_internationalised_domains_still_match_themselves():
    from lib.auth import decide, normalize_domain

    assert (
        normalize_domain("Straße.de") == normalize_domain("xn--strae-oqa.de") == "xn--strae-oqa.de"
    )
    d = decide(
        {"is_logged_in": True, "email": "Eve@straße.de", "email_verified": True},
        _access(allowed_domains=["straße.de"]),
    )
    assert d.allowed and d.actor.email == "eve@xn--strae-oqa.de"


@pytest.mark.parametrize(
    "claim", ["<missing>", None, "", "unverified", "no", "off", "n", "0", 0, 1, "yes", "verified"]
)
def test_only_a_true_email_verified_claim_lets_anyone_in(claim):
    from lib.auth import decide

    user = {"is_logged_in": True, "email": "ana@acme.com"}
    if claim != "<missing>":
        user["email_verified"] = claim
    d = decide(user, _access(admins=["ana@acme.com"]))
    assert not d.allowed and "not verified" in d.reason
    for ok in (True, "true", "True"):
        assert decide({**user, "email_verified": ok}, _access(admins=["ana@acme.com"])).allowed


# ------------------------------------------------------------------ 11, 12, 14. price-book uploads

PB_HEADER = "integration,license_id,license_name,unit_price,currency,billing_period\n"


@pytest.mark.parametrize(
    "name", ["Pro\x00", "Pro\x00Plus", "Pro\tPlus", "Pro\u202eulP", "Pro\x1bPlus"]
)
def test_control_characters_in_a_price_book_are_refused_with_row_and_column(name):
    from lib.analytics.pricing import PriceBookError, load_price_book

    data = (PB_HEADER + "GitHub,,Fine,1,USD,monthly\n" + f"GitHub,,{name},1,USD,monthly\n").encode()
    with pytest.raises(PriceBookError) as err:
        load_price_book(data)
    assert err.value.problems == [err.value.problems[0]] and err.value.problems[0].startswith(
        "row 3, column license_name: holds a control character"
    )


def test_a_nul_in_a_price_book_never_reaches_the_store(tmp_path):
    import pandas as pd

    from lib.analytics.pricing import PriceBookError, validate_price_book
    from lib.auth import OPEN_ACTOR
    from lib.store import Store

    store = Store(f"sqlite:///{tmp_path / 'pb.sqlite'}")
    book = pd.DataFrame(
        {
            "integration": ["GitHub"],
            "license_id": ["id\x00"],
            "license_name": [None],
            "unit_price": [1.0],
            "currency": ["USD"],
            "billing_period": ["monthly"],
        }
    )
    with pytest.raises((PriceBookError, ValueError), match="row 2, column license_id"):
        store.save_price_book(validate_price_book(book), OPEN_ACTOR)
    assert store.get_price_book().empty


@pytest.mark.parametrize("price", ["1e306", "1e308", "10000001", "1e400"])
def test_absurd_prices_are_refused(price):
    from lib.analytics.pricing import PriceBookError, load_price_book

    with pytest.raises(PriceBookError, match="row 2, column unit_price"):
        load_price_book((PB_HEADER + f"GitHub,,Pro,{price},USD,monthly\n").encode())


@pytest.mark.parametrize("rate", ["1e306", "1e308", "1000001"])
def test_absurd_rates_are_refused(rate):
    from lib.analytics.pricing import FxRatesError, load_fx_rates

    with pytest.raises(FxRatesError, match="row 2, column rate"):
        load_fx_rates(f"currency,rate\nEUR,{rate}\n".encode(), "USD")


def test_a_vendor_price_of_1e308_is_reported_not_summed():
    server = HostileTruto(
        truto(
            [active("d", "docusign")],
            {
                "d": [
                    seat("a", "Envelopes", 1, 2, unit_amount=1e308, currency="USD"),
                    seat("b", "Envelopes 2", 1, 2, unit_amount=10, currency="USD"),
                ]
            },
        )
    )
    with server:
        result = fetch_all(settings(server))
    amounts = dict(zip(result.licenses["license_id"], result.licenses["vendor_unit_amount"]))
    assert pd_isna(amounts["a"]) and amounts["b"] == 10
    assert "implausible_amount" in set(result.problems["kind"])


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_summary_json_is_strict_json(cli_env, tmp_path, capsys):
    # Unknown totals (nothing priced) are null; a price that would make a total infinite is refused.
    server = HostileTruto(truto([active("a", "github")], {"a": [seat("x", "Enterprise", 1, 2)]}))
    book = tmp_path / "book.csv"
    with server:
        capsys.readouterr()
        assert cli_env(server, "summary", "--json") == 0
        out = capsys.readouterr().out
        data = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in --json output"))
        assert data["all_licenses"]["annual_spend"] is None
        book.write_text(PB_HEADER + "GitHub,,Enterprise,1e308,USD,monthly\n")
        code = cli_env(server, "summary", "--json", "--price-book", str(book))
    captured = capsys.readouterr()
    assert "Infinity" not in captured.out and "NaN" not in captured.out
    assert code == 1 and "row 2, column unit_price" in captured.err


def test_strict_json_turns_non_finite_numbers_into_null():
    import numpy as np
    import pandas as pd

    text = cli_format.strict_json(
        {
            "a": float("nan"),
            "b": float("inf"),
            "c": np.float64("-inf"),
            "d": pd.NA,
            "e": 1.5,
            "f": [np.int64(3), None],
        }
    )
    assert json.loads(text) == {
        "a": None,
        "b": None,
        "c": None,
        "d": None,
        "e": 1.5,
        "f": [3, None],
    }


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_an_unclosed_quote_is_named_as_such(line_end):
    from lib.analytics.pricing import FxRatesError, PriceBookError, load_fx_rates, load_price_book

    rows = [
        'GitHub,,"Enterprise,21,USD,monthly',
        "Zoom,,Pro,10,USD,monthly",
        "Slack,,Pro,8,USD,monthly",
    ]
    with pytest.raises(PriceBookError) as err:
        load_price_book((PB_HEADER + line_end.join(rows) + line_end).encode())
    assert err.value.problems == [err.value.problems[0]]
    assert err.value.problems[0].startswith("row 2, column license_name: unclosed quote")
    with pytest.raises(FxRatesError, match="row 3, column currency: unclosed quote"):
        load_fx_rates(
            f'currency,rate{line_end}EUR,1.1{line_end}"GBP,1.2{line_end}CHF,1.1{line_end}'.encode()
        )


# ------------------------------------------------------------------ 13. a header-only upload keeps the other tabs


def test_a_header_only_price_book_upload_keeps_the_other_tabs(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.sqlite'}")
    root = Path(__file__).resolve().parent.parent
    at = AppTest.from_file(str(root / "app.py"), default_timeout=90)
    at.run()
    at.switch_page("pages/price-book.py")
    at.run()
    at.file_uploader(key="price-upload").set_value(
        ("empty.csv", PB_HEADER.encode(), "text/csv")
    ).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("holds no prices" in w.value for w in at.warning)
    assert at.button(key="save-fx")  # the Currency tab was drawn
    assert at.number_input(key="set-buffer")  # the Thresholds tab was drawn
    assert not [b for b in at.button if b.key == "apply-upload"]  # nothing to apply


# ------------------------------------------------------------------ 15. TRUTO_BASE_URL


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:s3cr3t-pw@truto.internal",
        "https://admin:s3cr3t-pw@bad host/",
        "ftp://admin:s3cr3t-pw@truto.internal",
        "https://admin:s3cr3t-pw@host:notaport",
    ],
)
def test_a_password_in_the_base_url_is_never_echoed(url, cli_env, tmp_path, capsys):
    from lib.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as err:
        load_settings(env={"TRUTO_BASE_URL": url}, secrets={})
    assert (
        "s3cr3t-pw" not in str(err.value)
        and "TRUTO_BASE_URL" in str(err.value)
        and "***" in str(err.value)
    )
    with HostileTruto(truto([])) as server:
        code = cli_env(server, "export", "--out", str(tmp_path / "x.csv"), TRUTO_BASE_URL=url)
    captured = capsys.readouterr()
    assert (
        code == 1
        and "s3cr3t-pw" not in captured.out + captured.err
        and "TRUTO_BASE_URL" in captured.err
    )


@pytest.mark.parametrize(
    "url", ["http://truto.internal", "http://10.0.0.5:8080", "http://api.truto.one"]
)
def test_plain_http_to_another_host_is_refused_unless_allowed(url):
    from lib.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="unencrypted"):
        load_settings(env={"TRUTO_BASE_URL": url}, secrets={})
    assert (
        load_settings(
            env={"TRUTO_BASE_URL": url, "TRUTO_ALLOW_INSECURE_HTTP": "true"}, secrets={}
        ).base_url
        == url
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://localhost:9000",
        "http://[::1]:8080",
        "https://truto.internal",
    ],
)
def test_loopback_http_and_https_are_accepted(url):
    from lib.config import load_settings

    assert load_settings(env={"TRUTO_BASE_URL": url}, secrets={}).base_url == url


# ------------------------------------------------------------------ 16. sync: --keep-days and a damaged store


def test_keep_days_0_is_refused_before_anything_is_fetched(cli_env, capsys):
    server = HostileTruto(truto([active("a")], {"a": [seat("x", "X")]}))
    with server:
        code = cli_env(server, "sync", "--quiet", "--keep-days", "0")
    err = capsys.readouterr().err
    assert code == 1 and "--keep-days" in err and "at least 1" in err and "Traceback" not in err
    assert server.log == []  # nothing was fetched


def test_a_database_failure_after_the_snapshot_is_written_is_a_clear_message(
    cli_env, capsys, monkeypatch
):
    import os
    import sqlite3

    from lib.jobs.sync import EXIT_STORE, config_key
    from lib.store import Store

    server = HostileTruto(truto([active("a")], {"a": [seat("x", "X")]}))
    with server:
        assert cli_env(server, "sync", "--quiet") == 0
        path = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
        with sqlite3.connect(
            path
        ) as db:  # the database itself refuses to delete: retention fails after the write
            db.execute(
                "CREATE TRIGGER refuse BEFORE DELETE ON license_rows "
                "BEGIN SELECT RAISE(ABORT, 'database disk image is malformed'); END"
            )
        capsys.readouterr()
        monkeypatch.setattr("lib.jobs.sync.datetime", _Later)
        code = cli_env(server, "sync", "--quiet", "--keep-days", "1")
    err = capsys.readouterr().err
    assert code == EXIT_STORE == 3, err
    assert (
        "Traceback" not in err
        and "database disk image is malformed" in err
        and "snapshot 2 was written" in err
    )
    assert Store(os.environ["DATABASE_URL"]).latest(config_key(settings(server))).snapshot_id == 2


class _Later:
    """datetime whose now() is three days on, so the first sync's snapshot is past --keep-days 1."""

    @staticmethod
    def now(tz=None):
        from datetime import datetime, timedelta

        return datetime.now(tz) + timedelta(days=3)


def test_a_sqlite_file_with_damaged_pages_is_a_clear_message(cli_env, capsys):
    import os

    server = HostileTruto(
        truto([active("a")], {"a": [seat(f"x{i}", f"License {i}") for i in range(2000)]})
    )
    with server:
        assert cli_env(server, "sync", "--quiet") == 0
        path = os.environ["DATABASE_URL"].removeprefix("sqlite:///")
        size = os.path.getsize(path)
        with open(path, "r+b") as fh:  # every page after the first few overwritten with garbage
            for page in range(size // 4096 // 2, size // 4096):
                fh.seek(page * 4096)
                fh.write(b"\xde\xad" * 2048)
        capsys.readouterr()
        code = cli_env(server, "sync", "--quiet")
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err and "malformed" in err, err


# ------------------------------------------------------------------ 8. deadlines


def _drip(seconds_per_byte: float, body: bytes = b'{"result": [], "next_cursor": null}'):
    return lambda *a: Reply(
        200, {"Content-Type": "application/json"}, [(bytes([b]), seconds_per_byte) for b in body]
    )


def test_a_server_dripping_bytes_is_cut_off_at_the_request_deadline():
    # A byte every 0.2 s never trips a 2 s read timeout; the request deadline stops it.
    server = HostileTruto(
        truto(
            [active("drip"), active("good")],
            {"good": [seat("g", "G")]},
            hostile={"drip": _drip(0.2)},
        )
    )
    with server:
        result, took = timed(
            lambda: fetch_all(settings(server, request_deadline=1.5, read_timeout=2.0))
        )
    bad = outcome(result, "drip")
    assert bad.outcome == "failed" and "request_deadline of 1.5 s" in bad.message
    assert "deadline" in bad.action
    assert outcome(result, "good").outcome == "ok"
    assert took < 6, took


def test_a_server_that_sends_headers_then_nothing_is_cut_off_at_the_request_deadline():
    silent = lambda *a: Reply(
        200, {"Content-Type": "application/json"}, [(b"{", 0.0), (b"}", 59.0)]
    )  # noqa: E731
    server = HostileTruto(
        truto(
            [active("silent"), active("good")],
            {"good": [seat("g", "G")]},
            hostile={"silent": silent},
        )
    )
    with server:
        result, took = timed(
            lambda: fetch_all(settings(server, request_deadline=1.0, read_timeout=60.0))
        )
    assert (
        "request_deadline" in outcome(result, "silent").message
        and outcome(result, "good").outcome == "ok"
    )
    assert took < 5, took


def _rate_limited_pages(pages: int, retry_after: str):
    tried: set[str] = set()

    def answer(path, params, headers):
        if not path.endswith("licenses"):
            return Reply.json({"result": [], "next_cursor": None})
        page = int(params.get("next_cursor") or 0)
        if page not in tried:
            tried.add(page)
            return Reply.json({"message": "slow down"}, 429, **{"Retry-After": retry_after})
        nxt = str(page + 1) if page + 1 < pages else None
        return Reply.json({"result": [seat(f"p{page}", f"Page {page}")], "next_cursor": nxt})

    return answer


def test_an_account_that_keeps_being_rate_limited_stops_at_the_account_deadline():
    server = HostileTruto(
        truto(
            [active("slow"), active("good")],
            {"good": [seat("g", "G")]},
            hostile={"slow": _rate_limited_pages(10, "1.0")},
        )
    )
    with server:
        result, took = timed(
            lambda: fetch_all(settings(server, max_total_wait=3.0, account_deadline=2.5))
        )
    slow = outcome(result, "slow")
    assert slow.outcome == "failed" and "account_deadline" in slow.message and slow.retries <= 3
    assert outcome(result, "good").outcome == "ok" and set(result.licenses["account_id"]) == {
        "good"
    }
    assert took < 5, took


def test_a_slow_fetch_stops_at_the_fetch_deadline_keeping_what_finished():
    server = HostileTruto(
        truto(
            [active("s1"), active("s2"), active("good")],
            {"good": [seat("g", "G")]},
            hostile={"s1": _drip(0.2), "s2": _drip(0.2)},
        )
    )
    with server:
        result, took = timed(
            lambda: fetch_all(settings(server, fetch_deadline=1.5, request_deadline=30.0))
        )
    for aid in ("s1", "s2"):
        assert "fetch_deadline of 1.5 s" in outcome(result, aid).message
    assert outcome(result, "good").outcome == "ok" and result.exit_code() == 2
    assert took < 5, took


def test_deadline_settings_are_read_and_checked():
    from lib.config import ConfigError, load_settings

    s = load_settings(
        env={
            "TRUTO_REQUEST_DEADLINE": "30",
            "TRUTO_ACCOUNT_DEADLINE": "120",
            "TRUTO_FETCH_DEADLINE": "600",
            "TRUTO_MAX_RESPONSE_BYTES": "1048576",
        },
        secrets={},
    )
    assert (s.request_deadline, s.account_deadline, s.fetch_deadline, s.max_response_bytes) == (
        30,
        120,
        600,
        1048576,
    )
    defaults = load_settings(env={}, secrets={})
    assert defaults.fetch_deadline < 3600 and defaults.request_deadline <= defaults.account_deadline
    for key in ("TRUTO_REQUEST_DEADLINE", "TRUTO_MAX_RESPONSE_BYTES"):
        with pytest.raises(ConfigError, match=key):
            load_settings(env={key: "0"}, secrets={})


# ------------------------------------------------------------------ 9. answer size


def test_a_gzip_bomb_fails_that_listing_without_filling_the_memory():
    import tracemalloc

    inner = b'{"result": [' + b" " * (100 * 1024 * 1024) + b"]}"  # 100 MB of JSON
    bomb = gzip.compress(inner, compresslevel=9)
    del inner
    assert len(bomb) < 200 * 1024
    answer = lambda *a: Reply(
        200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, bomb
    )  # noqa: E731
    server = HostileTruto(
        truto(
            [active("bomb"), active("good")], {"good": [seat("g", "G")]}, hostile={"bomb": answer}
        )
    )
    tracemalloc.start()
    try:
        with server:
            result = fetch_all(settings(server, max_response_bytes=8 * 1024 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    bad = outcome(result, "bomb")
    assert (
        bad.outcome == "failed"
        and "max_response_bytes" in bad.message
        and "max_response_bytes" in bad.action
    )
    assert outcome(result, "good").outcome == "ok"
    assert peak < 64 * 1024 * 1024, peak


def test_a_plain_answer_over_the_cap_fails_and_one_under_it_is_read():
    big = [seat(f"id{i}", "x" * 200) for i in range(3000)]  # ~ 800 KB
    server = HostileTruto(
        truto([active("big"), active("good")], {"big": big, "good": [seat("g", "G")]})
    )
    with server:
        capped = fetch_all(settings(server, max_response_bytes=256 * 1024))
        roomy = fetch_all(settings(server, max_response_bytes=4 * 1024 * 1024))
    assert (
        outcome(capped, "big").outcome == "failed"
        and "262,144 bytes" in outcome(capped, "big").message
    )
    assert outcome(capped, "good").outcome == "ok"
    assert (
        outcome(roomy, "big").outcome == "ok"
        and (roomy.licenses["account_id"] == "big").sum() == 3000
    )


# ------------------------------------------------------------------ what held, and must keep holding


def test_a_server_echoing_the_token_never_gets_it_into_any_output(cli_env, tmp_path, capsys):
    echo = lambda p, q, h: Reply.json({"message": f"bad auth: {h.get('Authorization')}"}, 400)  # noqa: E731
    server = HostileTruto(
        truto([active("echo"), active("good")], {"good": [seat("g", "G")]}, hostile={"echo": echo})
    )
    out = tmp_path / "x.csv"
    with server:
        assert cli_env(server, "export", "--out", str(out)) == 2
        assert cli_env(server, "sync") == 2
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err + out.read_text()
    assert "bad auth: Bearer ********" in captured.err
    import os

    assert (
        TOKEN.encode()
        not in open(os.environ["DATABASE_URL"].removeprefix("sqlite:///"), "rb").read()
    )


def test_authorization_is_dropped_on_a_redirect_to_another_host():
    seen: list[dict] = []

    def other(path, params, headers):
        seen.append(headers)
        return Reply.json({"result": [], "next_cursor": None})

    with HostileTruto(other) as elsewhere:
        port = elsewhere.base_url.rsplit(":", 1)[1]
        moved = lambda p, q, h: Reply(
            302, {"Location": f"http://localhost:{port}/integrated-account"}
        )  # noqa: E731
        with HostileTruto(truto([], hostile={"/integrated-account": moved})) as server:
            result = fetch_all(settings(server))
    assert result.outcomes == [] and seen, "the redirect was followed"
    assert all("Authorization" not in h and TOKEN not in str(h) for h in seen)


def test_retry_after_99999_still_fails_fast():
    limited = lambda *a: Reply.json({"message": "later"}, 429, **{"Retry-After": "99999"})  # noqa: E731
    server = HostileTruto(
        truto([active("bad"), active("good")], {"good": [seat("g", "G")]}, hostile={"bad": limited})
    )
    with server:
        result, took = timed(lambda: fetch_all(settings(server)))
    assert (
        outcome(result, "bad").outcome == "failed"
        and outcome(result, "good").outcome == "ok"
        and took < 3
    )


def test_a_mid_body_close_fails_only_that_account():
    cut = lambda *a: Reply(
        200,
        {"Content-Type": "application/json", "Content-Length": "1000"},  # noqa: E731
        b'{"result": [',
        raw=True,
        close=True,
    )
    server = HostileTruto(
        truto([active("cut"), active("good")], {"good": [seat("g", "G")]}, hostile={"cut": cut})
    )
    with server:
        result, took = timed(lambda: fetch_all(settings(server, max_attempts=2)))
    cut_off = outcome(result, "cut")
    assert cut_off.outcome == "failed" and "Could not reach Truto" in cut_off.message and took < 2
    assert outcome(result, "good").outcome == "ok"


def test_an_unpaired_surrogate_in_records_built_without_http_affects_only_that_value():
    from datetime import datetime

    from lib.truto.normalize import Listing, build_license_table

    records = [
        {"id": "a", "name": "Bad \ud83d", "assigned_quantity": 1, "available_quantity": 2},
        {"id": "b\udc00", "name": "Fine", "assigned_quantity": 1, "available_quantity": 2},
    ]
    table, problems = build_license_table(
        [Listing("acc", "adobe", "t", records, datetime.now(UTC))]
    )
    assert list(table["license_name"]) == ["Bad \ufffd", "Fine"] and list(table["license_id"]) == [
        "a",
        "b\ufffd",
    ]
    assert problems == []


# ------------------------------------------------- issue 23, row 11: user ids are personal data


def test_export_names_users_by_a_reference_on_stderr_never_by_their_email(
    cli_env, emulator, tmp_path, capsys
):
    from lib.truto.users import user_reference
    from tests.factories import account, dataset, lic, user

    emu = emulator(
        dataset(
            [account("a1", "adobe")],
            {"a1": [lic("L1", "CC", 2, 5, True)]},
            users={
                "a1": [
                    user("dave@acme.com", "L1", "NOPE", "NOPE"),
                    user("dave@acme.com", "L1"),
                    user("erin@acme.com", "L1", last_login_at="0001-01-01"),
                ]
            },
        ),
        token=TOKEN,
    )
    code = cli_env(emu, "export", "--out", str(tmp_path / "out.csv"), "--quiet")
    err = capsys.readouterr().err
    assert code == 0
    assert "acme.com" not in err, err
    ref = user_reference("a1", "dave@acme.com")
    assert f"user {ref} holds license NOPE, which the licenses listing" in err
    assert f"user {ref} holds license NOPE more than once" in err
    assert f"user {ref} appears more than once" in err


def test_the_malformed_records_table_names_users_for_admins_only():
    import pandas as pd

    from lib.analytics import views as D
    from lib.analytics.labels import export_frame
    from lib.export import to_csv_bytes
    from lib.truto.normalize import Problem, problems_table
    from lib.truto.users import user_reference

    ref = user_reference("a1", "dave@acme.com")
    problems = problems_table(
        [
            Problem(
                "a1",
                "Adobe",
                "users",
                "dave@acme.com",
                "licenses",
                "unknown_license",
                f"user {ref} holds license X, which the licenses listing does not have",
            ),
            # a snapshot stored before the reference: its detail names the id
            Problem(
                "a1",
                "Adobe",
                "users",
                "dave@acme.com",
                "id",
                "duplicate_user",
                "user dave@acme.com appears more than once; counted once",
            ),
            Problem(
                "a1",
                "Adobe",
                "users",
                "dave@acme.com",
                "last_login_at",
                "bad_timestamp",
                "last_login_at 'x' is not a date and time; shown as not reported",
            ),
            Problem(
                "a1",
                "Adobe",
                "licenses",
                "L-7",
                "id",
                "duplicate_id",
                "license id L-7 appears more than once; counted once",
            ),
            Problem("a1", "Adobe", "users", None, "id", "missing_id", "user 4 has no id; kept"),
        ]
    )
    viewer = D.problems_view(problems, show_people=False)
    csv = to_csv_bytes(export_frame(viewer, "USD")).decode()
    assert "dave" not in csv and "dave" not in viewer.astype(str).to_string()
    assert viewer["record_id"].tolist()[:4] == [ref, ref, ref, "L-7"]
    assert pd.isna(viewer["record_id"].iloc[4])
    assert viewer["detail"].iloc[1] == f"user {ref} appears more than once; counted once"
    admin = D.problems_view(problems, show_people=True)
    assert admin["record_id"].tolist()[:3] == ["dave@acme.com"] * 3
    assert admin["detail"].iloc[0].startswith("user dave@acme.com holds license X")
    assert admin["detail"].iloc[1] == "user dave@acme.com appears more than once; counted once"
    assert admin.dtypes.to_dict() == problems.dtypes.to_dict()
    pd.testing.assert_frame_equal(admin.iloc[2:], problems.iloc[2:])


def test_export_says_a_flood_of_user_problems_once_not_line_by_line(
    cli_env, emulator, tmp_path, capsys
):
    """Issue 23, row 10: one user holding 800k license ids printed 800k lines on stderr."""
    from lib.truto.users import MAX_PROBLEMS_PER_ACCOUNT
    from tests.factories import account, dataset, lic

    many = {"id": "big", "licenses": [{"id": f"X{i}"} for i in range(5_000)]}
    emu = emulator(
        dataset(
            [account("a1", "adobe")], {"a1": [lic("L1", "CC", 2, 5, True)]}, {}, {"a1": [many]}
        ),
        token=TOKEN,
    )
    code = cli_env(emu, "export", "--out", str(tmp_path / "out.csv"), "--quiet")
    lines = capsys.readouterr().err.splitlines()
    assert code == 0
    listed = [line for line in lines if line.startswith("  Adobe account a1: users: ")]
    assert len(listed) == MAX_PROBLEMS_PER_ACCOUNT + 1
    assert "holds 5,000 licenses, more than the 1,000 read per user" in listed[0]
    assert listed[-1].endswith(
        "1,001 problems in these users in all: the first 1,000 are listed one by one, the other 1 "
        "only counted here"
    )
    assert any(line.startswith("1001 record(s) could not be read as sent") for line in lines)


# ================================================================== issue 23: hostile input, second round
# ------------------------------------------------------------------ 12. exemption reasons: the one text rule


@pytest.mark.parametrize(
    "reason",
    [
        "service account\u202e",  # RIGHT-TO-LEFT OVERRIDE
        "service\u2066account",  # LEFT-TO-RIGHT ISOLATE
        "service\u200faccount",  # RIGHT-TO-LEFT MARK
        "service\x85account",  # NEXT LINE (C1)
        "service\x9b31maccount",  # CONTROL SEQUENCE INTRODUCER (C1)
        "service\x7faccount",  # DEL
        "service\x1baccount",  # ESC, refused before too
    ],
)
def test_an_exemption_reason_follows_the_text_rule_of_every_input(tmp_path, reason):
    from lib.auth import OPEN_ACTOR
    from lib.store import Store
    from lib.store.exemptions import ExemptionError
    from lib.truto.text import unsafe_character

    assert unsafe_character(reason) is not None  # the one rule says no
    store = Store(f"sqlite:///{tmp_path / 'ex.sqlite'}")
    with pytest.raises(ExemptionError, match=r"the reason contains control characters \(U\+"):
        store.add_exemption("user", "svc@acme.com", reason, OPEN_ACTOR)
    with pytest.raises(ExemptionError, match="the license id contains control characters"):
        store.add_exemption("license", f"L-{reason}", "break-glass admin", OPEN_ACTOR)
    assert store.exemptions().empty
    store.add_exemption("user", "svc@acme.com", "service account (ünïcode is fine)", OPEN_ACTOR)
    assert store.exemptions()["reason"].tolist() == ["service account (ünïcode is fine)"]


def test_a_contract_cell_follows_the_same_text_rule():
    from lib.analytics.contracts import ContractsError, load_contracts
    from lib.schema import CONTRACT_COLUMNS

    data = ",".join(CONTRACT_COLUMNS) + "\nGitHub,,,Enterprise\u200f,,2027-01-31,,,,,,,,\n"
    with pytest.raises(ContractsError) as err:
        load_contracts(data.encode())
    assert err.value.problems[0].startswith("row 2, column license_name: holds a control character")


# ------------------------------------------------------------------ 13. look-alike dots in sign-in addresses


@pytest.mark.parametrize("dot", ["\u3002", "\uff0e", "\uff61"])
def test_look_alike_dots_never_separate_the_labels_of_an_address(dot):
    from lib.auth import decide, normalize_domain, normalize_email
    from lib.config import ConfigError

    cfg = _access(admins=["ana@acme.com"], allowed_domains=["acme.com"])
    d = decide({"is_logged_in": True, "email": f"ana@acme{dot}com", "email_verified": True}, cfg)
    assert not d.allowed and d.actor is None
    assert normalize_domain(f"acme{dot}com") is None
    assert (
        normalize_email(f"ana@straße{dot}de") is None and normalize_domain(f"acme.com{dot}") is None
    )
    with pytest.raises(ConfigError, match="not an email address"):
        _access(admins=[f"ana@acme{dot}com"])
    with pytest.raises(ConfigError, match="not a domain"):
        _access(allowed_domains=[f"acme{dot}com"])
    # The ASCII full stop still separates labels, internationalised ones too.
    assert normalize_domain("bücher.Straße.de") == "xn--bcher-kva.xn--strae-oqa.de"


# ------------------------------------------------------------------ 14. thresholds and input files, before any fetch


def _one_account():
    return HostileTruto(truto([active("a")], {"a": [seat("x", "X")]}))


@pytest.mark.parametrize("command", ["reclaim", "export"])
@pytest.mark.parametrize("days", ["100000000000000000000", "3651", "1e400", "0"])
def test_an_absurd_inactivity_threshold_is_refused_before_anything_is_fetched(
    cli_env, tmp_path, capsys, command, days
):
    with _one_account() as server:
        code = cli_env(server, command, "--out", str(tmp_path / "out.csv"), "--inactive-days", days)
    err = capsys.readouterr().err
    assert code == 1 and "--inactive-days" in err and "from 1 to 3650" in err, err
    assert "Traceback" not in err and server.log == []  # nothing was fetched
    assert not (tmp_path / "out.csv").exists()


def test_keep_days_beyond_a_century_is_refused_before_anything_is_fetched(cli_env, capsys):
    with _one_account() as server:
        code = cli_env(server, "sync", "--quiet", "--keep-days", "800000")
    err = capsys.readouterr().err
    assert code == 1 and "--keep-days" in err and "at most 36500" in err, err
    assert "Traceback" not in err and server.log == []


def test_retention_is_bounded_in_the_store_too(tmp_path):
    from lib.store import Store

    store = Store(f"sqlite:///{tmp_path / 'r.sqlite'}")
    with pytest.raises(ValueError, match="from 1 to 36500"):
        store.prune(800000)
    assert store.prune(36500) is not None


@pytest.mark.parametrize("flag", ["--fx", "--price-book"])
@pytest.mark.parametrize("command", ["export", "reclaim", "summary"])
def test_a_wrong_input_file_is_refused_before_anything_is_fetched(
    cli_env, tmp_path, capsys, flag, command
):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "currency,rate\nEUR,-1\n" if flag == "--fx" else PB_HEADER + "GitHub,,Pro,x,USD,monthly\n"
    )
    out = ["--out", str(tmp_path / "out.csv")] if command != "summary" else []
    with _one_account() as server:
        code = cli_env(server, command, *out, flag, str(bad), "--no-saved")
    err = capsys.readouterr().err
    assert code == 1 and f"Configuration error: {flag} {bad}" in err and "row 2" in err, err
    assert server.log == []  # refused at once, not after every account was listed
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("buffer", ["1e300", "inf", "nan", "-1", "lots"])
def test_a_wrong_buffer_is_a_configuration_error_exit_1(cli_env, tmp_path, capsys, buffer):
    with _one_account() as server, pytest.raises(SystemExit) as exit_:
        cli_env(server, "export", "--out", str(tmp_path / "out.csv"), "--buffer", buffer)
    assert (
        exit_.value.code == 1
    )  # the README's code for a wrong configuration (argparse's own is 2)
    assert "--buffer" in capsys.readouterr().err and server.log == []


# ------------------------------------------------------------------ 15. an incomplete [auth] keeps the app closed


@pytest.mark.parametrize(
    "auth, missing",
    [
        ({}, "redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url are"),
        ({k: v for k, v in AUTH_TABLE.items() if k != "cookie_secret"}, "cookie_secret is"),
        ({**AUTH_TABLE, "client_secret": " "}, "client_secret is"),
    ],
)
def test_an_incomplete_auth_table_is_a_configuration_error_never_open_access(auth, missing):
    from lib.auth import load_access_config
    from lib.config import ConfigError

    with pytest.raises(ConfigError, match=f"sign-in is not configured: {missing} missing"):
        load_access_config({"auth": auth, "access": {"admins": ["ana@acme.com"]}})
    # The provider's keys may also sit in [auth.default].
    provider = {k: AUTH_TABLE[k] for k in ("client_id", "client_secret", "server_metadata_url")}
    split = {
        "redirect_uri": AUTH_TABLE["redirect_uri"],
        "cookie_secret": "x" * 32,
        "default": provider,
    }
    assert load_access_config({"auth": split}).auth_enabled


def test_an_empty_auth_table_keeps_the_app_closed_and_says_what_is_missing(secrets_files, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\n\n[access]\nadmins = ["ana@acme.com"]\n')
    secrets_files(secrets)
    at = _run_app()
    assert not at.exception, [e.value for e in at.exception]
    errors = " ".join(e.value for e in at.error).replace("\\", "")  # as the markdown reads
    assert "sign-in is not configured" in errors and "redirect_uri" in errors, errors
    assert "stays closed" in errors
    shown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "Open access" not in shown
    assert not at.button and not at.metric and not at.dataframe


# ------------------------------------------------------------------ 16. a large file of bad rows


def _bad_contracts(rows: int) -> bytes:
    from lib.schema import CONTRACT_COLUMNS

    row = ",,,X,2026-01-01,2027-13-01,quarterly,maybe,-1,2.5,x,12,,robot\n"
    return (",".join(CONTRACT_COLUMNS) + "\n" + row * rows).encode()


def _bad_prices(rows: int) -> bytes:
    return (PB_HEADER + ",,,-1,ABC,weekly\n" * rows).encode()


def _problems(load, data):
    with pytest.raises(ValueError) as err:
        load(data)
    return err.value


def test_a_large_file_of_bad_rows_lists_100_problems_and_counts_the_rest():
    import time

    from lib.analytics.contracts import load_contracts
    from lib.analytics.pricing import load_fx_rates, load_price_book

    files = [
        (load_contracts, _bad_contracts),
        (load_price_book, _bad_prices),
        (load_fx_rates, lambda n: ("currency,rate\n" + "ABC,-1\n" * n).encode()),
    ]
    for load, make in files:
        per_row = len(_problems(load, make(1)).problems)  # the problems of one such row
        assert per_row >= 2
        data = make(5_000_000 // len(make(1)))  # a full 5 MB upload (server.maxUploadSize)
        rows = data.count(b"\n") - 1
        started = time.process_time()
        err = _problems(load, data)
        cpu = time.process_time() - started
        assert len(err.problems) == 100 and err.problems[0].startswith("row 2, ")
        assert err.more == rows * per_row - 100 and err.count == rows * per_row
        message = str(err)
        assert len(message) < 20_000, len(message)  # was 59-108 MB of text
        assert f"{rows * per_row:,} problems (the first 100 listed)" in message
        assert message.endswith(f"- and {rows * per_row - 100:,} more problems")
        assert cpu < 15, cpu  # measured 2-4 s on a loaded machine


def test_the_page_lists_the_first_100_problems_of_an_upload_and_counts_the_rest(
    tmp_path, monkeypatch
):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.sqlite'}")
    root = Path(__file__).resolve().parent.parent
    rows = 20_000
    for page, key, data in (
        ("pages/price-book.py", "price-upload", _bad_prices(rows)),
        ("pages/renewals.py", "contracts-upload", _bad_contracts(rows)),
    ):
        at = AppTest.from_file(str(root / "app.py"), default_timeout=90)
        at.run()
        at.switch_page(page)
        at.run()
        at.file_uploader(key=key).set_value(("bad.csv", data, "text/csv")).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("bad.csv was rejected" in e.value for e in at.error)
        listed = [m.value for m in at.markdown if m.value.startswith("- row 2")]
        assert len(listed) == 1, [m.value[:80] for m in at.markdown]
        lines = listed[0].split("\n")
        assert (
            len(lines) == 101 and lines[-1].startswith("- … and ") and "more problems" in lines[-1]
        )
        assert len(listed[0]) < 20_000


# ------------------------------------------------------------------ 18. an uploaded contract is the admin's


def test_an_uploaded_vendor_row_is_the_admins_and_the_next_sync_keeps_it(tmp_path):
    import pandas as pd

    from lib.analytics.contracts import load_contracts, validate_contracts
    from lib.analytics.vendor_contracts import merge_contracts
    from lib.auth import Actor
    from lib.schema import CONTRACT_COLUMNS
    from lib.store import Store

    admin = Actor("ana@acme.com", "Ana", "admin")
    store = Store(f"sqlite:///{tmp_path / 'c.sqlite'}")
    header = ",".join(CONTRACT_COLUMNS) + "\n"
    upload = header + "Zoom,zoom-1,,,,2027-03-31,annual,true,60,,,9000,USD,vendor\n"
    store.save_contracts(load_contracts(upload.encode()), admin)
    assert store.get_contracts()["source"].tolist() == ["edited"]
    # The next sync lists zoom-1's billing and replaces that account's vendor contracts.
    fetched = validate_contracts(
        pd.DataFrame(
            [
                [
                    "Zoom",
                    "zoom-1",
                    "",
                    "",
                    "",
                    "2026-12-31",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "1",
                    "USD",
                    "vendor",
                ]
            ],
            columns=CONTRACT_COLUMNS,
        )
    )
    store.replace_vendor_contracts(fetched, ["zoom-1"], admin, merge_contracts)
    kept = store.get_contracts()
    assert kept["source"].tolist() == ["edited"]  # the upload wins over the vendor's row
    assert kept["notice_days"].tolist() == [60] and kept["contract_value"].tolist() == [9000.0]
