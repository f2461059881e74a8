"""Billing periods in a fetch: each ClickUp, DocuSign and Zoom account's billing listed beside its
licenses, for the contracts prefilled from the vendor."""

from __future__ import annotations

from lib.config import Settings
from lib.integrations import integration_label, supports_billing
from lib.truto.client import TrutoError
from lib.truto.normalize import Problem
from lib.truto.outcomes import BILLING, AccountOutcome, BillingListing
from lib.truto.text import clean_text


def _fetch_billing(
    listing,
    settings: Settings,
    integration: str | None,
    organizations: list[dict] | None,
    out: AccountOutcome,
) -> None:
    """The account's billing records (every page, paced and retried as its other listings). A
    failure here marks only the billing part failed: the license figures already fetched stay."""
    if not supports_billing(integration):
        return
    label = integration_label(integration)
    if not settings.fetch_billing:
        out.billing = "off"
        out.billing_message = "Listing billing is switched off in the settings."
        return
    try:
        try:
            records = listing(BILLING, {})
        except TrutoError as exc:
            # As for the licenses: an integration that wants an organization is asked per organization.
            missing = exc.missing_parameters() if exc.kind == "bad_request" else []
            if "organization_id" not in missing or not organizations:
                raise
            records = [
                r for o in organizations for r in listing(BILLING, {"organization_id": o["id"]})
            ]
    except TrutoError as exc:
        if exc.kind == "not_found":
            out.billing = "not_supported"
            out.billing_message = f"Truto answered that {label} does not list billing."
        else:
            out.billing = "failed"
            out.billing_message = (
                f"The billing could not be listed ({clean_text(str(exc))}); the license figures are "
                "shown, and the contract prefilled from an earlier listing, if any, is kept."
            )
        return
    out.billing, out.billing_records = "ok", records


def billing_listings(outcomes: list[AccountOutcome]) -> list[BillingListing]:
    """The billing of every account whose billing was listed completely."""
    return [
        BillingListing(o.account_id, o.integration, o.billing_records)
        for o in outcomes
        if o.billing == "ok" and o.billing_records is not None
    ]


def billing_problems(outcomes: list[AccountOutcome]) -> list[Problem]:
    """One problem per account whose billing listing failed (shown with the data problems)."""
    return [
        Problem(
            o.account_id,
            integration_label(o.integration),
            "billing",
            None,
            "billing",
            "not_listed",
            o.billing_message,
        )
        for o in outcomes
        if o.billing == "failed"
    ]
