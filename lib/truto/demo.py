"""The built-in demo data set, and the emulator that serves it when no token is configured.

Ten integrated accounts in two tenants, using only integrations the vendor
pages list for licenses, each sending only the fields its page says it sends
(so Atlassian has no seat counts, only DocuSign has prices, Zoom has no
total). GitHub has two organizations, Microsoft 365 two products, and one
Zoom account needs reauthorisation. Everything is fixed: the same data on
every start.

Users (seat activity): every active account but DocuSign's lists users (DocuSign shows "activity not
supported"), each with a spread of seat holders: active, 45, 120 and 400 days idle, never active,
departed (status deleted or inactive, still holding the license) and invited. Atlassian sends no
activity times, Zoom only ``last_login_at``, Microsoft 365 a per-license last-active time (demo
choices, not verified against the vendors). Times are relative to the start of the current UTC day,
so the spread holds whenever the demo runs.

Billing (the integrations Truto lists it for): Zoom bills yearly (the period ends in 45 days),
DocuSign yearly in EUR (last year's invoice too; the current period ends in 100 days), ClickUp
monthly (three invoices, the current month ends in 18 days). Dates are relative to the current
UTC day, so the Renewals page shows them whenever the demo runs.
"""

from __future__ import annotations

import atexit
import random
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lib.config import Secret, Settings
from lib.integrations import supported_license_fields
from lib.truto.emulator import Emulator

DEMO_TOKEN = "demo-token-not-a-secret"
_NS = uuid.UUID("6f1d3c52-2f43-4b8e-9a7e-1d5b0c7e4a10")


def _uuid(name: str) -> str:
    return str(uuid.uuid5(_NS, name))


# (tenant, integration machine name, display, status, last_error)
_ACCOUNTS = [
    ("acme-corp", "github", "GitHub", "active", None),
    ("acme-corp", "microsoft365", "Microsoft 365", "active", None),
    ("acme-corp", "atlassian", "Atlassian", "active", None),
    ("acme-corp", "zoom", "Zoom", "active", None),
    ("acme-corp", "salesforce", "Salesforce", "active", None),
    ("acme-europe", "docusign", "DocuSign", "active", None),
    ("acme-europe", "clickup", "ClickUp", "active", None),
    ("acme-europe", "dropboxbusiness", "Dropbox - Business", "active", None),
    ("acme-europe", "adobe", "Adobe", "active", None),
    ("acme-europe", "pagerduty", "PagerDuty", "active", None),
    (
        "acme-europe",
        "zoom",
        "Zoom",
        "needs_reauth",
        "Zoom refused the stored refresh token (invalid_grant). The account owner must reconnect it.",
    ),
]

# Licenses: account index -> list of (name, assigned, total, is_paid, extra)
_LICENSES: dict[int, list[tuple]] = {
    0: [  # GitHub, per organization
        ("GitHub Enterprise", 182, 200, True, {"_organization_id": "org-acme-platform"}),
        ("GitHub Copilot Business", 98, 100, True, {"_organization_id": "org-acme-platform"}),
        ("GitHub Enterprise", 12, 40, True, {"_organization_id": "org-acme-labs"}),
        ("GitHub Free", 9, 9, False, {"_organization_id": "org-acme-labs"}),
    ],
    1: [  # Microsoft 365, per product
        ("Microsoft 365 E3", 412, 450, None, {"_product": "azure_active_directory"}),
        ("Microsoft 365 E5", 48, 60, None, {"_product": "azure_active_directory"}),
        ("Power BI Pro", 35, 80, None, {"_product": "azure_active_directory"}),
        ("Visio Plan 2", 14, 10, None, {"_product": "azure_active_directory"}),
        ("Microsoft Teams Exploratory", 25, 1000, None, {"_product": "azure_active_directory"}),
        ("OneDrive for Business (Plan 1)", 20, 25, None, {"_product": "onedrive"}),
    ],
    2: [  # Atlassian: no seat counts reported
        ("Jira Software Cloud Standard", None, None, True, {}),
        ("Confluence Cloud Standard", None, None, True, {}),
        ("Jira Work Management Free", None, None, False, {}),
    ],
    3: [  # Zoom: assigned only
        ("Zoom Workplace Business", 140, None, True, {}),
        ("Zoom Basic", 310, None, False, {}),
    ],
    4: [  # Salesforce
        ("Sales Cloud Enterprise", 88, 120, True, {}),
        ("Salesforce Platform", 10, 40, True, {}),
        ("Service Cloud Enterprise", 57, 60, True, {}),
        ("Chatter Free", 240, 5000, False, {}),
    ],
    5: [  # DocuSign: total and vendor price, no assigned count
        ("eSignature Business Pro", None, 25, True, {"unit_amount": 40.0, "currency": "EUR"}),
        ("eSignature Standard", None, 10, True, {"unit_amount": 25.0, "currency": "GBP"}),
    ],
    6: [  # ClickUp, per organization (workspace)
        ("ClickUp Business", 45, 50, True, {"_organization_id": "ws-acme-eu"}),
        ("ClickUp Free Forever", 6, 6, False, {"_organization_id": "ws-acme-eu"}),
    ],
    7: [  # Dropbox Business
        ("Dropbox Business Advanced", 70, 100, True, {}),
    ],
    8: [  # Adobe
        ("Creative Cloud All Apps", 18, 30, True, {}),
        ("Acrobat Pro", 64, 60, True, {}),
        ("Adobe Express", 11, 50, True, {}),
    ],
    9: [  # PagerDuty; one count arrives as text, as some vendors send it
        (
            "PagerDuty Business",
            "22",
            25,
            True,
            {"description": "Business plan: incident response and on-call"},
        ),
        ("PagerDuty Stakeholder", 15, 20, True, {"description": "Read-only stakeholder seats"}),
    ],
    10: [  # Zoom EU (needs reauth; never served)
        ("Zoom Workplace Business", 60, None, True, {}),
    ],
}

_ORGANIZATIONS: dict[int, list[dict]] = {
    0: [
        {"id": "org-acme-platform", "name": "acme-platform"},
        {"id": "org-acme-labs", "name": "acme-labs"},
    ],
    2: [{"id": "atl-acme", "name": "acme.atlassian.net"}],
    4: [
        {
            "id": "00D5j000000Acme",
            "name": "Acme Corp (Production)",
            "pricing_plan": "Enterprise",
            "created_at": "2019-03-04T09:00:00Z",
            "updated_at": "2026-10-01T08:00:00Z",
        }
    ],
    6: [{"id": "ws-acme-eu", "name": "Acme EU Workspace"}],
}


def _record(
    label: str, account_index: int, i: int, name: str, assigned, total, is_paid, extra: dict
) -> dict:
    full: dict[str, Any] = {
        "id": f"lic-{account_index:02d}-{i:03d}",
        "name": name,
        "assigned_quantity": assigned,
        "available_quantity": total,
        "is_paid": is_paid,
        "status": "active",
        "products": [{"id": f"prod-{account_index}-{i}", "name": name, "status": "active"}],
        "roles": [{"id": "responder", "name": "Responder"}],
        "created_at": "2024-01-15T10:00:00Z",
        "updated_at": "2026-11-01T10:00:00Z",
        **{k: v for k, v in extra.items()},
    }
    supported = set(supported_license_fields(label) or ())
    record = {k: v for k, v in full.items() if k in supported or k.startswith("_")}
    # A supported field with no value is simply absent, as vendors leave it out.
    return {k: v for k, v in record.items() if v is not None}


# (name, status, days since last active (None: never), days since created)
# (kind, status, days since last active, days since created): one in 20 seat holders each, the
# rest active. Dealt round-robin over every assigned seat, so each license has the spread.
_USER_PROFILES = (
    ("active", "active", 2, 700),
    ("active", "active", 9, 500),
    ("idle-45", "active", 45, 800),
    ("active", "active", 1, 300),
    ("idle-120", "active", 120, 900),
    ("active", "active", 3, 420),
    ("idle-400", "active", 400, 1200),
    ("active", "active", 6, 640),
    ("never", "active", None, 365),
    ("active", "active", 12, 880),
    ("departed", "deleted", 210, 1000),
    ("active", "active", 20, 250),
    ("active", "active", 5, 540),
    ("invited", "invited", None, 150),
    ("active", "active", 15, 720),
    ("departed", "inactive", 60, 600),
    ("active", "active", 4, 100),
    ("active", "active", 30, 960),
    ("idle-120", "active", 150, 1100),
    ("active", "active", 8, 330),
)
_UNCOUNTED_SEATS = 12  # users per license where the vendor reports no seat counts (Atlassian)
_MAX_USERS_PER_LICENSE = 500
_FIRST = (
    "Ana",
    "Ben",
    "Chen",
    "Dara",
    "Eli",
    "Fatima",
    "Goran",
    "Hana",
    "Ivo",
    "Jun",
    "Kofi",
    "Lea",
)
_LAST = ("Lima", "Okafor", "Wang", "Novak", "Silva", "Haddad", "Petrov", "Sato", "Berg", "Costa")
# Which user fields each demo integration fills (see the module docstring); absent: all of them.
_USER_FIELDS = {
    "atlassian": ["name", "emails", "status", "type", "created_at", "licenses"],
    "zoom": ["name", "emails", "status", "type", "created_at", "last_login_at", "licenses"],
    "microsoft365": [
        "name",
        "emails",
        "status",
        "type",
        "created_at",
        "licenses",
        "licenses.name",
        "licenses.organization_id",
        "licenses.last_active_at",
    ],
}
_NO_USERS = {"docusign"}


# Billing: account index -> (frequency, currency, total, tax, days to the current period's end,
# periods listed (the current one and those before it), description)
_BILLING: dict[int, tuple] = {
    3: ("yearly", "USD", 30786.0, 0.0, 45, 1, "Zoom Workplace Business, 140 licenses, annual"),
    5: ("yearly", "EUR", 12000.0, 2280.0, 100, 2, "eSignature Business Pro, 25 envelopes plan"),
    6: ("monthly", "EUR", 600.0, 114.0, 18, 3, "ClickUp Business, 50 seats"),
}


def _years_back(day: datetime, years: int) -> datetime:
    """The same day ``years`` years earlier (29 February: the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _demo_billing(idx: int, today: datetime) -> list[dict]:
    """The billing records of one demo account: its current period and the ones before it."""
    frequency, currency, total, tax, days_left, periods, description = _BILLING[idx]
    end = today + timedelta(days=days_left)
    out = []
    for k in range(periods):
        if frequency == "yearly":
            period_end = _years_back(end, k)
            start = _years_back(period_end, 1) + timedelta(days=1)
        else:
            period_end = end - timedelta(days=30 * k)
            start = period_end - timedelta(days=29)
        out.append(
            {
                "id": f"inv-{idx:02d}-{k:02d}",
                "billing_frequency": frequency,
                "currency": currency,
                "total_amount": total,
                "tax_amount": tax,
                "start_date": start.date().isoformat(),
                "end_date": period_end.date().isoformat(),
                "description": description,
            }
        )
    return out


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seats_of(lic: dict) -> int:
    raw = lic.get("assigned_quantity")
    try:
        n = int(str(raw)) if raw is not None else _UNCOUNTED_SEATS
    except ValueError:
        n = _UNCOUNTED_SEATS
    return max(0, min(n, _MAX_USERS_PER_LICENSE))


def _demo_users(idx: int, name: str, licenses: list[dict], today: datetime) -> list[dict]:
    """One user per assigned seat of each of the account's licenses (as many as the license reports
    assigned; a dozen where it reports no counts), with the spread of :data:`_USER_PROFILES`."""
    users = []
    per_license = name == "microsoft365"
    # Microsoft 365 lists licenses per product; the demo lists azure_active_directory (the default).
    licenses = [r for r in licenses if r.get("_product") in (None, "azure_active_directory")]
    k = 0
    for li, lic in enumerate(licenses):
        for seat in range(_seats_of(lic)):
            kind, status, idle, age = _USER_PROFILES[(seat * 7 + idx + li) % len(_USER_PROFILES)]
            first, last = _FIRST[(k + idx) % len(_FIRST)], _LAST[(k // len(_FIRST)) % len(_LAST)]
            series = k // (len(_FIRST) * len(_LAST))
            email = f"{first}.{last}{series or ''}@acme.example".lower()
            seen = _iso(today - timedelta(days=idle)) if idle is not None else None
            entry: dict[str, Any] = {"id": lic["id"], "name": lic.get("name")}
            if lic.get("_organization_id"):
                entry["organization_id"] = lic["_organization_id"]
            if per_license and seen:
                entry["last_active_at"] = seen
            users.append(
                {
                    "id": f"usr-{idx:02d}-{k:04d}",
                    "name": f"{first} {last}",
                    "emails": [{"email": email, "type": "work", "is_primary": True}],
                    "status": status,
                    "type": "end user",
                    "created_at": _iso(today - timedelta(days=age)),
                    "last_active_at": seen,
                    "last_login_at": seen,
                    "licenses": [entry],
                    "_kind": kind,
                }
            )
            k += 1
    return users


def _account_record(
    account_id: str,
    tenant: str,
    integration: str,
    *,
    environment: str = "demo-environment",
    status: str = "active",
    last_error: Any = None,
    created_at: str = "2025-02-01T09:00:00Z",
    updated_at: str = "2026-11-20T06:00:00Z",
) -> dict[str, Any]:
    """An integrated account as Truto's accounts list returns it."""
    return {
        "id": account_id,
        "tenant_id": tenant,
        "environment_id": _uuid(environment),
        "integration": {
            "id": _uuid(f"integration/{integration}"),
            "name": integration,
            "category": "user-directory",
        },
        "status": status,
        "is_sandbox": False,
        "last_error": last_error,
        "created_at": created_at,
        "updated_at": updated_at,
    }


def demo_dataset() -> dict[str, Any]:
    """The demo data in the emulator's format (deterministic)."""
    accounts, organizations, licenses, users, billing = [], {}, {}, {}, {}
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for idx, (tenant, name, label, status, last_error) in enumerate(_ACCOUNTS):
        account_id = _uuid(f"{tenant}/{name}/{idx}")
        accounts.append(
            _account_record(account_id, tenant, name, status=status, last_error=last_error)
        )
        if idx in _ORGANIZATIONS:
            organizations[account_id] = _ORGANIZATIONS[idx]
        licenses[account_id] = [
            _record(label, idx, i, *row) for i, row in enumerate(_LICENSES.get(idx, []))
        ]
        if status == "active" and name not in _NO_USERS and licenses[account_id]:
            users[account_id] = _demo_users(idx, name, licenses[account_id], today)
        if idx in _BILLING:
            billing[account_id] = _demo_billing(idx, today)
    return {
        "accounts": accounts,
        "organizations": organizations,
        "licenses": licenses,
        "users": users,
        "user_fields": _USER_FIELDS,
        "billing": billing,
    }


# The first day on a real environment, every fault the emulator knows switched on: the demo's
# accounts plus one account per fault (tenant "acme-faults"), as ``first_day_dataset`` serves them.
# (suffix, integration machine name, the fault, licenses) for the added accounts.
_FAULT_ACCOUNTS: tuple[tuple[str, str, dict[str, Any], list[Any]], ...] = (
    ("failing", "adobe", {"remote_500": 10**9}, []),
    ("blocked", "dropboxbusiness", {"blocked_503": True}, []),
    ("reauth", "gitlab", {"needs_reauth": True}, []),
    ("malformed-json", "freshdesk", {"malformed_json": True}, []),
    ("no-result-list", "webex", {"missing_result": True}, []),
    ("cursor-loop", "opsgenie", {"repeat_cursor": True}, []),
    ("rate-limited", "monday", {"remote_429": 10**9}, []),
    ("recovers", "pagerduty", {"transient_502": 1, "server_500": 1, "last_cursor": "absent"}, []),
    ("not-supported", "asana", {"slow": 0.2}, []),
    (
        "malformed-records",
        "salesforce",
        {"transient_504": 1, "last_cursor": "empty"},
        [
            {"id": "bad-1", "name": "Negative seats", "assigned_quantity": -3},
            {"id": "bad-2", "name": "Seats as words", "available_quantity": "twelve"},
            {"name": "No id", "assigned_quantity": 2, "available_quantity": 5},
            {"id": "bad-3", "name": "Twice", "assigned_quantity": 1, "available_quantity": 2},
            {"id": "bad-3", "name": "Twice", "assigned_quantity": 1, "available_quantity": 2},
            "not a record",
        ],
    ),
)
# Faults on the demo's own accounts: (account index in _ACCOUNTS, fault).
_DEMO_ACCOUNT_FAULTS = ((0, {"users_500": True}), (6, {"billing_500": True}))


def first_day_dataset() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(data set, faults by account id): the demo data with every emulator fault switched on.

    The demo's licenses carry vendor prices in EUR and GBP (DocuSign), so a database with no rate
    saved has foreign currencies without a rate; one Zoom account needs reauthorisation. Added:
    an account per fault (failing, blocked, reauthorisation, a body that is not JSON, no result
    list, a cursor loop, rate-limited by the vendor, transient errors it recovers from, licenses not
    supported and slow, malformed records), and the users (GitHub) and billing (ClickUp) listings
    failing. Every field of :class:`lib.truto.emulator.Faults` is switched on for some account.
    """
    data = demo_dataset()
    faults: dict[str, dict[str, Any]] = {}
    for idx, fault in _DEMO_ACCOUNT_FAULTS:
        faults[data["accounts"][idx]["id"]] = dict(fault)
    for suffix, name, fault, records in _FAULT_ACCOUNTS:
        account_id = _uuid(f"acme-faults/{suffix}")
        data["accounts"].append(_account_record(account_id, "acme-faults", name))
        data["licenses"][account_id] = list(records) or [
            {"id": f"lic-{suffix}", "name": f"{suffix} plan", "assigned_quantity": 1}
        ]
        if fault:
            faults[account_id] = dict(fault)
    return data, faults


def synthetic_dataset(
    accounts: int, licenses_per_account: int = 20, seed: int = 7
) -> dict[str, Any]:
    """A larger deterministic data set for benchmarks: the demo's integrations, repeated."""
    rng = random.Random(seed)
    base = _ACCOUNTS[:10]
    out_accounts, organizations, licenses = [], {}, {}
    for a in range(accounts):
        tenant, name, label, _, _ = base[a % len(base)]
        account_id = _uuid(f"synthetic/{seed}/{a}")
        out_accounts.append(
            _account_record(
                account_id,
                f"{tenant}-{a % 7}",
                name,
                environment="synthetic-environment",
                created_at="2025-01-01T00:00:00Z",
                updated_at="2026-11-01T00:00:00Z",
            )
        )
        orgs = []
        if name in ("github", "clickup"):
            orgs = [{"id": f"org-{a}-{k}", "name": f"org-{a}-{k}"} for k in range(2)]
        elif name in ("atlassian", "salesforce"):
            orgs = [{"id": f"org-{a}-0", "name": f"org-{a}-0"}]
        if orgs:
            organizations[account_id] = orgs
        recs = []
        for i in range(licenses_per_account):
            total = rng.randint(5, 500)
            assigned = max(0, int(total * rng.uniform(0.2, 1.15)))
            extra: dict[str, Any] = {}
            if name in ("github", "clickup"):
                extra["_organization_id"] = orgs[i % len(orgs)]["id"]
            if name == "microsoft365":
                extra["_product"] = "azure_active_directory" if i % 4 else "onedrive"
            if name == "docusign":
                extra.update(
                    unit_amount=float(rng.choice([25, 40, 65])), currency=rng.choice(["USD", "EUR"])
                )
            recs.append(
                _record(
                    label,
                    a % 100,
                    i,
                    f"{label} plan {i}",
                    assigned,
                    total,
                    rng.random() > 0.1,
                    extra,
                )
            )
        licenses[account_id] = recs
    return {"accounts": out_accounts, "organizations": organizations, "licenses": licenses}


def synthetic_result(licenses: int, licenses_per_account: int = 20, seed: int = 7):
    """A FetchResult of about ``licenses`` rows from :func:`synthetic_dataset`, built as the fetch layer
    builds it (one listing per organization or product) but without HTTP: for benchmarks."""
    from datetime import datetime

    from lib.truto.fetch import AccountOutcome, assemble
    from lib.truto.normalize import Listing

    data = synthetic_dataset(max(1, licenses // licenses_per_account), licenses_per_account, seed)
    fetched = datetime.now(UTC)
    outcomes = []
    for acc in data["accounts"]:
        aid, name = acc["id"], acc["integration"]["name"]
        orgs = {o["id"]: o["name"] for o in data["organizations"].get(aid, [])}
        groups: dict[tuple, list] = {}
        for rec in data["licenses"][aid]:
            groups.setdefault((rec.get("_organization_id"), rec.get("_product")), []).append(
                {k: v for k, v in rec.items() if not k.startswith("_")}
            )
        out = AccountOutcome(
            aid,
            name,
            acc["tenant_id"],
            "active",
            organizations=len(orgs) or None,
            requests=1 + len(groups),
            fetched_at=fetched,
        )
        for (org, product), recs in groups.items():
            out.listings.append(
                Listing(
                    aid,
                    name,
                    acc["tenant_id"],
                    recs,
                    fetched,
                    organization_id=org,
                    organization_name=orgs.get(org),
                    product=product,
                )
            )
        outcomes.append(out)
    return assemble(outcomes, fetched)


_lock = threading.Lock()
_emulator: Emulator | None = None


def demo_emulator() -> Emulator:
    """The process-wide demo emulator on a free loopback port (started on first use)."""
    global _emulator
    with _lock:
        if _emulator is None or _emulator.server is None:
            _emulator = Emulator(demo_dataset(), token=DEMO_TOKEN, page_size=3).start()
            atexit.register(_emulator.stop)
        return _emulator


def demo_settings(settings: Settings) -> Settings:
    """The settings pointed at the demo emulator (same client code, demo data)."""
    emu = demo_emulator()
    return replace(
        settings,
        api_token=Secret(DEMO_TOKEN),
        base_url=emu.base_url,
        integrated_account_ids=(),
        tenant_id=settings.tenant_id,
        demo=True,
    )
