"""Contracts prefilled from Truto's billing resource: listed in the fetch against the emulator over
loopback HTTP, read into vendor contracts, and saved so that contracts edited by people win."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lib.analytics.contracts import validate_contracts
from lib.analytics.vendor_contracts import merge_contracts
from lib.auth import Actor
from lib.jobs.refresh import refresh
from lib.jobs.vendor import SYNC_ACTOR
from lib.schema import CONTRACT_COLUMNS
from lib.truto.fetch import fetch_all
from tests.factories import account, bill, dataset, lic, settings_for


def _outcome(result, account_id):
    return next(o for o in result.outcomes if o.account_id == account_id)


def _billing_calls(emu):
    return [params for _, path, params in emu.counters.log if path.endswith("/billing")]


def _data(**billing_extra):
    return dataset(
        [
            account("zoom-1", "zoom"),
            account("docu-1", "docusign"),
            account("click-1", "clickup", **billing_extra),
            account("adobe-1", "adobe"),
        ],
        {
            "zoom-1": [lic("Z1", "Zoom Workplace Business", 10, None, True)],
            "docu-1": [lic("D1", "eSignature", None, 5, True)],
            "click-1": [lic("C1", "ClickUp Business", 4, 5, True, _organization_id="ws-1")],
            "adobe-1": [lic("A1", "Creative Cloud", 3, 4, True)],
        },
        {"click-1": [{"id": "ws-1", "name": "Workspace"}]},
        billing={
            "zoom-1": [
                bill(f"z{i}", f"20{20 + i}-02-01", f"20{21 + i}-01-31", 1000 + i) for i in range(5)
            ],
            "docu-1": [bill("d0", "2026-03-01", "2027-02-28", "4800.50", "EUR")],
            "click-1": [
                bill(
                    "c0", "2026-11-01", "2026-11-30", 60, "EUR", "monthly", _organization_id="ws-1"
                ),
                bill(
                    "c1", "2026-12-01", "2026-12-31", 60, "EUR", "monthly", _organization_id="ws-1"
                ),
            ],
            "adobe-1": [bill("a0", "2026-01-01", "2026-12-31", 1)],  # never asked for
        },
    )


# ---------------------------------------------------------------- the fetch


def test_billing_is_listed_on_every_page_for_the_integrations_that_report_it(emulator):
    emu = emulator(_data())
    result = fetch_all(settings_for(emu, page_limit=2))
    calls = _billing_calls(emu)
    zoom = [p for p in calls if p["integrated_account_id"] == "zoom-1"]
    assert len(zoom) == 3  # 2 + 2 + 1
    assert "next_cursor" not in zoom[0] and all(p["next_cursor"] for p in zoom[1:])
    assert all({k: v for k, v in p.items() if k != "next_cursor"} == zoom[0] for p in zoom)
    assert zoom[0]["limit"] == "2" and zoom[0]["truto_ignore_remote_data"] == "true"
    assert {p["integrated_account_id"] for p in calls} == {"zoom-1", "docu-1", "click-1"}
    listed = {b.account_id: b for b in result.billing}
    assert set(listed) == {"zoom-1", "docu-1", "click-1"}
    assert [r["id"] for r in listed["zoom-1"].records] == [f"z{i}" for i in range(5)]
    assert _outcome(result, "adobe-1").billing == ""  # not asked: Adobe has no billing
    assert result.exit_code() == 0


def test_a_failing_billing_listing_keeps_the_license_figures_and_is_a_problem(emulator):
    emu = emulator(_data(), faults={"zoom-1": {"billing_500": True}})
    result = fetch_all(settings_for(emu))
    zoom = _outcome(result, "zoom-1")
    assert zoom.outcome == "ok" and result.exit_code() == 0
    assert zoom.billing == "failed" and "license figures are shown" in zoom.billing_message
    assert "Z1" in set(result.licenses["license_id"])
    assert "zoom-1" not in {b.account_id for b in result.billing}
    billing = result.problems[result.problems["resource"] == "billing"]
    assert list(billing["account_id"]) == ["zoom-1"] and list(billing["kind"]) == ["not_listed"]
    assert result.accounts.set_index("account_id").loc["zoom-1", "problems"] == 1


def test_billing_can_be_switched_off(emulator):
    emu = emulator(_data())
    result = fetch_all(settings_for(emu, fetch_billing=False))
    assert _billing_calls(emu) == [] and result.billing == []
    assert _outcome(result, "zoom-1").billing == "off"


def test_billing_that_wants_an_organization_is_listed_per_organization(emulator):
    emu = emulator(_data(_billing_requires=["organization_id"]))
    result = fetch_all(settings_for(emu))
    clickup = [p for p in _billing_calls(emu) if p["integrated_account_id"] == "click-1"]
    assert [p.get("organization_id") for p in clickup] == [None, "ws-1"]
    listed = {b.account_id: b for b in result.billing}
    assert [r["id"] for r in listed["click-1"].records] == ["c0", "c1"]


# ------------------------------------------------------- refresh -> the store


def test_a_refresh_saves_the_vendor_contracts_and_reports_unusable_records(emulator, store):
    data = _data()
    data["billing"]["docu-1"].append(bill("bad", "2027-05-01", "2027-04-01", 5, "EUR"))
    data["billing"]["zoom-1"].append(bill("evil", "2026-01-01", "31/12/2026", "=1+1"))
    emu = emulator(data)
    outcome = refresh(store, "k", lambda: fetch_all(settings_for(emu)))
    assert outcome.fetched and outcome.vendor_contracts == 3
    saved = store.get_contracts()
    assert list(saved["source"]) == ["vendor"] * 3
    by_account = saved.set_index("account_id")
    zoom = by_account.loc["zoom-1"]
    # The period that ends last; its amount as billed; what the vendor does not report stays empty.
    assert (zoom["contract_start"], zoom["contract_end"]) == (
        pd.Timestamp("2024-02-01"),
        pd.Timestamp("2025-01-31"),
    )
    assert zoom["integration"] == "Zoom" and zoom["term"] == "annual"
    assert zoom["contract_value"] == 1004 and zoom["currency"] == "USD"
    assert pd.isna(zoom["notice_days"]) and pd.isna(zoom["auto_renew"])
    assert by_account.loc["docu-1", "contract_value"] == 4800.5
    assert by_account.loc["click-1", "term"] == "monthly"
    assert by_account.loc["click-1", "contract_end"] == pd.Timestamp("2026-12-31")
    problems = store.latest("k").problems
    skipped = problems[problems["kind"] == "unusable_billing"]
    assert sorted(skipped["account_id"]) == ["docu-1", "zoom-1"]
    detail = " ".join(skipped["detail"])
    assert "before contract_start" in detail and "'31/12/2026'" in detail
    audit = store.audit_log(limit=5)
    assert audit["action"].iloc[0] == "vendor_contracts"
    assert audit["actor_name"].iloc[0] == SYNC_ACTOR.name

    # The same billing again: nothing changes, nothing is written or audited.
    before = len(store.audit_log())
    again = refresh(store, "k", lambda: fetch_all(settings_for(emu)))
    assert again.fetched and again.vendor_contracts == 3
    assert len(store.audit_log()) == before
    pd.testing.assert_frame_equal(store.get_contracts(), saved)


# ------------------------------------------------------------------ the store


def _contracts(*rows) -> pd.DataFrame:
    return validate_contracts(
        pd.DataFrame(
            [
                {
                    "integration": integ,
                    "account_id": acct,
                    "license_name": name,
                    "contract_end": end,
                    "notice_days": notice,
                    "source": source,
                }
                for integ, acct, name, end, notice, source in rows
            ]
        ).reindex(columns=CONTRACT_COLUMNS, fill_value="")
    )


def test_replacing_vendor_contracts_never_touches_edited_ones(store):
    admin = Actor("ada@acme.com", "Ada", "admin")
    store.save_contracts(
        _contracts(
            ("GitHub", "", "GitHub Enterprise", "2027-01-31", "30", "edited"),
            ("Zoom", "zoom-1", "", "2027-03-31", "60", "edited"),  # someone's own Zoom contract
            ("DocuSign", "docu-1", "", "2026-06-30", "", "vendor"),  # last fetch's
            ("ClickUp", "click-1", "", "2026-12-31", "", "vendor"),  # its listing fails this time
            ("Salesforce", "", "", "2027-05-31", "90", "edited"),
        ),
        admin,
    )
    edited_before = store.get_contracts().query("source == 'edited'")
    vendor = _contracts(
        ("Zoom", "zoom-1", "", "2027-01-31", "", "vendor"),  # loses: the edited one has its key
        ("DocuSign", "docu-1", "", "2027-06-30", "", "vendor"),  # replaces last fetch's
        ("Dropbox", "drop-1", "", "2027-02-28", "", "vendor"),  # new
    )
    n = store.replace_vendor_contracts(vendor, ["zoom-1", "docu-1"], SYNC_ACTOR, merge_contracts)
    assert n == 2
    after = store.get_contracts()
    pd.testing.assert_frame_equal(
        after.query("source == 'edited'").reset_index(drop=True),
        edited_before.reset_index(drop=True),
    )
    vendor_after = after.query("source == 'vendor'").set_index("account_id")["contract_end"]
    assert vendor_after.to_dict() == {
        "click-1": pd.Timestamp("2026-12-31"),  # not listed this time: kept
        "docu-1": pd.Timestamp("2027-06-30"),
        "drop-1": pd.Timestamp("2027-02-28"),
    }
    assert list(after["integration"])[:3] == ["GitHub", "Zoom", "ClickUp"]  # saved order kept
    entry = store.audit_log(limit=1).iloc[0]
    assert entry["action"] == "vendor_contracts" and entry["actor_name"] == SYNC_ACTOR.name
    detail = json.loads(entry["detail"])
    assert detail["entries_before"] == 1 and detail["entries_after"] == 2
    assert detail["accounts"] == ["docu-1", "drop-1", "zoom-1"]


def test_replacing_vendor_contracts_refuses_edited_rows_and_viewers(store):
    edited = _contracts(("Zoom", "zoom-1", "", "2027-01-31", "", "edited"))
    with pytest.raises(ValueError, match="source 'vendor'"):
        store.replace_vendor_contracts(edited, ["zoom-1"], SYNC_ACTOR, merge_contracts)
    vendor = _contracts(("Zoom", "zoom-1", "", "2027-01-31", "", "vendor"))
    with pytest.raises(PermissionError):
        store.replace_vendor_contracts(
            vendor, ["zoom-1"], Actor("v@acme.com", "V", "viewer"), merge_contracts
        )
    assert store.get_contracts().empty
    # An account whose billing lists nothing any more loses its vendor contract.
    assert store.replace_vendor_contracts(vendor, ["zoom-1"], SYNC_ACTOR, merge_contracts) == 1
    assert (
        not store.contracts_saved()
    )  # a fetch prefilling is not someone saving (demo seeding runs)
    assert store.replace_vendor_contracts(None, ["zoom-1"], SYNC_ACTOR, merge_contracts) == 0
    assert store.get_contracts().empty


def test_hostile_billing_records_are_skipped_as_problems_never_a_crash(emulator, store):
    hostile = [
        "not an object",
        {"id": "n", "end_date": {"nested": 1}, "total_amount": 5, "currency": "USD"},
        bill("b", "2026-01-01", "2026-12-31", True),  # a boolean is not an amount
        bill("c", "2026-01-01", "2026-12-31", 10, "US\u202eD"),  # a bidi override in the code
        bill("d", "2026-01-01", "2026-12-31", 1e300),  # no contract is worth that
        bill("e", "2026-01-01\n", "2026-12-31", 10),  # a line break in a date
    ]
    emu = emulator(
        dataset(
            [account("zoom-1", "zoom")],
            {"zoom-1": [lic("Z1", "Zoom", 1, None, True)]},
            billing={"zoom-1": hostile},
        )
    )
    outcome = refresh(store, "k", lambda: fetch_all(settings_for(emu)))
    assert outcome.fetched and outcome.exit_code == 0 and outcome.vendor_contracts == 0
    assert store.get_contracts().empty
    problems = store.latest("k").problems
    skipped = problems[problems["kind"] == "unusable_billing"]
    assert len(skipped) == len(hostile)
    assert not any("\u202e" in d or "\n" in d for d in skipped["detail"])


def test_a_billing_record_belongs_to_the_account_whose_listing_returned_it(emulator, store):
    """Issue 23, row 8: a DocuSign record saying it is Zoom account B's (or GitHub account C's)
    neither replaces B's contract nor makes one for C; it is read as A's, and said."""
    data = dataset(
        [account("docu-A", "docusign"), account("zoom-B", "zoom")],
        {
            "docu-A": [lic("D1", "eSignature", None, 5, True)],
            "zoom-B": [lic("Z1", "Zoom Workplace", 10, None, True)],
        },
        billing={
            "docu-A": [
                bill("a0", "2026-03-01", "2027-02-28", 4800, "EUR"),
                bill("x1", "2026-03-01", "2026-09-30", 1, account_id="zoom-B", integration="zoom"),
                bill(
                    "x2",
                    "2026-03-01",
                    "2026-10-31",
                    999999,
                    integrated_account_id="gh-C",
                    integration="github",
                ),
                bill("a1", "2026-03-01", "2026-04-01", 10, "EUR", account_id="docu-A"),
            ],
            "zoom-B": [bill("b0", "2026-01-01", "2026-12-31", 1200)],
        },
    )
    emu = emulator(data)
    outcome = refresh(store, "k", lambda: fetch_all(settings_for(emu)))
    assert outcome.fetched and outcome.vendor_contracts == 2
    saved = store.get_contracts().set_index("account_id")
    assert sorted(saved.index) == ["docu-A", "zoom-B"]  # no contract for gh-C
    assert set(saved["integration"]) == {"DocuSign", "Zoom"}  # nor a GitHub one
    zoom = saved.loc["zoom-B"]
    assert (zoom["contract_value"], zoom["currency"]) == (1200, "USD")
    assert zoom["contract_end"] == pd.Timestamp("2026-12-31")
    docu = saved.loc["docu-A"]
    assert (docu["contract_value"], docu["currency"]) == (4800, "EUR")  # its own, ending last
    problems = store.latest("k").problems
    mismatch = problems[problems["kind"] == "account_mismatch"]
    assert list(mismatch["account_id"]) == ["docu-A", "docu-A"]  # the record with its own id: fine
    assert set(mismatch["resource"]) == {"billing"}
    first, second = mismatch["detail"]
    assert "billing record 2" in first and "account_id 'zoom-B'" in first
    assert "integration 'zoom'" in first and "read as this account's" in first
    assert "integrated_account_id 'gh-C'" in second and "integration 'github'" in second
    accounts = store.latest("k").accounts.set_index("account_id")
    assert accounts.loc["docu-A", "problems"] == 2 and accounts.loc["zoom-B", "problems"] == 0


def test_a_billing_date_is_read_whole_not_by_its_first_ten_characters(emulator, store):
    """Issue 23, row 17: ``2026-12-31T99:99`` and ``2026-12-31 junk`` are not dates."""
    records = [
        bill("t", "2026-01-01", "2026-12-31T99:99", 10),
        bill("j", "2026-01-01 junk", "2026-12-31", 20),
        bill("z", "2026-01-01T00:00:00+05:00", "2026-12-31 23:59:59Z", 30),  # whole: read
    ]
    emu = emulator(
        dataset(
            [account("zoom-1", "zoom")],
            {"zoom-1": [lic("Z1", "Zoom", 1, None, True)]},
            billing={"zoom-1": records},
        )
    )
    outcome = refresh(store, "k", lambda: fetch_all(settings_for(emu)))
    assert outcome.fetched and outcome.vendor_contracts == 1
    saved = store.get_contracts().iloc[0]
    assert saved["contract_value"] == 30
    assert (saved["contract_start"], saved["contract_end"]) == (
        pd.Timestamp("2026-01-01"),
        pd.Timestamp("2026-12-31"),
    )
    problems = store.latest("k").problems
    skipped = problems[problems["kind"] == "unusable_billing"]["detail"].tolist()
    assert len(skipped) == 2
    assert "billing record 1" in skipped[0] and "'2026-12-31T99:99' is not a date" in skipped[0]
    assert "billing record 2" in skipped[1] and "'2026-01-01 junk' is not a date" in skipped[1]
