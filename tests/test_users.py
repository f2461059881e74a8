"""Seat activity: the users listing beside the licenses, against the emulator over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from lib.truto.fetch import fetch_all
from lib.truto.users import UserListing, build_seat_table, parse_timestamp
from tests.factories import account, dataset, lic, settings_for, user


def _outcome(result, account_id):
    return next(o for o in result.outcomes if o.account_id == account_id)


def _activity(result, account_id):
    row = result.activity.set_index("account_id").loc[account_id]
    return row["activity"], row["activity_message"]


def _users_calls(emu):
    return [params for _, path, params in emu.counters.log if path.endswith("/users")]


def test_users_listed_on_all_pages_with_the_same_parameters(emulator):
    users = [user(f"u{i}", "L1", last_active_at=f"2026-01-0{i + 1}T10:00:00Z") for i in range(5)]
    emu = emulator(
        dataset(
            [account("a1", "adobe")], {"a1": [lic("L1", "CC", 5, 10, True)]}, users={"a1": users}
        )
    )
    result = fetch_all(settings_for(emu, page_limit=2))
    calls = _users_calls(emu)
    assert len(calls) == 3  # 2 + 2 + 1
    assert calls[0]["limit"] == "2" and calls[0]["integrated_account_id"] == "a1"
    assert all(p["next_cursor"] for p in calls[1:])
    seats = result.seats
    assert sorted(seats["user_id"]) == [f"u{i}" for i in range(5)]
    assert set(seats["license_id"]) == {"L1"} and seats["license_known"].all()
    assert seats["activity_reported"].all()
    assert seats.loc[seats["user_id"] == "u0", "user_email"].item() == "u0@example.com"
    assert seats.loc[seats["user_id"] == "u0", "user_last_active_at"].item() == pd.Timestamp(
        "2026-01-01T10:00:00Z"
    )
    assert _activity(result, "a1")[0] == "ok"
    row = result.activity.set_index("account_id").loc["a1"]
    assert row["users"] == 5 and row["seat_rows"] == 5 and row["activity_problems"] == 0


def test_integration_without_users_is_activity_not_supported_not_a_failure(emulator):
    emu = emulator(dataset([account("a1", "adobe")], {"a1": [lic("L1", "CC", 5, 10, True)]}))
    result = fetch_all(settings_for(emu))
    assert _outcome(result, "a1").outcome == "ok" and result.exit_code() == 0
    activity, message = _activity(result, "a1")
    assert activity == "not_supported" and "Activity not supported" in message
    assert len(result.seats) == 0 and len(result.licenses) == 1


def test_failing_users_listing_marks_only_activity_failed_and_keeps_licenses(emulator):
    emu = emulator(
        dataset(
            [account("bad", "adobe"), account("good", "adobe")],
            {"bad": [lic("L1", "CC", 5, 10, True)], "good": [lic("L2", "CC", 3, 4, True)]},
            users={"bad": [user("u1", "L1")], "good": [user("u2", "L2")]},
        ),
        faults={"bad": {"users_500": True}},
    )
    result = fetch_all(settings_for(emu))
    assert _outcome(result, "bad").outcome == "ok" and result.exit_code() == 0
    assert set(result.licenses["account_id"]) == {"bad", "good"}
    activity, message = _activity(result, "bad")
    assert activity == "failed" and "license figures are shown" in message
    assert set(result.seats["account_id"]) == {"good"}
    assert _activity(result, "good")[0] == "ok"


def test_users_can_be_switched_off_globally_and_per_integration(emulator):
    data = dataset(
        [account("a1", "adobe"), account("z1", "zoom")],
        {"a1": [lic("L1", "CC", 1, 2, True)], "z1": [lic("Z1", "Zoom", 1, None, True)]},
        users={"a1": [user("u1", "L1")], "z1": [user("u2", "Z1")]},
    )
    emu = emulator(data)
    off = fetch_all(settings_for(emu, fetch_users=False))
    assert not _users_calls(emu) and len(off.seats) == 0
    assert _activity(off, "a1")[0] == "off"
    emu.reset_counters()
    some = fetch_all(settings_for(emu, users_off_integrations=("Zoom",)))
    assert [p["integrated_account_id"] for p in _users_calls(emu)] == ["a1"]
    assert _activity(some, "z1")[0] == "off" and set(some.seats["account_id"]) == {"a1"}


def test_accounts_without_licenses_do_not_list_users(emulator):
    emu = emulator(dataset([account("n1", "asana")], {}, users={"n1": [user("u1")]}))
    result = fetch_all(settings_for(emu))
    assert not _users_calls(emu)
    assert pd.isna(_activity(result, "n1")[0])


def test_field_support_leaves_unsent_fields_not_reported(emulator):
    users = [
        user(
            "u1",
            {"id": "L1", "last_active_at": "2026-02-01T00:00:00Z"},
            last_login_at="2026-01-01T00:00:00Z",
        )
    ]
    emu = emulator(
        dataset(
            [account("a1", "adobe")],
            {"a1": [lic("L1", "CC", 1, 2, True)]},
            users={"a1": users},
            user_fields={"adobe": ["emails", "status", "licenses"]},
        )
    )
    seats = fetch_all(settings_for(emu)).seats
    row = seats.iloc[0]
    assert pd.isna(row["user_last_login_at"]) and pd.isna(row["license_last_active_at"])
    assert pd.isna(row["user_name"]) and row["user_email"] == "u1@example.com"
    assert row["activity_reported"] is False or not bool(row["activity_reported"])


def test_validation_problems_are_counted_per_account_never_dropped(emulator):
    users = [
        user("u1", "L1", last_active_at="yesterday"),
        user("u1", "L1"),  # the same user again
        user("u2", "NOPE", {"id": "L1", "last_login_at": "2026-03-01T00:00:00+02:00"}),
        user("u3", "L1", "L1"),  # the same seat twice
        user("u4", "L1", created_at="2999-01-01T00:00:00Z"),
    ]
    emu = emulator(
        dataset(
            [account("a1", "adobe")], {"a1": [lic("L1", "CC", 5, 10, True)]}, users={"a1": users}
        )
    )
    result = fetch_all(settings_for(emu))
    kinds = sorted(result.problems.loc[result.problems["resource"] == "users", "kind"])
    assert kinds == [
        "bad_timestamp",
        "duplicate_seat",
        "duplicate_user",
        "future_timestamp",
        "unknown_license",
    ]
    seats = result.seats
    assert len(seats) == 5  # u1 L1, u2 NOPE, u2 L1, u3 L1, u4 L1
    unknown = seats[seats["license_id"] == "NOPE"]
    assert len(unknown) == 1 and not unknown["license_known"].item()
    u2 = seats[(seats["user_id"] == "u2") & (seats["license_id"] == "L1")]
    assert u2["license_last_active_at"].item() == pd.Timestamp("2026-02-28T22:00:00Z")
    row = result.activity.set_index("account_id").loc["a1"]
    assert row["users"] == 4 and row["seat_rows"] == 5 and row["activity_problems"] == 5
    assert _outcome(result, "a1").problems == 5


def test_display_name_and_primary_email_fallbacks():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    recs = [
        {
            "id": "a",
            "first_name": "Ana",
            "last_name": "Lima",
            "licenses": [{"id": "L"}],
            "emails": [{"email": "x@e.com"}, {"email": "ana@e.com", "is_primary": True}],
        },
        {"id": "b", "username": "bob", "licenses": [{"id": "L"}], "status": "Invited"},
        "not a user",
    ]
    seats, problems, stats = build_seat_table(
        [UserListing("acc", "adobe", None, recs, now, frozenset({"L"}))]
    )
    assert list(seats["user_name"]) == ["Ana Lima", "bob"]
    assert seats["user_email"].tolist()[0] == "ana@e.com" and pd.isna(seats["user_email"].iloc[1])
    assert seats["user_status"].tolist()[1] == "invited"
    assert [p.kind for p in problems] == ["not_an_object"]
    assert stats["acc"].users == 2 and stats["acc"].seat_rows == 2


def test_parse_timestamp():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert parse_timestamp("2026-05-01T00:00:00Z", now)[0] == datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_timestamp("2026-05-01", now)[0] == datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_timestamp(None, now) == (None, None)
    assert parse_timestamp("", now) == (None, None)
    assert parse_timestamp(1714521600, now) == (None, "bad_timestamp")
    assert parse_timestamp("2026-13-01", now) == (None, "bad_timestamp")
    assert parse_timestamp("2026-06-03T00:00:00Z", now) == (None, "future_timestamp")


def test_demo_accounts_have_a_realistic_spread_of_seat_holders():
    from lib.analytics.activity import classify
    from lib.config import Settings
    from lib.truto.demo import demo_settings

    result = fetch_all(demo_settings(Settings(demo=True)))
    assert not (result.problems["resource"] == "users").any()
    activity = result.activity.merge(result.accounts[["account_id", "integration"]])
    by = dict(zip(activity["integration"], activity["activity"]))
    assert by["docusign"] == "not_supported" and by["github"] == "ok"
    classes = classify(result.seats).groupby("integration", observed=True)["activity_class"]
    github = set(classes.get_group("github"))
    assert github == {"active", "inactive", "never_active", "departed", "invited"}
    # Atlassian sends no activity times: its seats are not reported, never inactive
    assert set(classes.get_group("atlassian")) <= {"not_reported", "departed", "invited"}
    idle = classify(result.seats)
    gh = idle[idle["integration"] == "github"]
    assert {45, 120, 150, 210, 400} <= set(gh["days_inactive"].dropna().astype(int))
    # one holder per assigned seat, where the license reports its assigned seats
    per_license = gh.groupby("license_id").size()
    assigned = result.licenses.set_index("license_id").loc[per_license.index, "assigned_seats"]
    assert (per_license.to_numpy() == assigned.to_numpy()).all()
    share = (idle["activity_class"] == "active").mean()
    assert 0.5 < share < 0.8  # mostly active, as a real company's seats are


def test_placeholder_and_out_of_range_times_are_not_reported_and_the_other_users_stay(emulator):
    """Issue 23, row 9: year 1 east of UTC and 9999-12-31 west of it overflowed (the account's whole
    activity failed, its good users vanished); year 1 without an offset read as a real login."""
    from lib.analytics.activity import classify

    good = [user(f"g{i}", "L1", last_login_at="2026-01-05T10:00:00Z") for i in range(20)]
    odd = {
        "east": "0001-01-01T00:00:00+01:00",
        "west": "9999-12-31T23:59:59-01:00",
        "year1": "0001-01-01",
        "epoch": "1970-01-01T00:00:00Z",
    }
    users = good + [user(uid, "L1", last_login_at=raw) for uid, raw in odd.items()]
    emu = emulator(
        dataset(
            [account("a1", "adobe")], {"a1": [lic("L1", "CC", 24, 30, True)]}, users={"a1": users}
        )
    )
    result = fetch_all(settings_for(emu))
    assert _activity(result, "a1")[0] == "ok"
    row = result.activity.set_index("account_id").loc["a1"]
    assert row["users"] == 24 and row["seat_rows"] == 24 and row["activity_problems"] == 4
    seats = result.seats.set_index("user_id")
    assert seats.loc[list(odd), "user_last_login_at"].isna().all()
    assert seats.loc[[f"g{i}" for i in range(20)], "user_last_login_at"].notna().all()
    problems = result.problems[result.problems["resource"] == "users"]
    kinds = dict(zip(problems["record_id"], problems["kind"]))
    assert kinds == {
        "east": "placeholder_timestamp",
        "west": "future_timestamp",
        "year1": "placeholder_timestamp",
        "epoch": "placeholder_timestamp",
    }
    year1 = problems.loc[problems["record_id"] == "year1", "detail"].item()
    assert "'0001-01-01'" in year1 and "not reported" in year1
    days = classify(result.seats).set_index("user_id")["days_inactive"]
    assert days.loc[list(odd)].isna().all()  # never 739,000 days inactive
    since = (_outcome(result, "a1").fetched_at - datetime(2026, 1, 5, 10, tzinfo=UTC)).days
    assert (days.drop(list(odd)) == since).all()


def test_parse_timestamp_range():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert parse_timestamp("0001-01-01T00:00:00+01:00", now) == (None, "placeholder_timestamp")
    assert parse_timestamp("0001-01-01", now) == (None, "placeholder_timestamp")
    assert parse_timestamp("1969-12-31T23:00:00-05:00", now) == (None, "placeholder_timestamp")
    assert parse_timestamp("9999-12-31T23:59:59-01:00", now) == (None, "future_timestamp")
    assert parse_timestamp("9999-12-31T23:59:59Z", now) == (None, "future_timestamp")
    assert parse_timestamp("1970-01-02T00:00:00Z", now)[0] == datetime(1970, 1, 2, tzinfo=UTC)


def test_a_user_with_a_huge_license_list_is_capped_and_problems_are_counted_beyond_the_cap(
    emulator,
):
    """Issue 23, row 10: one user whose licenses[] held 800k ids made 800k seat rows and 800k
    problems. A user's licenses are read up to the cap; an account keeps its first problems and
    counts the rest in one row."""
    from lib.truto.users import MAX_LICENSES_PER_USER, MAX_PROBLEMS_PER_ACCOUNT

    many = 100_000
    big = {"id": "big", "licenses": [{"id": f"X{i}"} for i in range(many)]}
    odd = [user(f"o{i}", "NOPE") for i in range(1_500)]  # each an unknown license: a problem
    fine = [user(f"g{i}", "L1", last_login_at="2026-01-05T10:00:00Z") for i in range(10)]
    emu = emulator(
        dataset(
            [account("a1", "adobe"), account("a2", "adobe")],
            {"a1": [lic("L1", "CC", 10, 30, True)], "a2": [lic("L1", "CC", 1, 2, True)]},
            users={"a1": [big, *odd, *fine], "a2": [user("u1", "NOPE")]},
        )
    )
    result = fetch_all(settings_for(emu, page_limit=1_000))
    assert _activity(result, "a1")[0] == "ok"
    seats = result.seats[result.seats["account_id"] == "a1"]
    assert (seats["user_id"] == "big").sum() == MAX_LICENSES_PER_USER
    assert len(seats) == MAX_LICENSES_PER_USER + 1_500 + 10
    found = 1 + MAX_LICENSES_PER_USER + 1_500  # too many; 1,000 unknown of big's; 1,500 of odd's
    row = result.activity.set_index("account_id").loc["a1"]
    assert row["users"] == 1 + 1_500 + 10 and row["seat_rows"] == len(seats)
    assert row["activity_problems"] == found
    assert _outcome(result, "a1").problems == found  # counted beyond the cap
    assert result.accounts.set_index("account_id").loc["a1", "problems"] == found
    problems = result.problems[result.problems["account_id"] == "a1"]
    assert len(problems) == MAX_PROBLEMS_PER_ACCOUNT + 1
    assert problems["kind"].iloc[0] == "too_many_licenses"
    assert f"{many:,} licenses" in problems["detail"].iloc[0]
    assert f"other {many - MAX_LICENSES_PER_USER:,} skipped" in problems["detail"].iloc[0]
    last = problems.iloc[-1]
    assert last["kind"] == "more_problems" and (problems["kind"] == "more_problems").sum() == 1
    assert last["detail"].startswith(f"{found:,} problems in these users in all")
    assert f"the other {found - MAX_PROBLEMS_PER_ACCOUNT:,} only counted" in last["detail"]
    # the other account is not touched by the first one's cap
    assert list(result.problems.loc[result.problems["account_id"] == "a2", "kind"]) == [
        "unknown_license"
    ]
