"""The store's contracts, alert rules, alert state and deliveries (migration 4), on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import inspect

from lib.analytics.alert_rules import DEFAULT_RULES, validate_rules
from lib.analytics.contracts import load_contracts, validate_contracts
from lib.auth import Actor
from lib.schema import CONTRACT_COLUMNS, CONTRACT_DTYPES, PRICE_BOOK_DTYPES
from lib.store import Store
from lib.store.alerts import RULE_FIELDS

ADMIN = Actor("boss@acme.com", "Boss", "admin")
VIEWER = Actor("ana@acme.com", "Ana", "viewer")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

CSV = (
    ",".join(CONTRACT_COLUMNS)
    + "\n"
    + "GitHub,,,GitHub Enterprise,2026-02-01,2027-01-31,annual,true,30,40,,8400,USD,edited\n"
    + "Zoom,acc-1,zm-1,,,2027-03-31,,,,,2027-01-15,,,vendor\n"
).encode()


def rule_dicts(rules):
    return [{f: getattr(r, f) for f in RULE_FIELDS} for r in rules]


def test_upgrade_from_version_3_adds_the_renewal_and_alert_tables(store_url):
    old = Store(store_url, upgrade=False)
    assert old.upgrade(target=3) == 3
    names = set(inspect(old.engine).get_table_names())
    assert not {"contracts", "alert_rules", "alert_state", "alert_deliveries"} & names
    book = pd.DataFrame(
        {"integration": ["GitHub"], "license_id": [None], "license_name": ["Enterprise"]}
        | {"unit_price": [21.0], "currency": ["USD"], "billing_period": ["monthly"]}
    ).astype(PRICE_BOOK_DTYPES)
    old.save_price_book(
        book, ADMIN
    )  # a row of version 3 that must survive (an empty book is no change)
    old.close()
    store = Store(store_url)
    try:
        assert store.schema_version() >= 4
        names = set(inspect(store.engine).get_table_names())
        assert {"contracts", "alert_rules", "alert_state", "alert_deliveries"} <= names
        assert (store.audit_log()["action"] == "price_book").sum() == 1
        assert store.get_contracts().empty and store.get_alert_rules() is None
    finally:
        store.close()


def test_contracts_round_trip_with_their_types_and_an_audit_entry(store):
    # Read as a table (an upload would make the vendor row the admin's): the store keeps each source.
    contracts = validate_contracts(pd.read_csv(io.BytesIO(CSV), dtype=str, keep_default_na=False))
    assert store.save_contracts(contracts, ADMIN) == 2
    back = store.get_contracts()
    assert list(back.columns) == CONTRACT_COLUMNS
    assert {c: str(t) for c, t in back.dtypes.items()} == CONTRACT_DTYPES
    pd.testing.assert_frame_equal(back, contracts)
    first, second = back.to_dict("records")
    assert first["contract_end"] == pd.Timestamp("2027-01-31") and first["notice_days"] == 30
    assert first["auto_renew"] is True and first["contract_value"] == 8400.0
    assert pd.isna(second["notice_days"]) and pd.isna(second["auto_renew"])  # not entered, not 0
    assert second["source"] == "vendor" and second["true_up_date"] == pd.Timestamp("2027-01-15")
    entry = store.audit_log().iloc[0]
    assert entry["action"] == "contracts" and entry["actor_email"] == "boss@acme.com"
    assert json.loads(entry["detail"]) == {
        "entries_before": 0,
        "entries_after": 2,
        "changed": ["GitHub · GitHub Enterprise", "Zoom · zm-1 (account acc-1)"],
    }
    assert store.contracts_saved()


def test_contracts_are_saved_all_or_nothing_and_by_admins_only(store):
    store.save_contracts(load_contracts(CSV), ADMIN)
    with pytest.raises(PermissionError):
        store.save_contracts(load_contracts(None), VIEWER)
    bad = load_contracts(CSV)
    bad.loc[1, "source"] = "made up"
    with pytest.raises(ValueError, match=r"row\(s\) 2 are not valid"):
        store.save_contracts(bad, ADMIN)
    with pytest.raises(ValueError, match="columns must be"):
        store.save_contracts(bad.drop(columns=["term"]), ADMIN)
    assert len(store.get_contracts()) == 2  # nothing half applied
    store.save_contracts(None, ADMIN)
    assert store.get_contracts().empty


def test_rules_default_until_saved_then_round_trip(store):
    assert store.get_alert_rules() is None  # a new deployment: the caller uses DEFAULT_RULES
    rules = [
        *rule_dicts(DEFAULT_RULES),
        {**rule_dicts(DEFAULT_RULES)[0], "id": "x", "channels": ()},
    ]
    assert store.save_alert_rules(rules, ADMIN) == 5
    back = store.get_alert_rules()
    assert validate_rules(back) == [*DEFAULT_RULES, validate_rules([rules[-1]])[0]]
    assert back[2]["threshold"] == 60 and back[4]["channels"] == ()
    store.save_alert_rules([], ADMIN)
    assert store.get_alert_rules() == []  # saved empty: no rules, not the defaults
    with pytest.raises(PermissionError):
        store.save_alert_rules(rules, VIEWER)
    with pytest.raises(ValueError, match="rule 2"):
        store.save_alert_rules([rules[0], rules[0]], ADMIN)
    assert store.get_alert_rules() == []


def alert(key, detail="d1"):
    return {
        "key": key,
        "rule_id": "r",
        "kind": "over_allocated",
        "severity": "warning",
        "title": f"Over-allocated: {key}",
        "detail": detail,
        "channels": ("email", "webhook"),
        "integration": "github",
        "account_id": "acc-1",
        "license_id": None,
    }


def test_alert_state_opens_stays_clears_and_opens_again(store):
    store.update_alert_state("k", [alert("a"), alert("b")], [], [], now=T0)
    store.update_alert_state("other", [alert("a")], [], [], now=T0)
    assert store.open_alert_keys("k") == {"a", "b"}
    later = T0 + timedelta(hours=1)
    store.update_alert_state("k", [], [alert("a", "d2")], ["b"], now=later)
    states = store.alert_states("k").set_index("key")
    assert states.loc["a", "open"] and states.loc["a", "detail"] == "d2"
    assert states.loc["a", "first_fired_at"] == T0 and states.loc["a", "last_seen_at"] == later
    assert not states.loc["b", "open"] and states.loc["b", "cleared_at"] == later
    assert states.loc["a", "channels"] == "email,webhook"
    assert pd.isna(states.loc["a", "license_id"])
    again = T0 + timedelta(hours=2)
    store.update_alert_state("k", [alert("b")], [alert("a")], [], now=again)
    states = store.alert_states("k").set_index("key")
    assert states.loc["b", "open"] and states.loc["b", "times_fired"] == 2
    assert states.loc["b", "first_fired_at"] == again and pd.isna(states.loc["b", "cleared_at"])
    assert list(store.alert_states("k", open_only=True)["key"]) == ["b", "a"]  # newest first
    assert store.open_alert_keys("other") == {"a"}


def test_failed_deliveries_stay_pending_until_one_succeeds(store):
    store.record_deliveries(
        "k",
        [
            {"alert_key": "a", "channel": "email", "attempted_at": T0, "ok": False, "error": "e1"},
            {"alert_key": "a", "channel": "webhook", "attempted_at": T0, "ok": True, "error": ""},
        ],
    )
    store.record_deliveries(
        "k",
        [
            {
                "alert_key": "a",
                "channel": "email",
                "attempted_at": T0 + timedelta(1),
                "ok": False,
                "error": "e2",
            }
        ],
    )
    pending = store.pending_deliveries("k")
    assert pending[["alert_key", "channel", "attempts", "error"]].values.tolist() == [
        ["a", "email", 2, "e2"]
    ]
    assert store.pending_deliveries("other").empty
    assert store.delivered("k", "a", "webhook") and not store.delivered("k", "a", "email")
    store.record_deliveries(
        "k",
        [
            {
                "alert_key": "a",
                "channel": "email",
                "attempted_at": T0 + timedelta(2),
                "ok": True,
                "error": "",
            }
        ],
    )
    assert store.pending_deliveries("k").empty
    log = store.deliveries("k")
    assert list(zip(log["channel"], log["ok"])) == [
        ("email", True),
        ("email", False),
        ("webhook", True),
        ("email", False),
    ]
    assert log["attempted_at"].iloc[0].date() == date(2026, 12, 3)
