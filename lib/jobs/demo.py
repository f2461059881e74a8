"""Demo seeding: the demo deployment's list prices and exchange rates, written once to a new database."""

from __future__ import annotations

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
