"""Seat activity in the store (SQLite and PostgreSQL): seat rows and the users listing's outcome
kept with each account snapshot, shown stale with the license rows, pruned with them; exemptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import inspect

from lib.auth import OPEN_ACTOR, Actor
from lib.schema import ACTIVITY_COLUMNS, SEAT_COLUMNS
from lib.store import ExemptionError, Store
from lib.truto.fetch import AccountOutcome, assemble
from lib.truto.normalize import Listing
from tests.factories import lic, user

ADMIN = Actor("boss@acme.com", "Boss", "admin")
VIEWER = Actor("ana@acme.com", "Ana", "viewer")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
KEY = "activity-key"


def result(spec: dict, at: datetime = T0):
    """spec: {account_id: (outcome, users_outcome, users)}; each account lists licenses L1, L2."""
    outcomes = []
    for account_id, (outcome, users_outcome, users) in spec.items():
        o = AccountOutcome(account_id, "slack", "t1", "active", fetched_at=at, requests=2)
        if outcome == "ok":
            o.listings.append(
                Listing(
                    account_id,
                    "slack",
                    "t1",
                    [lic("L1", "Pro", assigned=3, available=1, is_paid=True), lic("L2", "Free")],
                    at,
                    organization_id=f"org-{account_id}",
                    organization_name=f"Org {account_id}",
                )
            )
            o.activity = users_outcome
            if users_outcome == "ok":
                o.user_records = users
            elif users_outcome == "failed":
                o.activity_message = "users listing failed"
        else:
            o.outcome = outcome
            o.message = "failed"
            o.action = "Refresh later."
        outcomes.append(o)
    r = assemble(outcomes, at)
    r.finished_at = at
    return r


def people(n: int, last: datetime) -> list[dict]:
    return [
        user(f"u{i}", "L1", last_active_at=last.isoformat().replace("+00:00", "Z"))
        for i in range(n)
    ]


def test_fresh_store_has_the_activity_tables(store):
    names = set(inspect(store.engine).get_table_names())
    assert {"seat_rows", "reclaim_exemptions"} <= names
    cols = {c["name"] for c in inspect(store.engine).get_columns("account_snapshots")}
    assert {"activity", "activity_message", "users", "seat_rows", "activity_problems"} <= cols


def test_seat_rows_and_activity_round_trip_with_dtypes(store):
    r = result({"a": ("ok", "ok", people(3, T0 - timedelta(days=5))), "b": ("ok", "off", None)})
    assert len(r.seats) == 3
    store.write_snapshot(r, KEY)
    latest = store.latest(KEY)
    pd.testing.assert_frame_equal(
        latest.seats.reset_index(drop=True), r.seats.reset_index(drop=True)
    )
    assert dict(latest.seats.dtypes.astype(str)) == SEAT_COLUMNS
    assert dict(latest.activity.dtypes.astype(str)) == ACTIVITY_COLUMNS
    act = latest.activity.set_index("account_id")
    assert act.loc["a", "activity"] == "ok" and act.loc["a", "seat_rows"] == 3
    assert act.loc["a", "users"] == 3
    assert act.loc["b", "activity"] == "off" and pd.isna(act.loc["b", "users"])


def test_a_failed_account_shows_the_seats_of_its_last_good_snapshot(store):
    store.write_snapshot(result({"a": ("ok", "ok", people(2, T0))}), KEY, taken_at=T0)
    later = T0 + timedelta(days=1)
    store.write_snapshot(result({"a": ("failed", "", None)}, later), KEY, taken_at=later)
    latest = store.latest(KEY)
    assert bool(latest.accounts.loc[0, "stale"])
    assert len(latest.seats) == 2 and set(latest.seats["user_id"]) == {"u0", "u1"}
    # The activity figures are those of the snapshot the seats came from, not the failed attempt.
    assert latest.activity.loc[0, "activity"] == "ok"
    assert latest.activity.loc[0, "seat_rows"] == 2


def test_a_failed_users_listing_keeps_the_license_rows(store):
    store.write_snapshot(result({"a": ("ok", "failed", None)}), KEY)
    latest = store.latest(KEY)
    assert len(latest.licenses) == 2 and len(latest.seats) == 0
    assert latest.activity.loc[0, "activity"] == "failed"
    assert latest.activity.loc[0, "activity_message"] == "users listing failed"


def test_prune_removes_seat_rows_with_their_snapshot(store):
    for day in range(5):
        at = T0 + timedelta(days=day)
        store.write_snapshot(result({"a": ("ok", "ok", people(4, at))}, at), KEY, taken_at=at)
    report = store.prune(keep_days=2, now=T0 + timedelta(days=4, hours=1))
    assert report["account_snapshots"] == 3 and report["seat_rows"] == 12
    assert len(store.latest(KEY).seats) == 4


def test_an_older_database_upgrades_and_keeps_its_snapshots(store_url):
    old = Store(store_url, upgrade=False)
    old.upgrade(target=4)
    cols = {c["name"] for c in inspect(old.engine).get_columns("account_snapshots")}
    assert "activity" not in cols
    old.engine.dispose()
    # Version 4 code wrote no activity columns: write with the upgraded store, read back.
    new = Store(store_url)
    new.write_snapshot(result({"a": ("ok", "ok", people(1, T0))}), KEY)
    assert len(new.latest(KEY).seats) == 1


def test_exemptions_add_update_remove_and_audit(store):
    uid = store.add_exemption("user", "  Svc-Bot@Acme.com ", "service account", ADMIN)
    lid = store.add_exemption("license", "L1", "break-glass admins", OPEN_ACTOR, integration="okta")
    again = store.add_exemption("user", "svc-bot@acme.com", "CI robot", ADMIN)
    assert again == uid
    ex = store.exemptions()
    assert ex["value"].tolist() == ["svc-bot@acme.com", "L1"]
    assert ex["reason"].tolist() == ["CI robot", "break-glass admins"]
    assert ex["set_by"].tolist() == ["boss@acme.com", "open access (no sign-in)"]
    assert ex.loc[1, "integration"] == "okta" and pd.isna(ex.loc[0, "integration"])
    log = store.audit_log()
    assert (log["action"] == "exemption_set").sum() == 3
    assert not log["detail"].str.contains("svc-bot", case=False).any()  # personal data stays out
    assert store.remove_exemption(lid, ADMIN) and not store.remove_exemption(lid, ADMIN)
    assert store.exemptions()["id"].tolist() == [uid]
    assert (store.audit_log()["action"] == "exemption_removed").sum() == 1


def test_exemptions_are_validated_and_need_an_admin(store):
    with pytest.raises(PermissionError):
        store.add_exemption("user", "x@acme.com", "why", VIEWER)
    with pytest.raises(ExemptionError, match="reason is empty"):
        store.add_exemption("user", "x@acme.com", "  ", ADMIN)
    with pytest.raises(ExemptionError, match="kind must be"):
        store.add_exemption("group", "x", "why", ADMIN)
    with pytest.raises(ExemptionError, match="control characters"):
        store.add_exemption("license", "L1\x1b[31m", "why", ADMIN)
    with pytest.raises(PermissionError):
        store.remove_exemption(1, VIEWER)
    assert store.exemptions().empty


def test_seat_history_follows_the_license_history_and_thins_to_max_days(store):
    for day in range(6):
        at = T0 + timedelta(days=day)
        store.write_snapshot(result({"a": ("ok", "ok", people(day + 1, at))}, at), KEY, taken_at=at)
    full = store.seat_history(KEY)
    assert full.groupby("taken_at").size().tolist() == [1, 2, 3, 4, 5, 6]
    lic_days = sorted(store.history(KEY)["taken_at"].unique())
    assert sorted(full["taken_at"].unique()) == lic_days
    thin = store.seat_history(KEY, max_days=3)
    days = sorted(thin["taken_at"].unique())
    assert len(days) == 3 and days[0] == lic_days[0] and days[-1] == lic_days[-1]
    since = store.seat_history(KEY, since=T0 + timedelta(days=4))
    assert since.groupby("taken_at").size().tolist() == [5, 6]
