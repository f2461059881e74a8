"""docs/export.md is the interface of every CSV and ``--json``: each producer, run for real, writes
exactly the columns its section lists, in that order, whatever the reporting currency.

The command line runs in a subprocess against the emulator serving the demo data; the pages run
under AppTest on the demo database, every download button's file read as it would be sent. A new
column that the document does not list fails here, and so does a documented one that is gone.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from lib.analytics.labels import DEPRECATED_UNTIL, export_frame
from lib.analytics.pricing import fx_rates_to_csv, price_book_to_csv
from lib.auth import Actor
from lib.export import to_csv_bytes
from lib.integrations import integration_key, integration_label
from lib.jobs.demo import DEMO_FX_RATES, demo_price_book, seed_demo_pricing
from lib.store import Store
from lib.truto.demo import DEMO_TOKEN, demo_dataset
from lib.truto.emulator import Emulator
from lib.truto.source import fetch
from tests.factories import account, dataset, lic, settings_for

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "export.md"
ADMIN = Actor("ana@acme.com", "Ana", "admin")
EUR_RATES = {"USD": 0.93}  # no GBP rate: the Spend page lists what is not converted
DICTIONARY = "Column dictionary"
DEPRECATED = re.compile(r"deprecated: copy of `([^`]+)`, written until ([0-9.]+)")


# ------------------------------------------------------------------ the document


def doc_sections() -> dict[str, list[list[str]]]:
    """Heading (its first `code` span) -> the rows of the table under it (cells, backticks off the
    first); ``DICTIONARY`` -> the column dictionary's rows."""
    sections: dict[str, list[list[str]]] = {}
    key: str | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            key = DICTIONARY if DICTIONARY in line else None
            if key:
                sections[key] = []
        elif line.startswith("### "):
            found = re.search(r"`([^`]+)`", line)
            key = found.group(1) if found else None
            if key:
                assert key not in sections, f"docs/export.md: two sections for {key}"
                sections[key] = []
        elif key and line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if set(cells[0]) <= set("-: ") or cells[0] in ("column", "key"):
                continue  # the separator and the header row
            sections[key].append([cells[0].strip("`"), *cells[1:]])
    return sections


def documented(key: str, currency: str) -> list[str]:
    """The columns the document lists for ``key``, for a file in ``currency``."""
    return [
        row[0].replace("<currency>", currency.lower()).replace("<CURRENCY>", currency.upper())
        for row in doc_sections()[key]
    ]


def deprecated_copies(key: str, currency: str) -> dict[str, str]:
    """Deprecated column -> the column it copies, as documented for ``key``."""
    out = {}
    for name, row in zip(documented(key, currency), doc_sections()[key]):
        found = DEPRECATED.search(" ".join(row[1:]))
        if found:
            assert found.group(2) == DEPRECATED_UNTIL, (key, name)
            out[name] = found.group(1)
    return out


# ------------------------------------------------------------------ what the producers write


def read_csv(body: bytes) -> pd.DataFrame:
    text = body.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)), [])
    assert len(header) == len(set(header)), f"a column twice: {header}"
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def run_cli(args: list[str], database: Path, tmp_path: Path, **env_extra: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUTO_")}
    env.update({"DATABASE_URL": f"sqlite:///{database}", **env_extra})
    return subprocess.run(
        [sys.executable, "-m", "lib", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def cli_files(emu, currency: str, tmp_path: Path) -> dict[str, pd.DataFrame]:
    """``export`` and ``reclaim`` against the demo emulator, priced with the demo price book and rates
    to ``currency`` (and nothing saved)."""
    book, fx = tmp_path / "book.csv", tmp_path / f"fx-{currency}.csv"
    book.write_bytes(price_book_to_csv(demo_price_book()))
    rates = dict(DEMO_FX_RATES) if currency == "USD" else EUR_RATES
    fx.write_bytes(fx_rates_to_csv(rates, currency))
    common = ["--price-book", str(book), "--fx", str(fx), "--currency", currency, "--no-saved"]
    env = {"TRUTO_API_TOKEN": DEMO_TOKEN, "TRUTO_BASE_URL": emu.base_url}
    out = {}
    for command in ("export", "reclaim"):
        path = tmp_path / f"{command}-{currency}.csv"
        proc = run_cli(
            [command, "--out", str(path), "--quiet", *common],
            tmp_path / "none.sqlite",
            tmp_path,
            **env,
        )
        assert proc.returncode in (0, 2), proc.stderr  # the demo exits 2: one account needs reauth
        out[f"python -m lib {command}"] = read_csv(path.read_bytes())
    return out


def cli_summary(emu, currency: str, tmp_path: Path) -> dict:
    fx = tmp_path / f"fx-{currency}.csv"
    proc = run_cli(
        ["summary", "--json", "--currency", currency, "--fx", str(fx), "--no-saved"],
        tmp_path / "none.sqlite",
        tmp_path,
        TRUTO_API_TOKEN=DEMO_TOKEN,
        TRUTO_BASE_URL=emu.base_url,
    )
    assert proc.returncode in (0, 2), proc.stderr
    return json.loads(proc.stdout)


def page_files(database: Path, monkeypatch) -> dict[str, pd.DataFrame]:
    """Every CSV a download button of a page sends, by its file name without the date: each page
    once, then the choices that change a download's first column (per license, drill-down levels)."""
    sent: dict[str, pd.DataFrame] = {}

    def download_button(label, data, file_name=None, **kwargs):
        stem = re.sub(r"-\d{4}-\d{2}-\d{2}\.\w+$", "", file_name or "")
        if str(file_name).endswith(".csv"):
            body = data() if callable(data) else data
            sent[f"{stem}.csv"] = read_csv(body.encode() if isinstance(body, str) else body)
        return False

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setattr(streamlit, "download_button", download_button)
    for page in sorted(p.name for p in (ROOT / "pages").glob("*.py")):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        at.switch_page(f"pages/{page}")
        at.run()
        assert not at.exception, (page, [e.value for e in at.exception])
        if page == "utilization.py":
            at.segmented_control(key="seats-per").set_value("License").run()
            at.selectbox(key="drill-integration").set_value("GitHub").run()
            accounts = at.selectbox(key="drill-account")
            accounts.set_value(accounts.options[1]).run()
            orgs = at.selectbox(key="drill-org")
            orgs.set_value(orgs.options[1]).run()
        if page == "trends.py":
            at.segmented_control(key="trend-group").set_value("license").run()
        assert not at.exception, (page, [e.value for e in at.exception])
    return sent


def problems_file(emulator, currency: str) -> pd.DataFrame:
    """The Accounts page's malformed-records download (the demo has none): a fetch's problems table
    through the download's own export_frame, as ``ui.download`` sends it."""
    emu = emulator(dataset([account("a", "adobe")], {"a": [lic("x", "X", -1, 2)]}))
    problems = fetch(settings_for(emu)).problems
    assert len(problems)
    return read_csv(to_csv_bytes(export_frame(problems, currency)))


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    """{currency: {section key: the file as written}} and {currency: summary --json}, for USD and EUR."""
    tmp = tmp_path_factory.mktemp("export-doc")
    emu = Emulator(demo_dataset(), token=DEMO_TOKEN).start()
    files: dict[str, dict[str, pd.DataFrame]] = {}
    summaries: dict[str, dict] = {}
    alerts: dict = {}
    try:
        mp = pytest.MonkeyPatch()
        try:
            for currency in ("USD", "EUR"):
                database = tmp / f"dashboard-{currency}.sqlite"
                if currency != "USD":  # the demo's prices, with rates to EUR: the EUR reporting
                    store = Store(f"sqlite:///{database}")
                    seed_demo_pricing(store)
                    store.save_fx_rates(EUR_RATES, currency, ADMIN)
                    store.close()
                files[currency] = {
                    **cli_files(emu, currency, tmp),
                    **page_files(database, mp),
                }
                summaries[currency] = cli_summary(emu, currency, tmp)
                if currency == "USD":  # after the pages ran: the database holds a snapshot
                    proc = run_cli(["alerts", "--json", "--dry-run"], database, tmp)
                    assert proc.returncode in (0, 3), proc.stderr
                    alerts = json.loads(proc.stdout)
        finally:
            mp.undo()
    finally:
        emu.stop()
    return files, summaries, alerts


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_every_csv_has_exactly_the_documented_columns_in_order(produced, emulator, currency):
    files = {**produced[0][currency], "record-problems.csv": problems_file(emulator, currency)}
    csv_sections = {
        k for k in doc_sections() if k.startswith("python -m lib ") or k.endswith(".csv")
    }
    csv_sections -= {k for k in csv_sections if "--json" in k}
    assert sorted(files) == sorted(csv_sections)  # no file undocumented, no section without a file
    for key, table in files.items():
        assert list(table.columns) == documented(key, currency), key


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_deprecated_columns_are_copies_of_the_columns_they_were_renamed_to(produced, currency):
    for key, table in produced[0][currency].items():
        for old, new in deprecated_copies(key, currency).items():
            assert table[old].tolist() == table[new].tolist(), (key, old, new)


def test_column_names_do_not_change_with_the_reporting_currency(produced):
    usd, eur = produced[0]["USD"], produced[0]["EUR"]
    assert sorted(usd) == sorted(eur)
    for key in usd:
        stable = {}
        for currency, files in (("USD", usd), ("EUR", eur)):
            columns = list(files[key].columns)
            coded = [c for c in columns if c.lower().endswith("_" + currency.lower())]
            copies = deprecated_copies(key, currency)
            for c in coded:  # only 0.3.0's names, each a copy of its stable column, for one release
                assert c in copies and copies[c] in columns, (key, c)
            stable[currency] = [c for c in columns if c not in coded]
            if any(c.endswith("_reporting") for c in columns):
                assert set(files[key]["reporting_currency"]) <= {currency}, key
        assert stable["USD"] == stable["EUR"], key


def test_one_meaning_per_column_name_every_column_in_the_dictionary():
    sections = doc_sections()
    dictionary = [row[0] for row in sections[DICTIONARY]]
    assert len(dictionary) == len(set(dictionary)), "a column described twice"
    assert all(len(row) == 5 and row[3] for row in sections[DICTIONARY]), (
        "each column: type, unit, meaning, when empty"
    )
    used = set()
    for key, rows in sections.items():
        if key == DICTIONARY or "--json" in key:
            continue
        for row in rows:
            if not DEPRECATED.search(" ".join(row[1:])):
                assert row[0] in dictionary, f"{key}: {row[0]} is not in the column dictionary"
                used.add(row[0])
    assert set(dictionary) == used, "described but written by no file"


def test_integration_holds_the_machine_name_and_integration_label_the_words(produced):
    checked = 0
    for key, table in produced[0]["USD"].items():
        if "integration" in table.columns:
            names = set(table["integration"]) - {""}
            assert all(re.fullmatch(r"[a-z0-9]+", n) for n in names), (key, names)
        if "integration_label" in table.columns:
            words = set(table["integration_label"]) - {""}
            assert all(w == integration_label(w) != integration_key(w) for w in words), (key, words)
        if {"integration", "integration_label"} <= set(table.columns):
            pairs = set(zip(table["integration"], table["integration_label"]))
            assert all(integration_label(n) == w for n, w in pairs), (key, pairs)
            checked += len(table) > 0
    assert checked >= 5  # export, reclaim, the price book, its template and the contracts


def _keys(section: str) -> list[str]:
    return [row[0] for row in doc_sections()[section]]


@pytest.mark.parametrize("currency", ["USD", "EUR"])
def test_summary_json_has_the_documented_keys(produced, currency):
    out = produced[1][currency]
    assert list(out) == _keys("python -m lib summary --json")
    for part in ("all_licenses", "paid_licenses"):
        assert list(out[part]) == _keys("python -m lib summary --json: all_licenses, paid_licenses")
        assert out[part]["reporting_currency"] == currency
    assert list(out["reclaim_90_days"]) == _keys("python -m lib summary --json: reclaim_90_days")
    assert list(out["spend_left_out"]) == _keys("python -m lib summary --json: spend_left_out")
    assert list(out["spend_left_out"]["rows"]) == _keys(
        "python -m lib summary --json: spend_left_out.rows"
    )


def test_alerts_json_has_the_documented_keys(produced):
    out = produced[2]
    assert list(out) == _keys("python -m lib alerts --json")
    assert out["fired"], "the demo fires alerts"
    for alert in out["fired"]:
        assert list(alert) == _keys("python -m lib alerts --json: fired[]")
    assert not out[
        "deliveries"
    ]  # a dry run sends nothing; the keys are pinned by the delivery test
    from lib.jobs.alerts import AlertRun

    run = AlertRun(deliveries=[{"channel": "email", "ok": True, "error": "", "alerts": ["k"]}])
    assert list(run.as_dict()["deliveries"][0]) == _keys(
        "python -m lib alerts --json: deliveries[]"
    )
