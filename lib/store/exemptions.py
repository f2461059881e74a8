"""Reclaim exemptions: users and licenses never counted reclaimable (service accounts, break-glass
admins), each with a reason and who set it; every change is in the audit log."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import delete, insert, select, update

from lib.store.settings import SettingsMixin
from lib.store.tables import RECLAIM_EXEMPTIONS, utcnow
from lib.truto.text import unsafe_character

EXEMPTION_KINDS = ("user", "license")
EXEMPTION_COLUMNS: dict[str, str] = {
    "id": "Int64",
    "kind": "string",  # user | license
    "value": "string",  # user: email or id, lower case; license: the license id
    "integration": "string",  # license: its integration (empty: any integration)
    "reason": "string",
    "set_at": "datetime64[us, UTC]",
    "set_by": "string",
}
_MAX_TEXT = 500


class ExemptionError(ValueError):
    """An exemption that cannot be saved; the message names what is wrong."""


def _clean(value, what: str, required: bool = True) -> str | None:
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise ExemptionError(f"{what} is empty")
        return None
    if len(text) > _MAX_TEXT:
        raise ExemptionError(f"{what} is longer than {_MAX_TEXT} characters")
    # the one text rule (lib.truto.text): C0, DEL, C1, bidi, surrogates
    bad = unsafe_character(text)
    if bad:
        raise ExemptionError(
            f"{what} contains control characters ({bad}: a line break, tab, NUL or "
            "text-direction mark); remove it"
        )
    return text


class ExemptionMixin(SettingsMixin):
    def exemptions(self) -> pd.DataFrame:
        """Every exemption (:data:`EXEMPTION_COLUMNS`), oldest first."""
        E = RECLAIM_EXEMPTIONS
        with self._read() as conn:
            rows = conn.execute(select(*(E.c[c] for c in EXEMPTION_COLUMNS)).order_by(E.c.id)).all()
        df = pd.DataFrame([tuple(r) for r in rows], columns=list(EXEMPTION_COLUMNS))
        df["set_at"] = pd.to_datetime(df["set_at"], utc=True)
        return df.astype(EXEMPTION_COLUMNS)

    def add_exemption(
        self, kind: str, value: str, reason: str, actor, integration: str | None = None
    ) -> int:
        """Exempt a user (email or id) or a license (id, optionally of one integration) from
        reclaim; an existing exemption of the same user or license gets the new reason.
        Returns its id. Only admins (or everyone without sign-in) may."""
        self._require_editor(actor)
        if kind not in EXEMPTION_KINDS:
            raise ExemptionError(f"kind must be one of {', '.join(EXEMPTION_KINDS)}, not {kind!r}")
        key = _clean(value, "the user's email or id" if kind == "user" else "the license id")
        assert key is not None
        if kind == "user":
            key = key.lower()
            integration = None
        why = _clean(reason, "the reason")
        scope = _clean(integration, "the integration", required=False)
        E = RECLAIM_EXEMPTIONS
        now = utcnow()
        with self._write() as conn:
            same = conn.execute(
                select(E.c.id).where(
                    E.c.kind == kind,
                    E.c.value == key,
                    E.c.integration.is_(None) if scope is None else E.c.integration == scope,
                )
            ).scalar()
            if same is not None:
                conn.execute(
                    update(E)
                    .where(E.c.id == same)
                    .values(reason=why, set_at=now, set_by=actor.label)
                )
                exemption_id = int(same)
            else:
                exemption_id = int(
                    conn.execute(
                        insert(E)
                        .values(
                            kind=kind,
                            value=key,
                            integration=scope,
                            reason=why,
                            set_at=now,
                            set_by=actor.label,
                        )
                        .returning(E.c.id)
                    ).scalar_one()
                )
            # A user's email or id is personal data: the audit entry names the exemption, not them.
            detail = {"id": exemption_id, "kind": kind, "reason": why, "integration": scope}
            if kind == "license":
                detail["license_id"] = key
            self._audit(conn, actor, "exemption_set", detail)
        return exemption_id

    def remove_exemption(self, exemption_id: int, actor) -> bool:
        """Remove one exemption; False when there was none with that id."""
        self._require_editor(actor)
        E = RECLAIM_EXEMPTIONS
        with self._write() as conn:
            gone = conn.execute(delete(E).where(E.c.id == int(exemption_id))).rowcount
            if gone:
                self._audit(conn, actor, "exemption_removed", {"id": int(exemption_id)})
        return bool(gone)
