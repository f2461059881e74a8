"""Small license tables with metrics, built by hand, for the contract and alert tests."""

from __future__ import annotations

import pandas as pd

from lib.analytics.metrics import MetricOptions, add_metrics
from lib.schema import ACCOUNT_COLUMNS, LICENSE_COLUMNS, SEAT_COLUMNS

FETCHED = pd.Timestamp("2026-12-01T06:00:00Z")


def license_row(
    integration: str,
    license_id: str,
    name: str,
    assigned: int | None,
    total: int | None,
    account_id: str = "acct-1",
    is_paid: bool | None = True,
    organization: str | None = None,
    label: str | None = None,
) -> dict:
    both = assigned is not None and total is not None
    return {
        "account_id": account_id,
        "integration": integration,
        "integration_label": label or integration.capitalize(),
        "tenant_id": "t1",
        "organization_id": organization,
        "organization_name": organization,
        "product": None,
        "license_id": license_id,
        "license_name": name,
        "is_paid": is_paid,
        "status": None,
        "assigned_seats": assigned,
        "total_seats": total,
        "unassigned_seats": max(total - assigned, 0) if both else None,
        "utilization_pct": round(100 * assigned / total, 1) if both and total else None,
        "over_allocated_seats": max(assigned - total, 0) if both else None,
        "vendor_unit_amount": None,
        "vendor_currency": None,
        "fetched_at": FETCHED,
    }


def license_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([r[c] for r in rows], dtype=t) for c, t in LICENSE_COLUMNS.items()}
    )


def price_book(rows: list[tuple]) -> pd.DataFrame:
    """(integration, license_id, license_name, unit_price, currency, billing_period) rows."""
    cols = ["integration", "license_id", "license_name", "unit_price", "currency", "billing_period"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


def with_metrics(rows: list[dict], book: list[tuple], **options) -> pd.DataFrame:
    return add_metrics(license_table(rows), price_book(book), MetricOptions(**options))


def account_table(rows: list[dict]) -> pd.DataFrame:
    full = [{c: r.get(c) for c in ACCOUNT_COLUMNS} for r in rows]
    return pd.DataFrame(
        {c: pd.Series([r[c] for r in full], dtype=t) for c, t in ACCOUNT_COLUMNS.items()}
    )


def seat_row(user_id: str, license_id: str, account_id: str = "acct-1", **fields) -> dict:
    """One seat assignment (SEAT_COLUMNS); timestamps as ISO text, everything else as given."""
    row = {c: None for c in SEAT_COLUMNS}
    row.update(
        account_id=account_id,
        integration="adobe",
        integration_label="Adobe",
        tenant_id="t1",
        license_id=license_id,
        license_known=True,
        user_id=user_id,
        user_name=f"Name {user_id}",
        user_email=f"{user_id}@example.com",
        user_status="active",
        activity_reported=True,
        fetched_at=FETCHED,
    )
    row.update(fields)
    return row


def seat_table(rows: list[dict]) -> pd.DataFrame:
    data = {}
    for c, t in SEAT_COLUMNS.items():
        values = pd.Series([r[c] for r in rows], dtype=object)
        data[c] = (
            pd.to_datetime(values, utc=True).astype(t)
            if t.startswith("datetime")
            else values.astype(t)
        )
    return pd.DataFrame(data)
