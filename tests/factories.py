"""Small data sets for the emulator, built per test."""

from __future__ import annotations

from dataclasses import replace

from lib.config import Secret, Settings

TOKEN = "test-token-9f8e7d6c5b4a"


def account(
    account_id: str, integration: str, tenant: str = "t1", status: str = "active", **extra
) -> dict:
    return {
        "id": account_id,
        "tenant_id": tenant,
        "integration": {
            "id": f"i-{integration}",
            "name": integration,
            "category": "user-directory",
        },
        "status": status,
        "is_sandbox": False,
        "last_error": None,
        **extra,
    }


def lic(lid, name, assigned=None, available=None, is_paid=None, **extra) -> dict:
    rec = {"id": lid, "name": name}
    if assigned is not None:
        rec["assigned_quantity"] = assigned
    if available is not None:
        rec["available_quantity"] = available
    if is_paid is not None:
        rec["is_paid"] = is_paid
    rec.update(extra)
    return rec


def dataset(
    accounts: list[dict],
    licenses: dict | None = None,
    organizations: dict | None = None,
    users: dict | None = None,
    user_fields: dict | None = None,
    billing: dict | None = None,
) -> dict:
    data = {"accounts": accounts, "licenses": licenses or {}, "organizations": organizations or {}}
    if billing is not None:
        data["billing"] = billing
    if users is not None:
        data["users"] = users
    if user_fields is not None:
        data["user_fields"] = user_fields
    return data


def bill(bid, start, end, total, currency="USD", frequency="yearly", **extra) -> dict:
    """A billing record as Truto's ``billing`` resource sends it."""
    rec = {
        "id": bid,
        "billing_frequency": frequency,
        "currency": currency,
        "total_amount": total,
        "tax_amount": 0,
        "start_date": start,
        "end_date": end,
        "description": f"Invoice {bid}",
    }
    rec.update(extra)
    return rec


def user(uid, *licenses, email=None, status="active", **extra) -> dict:
    """A user record; each license is an id, or a dict for the licenses[] entry."""
    rec = {
        "id": uid,
        "name": f"User {uid}",
        "emails": [{"email": email or f"{uid}@example.com", "type": "work", "is_primary": True}],
        "status": status,
        "licenses": [lid if isinstance(lid, dict) else {"id": lid} for lid in licenses],
    }
    rec.update(extra)
    return rec


def settings_for(emu, **overrides) -> Settings:
    """Client settings pointed at a running emulator, fast retry timings for tests."""
    base = Settings(
        api_token=Secret(emu.token),
        base_url=emu.base_url,
        backoff_base=0.01,
        backoff_max=0.05,
        connect_timeout=2.0,
        read_timeout=5.0,
        max_workers=4,
    )
    return replace(base, **overrides)
