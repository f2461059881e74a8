"""The fetch layer against the emulator over real loopback HTTP."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest

from lib.truto.client import TrutoClient, make_session
from lib.truto.fetch import FetchError, fetch_all
from tests.factories import account, dataset, lic, settings_for


def _outcome(result, account_id):
    return next(o for o in result.outcomes if o.account_id == account_id)


def _unified_log(emu, path_end="licenses"):
    return [params for _, path, params in emu.counters.log if path.endswith(path_end)]


# -- pagination ---------------------------------------------------------------------------


def test_pagination_follows_cursor_with_same_parameters(emulator):
    recs = [lic(f"L{i}", f"License {i}", assigned=i, available=10, is_paid=True) for i in range(7)]
    emu = emulator(dataset([account("a1", "adobe")], {"a1": recs}))
    result = fetch_all(settings_for(emu, page_limit=2))
    assert sorted(result.licenses["license_id"]) == sorted(f"L{i}" for i in range(7))
    calls = _unified_log(emu)
    assert len(calls) == 4  # 2 + 2 + 2 + 1
    assert "next_cursor" not in calls[0]
    for params in calls[1:]:
        assert params["next_cursor"]
        assert {k: v for k, v in params.items() if k != "next_cursor"} == calls[0]
    assert calls[0]["limit"] == "2" and calls[0]["truto_ignore_remote_data"] == "true"


@pytest.mark.parametrize("ending", ["null", "empty", "absent"])
def test_last_page_marked_by_null_empty_or_absent_cursor(emulator, ending):
    recs = [lic(f"L{i}", f"License {i}", assigned=1, available=2) for i in range(3)]
    emu = emulator(
        dataset([account("a1", "adobe")], {"a1": recs}), faults={"a1": {"last_cursor": ending}}
    )
    result = fetch_all(settings_for(emu, page_limit=2))
    assert _outcome(result, "a1").outcome == "ok"
    assert len(result.licenses) == 3
    assert len(_unified_log(emu)) == 2


def test_repeated_cursor_stops_that_account_not_the_others(emulator):
    recs = [lic(f"L{i}", f"L{i}", assigned=1, available=2) for i in range(5)]
    emu = emulator(
        dataset([account("loop", "adobe"), account("fine", "adobe")], {"loop": recs, "fine": recs}),
        faults={"loop": {"repeat_cursor": True}},
    )
    result = fetch_all(settings_for(emu, page_limit=2))
    loop = _outcome(result, "loop")
    assert loop.outcome == "failed" and "same next_cursor twice" in loop.message
    assert loop.requests == 2  # the second answer repeats the first cursor: stop there
    assert _outcome(result, "fine").outcome == "ok"
    assert set(result.licenses["account_id"]) == {"fine"}
    assert result.exit_code() == 2


def test_page_cap_is_an_error_for_that_account(emulator):
    recs = [lic(f"L{i}", f"L{i}", assigned=1, available=2) for i in range(10)]
    emu = emulator(dataset([account("a1", "adobe")], {"a1": recs}))
    result = fetch_all(settings_for(emu, page_limit=2, max_pages=3))
    out = _outcome(result, "a1")
    assert out.outcome == "failed" and "max_pages" in out.message + out.action
    assert out.requests == 3


def test_remote_data_flag_can_be_turned_off(emulator):
    emu = emulator(dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}))
    fetch_all(settings_for(emu, ignore_remote_data=False))
    assert all("truto_ignore_remote_data" not in p for p in _unified_log(emu))


# -- accounts -----------------------------------------------------------------------------


def test_lists_all_pages_of_accounts_and_filters_by_tenant(emulator):
    accounts = [account(f"a{i}", "adobe", tenant="t1" if i % 2 else "t2") for i in range(250)]
    emu = emulator(dataset(accounts, {a["id"]: [lic("x", "X", 1, 2)] for a in accounts}))
    result = fetch_all(settings_for(emu, tenant_id="t1", max_workers=8, account_page_limit=100))
    assert len(result.outcomes) == 125
    assert set(result.licenses["tenant_id"]) == {"t1"}
    assert emu.counters.by_path["/integrated-account"] == 2  # 125 accounts at 100 a page


def test_configured_ids_are_read_one_by_one(emulator):
    emu = emulator(
        dataset(
            [account("a1", "adobe"), account("a2", "adobe"), account("a3", "adobe")],
            {"a1": [lic("x", "X", 1, 2)], "a2": [lic("y", "Y", 1, 2)]},
        )
    )
    result = fetch_all(settings_for(emu, integrated_account_ids=("a2", "nope")))
    assert emu.counters.by_path["/integrated-account"] == 0
    assert emu.counters.by_path["/integrated-account/a2"] == 1
    assert set(result.licenses["account_id"]) == {"a2"}
    missing = _outcome(result, "nope")
    assert missing.outcome == "failed" and "TRUTO_INTEGRATED_ACCOUNT_IDS" in missing.action


def test_inactive_accounts_are_reported_not_fetched(emulator):
    accounts = [
        account("ok", "adobe"),
        account("reauth", "zoom", status="needs_reauth", last_error="token revoked by admin"),
        account("conn", "zoom", status="connecting"),
    ]
    emu = emulator(dataset(accounts, {"ok": [lic("x", "X", 1, 2)], "reauth": [lic("z", "Z", 1)]}))
    result = fetch_all(settings_for(emu))
    reauth = _outcome(result, "reauth")
    assert reauth.outcome == "needs_reauth"
    assert (
        "token revoked by admin" in reauth.message
        and "Reconnect this account in Truto" in reauth.action
    )
    assert _outcome(result, "conn").outcome == "inactive"
    assert emu.counters.by_account["reauth"] == 0 and emu.counters.by_account["conn"] == 0
    assert result.accounts.set_index("account_id").loc["reauth", "account_status"] == "needs_reauth"


def test_bad_token_is_a_fetch_error(emulator):
    emu = emulator(dataset([account("a1", "adobe")]))
    settings = settings_for(emu)
    from dataclasses import replace

    from lib.config import Secret

    with pytest.raises(FetchError) as info:
        fetch_all(replace(settings, api_token=Secret("wrong-token-123")))
    assert "API token" in str(info.value)
    assert "wrong-token-123" not in str(info.value)


# -- required parameters ------------------------------------------------------------------


def test_github_licenses_are_listed_per_organization(emulator):
    orgs = [{"id": "o1", "name": "platform"}, {"id": "o2", "name": "labs"}]
    recs = [
        lic("ent", "Enterprise", 10, 20, True, _organization_id="o1"),
        lic("ent", "Enterprise", 3, 5, True, _organization_id="o2"),
    ]
    emu = emulator(dataset([account("g", "github")], {"g": recs}, {"g": orgs}))
    result = fetch_all(settings_for(emu))
    calls = _unified_log(emu)
    assert sorted(c["organization_id"] for c in calls) == ["o1", "o2"]
    rows = result.licenses.set_index("organization_name")
    assert rows.loc["platform", "assigned_seats"] == 10 and rows.loc["labs", "total_seats"] == 5
    assert result.problems.empty  # the same license id in two organizations is not a duplicate


def test_microsoft_365_licenses_are_listed_per_configured_product(emulator):
    recs = [
        lic("e3", "E3", 5, 10, _product="azure_active_directory"),
        lic("od", "OneDrive", 1, 2, _product="onedrive"),
    ]
    emu = emulator(dataset([account("m", "microsoft365")], {"m": recs}))
    result = fetch_all(settings_for(emu))
    assert [c["product"] for c in _unified_log(emu)] == ["azure_active_directory"]
    assert list(result.licenses["license_id"]) == ["e3"]

    emu.reset_counters()
    result = fetch_all(settings_for(emu, products=("azure_active_directory", "onedrive")))
    assert sorted(result.licenses["product"]) == ["azure_active_directory", "onedrive"]
    assert len(_unified_log(emu)) == 2


def test_client_reacts_to_missing_parameter_insight_for_unknown_names(emulator):
    orgs = [{"id": "w1", "name": "Workspace 1"}]
    recs = [lic("b", "Business", 4, 5, True, _organization_id="w1")]
    emu = emulator(
        dataset(
            [
                account("c", "click_up_v2", _requires=["organization_id"]),
                account("p", "m365-business", _requires=["product"]),
            ],
            {"c": recs, "p": [lic("e", "E1", 1, 1, _product="azure_active_directory")]},
            {"c": orgs},
        )
    )
    result = fetch_all(settings_for(emu))
    assert _outcome(result, "c").outcome == "ok" and _outcome(result, "p").outcome == "ok"
    rows = result.licenses.set_index("account_id")
    assert rows.loc["c", "organization_id"] == "w1"
    assert rows.loc["p", "product"] == "azure_active_directory"
    calls = _unified_log(emu)
    assert {
        c["integrated_account_id"]
        for c in calls
        if "organization_id" not in c and "product" not in c
    } == {"c", "p"}


def test_unsupported_resources_are_not_failures(emulator):
    emu = emulator(
        dataset(
            [account("asana", "asana"), account("odd", "mystery_tool"), account("ok", "adobe")],
            {"ok": [lic("x", "X", 1, 2)]},
            {"asana": [{"id": "o", "name": "Org"}]},
        )
    )
    result = fetch_all(settings_for(emu))
    assert _outcome(result, "asana").outcome == "not_supported"
    assert _unified_log(emu) and all(
        p["integrated_account_id"] != "asana" for p in _unified_log(emu)
    )
    assert _outcome(result, "odd").outcome == "not_supported"  # tried, answered 404
    assert result.exit_code() == 0


# -- retries and errors ---------------------------------------------------------------------


def test_transient_502_and_504_are_retried(emulator):
    emu = emulator(
        dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}),
        faults={"a1": {"transient_502": 2, "transient_504": 1}},
    )
    result = fetch_all(settings_for(emu, fetch_users=False))  # licenses only
    out = _outcome(result, "a1")
    assert out.outcome == "ok" and out.retries == 3 and out.requests == 4
    assert len(result.licenses) == 1


def test_server_500_is_retried_but_remote_500_is_not(emulator):
    emu = emulator(
        dataset(
            [account("a", "adobe"), account("b", "adobe")],
            {"a": [lic("x", "X", 1, 2)], "b": [lic("y", "Y", 1, 2)]},
        ),
        faults={"a": {"server_500": 1}, "b": {"remote_500": 1}},
    )
    result = fetch_all(settings_for(emu))
    assert _outcome(result, "a").outcome == "ok" and _outcome(result, "a").retries == 1
    b = _outcome(result, "b")
    assert b.outcome == "failed" and b.requests == 1 and "from the vendor" in b.message


@pytest.mark.parametrize(
    "fault, outcome, words",
    [
        ({"needs_reauth": True}, "needs_reauth", "Reconnect this account in Truto"),
        ({"blocked_503": True}, "failed", "blocked"),
    ],
)
def test_final_errors_are_not_retried(emulator, fault, outcome, words):
    emu = emulator(
        dataset([account("a1", "zoom")], {"a1": [lic("x", "X", 1)]}), faults={"a1": fault}
    )
    result = fetch_all(settings_for(emu))
    out = _outcome(result, "a1")
    assert out.outcome == outcome and out.requests == 1 and out.retries == 0
    assert words in out.action


def test_attempts_are_bounded(emulator):
    emu = emulator(
        dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}),
        faults={"a1": {"transient_502": 50}},
    )
    result = fetch_all(settings_for(emu, max_attempts=3))
    out = _outcome(result, "a1")
    assert (
        out.outcome == "failed" and out.requests == 3 and "gave up after 3 attempts" in out.message
    )


def test_total_retry_wait_is_bounded(emulator):
    emu = emulator(
        dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}),
        faults={"a1": {"remote_429": 5}},
    )
    started = time.monotonic()
    result = fetch_all(settings_for(emu, max_attempts=10, max_total_wait=1.5))
    elapsed = time.monotonic() - started
    out = _outcome(result, "a1")
    assert (
        out.outcome == "failed" and out.rate_limited == 2
    )  # waited 1 s once; a second wait would pass 1.5 s
    assert 1.0 <= elapsed < 3.0


def test_read_timeout_is_bounded(emulator):
    emu = emulator(
        dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}),
        faults={"a1": {"slow": 1.0}},
    )
    started = time.monotonic()
    result = fetch_all(settings_for(emu, read_timeout=0.2, max_attempts=2))
    out = _outcome(result, "a1")
    assert out.outcome == "failed" and "Could not reach Truto" in out.message and out.requests == 2
    assert time.monotonic() - started < 3.0


def test_vendor_429_waits_for_retry_after(emulator):
    emu = emulator(
        dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}),
        faults={"a1": {"remote_429": 1}},
    )
    started = time.monotonic()
    result = fetch_all(settings_for(emu))
    assert time.monotonic() - started >= 1.0  # the vendor's Retry-After: 1
    out = _outcome(result, "a1")
    assert out.outcome == "ok" and out.rate_limited == 1 and out.retries == 1


@pytest.mark.parametrize("fault", [{"malformed_json": True}, {"missing_result": True}])
def test_malformed_answers_fail_only_that_account(emulator, fault):
    emu = emulator(
        dataset(
            [account("bad", "adobe"), account("ok", "adobe")],
            {"bad": [lic("x", "X", 1, 2)], "ok": [lic("y", "Y", 1, 2)]},
        ),
        faults={"bad": fault},
    )
    result = fetch_all(settings_for(emu))
    assert _outcome(result, "bad").outcome == "failed"
    assert "could not read" in _outcome(result, "bad").action
    assert list(result.licenses["account_id"]) == ["ok"]


# -- pacing, rate limits, concurrency -------------------------------------------------------


def test_pacing_never_provokes_a_429(emulator):
    """Client and emulator share limits small enough that pacing has to hold requests back."""
    accounts = [account(f"a{i}", "adobe") for i in range(6)]
    recs = [lic(f"L{i}", f"L{i}", 1, 2) for i in range(6)]
    emu = emulator(
        dataset(accounts, {a["id"]: recs for a in accounts}),
        token_limit=8,
        account_limit=3,
        window=1.0,
    )
    started = time.monotonic()
    result = fetch_all(
        settings_for(
            emu,
            page_limit=2,
            account_page_limit=2,
            fetch_users=False,
            token_rate_limit=8,
            account_rate_limit=3,
            rate_window=1.0,
            max_workers=6,
        )
    )
    elapsed = time.monotonic() - started
    assert emu.counters.rate_limited == 0
    assert all(o.rate_limited == 0 for o in result.outcomes) and result.exit_code() == 0
    requests = emu.counters.requests  # 3 pages of accounts + 6 accounts x 3 pages
    assert requests == 21
    # 21 requests at 8 per (1 s + margin) cannot finish before two full windows have passed.
    assert elapsed >= 2.0


def test_emulator_answers_429_with_retry_after_and_client_recovers(emulator):
    """A client configured above the real per-account limit (which no header reports) gets 429s,
    waits Retry-After, and still finishes."""
    accounts = [account(f"a{i}", "adobe") for i in range(4)]
    emu = emulator(
        dataset(accounts, {a["id"]: [lic("x", "X", 1, 2), lic("y", "Y", 1, 2)] for a in accounts}),
        account_limit=1,
        token_limit=500,
        window=1.0,
    )
    result = fetch_all(
        settings_for(
            emu,
            page_limit=1,  # two pages per account: the second is over the account's limit
            account_rate_limit=100,
            fetch_users=False,
            max_workers=4,
            max_attempts=6,
        )
    )
    assert emu.counters.rate_limited > 0
    assert sum(o.rate_limited for o in result.outcomes) > 0
    assert result.exit_code() == 0 and len(result.licenses) == 8


def test_a_lower_limit_in_the_headers_is_followed(emulator):
    """Configured for 50 per 10 s, the client keeps to the 20 per 2 s the answers report."""
    accounts = [account(f"a{i}", "adobe") for i in range(8)]
    recs = [lic(f"L{i}", f"L{i}", 1, 2) for i in range(3)]
    emu = emulator(dataset(accounts, {a["id"]: recs for a in accounts}), token_limit=20, window=2.0)
    started = time.monotonic()
    result = fetch_all(
        settings_for(
            emu,
            page_limit=1,
            fetch_users=False,
            token_rate_limit=50,
            rate_window=10.0,
            max_workers=8,
        )
    )
    elapsed = time.monotonic() - started
    assert emu.counters.requests == 1 + 8 * 3
    assert emu.counters.rate_limited == 0 and result.exit_code() == 0
    assert len(result.licenses) == 24
    assert elapsed >= 2.0  # 25 requests at 20 per 2 s need a second window


def test_two_clients_sharing_a_token_never_get_a_429(emulator):
    """Two fetches (two clients, each unaware of the other) spend one token's small window."""
    accounts = [account(f"a{i}", "adobe") for i in range(6)]
    recs = [lic(f"L{i}", f"L{i}", 1, 2) for i in range(2)]
    emu = emulator(dataset(accounts, {a["id"]: recs for a in accounts}), token_limit=10, window=1.0)
    results: list = []

    def fetch() -> None:
        results.append(fetch_all(settings_for(emu, page_limit=1, fetch_users=False, max_workers=6)))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    assert len(results) == 2 and all(r.exit_code() == 0 for r in results)
    assert all(len(r.licenses) == 12 for r in results)
    assert emu.counters.requests == 2 * (1 + 6 * 2)
    assert emu.counters.rate_limited == 0
    assert all(o.rate_limited == 0 for r in results for o in r.outcomes)
    assert elapsed >= 2.0  # 26 requests at 10 per second need a third window


def test_accounts_are_fetched_concurrently_within_the_pool(emulator):
    accounts = [account(f"a{i}", "adobe") for i in range(12)]
    emu = emulator(
        dataset(accounts, {a["id"]: [lic("x", "X", 1, 2)] for a in accounts}), latency=0.2
    )
    started = time.monotonic()
    fetch_all(settings_for(emu, max_workers=4))
    elapsed = time.monotonic() - started
    assert 2 <= emu.counters.max_in_flight <= 4
    assert elapsed < 12 * 0.2  # not one at a time


def test_session_pool_fits_the_worker_pool():
    session = make_session(24)
    adapter = session.get_adapter("https://api.truto.one")
    assert adapter._pool_maxsize == 24


def test_progress_reports_accounts_done_out_of_total(emulator):
    accounts = [account(f"a{i}", "adobe") for i in range(3)]
    emu = emulator(dataset(accounts, {a["id"]: [lic("x", "X", 1, 2)] for a in accounts}))
    seen = []
    fetch_all(settings_for(emu), progress=lambda done, total, _: seen.append((done, total)))
    assert seen[0] == (0, 3) and seen[-1] == (3, 3) and len(seen) == 4


# -- validation through the wire -------------------------------------------------------------


def test_records_are_validated_and_problems_reported_per_account(emulator):
    recs = [
        lic("s", "Text numbers", "12", " 20 "),
        lic("neg", "Negative", -3, 10),
        lic("nan", "Not a number", "many", 10),
        {"name": "No id", "assigned_quantity": 1, "available_quantity": 1},
        lic("dup", "First", 1, 2),
        lic("dup", "Again", 5, 6),
    ]
    emu = emulator(
        dataset(
            [account("a1", "adobe"), account("a2", "adobe")],
            {"a1": recs, "a2": [lic("x", "X", 1, 2)]},
        )
    )
    result = fetch_all(settings_for(emu, page_limit=2))  # the duplicate arrives on another page
    t = result.licenses.set_index("license_name")
    assert (
        t.loc["Text numbers", "assigned_seats"] == 12 and t.loc["Text numbers", "total_seats"] == 20
    )
    assert pd.isna(t.loc["Negative", "assigned_seats"]) and t.loc["Negative", "total_seats"] == 10
    assert pd.isna(t.loc["Not a number", "assigned_seats"])
    assert pd.isna(t.loc["No id", "license_id"])
    assert "Again" not in t.index and t.loc["First", "assigned_seats"] == 1
    kinds = sorted(result.problems["kind"])
    assert kinds == ["duplicate_id", "missing_id", "negative_quantity", "non_numeric_quantity"]
    assert set(result.problems["account_id"]) == {"a1"}
    assert _outcome(result, "a1").problems == 4 and _outcome(result, "a2").problems == 0


def test_unreported_fields_stay_empty_not_zero(emulator):
    emu = emulator(
        dataset([account("z", "zoom")], {"z": [lic("w", "Workplace", assigned=140, is_paid=True)]})
    )
    row = fetch_all(settings_for(emu)).licenses.iloc[0]
    assert row["assigned_seats"] == 140
    for col in ("total_seats", "unassigned_seats", "utilization_pct", "over_allocated_seats"):
        assert pd.isna(row[col]), col


def test_remaining_seats_setting_adds_assigned_to_available(emulator):
    emu = emulator(
        dataset([account("m", "adobe")], {"m": [lic("x", "X", assigned=30, available=10)]})
    )
    plain = fetch_all(settings_for(emu)).licenses.iloc[0]
    assert plain["total_seats"] == 10 and plain["over_allocated_seats"] == 20
    remaining = fetch_all(settings_for(emu, remaining_seats_integrations=("Adobe",))).licenses.iloc[
        0
    ]
    assert remaining["total_seats"] == 40 and remaining["unassigned_seats"] == 10
    assert remaining["utilization_pct"] == 75.0


def test_client_stats_count_requests_per_account(emulator):
    emu = emulator(dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}))
    client = TrutoClient(settings_for(emu, fetch_users=False))
    fetch_all(client.settings, client=client)
    assert client.stats("a1").requests == 1 and client.stats(None).requests == 1


def test_a_repeated_organization_is_counted_once_and_reported(emulator):
    orgs = [
        {"id": "o1", "name": "platform"},
        {"id": "o1", "name": "platform"},
        {"id": "o2", "name": "labs"},
    ]
    recs = [
        lic("ent", "Enterprise", 10, 50, True, _organization_id="o1"),
        lic("ent", "Enterprise", 1, 5, True, _organization_id="o2"),
    ]
    emu = emulator(dataset([account("g", "github")], {"g": recs}, {"g": orgs}))
    result = fetch_all(settings_for(emu, page_limit=1))  # the repeat arrives on its own page
    assert int(result.licenses["total_seats"].sum()) == 55
    assert sorted(c["organization_id"] for c in _unified_log(emu)) == ["o1", "o2"]
    assert "listed more than once" in " ".join(result.problems["detail"])


def test_vendor_values_of_the_wrong_type_do_not_break_the_fetch(emulator):
    odd = account("odd", "github", tenant={"nested": "tenant"})
    odd["integration"]["name"] = 42
    emu = emulator(
        dataset(
            [account("g", "github", tenant=7), odd, account("ok", "adobe")],
            {"g": [lic("e", "E", 1, 2, _organization_id="o1")], "ok": [lic("x", "X", 1, 2)]},
            {"g": [{"id": "o1", "name": {"display": "x"}}]},
        )
    )
    result = fetch_all(settings_for(emu))
    assert _outcome(result, "g").outcome == "ok" and _outcome(result, "ok").outcome == "ok"
    rows = result.licenses.set_index("account_id")
    assert rows.loc["g", "tenant_id"] == "7" and pd.isna(rows.loc["g", "organization_name"])
    assert _outcome(result, "odd").tenant_id is None


def test_next_cursor_false_ends_and_an_object_is_an_error(emulator):
    from lib.config import Secret  # noqa: F401  (settings_for builds the token)
    from lib.truto.client import TrutoClient

    emu = emulator(dataset([account("a", "adobe")], {"a": [lic("x", "X", 1, 2)]}))
    client = TrutoClient(settings_for(emu))
    import requests

    orig = requests.Session.get

    def answer(cursor):
        def fake(self, url, **kw):
            resp = orig(self, url, **kw)
            body = resp.json()
            body["next_cursor"] = cursor
            resp._content = __import__("json").dumps(body).encode()
            return resp

        return fake

    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(requests.Session, "get", answer(False))
        assert (
            len(
                client.list_all(
                    "/unified/user-directory/licenses", {"integrated_account_id": "a"}, "a"
                )
            )
            == 1
        )
        mp.setattr(requests.Session, "get", answer({"page": 2}))
        with _pytest.raises(Exception, match="not text"):
            client.list_all("/unified/user-directory/licenses", {"integrated_account_id": "a"}, "a")


# -- logging ------------------------------------------------------------------------------


def test_retries_and_429_waits_are_logged_without_the_token(emulator, caplog):
    import logging

    emu = emulator(
        dataset(
            [account("a1", "adobe"), account("a2", "adobe")],
            {"a1": [lic("x", "X", 1, 2)], "a2": [lic("y", "Y", 1, 2)]},
        ),
        faults={"a1": {"transient_502": 1}, "a2": {"remote_429": 1}},
    )
    settings = settings_for(emu, fetch_users=False)
    with caplog.at_level(logging.INFO, logger="lib.truto"):
        result = fetch_all(settings)
    assert _outcome(result, "a1").outcome == "ok" and _outcome(result, "a2").outcome == "ok"
    lines = [r.getMessage() for r in caplog.records]
    assert any("account a1" in m and "502, retrying in" in m for m in lines), lines
    assert any("account a2" in m and "429, waiting" in m for m in lines), lines
    assert any(m.startswith("account a1 (adobe): ok after 2 requests") for m in lines), lines
    assert any(m.startswith("fetch done: 2 accounts (0 failed)") for m in lines), lines
    token = settings.api_token.reveal()
    assert token and all(token not in m for m in lines)


def test_every_list_sends_a_page_size_by_default_and_fewer_rows_than_asked_still_page(emulator):
    recs = [lic(f"L{i}", f"License {i}", assigned=1, available=2) for i in range(250)]
    emu = emulator(dataset([account("a1", "adobe")], {"a1": recs}))
    result = fetch_all(
        settings_for(emu)
    )  # the defaults: 100 per unified page, 500 per account page
    assert len(result.licenses) == 250
    calls = _unified_log(emu)
    assert [c["limit"] for c in calls] == ["100", "100", "100"]  # 100 + 100 + 50
    accounts = [params for _, path, params in emu.counters.log if path == "/integrated-account"]
    assert accounts and all(p["limit"] == "500" for p in accounts)


def test_an_empty_page_limit_leaves_the_page_size_to_truto(emulator):
    emu = emulator(dataset([account("a1", "adobe")], {"a1": [lic("x", "X", 1, 2)]}))
    fetch_all(settings_for(emu, page_limit=None, account_page_limit=None))
    assert all("limit" not in params for _, _, params in emu.counters.log)
