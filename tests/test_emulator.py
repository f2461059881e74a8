"""The emulator itself answers as Truto documents."""

import time

import requests

from tests.factories import TOKEN, account, bill, dataset, lic

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_bad_token_is_401_with_truto_error_body(emulator):
    emu = emulator(dataset([account("a", "adobe")]))
    r = requests.get(emu.base_url + "/integrated-account", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    body = r.json()
    assert (
        body["statusCode"] == 401
        and body["error"] == "Unauthorized"
        and "truto_is_remote_error" not in body
    )


def test_unknown_account_is_404(emulator):
    emu = emulator(dataset([account("a", "adobe")]))
    r = requests.get(
        emu.base_url + "/unified/user-directory/licenses",
        params={"integrated_account_id": "zz"},
        headers=AUTH,
    )
    assert r.status_code == 404 and r.json()["message"]
    assert requests.get(emu.base_url + "/integrated-account/zz", headers=AUTH).status_code == 404


def test_missing_required_parameter_is_400_with_insight(emulator):
    emu = emulator(
        dataset([account("g", "github")], {"g": [lic("x", "X", 1, 2, _organization_id="o")]})
    )
    r = requests.get(
        emu.base_url + "/unified/user-directory/licenses",
        params={"integrated_account_id": "g"},
        headers=AUTH,
    )
    assert r.status_code == 400
    assert r.json()["truto_error_insight"]["missing_required_query_parameters"]["value"] == [
        "organization_id"
    ]
    ok = requests.get(
        emu.base_url + "/unified/user-directory/licenses",
        params={"integrated_account_id": "g", "organization_id": "o"},
        headers=AUTH,
    )
    assert ok.status_code == 200 and ok.json()["result"] == [
        {"id": "x", "name": "X", "assigned_quantity": 1, "available_quantity": 2}
    ]


def _licenses(emu, account_id="a", token=TOKEN):
    return requests.get(
        emu.base_url + "/unified/user-directory/licenses",
        params={"integrated_account_id": account_id},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_rate_limit_headers_describe_the_token_window_and_429_past_it(emulator):
    emu = emulator(
        dataset([account("a", "adobe"), account("b", "adobe")], {"a": [], "b": []}),
        token_limit=3,
        window=10.0,
    )
    answers = [_licenses(emu, i) for i in "abab"]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert {r.headers["ratelimit-limit"] for r in answers} == {"3;w=10"}
    # Whole seconds until the window (started by the first request) resets, rounded up.
    assert all(r.headers["ratelimit-reset"] == "10" for r in answers)
    assert answers[3].headers["Retry-After"] == "10"
    assert "truto_is_remote_error" not in answers[3].json()


def test_each_token_has_a_window_of_its_own(emulator):
    emu = emulator(
        dataset([account("a", "adobe")], {"a": []}),
        token_limit=2,
        window=10.0,
        other_tokens=("second-token",),
    )
    assert [_licenses(emu).status_code for _ in range(3)] == [200, 200, 429]
    other = _licenses(emu, token="second-token")
    assert other.status_code == 200 and other.headers["ratelimit-remaining"] == "1"


def test_the_token_window_resets_after_its_length(emulator):
    emu = emulator(dataset([account("a", "adobe")], {"a": []}), token_limit=2, window=0.5)
    assert [_licenses(emu).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.55)
    again = _licenses(emu)
    assert again.status_code == 200 and again.headers["ratelimit-remaining"] == "1"
    assert again.headers["ratelimit-limit"] == "2;w=0.5" and again.headers["ratelimit-reset"] == "1"


def test_429_at_the_account_limit_with_retry_after(emulator):
    emu = emulator(
        dataset([account("a", "adobe")], {"a": [lic("x", "X", 1, 2)]}), account_limit=3, window=10.0
    )
    answers = [_licenses(emu) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    # The headers describe the token's window (500 per 10 s), not the account's.
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["499", "498", "497", "497"]
    assert 9 <= int(answers[3].headers["Retry-After"]) <= 10


def test_token_limit_applies_across_accounts(emulator):
    emu = emulator(
        dataset([account("a", "adobe"), account("b", "adobe")]), token_limit=2, window=10.0
    )
    codes = [
        requests.get(
            emu.base_url + "/unified/user-directory/licenses",
            params={"integrated_account_id": i},
            headers=AUTH,
        ).status_code
        for i in "aba"
    ]
    assert codes == [200, 200, 429]


def test_limit_pages_and_cursor(emulator):
    emu = emulator(dataset([account("a", "adobe")], {"a": [lic(str(i), str(i)) for i in range(5)]}))
    params = {"integrated_account_id": "a", "limit": 2}
    first = requests.get(
        emu.base_url + "/unified/user-directory/licenses", params=params, headers=AUTH
    ).json()
    assert [r["id"] for r in first["result"]] == ["0", "1"] and first["next_cursor"]
    second = requests.get(
        emu.base_url + "/unified/user-directory/licenses",
        params={**params, "next_cursor": first["next_cursor"]},
        headers=AUTH,
    ).json()
    assert [r["id"] for r in second["result"]] == ["2", "3"]


def test_faults_can_be_switched_per_account(emulator):
    emu = emulator(
        dataset([account("a", "adobe"), account("b", "adobe")], {"a": [], "b": []}),
        faults={"a": {"needs_reauth": True}},
    )
    get = lambda i: requests.get(
        emu.base_url + "/unified/user-directory/licenses",  # noqa: E731
        params={"integrated_account_id": i},
        headers=AUTH,
    )
    r = get("a")
    assert r.status_code == 401 and r.json()["truto_is_remote_error"] is True
    assert get("b").status_code == 200
    emu.set_fault("a", {"transient_502": 1})
    assert [get("a").status_code, get("a").status_code] == [502, 200]
    emu.set_fault("a", {"malformed_json": True})
    r = get("a")
    assert r.status_code == 200
    try:
        r.json()
        raise AssertionError("body should not be JSON")
    except ValueError:
        pass


def _billing(emu, **params):
    return requests.get(
        emu.base_url + "/unified/user-directory/billing", params=params, headers=AUTH
    )


def test_billing_is_listed_with_cursor_pages_for_clickup_docusign_and_zoom_only(emulator):
    records = [bill(f"b{i}", "2026-01-01", "2026-12-31", 100 + i) for i in range(5)]
    emu = emulator(
        dataset(
            [account("z", "zoom"), account("d", "docusign"), account("a", "adobe")],
            billing={"z": records, "a": records},
        )
    )
    first = _billing(emu, integrated_account_id="z", limit=2)
    assert first.status_code == 200 and first.headers["ratelimit-limit"]
    body = first.json()
    assert [r["id"] for r in body["result"]] == ["b0", "b1"] and body["next_cursor"]
    rest = []
    cursor = body["next_cursor"]
    while cursor:
        page = _billing(emu, integrated_account_id="z", limit=2, next_cursor=cursor).json()
        rest += [r["id"] for r in page["result"]]
        cursor = page["next_cursor"]
    assert rest == ["b2", "b3", "b4"]
    assert _billing(emu, integrated_account_id="d").json()["result"] == []  # none billed yet
    # Adobe has no billing resource, whatever the data set holds: answered as Truto does.
    unsupported = _billing(emu, integrated_account_id="a")
    assert unsupported.status_code == 404
    assert (
        unsupported.json()["message"] == "This integration does not support the billing resource."
    )
    assert _billing(emu).status_code == 400  # integrated_account_id required, as everywhere


def test_billing_fault_fails_only_the_billing_listing(emulator):
    emu = emulator(
        dataset(
            [account("z", "zoom")],
            {"z": [lic("x", "X", 1, None)]},
            billing={"z": [bill("b", "2026-01-01", "2026-12-31", 1)]},
        ),
        faults={"z": {"billing_500": True}},
    )
    failed = _billing(emu, integrated_account_id="z")
    assert failed.status_code == 500 and failed.json()["truto_is_remote_error"] is True
    licenses = requests.get(
        emu.base_url + "/unified/user-directory/licenses",
        params={"integrated_account_id": "z"},
        headers=AUTH,
    )
    assert licenses.status_code == 200 and len(licenses.json()["result"]) == 1
