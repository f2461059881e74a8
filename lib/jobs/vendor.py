"""Contracts prefilled from the vendor: each fetch's billing records (ClickUp, DocuSign, Zoom) read
into contracts with source ``vendor`` and saved so that edited contracts win.

The rule that an edited contract wins over a vendor one is
:func:`lib.analytics.vendor_contracts.merge_contracts`; the store applies it inside the transaction
that replaces the vendor contracts (:meth:`lib.store.Store.replace_vendor_contracts`). Both ways a
fetch reaches the store call this module: :func:`lib.jobs.refresh.refresh` (the sync, the app's
Refresh) and the demo history's seeding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from lib.analytics.contracts import empty_contracts
from lib.analytics.vendor_contracts import contracts_from_billing, merge_contracts
from lib.auth import Actor
from lib.integrations import integration_label
from lib.schema import PROBLEM_COLUMNS
from lib.truto.normalize import Problem, problems_table
from lib.truto.outcomes import FetchResult

log = logging.getLogger(__name__)

# Who the audit log names for the vendor contracts a fetch saves.
SYNC_ACTOR = Actor(email=None, name="Truto sync (billing)", role="admin")


@dataclass
class VendorContracts:
    """What one fetch's billing gave: the vendor contracts, the accounts they replace (every account
    whose billing was listed completely), and the problems of its records: those that could not be
    used, and those that name another account than the one whose listing returned them."""

    contracts: pd.DataFrame = field(default_factory=empty_contracts)
    accounts: list[str] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)


def vendor_contracts(result: FetchResult) -> VendorContracts:
    """The vendor contracts of a fetch; each unusable billing record, and each naming another
    account, is one problem of the account whose listing returned it."""
    out = VendorContracts()
    frames = []
    for listing in result.billing:
        prefill = contracts_from_billing(
            listing.records,
            integration=integration_label(listing.integration),  # shown as people name it
            account_id=listing.account_id,
        )
        out.accounts.append(listing.account_id)
        if len(prefill.contracts):
            frames.append(prefill.contracts)
        out.skipped.extend(
            Problem(
                listing.account_id,
                integration_label(listing.integration),
                "billing",
                None,
                "billing",
                kind,
                message,
            )
            for kind, messages in (
                ("unusable_billing", prefill.skipped),
                ("account_mismatch", prefill.mismatched),
            )
            for message in messages
        )
    if frames:
        out.contracts = pd.concat(frames, ignore_index=True)
    return out


def with_billing_problems(result: FetchResult, found: VendorContracts) -> None:
    """Add the unusable billing records to the fetch's problems (stored with its snapshot)."""
    if found.skipped:
        extra = problems_table(found.skipped)
        result.problems = pd.concat([result.problems, extra], ignore_index=True).astype(
            PROBLEM_COLUMNS
        )
        counts = pd.Series([p.account_id for p in found.skipped]).value_counts().to_dict()
        for o in result.outcomes:
            o.problems += int(counts.get(o.account_id, 0))
        if len(result.accounts):
            more = result.accounts["account_id"].map(lambda a: int(counts.get(a, 0)))
            result.accounts["problems"] = (result.accounts["problems"] + more).astype(
                result.accounts["problems"].dtype
            )


def prepare(result) -> VendorContracts | None:
    """The vendor contracts of a fetch, its unusable records added to its problems; None when the
    result is not a fetch's or its billing could not be read (the snapshot is written all the same)."""
    if not isinstance(result, FetchResult):
        return None
    try:
        found = vendor_contracts(result)
    except Exception as exc:  # noqa: BLE001  (records no check foresaw: keep the snapshot)
        log.warning(
            "the billing records could not be read (%s); vendor contracts kept", type(exc).__name__
        )
        return None
    with_billing_problems(result, found)
    return found


def save_vendor_contracts(store, found: VendorContracts | None) -> int:
    """Replace the stored vendor contracts of the accounts listed; edited ones win and stay."""
    if found is None or not found.accounts:
        return 0
    try:
        saved = store.replace_vendor_contracts(
            found.contracts, found.accounts, SYNC_ACTOR, merge_contracts
        )
    except ValueError as exc:  # not in the checked shape: a bug, never the sync's failure
        log.warning("vendor contracts not saved: %s", exc)
        return 0
    log.info(
        "vendor contracts: %d from the billing of %d accounts (%d records skipped, %d naming "
        "another account)",
        saved,
        len(found.accounts),
        sum(p.kind == "unusable_billing" for p in found.skipped),
        sum(p.kind == "account_mismatch" for p in found.skipped),
    )
    return saved
