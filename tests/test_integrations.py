"""The integration catalogue agrees with the vendor pages in ../shared/truto-docs."""

import re
from pathlib import Path

import pytest

from lib import integrations as I

DOCS = Path(__file__).resolve().parents[2] / "shared" / "truto-docs"


def _support_lists(path: Path) -> dict[str, list[tuple[str, str]]]:
    """field -> [(integration, supported|required)] for each top-level field with a support list."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    out: dict[str, list[tuple[str, str]]] = {}
    for i, line in enumerate(lines):
        m = re.match(
            r"^([a-z_]+)(string|number|boolean|object\[\]|string\[\]|string · date-time|string · uuid|Record<.*>)$",
            line,
        )
        if not m or m.group(1) in out:
            continue
        # the support count follows within a few lines, before the next field starts
        for j in range(i + 1, min(i + 10, len(lines))):
            if re.match(r"^\d+ supported", lines[j]):
                k, names = j + 1, []
                while k + 1 < len(lines) and lines[k + 1] in ("supported", "required"):
                    names.append((lines[k], lines[k + 1]))
                    k += 2
                out[m.group(1)] = names
                break
            if re.match(r"^[a-z_]+(string|number|boolean|object)", lines[j]):
                break
    return out


needs_docs = pytest.mark.skipif(
    not (DOCS / "user-directory-licenses-list.txt").is_file(),
    reason="../shared/truto-docs is not beside this checkout",
)


@needs_docs
def test_license_field_support_matches_vendor_page():
    lists = _support_lists(DOCS / "user-directory-licenses-list.txt")
    for fieldname, names in I.LICENSE_FIELD_SUPPORT.items():
        assert sorted(n for n, _ in lists[fieldname]) == sorted(names), fieldname
    assert sorted(n for n, r in lists["organization_id"] if r == "required") == sorted(
        I.LICENSES_REQUIRE_ORGANIZATION
    )
    assert sorted(n for n, r in lists["organization_id"] if r == "supported") == sorted(
        I.LICENSES_ACCEPT_ORGANIZATION
    )
    assert [n for n, r in lists["product"] if r == "required"] == list(I.LICENSES_REQUIRE_PRODUCT)


@needs_docs
def test_organization_support_matches_vendor_page():
    lists = _support_lists(DOCS / "user-directory-organizations-list.txt")
    assert sorted(n for n, _ in lists["id"]) == sorted(I.ORGANIZATION_INTEGRATIONS)


@pytest.mark.parametrize("name", ["Cisco Meraki", "ciscomeraki", "cisco_meraki", "CISCO-MERAKI"])
def test_names_match_tolerantly(name):
    assert I.requires_organization(name) and I.integration_label(name) == "Cisco Meraki"


def test_support_questions():
    assert I.requires_product("microsoft365") and not I.requires_product("github")
    assert I.supports_licenses("zoom") is True and I.supports_licenses("asana") is False
    assert I.supports_licenses("never-heard-of-it") is None
    assert I.unreported_license_fields("atlassian") == (
        "assigned_quantity",
        "available_quantity",
        "unit_amount",
    )
    assert I.unreported_license_fields("docusign") == ("assigned_quantity", "status")
    assert I.unreported_license_fields("nope") is None
