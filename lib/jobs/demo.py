"""Demo seeding: the demo deployment's list prices and exchange rates, written once to a new database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd

from lib.analytics.pricing import validate_price_book
from lib.auth import Actor

# List prices for the demo's paid licenses, as a finance team would keep them. There is an EUR rate
# but deliberately no GBP rate, so the demo shows how unconverted spend is kept apart.
DEMO_PRICES = [
    ("GitHub", "GitHub Enterprise", 21.0, "USD", "monthly"),
    ("GitHub", "GitHub Copilot Business", 19.0, "USD", "monthly"),
    ("Microsoft 365", "Microsoft 365 E3", 36.0, "USD", "monthly"),
    ("Microsoft 365", "Microsoft 365 E5", 57.0, "USD", "monthly"),
    ("Microsoft 365", "Power BI Pro", 14.0, "USD", "monthly"),
    ("Microsoft 365", "Visio Plan 2", 15.0, "USD", "monthly"),
    ("Microsoft 365", "Microsoft Teams Exploratory", 0.0, "USD", "monthly"),
    ("Atlassian", "Jira Software Cloud Standard", 7.53, "USD", "monthly"),
    ("Atlassian", "Confluence Cloud Standard", 6.05, "USD", "monthly"),
    ("Zoom", "Zoom Workplace Business", 219.9, "USD", "annual"),
    ("Salesforce", "Sales Cloud Enterprise", 165.0, "USD", "monthly"),
    ("Salesforce", "Salesforce Platform", 25.0, "USD", "monthly"),
    ("Salesforce", "Service Cloud Enterprise", 165.0, "USD", "monthly"),
    ("ClickUp", "ClickUp Business", 12.0, "EUR", "monthly"),
    ("Dropbox - Business", "Dropbox Business Advanced", 24.0, "EUR", "monthly"),
    ("Adobe", "Creative Cloud All Apps", 89.99, "EUR", "monthly"),
    ("Adobe", "Acrobat Pro", 239.88, "EUR", "annual"),
    ("PagerDuty", "PagerDuty Business", 41.0, "USD", "monthly"),
]
DEMO_FX_RATES = {"EUR": 1.08}


def demo_price_book():

    return validate_price_book(
        pd.DataFrame(
            [(i, None, n, p, c, b) for i, n, p, c, b in DEMO_PRICES],
            columns=[
                "integration",
                "license_id",
                "license_name",
                "unit_price",
                "currency",
                "billing_period",
            ],
        )
    )


def seed_demo_pricing(store) -> bool:
    """Give a demo database its price book and rates, unless anyone ever saved prices in it.

    Returns True when it wrote them. An admin can change or clear them afterwards; they stay as left.
    """
    log = store.audit_log(limit=10_000)
    if (log["action"] == "price_book").any():
        return False
    seeder = Actor(None, "demo data", "admin")
    store.save_price_book(demo_price_book(), seeder)
    store.save_fx_rates(DEMO_FX_RATES, "USD", seeder)
    return True


# Demo contracts, entered by hand (source "edited"), in days from the day they are seeded: renewals
# within 30 and 90 days, one whose opt-out deadline has already passed. The contracts prefilled from
# the vendor (source "vendor") come from the demo's billing records (lib.truto.demo), as a fetch
# saves them.
# (integration, license name, days to contract end, term, auto renew, notice days, committed seats,
#  contract value, currency, source)
DEMO_CONTRACTS = [
    ("GitHub", "GitHub Enterprise", 25, "annual", "true", 30, 40, 10080, "USD", "edited"),
    ("Zoom", "Zoom Workplace Business", 20, "annual", "false", 14, "", "", "", "edited"),
    ("Microsoft 365", "Microsoft 365 E3", 80, "annual", "true", 30, "", 64800, "USD", "edited"),
    ("Atlassian", "Jira Software Cloud Standard", 88, "annual", "true", 45, "", "", "", "edited"),
    ("Salesforce", "Sales Cloud Enterprise", 200, "annual", "true", 90, 25, "", "", "edited"),
]


def demo_contracts(today: date):
    """The demo contracts, validated (lib.analytics.contracts), dated from ``today``."""
    from lib.analytics.contracts import validate_contracts
    from lib.schema import CONTRACT_COLUMNS

    rows = []
    for integ, name, days, term, auto, notice, seats, value, cur, source in DEMO_CONTRACTS:
        end = today + timedelta(days=days)
        start = end - timedelta(days=364)
        rows.append(
            {
                "integration": integ,
                "account_id": "",
                "license_id": "",
                "license_name": name,
                "contract_start": start.isoformat(),
                "contract_end": end.isoformat(),
                "term": term,
                "auto_renew": auto,
                "notice_days": str(notice),
                "committed_seats": str(seats),
                "true_up_date": "",
                "contract_value": str(value),
                "currency": cur,
                "source": source,
            }
        )
    return validate_contracts(pd.DataFrame(rows, columns=CONTRACT_COLUMNS))


def seed_demo_contracts(store, today: date | None = None) -> bool:
    """Give a demo database its contracts, unless anyone ever saved contracts in it (True: written).
    The vendor contracts a fetch already prefilled stay (an edited one with the same key wins)."""
    if store.contracts_saved():
        return False
    from lib.analytics.vendor_contracts import merge_contracts

    saved = store.get_contracts()
    vendor = saved[saved["source"] == "vendor"]  # prefilled by a fetch already: kept
    store.save_contracts(
        merge_contracts(vendor, demo_contracts(today or datetime.now(UTC).date())),
        Actor(None, "demo data", "admin"),
    )
    return True
