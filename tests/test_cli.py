"""``python -m lib`` in a real subprocess against the emulator."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

from tests.factories import account, dataset, lic

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-DO-NOT-LEAK-4242"


def run(args, env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUTO_")}
    # Its own database (none yet, unless the test makes one): never the developer's data/dashboard.sqlite.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli-none.sqlite'}"
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "lib", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(path):
    return list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8-sig"))))


def _two_accounts(emulator, faults=None):
    data = dataset(
        [account("good", "adobe"), account("bad", "adobe")],
        {"good": [lic("x", "=cmd|' /C calc'!A0", 3, 4, True)], "bad": [lic("y", "Y", 1, 2)]},
    )
    return emulator(data, token=SECRET, faults=faults or {})


def test_export_all_ok_exits_0_and_writes_the_table(emulator, tmp_path):
    emu = _two_accounts(emulator)
    out = tmp_path / "licenses.csv"
    proc = run(
        ["export", "--out", str(out)],
        {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url},
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    table = rows(out)
    assert {r["account_id"] for r in table} == {"good", "bad"}
    good = next(r for r in table if r["account_id"] == "good")
    assert good["license_name"].startswith("'=")  # a formula from a vendor is shown as text
    assert good["seats_assigned"] == "3" and good["utilization_pct"] == "75.0"
    assert "fetched 2/2 accounts" in proc.stderr
    for text in (proc.stdout, proc.stderr, out.read_text()):
        assert SECRET not in text


def test_export_partial_failure_exits_2_keeps_the_rest(emulator, tmp_path):
    emu = _two_accounts(emulator, faults={"bad": {"needs_reauth": True}})
    out = tmp_path / "licenses.csv"
    proc = run(
        ["export", "--out", str(out)],
        {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url},
        tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert [r["account_id"] for r in rows(out)] == ["good"]
    failed = [line for line in proc.stderr.splitlines() if line.startswith("FAILED")]
    assert (
        len(failed) == 1 and "bad" in failed[0] and "Reconnect this account in Truto" in failed[0]
    )
    assert SECRET not in proc.stdout + proc.stderr


def test_export_nothing_fetched_exits_1(emulator, tmp_path):
    emu = _two_accounts(
        emulator, faults={"good": {"blocked_503": True}, "bad": {"blocked_503": True}}
    )
    proc = run(
        ["export", "--out", str(tmp_path / "x.csv")],
        {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url},
        tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("FAILED") == 2


def test_export_bad_token_exits_1_without_echoing_it(emulator, tmp_path):
    emu = _two_accounts(emulator)
    wrong = "sk-wrong-token-777"
    proc = run(
        ["export", "--out", str(tmp_path / "x.csv")],
        {"TRUTO_API_TOKEN": wrong, "TRUTO_BASE_URL": emu.base_url},
        tmp_path,
    )
    assert proc.returncode == 1
    assert "refused the API token" in proc.stderr
    assert wrong not in proc.stdout + proc.stderr and SECRET not in proc.stdout + proc.stderr


def test_export_bad_configuration_exits_1_naming_the_setting(tmp_path):
    proc = run(
        ["export", "--out", str(tmp_path / "x.csv")],
        {"TRUTO_INTEGRATED_ACCOUNT_IDS": "a,,b"},
        tmp_path,
    )
    assert proc.returncode == 1
    assert "TRUTO_INTEGRATED_ACCOUNT_IDS: entry 2 is empty" in proc.stderr
    assert not (tmp_path / "x.csv").exists()


def test_export_on_demo_data_without_token(tmp_path):
    out = tmp_path / "demo.csv"
    proc = run(["export", "--out", str(out)], {}, tmp_path)
    assert "demo data" in proc.stderr
    assert proc.returncode == 2  # the demo's Zoom EU account needs reauthorisation
    table = rows(out)
    assert len({r["account_id"] for r in table}) == 10
    github = [r for r in table if r["integration_label"] == "GitHub"]
    assert {r["organization_name"] for r in github} == {"acme-platform", "acme-labs"}
    atlassian = [r for r in table if r["integration_label"] == "Atlassian"]
    assert atlassian and all(
        r["seats_assigned"] == "" and r["seats_bought"] == "" for r in atlassian
    )


PRICE_BOOK = (
    "integration,license_id,license_name,unit_price,currency,billing_period\n"
    "Adobe,x,,10,EUR,monthly\n"
)


def test_export_with_price_book_fx_and_buffer_writes_metric_columns(emulator, tmp_path):
    emu = _two_accounts(emulator)
    (tmp_path / "book.csv").write_text(PRICE_BOOK)
    (tmp_path / "fx.csv").write_text("currency,rate\nEUR,1.25\n")
    out = tmp_path / "licenses.csv"
    proc = run(
        [
            "export",
            "--out",
            str(out),
            "--price-book",
            str(tmp_path / "book.csv"),
            "--fx",
            str(tmp_path / "fx.csv"),
            "--buffer",
            "50%",
        ],
        {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url},
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    good = next(r for r in rows(out) if r["account_id"] == "good")
    # 10 EUR/month x 12 = 120 EUR per seat-year; 4 seats bought, 3 assigned
    assert good["price_source"] == "price_book" and float(good["annual_unit_price"]) == 120.0
    assert float(good["annual_cost_price_currency"]) == 480.0
    assert float(good["idle_annual_cost_price_currency"]) == 120.0
    assert float(good["annual_cost_reporting"]) == 600.0 and good["reporting_currency"] == "USD"
    assert good["seats_recommended"] == "5"  # ceil(3 x 1.5)
    assert (
        good["potential_annual_savings_price_currency"] == "0.0"
    )  # max(4 - 5, 0) x 120: known to be nothing
    # The names before (docs/export.md: deprecated copies until 0.5.0) still read the same.
    assert good["annual_cost_usd"] == good["annual_cost_reporting"]
    assert good["assigned_seats"] == good["seats_assigned"] == "3"
    assert good["annual_cost"] == good["annual_cost_price_currency"]
    bad = next(r for r in rows(out) if r["account_id"] == "bad")
    assert bad["price_source"] == "unpriced" and bad["annual_cost_price_currency"] == ""


def test_export_rejects_a_bad_price_book_listing_every_problem(tmp_path):
    (tmp_path / "book.csv").write_text(
        "integration,license_id,license_name,unit_price,currency,billing_period\n"
        "Adobe,x,,-1,EURO,weekly\nAdobe,x,,5,USD,annual\n"
    )
    proc = run(
        ["export", "--out", str(tmp_path / "x.csv"), "--price-book", str(tmp_path / "book.csv")],
        {},
        tmp_path,
    )
    assert proc.returncode == 1
    for words in (
        "row 2, column unit_price",
        "row 2, column currency",
        "row 2, column billing_period",
        "row 3",
    ):
        assert words in proc.stderr
    assert not (tmp_path / "x.csv").exists()


def test_summary_prints_a_table_and_json(emulator, tmp_path):
    emu = _two_accounts(emulator)
    (tmp_path / "book.csv").write_text(PRICE_BOOK)
    env = {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url}
    proc = run(["summary", "--price-book", str(tmp_path / "book.csv")], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Seats bought" in proc.stdout and "Left out: no rate for EUR" in proc.stdout
    import json

    proc = run(["summary", "--json", "--price-book", str(tmp_path / "book.csv")], env, tmp_path)
    data = json.loads(proc.stdout)
    assert data["all_licenses"]["total_seats"] == 6 and data["all_licenses"]["assigned_seats"] == 4
    assert data["all_licenses"]["excluded_by_currency"] == {"EUR": 480.0}
    assert data["all_licenses"]["annual_spend"] is None  # nothing convertible: not reported, not 0
    assert SECRET not in proc.stdout + proc.stderr


def test_sync_writes_a_snapshot_with_the_export_exit_codes(tmp_path):
    from lib.store import Store

    db = f"sqlite:///{tmp_path / 'sync.sqlite'}"
    proc = run(["sync", "--quiet"], {"DATABASE_URL": db}, tmp_path)
    assert proc.returncode == 2, proc.stderr  # the demo's Zoom EU account needs reauthorisation
    assert "FAILED Zoom account" in proc.stderr
    latest = Store(db).latest("demo")
    assert len(latest.licenses) == 28 and not latest.is_empty
    bad = run(["sync"], {"DATABASE_URL": db, "TRUTO_BASE_URL": "not a url"}, tmp_path)
    assert bad.returncode == 1 and "TRUTO_BASE_URL" in bad.stderr


def test_a_malformed_token_is_refused_and_never_echoed(tmp_path):
    proc = run(
        ["sync"],
        {
            "TRUTO_API_TOKEN": "tok-SECRET\nPART2",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}",
        },
        tmp_path,
    )
    assert proc.returncode == 1 and "TRUTO_API_TOKEN" in proc.stderr
    assert "SECRET" not in proc.stdout + proc.stderr and "PART2" not in proc.stdout + proc.stderr


def test_summary_reads_the_saved_price_book_rates_and_settings_and_flags_override(tmp_path):
    from lib.auth import Actor
    from lib.jobs.demo import seed_demo_pricing
    from lib.store import Store

    db = f"sqlite:///{tmp_path / 'saved.sqlite'}"
    store = Store(db)
    seed_demo_pricing(store)
    store.save_settings({"buffer": 0.5}, Actor("ana@acme.com", "Ana", "admin"))
    store.close()
    proc = run(["summary", "--json"], {"DATABASE_URL": db}, tmp_path)
    import json

    data = json.loads(proc.stdout)
    paid = data["paid_licenses"]
    assert "Using the price book (18 prices)" in proc.stderr
    # The demo book and EUR rate: the same totals the dashboard shows (GBP has no rate).
    assert paid["annual_spend"] == 817_032.33 and paid["excluded_by_currency"] == {"GBP": 3000.0}
    assert data["spend_left_out"]["at_least_from_seats_assigned"] == 30_786.0  # Zoom: 140 x 219.90
    with_saved_buffer = paid["potential_annual_savings"]
    proc = run(["summary", "--json", "--buffer", "10%"], {"DATABASE_URL": db}, tmp_path)
    assert json.loads(proc.stdout)["paid_licenses"]["potential_annual_savings"] > with_saved_buffer
    table = run(["summary"], {"DATABASE_URL": db}, tmp_path).stdout
    assert "at least USD 847,818" in table and "USD 0.00" not in table
    reclaim = json.loads(run(["summary", "--json"], {"DATABASE_URL": db}, tmp_path).stdout)[
        "reclaim_90_days"
    ]
    assert (
        f"Reclaimable (unused 90 days, never used, departed, invited): "
        f"{reclaim['reclaimable_paid_seats']:,} paid seats, at least USD "
        f"{reclaim['reclaimable_annual_cost']:,.0f} a year" in table
    )


def test_summary_without_prices_says_not_known_never_0(tmp_path):
    proc = run(["summary"], {}, tmp_path)
    assert "does not exist" in proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("Annual spend (USD)"))
    assert "not known" in line and "0.00" not in line
    assert "USD 0.00" not in proc.stdout
    assert "paid seats, not known a year" in proc.stdout  # no prices: the reclaim cost too


# -- reclaim ------------------------------------------------------------------------------


def _reclaim_data(emulator, faults=None):
    from tests.factories import user

    data = dataset(
        [account("a1", "adobe"), account("a2", "adobe")],
        {"a1": [lic("cc", "Creative Cloud", 3, 4, True)], "a2": [lic("ex", "Express", 1, 2, True)]},
        users={
            "a1": [
                user("u1", "cc", name='=HYPERLINK("x")', last_active_at="2020-01-01T00:00:00Z"),
                user("u2", "cc", last_active_at="2099-01-01T00:00:00Z"),  # future: reported
                user("u3", "cc", status="deleted"),
            ],
            "a2": [user("u4", "ex", last_login_at="2020-06-01T00:00:00Z")],
        },
    )
    return emulator(data, token=SECRET, faults=faults or {})


def test_reclaim_writes_one_row_per_reclaimable_seat(emulator, tmp_path):
    emu = _reclaim_data(emulator)
    book = tmp_path / "book.csv"
    book.write_text(
        "integration,license_id,license_name,unit_price,currency,billing_period\n"
        "adobe,cc,,10,USD,monthly\nadobe,ex,,50,EUR,annual\n"
    )
    fx = tmp_path / "fx.csv"
    fx.write_text("currency,rate\nEUR,2\n")
    out = tmp_path / "reclaim.csv"
    proc = run(
        ["reclaim", "--out", str(out), "--price-book", str(book), "--fx", str(fx), "--no-saved"],
        {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url},
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    table = rows(out)
    cost = "reclaimable_annual_cost_price_currency"
    assert [(r["user_id"], r["activity_class"], r[cost], r["currency"]) for r in table] == [
        ("u1", "inactive", "120.0", "USD"),
        ("u3", "departed", "120.0", "USD"),
        ("u4", "inactive", "50.0", "EUR"),
    ]
    by = {r["user_id"]: r for r in table}
    assert by["u4"]["reclaimable_annual_cost_reporting"] == "100.0"
    assert by["u1"]["reclaimable_annual_cost_reporting"] == "120.0"
    assert {r["reporting_currency"] for r in table} == {"USD"}
    # One meaning per name: the machine name in integration, the words in integration_label.
    assert {(r["integration"], r["integration_label"]) for r in table} == {("adobe", "Adobe")}
    # 0.3.0's names, deprecated copies until 0.5.0 (docs/export.md), still read the same.
    for r in table:
        assert (r["reason"], r["annual_cost"], r["annual_cost_USD"]) == (
            r["activity_class"],
            r[cost],
            r["reclaimable_annual_cost_reporting"],
        )
    assert by["u1"]["user_name"].startswith("'=")  # formula-safe
    assert (
        by["u1"]["last_active_at"] == "2020-01-01T00:00:00Z"
        and int(by["u1"]["days_inactive"]) > 2000
    )
    assert {
        "account_id",
        "integration",
        "license_id",
        "license_name",
        "organization_id",
        "user_email",
        "user_status",
    } <= set(table[0])
    assert "3 reclaimable seats" in proc.stderr and "340.00 USD a year" in proc.stderr
    for text in (proc.stdout, proc.stderr, out.read_text()):
        assert SECRET not in text


def test_reclaim_exits_2_when_an_accounts_users_fail(emulator, tmp_path):
    emu = _reclaim_data(emulator, faults={"a2": {"users_500": True}})
    out = tmp_path / "reclaim.csv"
    proc = run(
        ["reclaim", "--out", str(out), "--no-saved", "--inactive-days", "30"],
        {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url},
        tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert "FAILED seat activity of account a2" in proc.stderr
    assert {r["account_id"] for r in rows(out)} == {"a1"}


def test_reclaim_bad_threshold_exits_1(tmp_path):
    proc = run(
        ["reclaim", "--out", str(tmp_path / "x.csv"), "--inactive-days", "soon"], {}, tmp_path
    )
    assert proc.returncode == 1 and "--inactive-days" in proc.stderr
    assert not (tmp_path / "x.csv").exists()


def test_reclaim_and_export_read_the_exemptions_saved_in_the_dashboard(emulator, tmp_path):
    from lib.auth import Actor
    from lib.store import Store

    emu = _reclaim_data(emulator)
    db = f"sqlite:///{tmp_path / 'saved.sqlite'}"
    store = Store(db)
    store.add_exemption(
        "user", "U3@example.com", "break-glass admin", Actor("a@x.io", "A", "admin")
    )
    store.close()
    env = {"TRUTO_API_TOKEN": SECRET, "TRUTO_BASE_URL": emu.base_url, "DATABASE_URL": db}
    out = tmp_path / "reclaim.csv"
    proc = run(["reclaim", "--out", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    # u3 (departed) is exempt; no prices: by license name (the license's own, as the users list
    # names none)
    assert [(r["user_id"], r["license_name"]) for r in rows(out)] == [
        ("u1", "Creative Cloud"),
        ("u4", "Express"),
    ]
    assert "Leaving out 1 exemption(s)" in proc.stderr
    proc = run(["reclaim", "--out", str(out), "--no-saved"], env, tmp_path)
    assert [r["user_id"] for r in rows(out)] == ["u1", "u3", "u4"]
    # export: the per-license seat activity beside each license
    lic_out = tmp_path / "licenses.csv"
    proc = run(["export", "--out", str(lic_out), "--inactive-days", "30"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    by = {r["license_id"]: r for r in rows(lic_out)}
    cc = by["cc"]
    # u1 inactive, u2's future time is refused (activity not reported), u3 departed
    assert (cc["users_assigned_seats"], cc["active_seats"], cc["departed_seats"]) == ("3", "0", "1")
    assert cc["inactive_seats"] == "1" and cc["activity_not_reported_seats"] == "1"
    assert cc["assigned_difference"] == "0"
    assert by["ex"]["active_seats"] == "0" and by["ex"]["inactive_seats"] == "1"


def test_the_command_line_and_the_fetch_path_import_no_table_library(tmp_path):
    """The command line and the fetch path import no pandas & co. themselves: ``--help`` and a wrong flag
    answer at once; the tables load only when a command checks its inputs (before it fetches)."""
    heavy = ("pandas", "pyarrow", "numpy", "sqlalchemy", "streamlit")
    code = (
        "import sys; import lib.jobs.cli, lib.truto.source, lib.truto.client; "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
