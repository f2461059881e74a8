"""What each integration supports, from the vendor's reference pages.

The field-support lists below are copied from Truto's pages for
``GET /unified/user-directory/licenses`` and ``.../organizations``
(``shared/truto-docs``); ``tests/test_integrations.py`` re-reads those pages
and fails if this table drifts from them.

The pages name integrations by display name ("Cisco Meraki"); the machine
name Truto puts in ``integration.name`` is not documented, so every lookup
goes through :func:`integration_key`, which folds case and drops separators
("Cisco Meraki", "cisco_meraki" and "ciscomeraki" are one key).
"""

from __future__ import annotations

import re

LICENSE_FIELDS = (
    "id",
    "name",
    "assigned_quantity",
    "available_quantity",
    "is_paid",
    "status",
    "products",
    "unit_amount",
    "currency",
    "description",
    "roles",
    "created_at",
    "updated_at",
)

# Display names, in the vendor pages' spelling.
LICENSE_INTEGRATIONS = (
    "Adobe",
    "Atlassian",
    "Azure Active Directory",
    "Calendly",
    "Cisco Meraki",
    "ClickUp",
    "DocuSign",
    "Dropbox - Business",
    "Freshdesk",
    "GitHub",
    "GitLab",
    "Jira",
    "Jira Service Management",
    "Microsoft 365",
    "Monday.com",
    "OneDrive",
    "Opsgenie",
    "PagerDuty",
    "Qlik Sense",
    "Salesforce",
    "Salesloft",
    "Snowflake",
    "Veeva Vault",
    "Webex",
    "Zoom",
)

LICENSE_FIELD_SUPPORT: dict[str, tuple[str, ...]] = {
    "id": LICENSE_INTEGRATIONS,
    "name": (
        "Adobe",
        "Atlassian",
        "Azure Active Directory",
        "Calendly",
        "ClickUp",
        "DocuSign",
        "Dropbox - Business",
        "Freshdesk",
        "GitHub",
        "GitLab",
        "Jira",
        "Jira Service Management",
        "Microsoft 365",
        "Monday.com",
        "OneDrive",
        "Opsgenie",
        "PagerDuty",
        "Salesforce",
        "Salesloft",
        "Snowflake",
        "Veeva Vault",
        "Webex",
        "Zoom",
    ),
    "assigned_quantity": (
        "Adobe",
        "Azure Active Directory",
        "ClickUp",
        "Dropbox - Business",
        "Freshdesk",
        "GitHub",
        "Jira",
        "Jira Service Management",
        "Microsoft 365",
        "Monday.com",
        "OneDrive",
        "Opsgenie",
        "PagerDuty",
        "Qlik Sense",
        "Salesforce",
        "Veeva Vault",
        "Webex",
        "Zoom",
    ),
    "available_quantity": (
        "Adobe",
        "Azure Active Directory",
        "Cisco Meraki",
        "ClickUp",
        "DocuSign",
        "Dropbox - Business",
        "GitHub",
        "GitLab",
        "Microsoft 365",
        "OneDrive",
        "Opsgenie",
        "PagerDuty",
        "Qlik Sense",
        "Salesforce",
        "Salesloft",
        "Veeva Vault",
    ),
    "is_paid": (
        "Adobe",
        "Atlassian",
        "Calendly",
        "ClickUp",
        "DocuSign",
        "Dropbox - Business",
        "Freshdesk",
        "GitHub",
        "GitLab",
        "Jira",
        "Jira Service Management",
        "Monday.com",
        "Opsgenie",
        "PagerDuty",
        "Qlik Sense",
        "Salesforce",
        "Salesloft",
        "Snowflake",
        "Veeva Vault",
        "Zoom",
    ),
    "status": (
        "Atlassian",
        "Azure Active Directory",
        "Cisco Meraki",
        "Dropbox - Business",
        "GitLab",
        "Microsoft 365",
        "OneDrive",
        "Qlik Sense",
        "Salesforce",
    ),
    "products": ("Atlassian", "Azure Active Directory", "Microsoft 365", "OneDrive"),
    "unit_amount": ("DocuSign",),
    "currency": ("DocuSign",),
    "description": ("PagerDuty",),
    "roles": ("PagerDuty",),
    "created_at": ("Calendly", "Cisco Meraki", "GitLab", "Salesforce", "Snowflake"),
    "updated_at": ("Calendly", "Qlik Sense", "Salesforce"),
}

ORGANIZATION_INTEGRATIONS = (
    "Asana",
    "Atlassian",
    "Auth0",
    "Avalara AvaTax",
    "Buildkite",
    "Cisco Meraki",
    "ClickUp",
    "Coda",
    "Concord",
    "Confluent",
    "Contentful Content Management",
    "DevRev",
    "Microsoft Dynamics 365 Sales",
    "Elastic Cloud",
    "Eventbrite",
    "GitHub",
    "Google Cloud",
    "Hashicorp Terraform Cloud",
    "Hootsuite",
    "JumpCloud",
    "Juniper Mist",
    "Make",
    "Manatal",
    "Meta Marketing API",
    "Monday.com",
    "MongoDB Atlas Admin",
    "Mural",
    "Ninjaone",
    "Pipedrive",
    "Platform.sh",
    "Podio",
    "PostHog",
    "Salesforce",
    "Slab",
    "Snyk",
    "SonarQube Cloud",
    "Supabase",
    "Survey Monkey",
    "Teamwork Project Management",
    "Teamwork Spaces",
    "ThoughtSpot",
    "Torii",
    "Trello",
    "Turso",
    "Webex",
    "Zeplin",
    "Zoho BugTracker",
    "Zoho Projects",
)

# Query parameters the licenses list requires for some integrations.
LICENSES_REQUIRE_ORGANIZATION = ("Cisco Meraki", "ClickUp", "GitHub")
LICENSES_ACCEPT_ORGANIZATION = ("Webex",)
LICENSES_REQUIRE_PRODUCT = ("Microsoft 365",)
MICROSOFT_365_PRODUCTS = ("azure_active_directory", "onedrive")

# Integrations whose ``GET /unified/user-directory/billing`` reports billing periods
# (shared/truto-docs/USERS-NOTES.md); every other one answers as for an unsupported resource.
BILLING_INTEGRATIONS = ("ClickUp", "DocuSign", "Zoom")

# The seat fields the dashboard computes with, and what to call them.
SEAT_FIELDS = {
    "assigned_quantity": "assigned seats",
    "available_quantity": "total seats",
    "is_paid": "paid / free",
    "status": "license status",
    "unit_amount": "vendor price",
}

_SEPARATORS = re.compile(r"[^a-z0-9]+")


def integration_key(name: str | None) -> str:
    """Fold a display or machine name to one comparable key."""
    return _SEPARATORS.sub("", (name or "").lower())


_LABELS = {integration_key(n): n for n in LICENSE_INTEGRATIONS + ORGANIZATION_INTEGRATIONS}


def integration_label(name: str | None) -> str:
    """The display name for a machine name, or the name itself when unknown."""
    if not name:
        return "unknown integration"
    return _LABELS.get(integration_key(name), name)


def _in(name: str | None, names: tuple[str, ...]) -> bool:
    key = integration_key(name)
    return any(integration_key(n) == key for n in names)


def supports_licenses(name: str | None) -> bool | None:
    """True/False when the pages list the integration; None when it is unknown to us."""
    if integration_key(name) in _LABELS:
        return _in(name, LICENSE_INTEGRATIONS)
    return None


def supports_organizations(name: str | None) -> bool | None:
    if integration_key(name) in _LABELS:
        return _in(name, ORGANIZATION_INTEGRATIONS)
    return None


def requires_organization(name: str | None) -> bool:
    return _in(name, LICENSES_REQUIRE_ORGANIZATION)


def requires_product(name: str | None) -> bool:
    return _in(name, LICENSES_REQUIRE_PRODUCT)


def supports_billing(name: str | None) -> bool:
    """True for the integrations whose billing Truto lists (contract periods, renewal dates)."""
    return _in(name, BILLING_INTEGRATIONS)


def supported_license_fields(name: str | None) -> tuple[str, ...] | None:
    """License fields this integration fills, or None when the integration is unknown."""
    if supports_licenses(name) is None:
        return None
    return tuple(f for f, names in LICENSE_FIELD_SUPPORT.items() if _in(name, names))


def unreported_license_fields(name: str | None) -> tuple[str, ...] | None:
    """Seat-relevant license fields this integration does not report (None: unknown)."""
    supported = supported_license_fields(name)
    if supported is None:
        return None
    return tuple(f for f in SEAT_FIELDS if f not in supported)
