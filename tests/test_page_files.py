"""Page files read like layouts: they draw what lib returns and never reach the store themselves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_FILES = sorted((ROOT / "pages").glob("*.py"))


def test_there_are_pages_to_check():
    assert len(PAGE_FILES) >= 6


def test_no_page_calls_the_store():
    """Reads go through the View (view.fx_rates, view.audit_log...), saves through lib.ui.workflows."""
    for path in PAGE_FILES:
        text = path.read_text()
        found = re.findall(r".*(?:\.store\b|\bstore\.|\bStore\b).*", text)
        assert not found, f"{path.name} reaches the store: {found}"


def test_the_check_would_catch_a_store_call():
    pattern = r".*(?:\.store\b|\bstore\.|\bStore\b).*"
    for line in (
        "view.store.save_settings(x, a)",
        "from lib.store import Store",
        "store.get_fx_rates()",
    ):
        assert re.findall(pattern, line), line
    assert not re.findall(pattern, '"""Trends from the stored snapshots."""')
