"""Column contracts shared by the fetch layer, the analytics, the store and the pages."""

from __future__ import annotations

# One row per license per organization/product per integrated account.
LICENSE_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "integration": "string",          # Truto's machine name, as sent in integration.name
    "integration_label": "string",    # display name ("GitHub", "Microsoft 365")
    "tenant_id": "string",
    "organization_id": "string",
    "organization_name": "string",
    "product": "string",              # Microsoft 365 product the listing was asked for
    "license_id": "string",
    "license_name": "string",
    "is_paid": "boolean",
    "status": "string",
    "assigned_seats": "Int64",
    "total_seats": "Int64",
    "unassigned_seats": "Int64",
    "utilization_pct": "Float64",
    "over_allocated_seats": "Int64",
    "vendor_unit_amount": "Float64",  # DocuSign only
    "vendor_currency": "string",      # DocuSign only
    "fetched_at": "datetime64[us, UTC]",
}

# One row per integrated account: what happened when it was fetched.
ACCOUNT_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "integration": "string",
    "integration_label": "string",
    "tenant_id": "string",
    "account_status": "string",       # Truto's status: active, needs_reauth, ...
    "outcome": "string",              # ok, failed, needs_reauth, inactive, not_supported
    "message": "string",              # what went wrong, in words
    "action": "string",               # what a person should do about it
    "organizations": "Int64",
    "license_rows": "Int64",
    "problems": "Int64",
    "requests": "Int64",
    "retries": "Int64",
    "rate_limited": "Int64",          # 429 answers received
    "wait_seconds": "Float64",
    "elapsed_seconds": "Float64",
    "fetched_at": "datetime64[us, UTC]",
}

# One row per record the validator could not take as it was.
PROBLEM_COLUMNS: dict[str, str] = {
    "account_id": "string",
    "integration_label": "string",
    "resource": "string",
    "record_id": "string",
    "field": "string",
    "kind": "string",                 # missing_id, duplicate_id, negative_quantity, ...
    "detail": "string",
}

OUTCOMES = ("ok", "failed", "needs_reauth", "inactive", "not_supported")
# Fetch outcomes that leave the account's data good (current) or failed (showing older data, or none).
GOOD_OUTCOMES = ("ok", "not_supported")
FAILED_OUTCOMES = ("failed", "needs_reauth", "inactive")
