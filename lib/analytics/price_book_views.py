"""What the Price book and Spend pages show about prices, exchange rates and price changes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from lib.analytics.rules import needs_price


def unpriced_paid(df: pd.DataFrame) -> pd.DataFrame:
    """Paid (or paid-status-unknown) licenses without a price, one per integration + license name."""
    rows = df[needs_price(df)]
    grouped = (
        rows.groupby(
            ["integration", "integration_label", "license_name"], dropna=False, observed=True
        )
        .agg(
            license_id=("license_id", "first"),
            total_seats=("total_seats", lambda s: s.sum(min_count=1)),  # none reported: not 0
            accounts=("account_id", "nunique"),
        )
        .reset_index()
    )
    return grouped.sort_values(
        ["integration_label", "license_name"], na_position="last"
    ).reset_index(drop=True)


def price_book_rows_for(
    unpriced: pd.DataFrame, currency: str, period: str = "annual"
) -> pd.DataFrame:
    """Price-book rows to fill in for unpriced licenses (price left empty for the user); the
    integration's machine name, and its name in words in ``integration_label`` (not read back).

    A row names its license by name; by ID only when the license has no name (a row must name it).
    """
    nameless = unpriced["license_name"].isna()
    return pd.DataFrame(
        {
            "integration": unpriced["integration"].astype("string"),
            "integration_label": unpriced["integration_label"].astype("string"),
            "license_id": unpriced["license_id"].astype("string").where(nameless, pd.NA),
            "license_name": unpriced["license_name"].astype("string"),
            "unit_price": pd.array([pd.NA] * len(unpriced), dtype="Float64"),
            "currency": pd.array([currency] * len(unpriced), dtype="string"),
            "billing_period": pd.array([period] * len(unpriced), dtype="string"),
        }
    )


def not_converted(df: pd.DataFrame) -> pd.DataFrame:
    """Spend per currency that has no exchange rate (kept in its own currency)."""
    rows = df[df["annual_cost"].notna() & df["annual_cost_reporting"].isna()]
    if rows.empty:
        return pd.DataFrame(
            {
                "currency": pd.Series(dtype="string"),
                "licenses": pd.Series(dtype="Int64"),
                "annual_cost": pd.Series(dtype="Float64"),
                "idle_annual_cost": pd.Series(dtype="Float64"),
            }
        )
    return (
        rows.groupby("currency", observed=True)
        .agg(
            licenses=("license_name", "size"),
            annual_cost=("annual_cost", lambda s: s.sum(min_count=1)),
            idle_annual_cost=("idle_annual_cost", lambda s: s.sum(min_count=1)),
        )
        .reset_index()
    )


def currencies_without_rate(df: pd.DataFrame) -> list[str]:
    """The currencies of the spend :func:`not_converted` leaves in its own currency (no exchange rate)."""
    if df.empty:
        return []
    return sorted(str(c) for c in not_converted(df)["currency"].dropna().unique())


def savings_by_license(df: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    rows = df[df["potential_annual_savings_reporting"].fillna(0) > 0]
    cols = [
        "license_name",
        "integration_label",
        "potential_annual_savings_reporting",
        "total_seats",
        "recommended_seats",
        "assigned_seats",
        "account_id",
        "organization_name",
        "reporting_currency",
    ]
    return (
        rows.sort_values("potential_annual_savings_reporting", ascending=False)[cols]
        .head(n)
        .reset_index(drop=True)
    )


def fx_table(
    rates: dict[str, float], reporting_currency: str, saved: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Exchange rates as an editable table, without the reporting currency's own rate of 1.

    With ``saved`` (``Store.fx_rates_saved()``): when (UTC) and by whom each rate was saved, empty when not known.
    """
    items = sorted((c, r) for c, r in rates.items() if c != reporting_currency)
    out = pd.DataFrame(
        {
            "currency": pd.array([c for c, _ in items], dtype="string"),
            "rate": pd.array([r for _, r in items], dtype="Float64"),
        }
    )
    if saved is not None:
        # a lookup by position, not Series.map: over an empty saved table map() casts the datetimes
        # to float and astype() then raises (the first day: nothing saved yet)
        by = saved.drop_duplicates("currency").set_index("currency")
        at = pd.to_datetime(by["saved_at"], utc=True).astype("datetime64[us, UTC]")
        where = pd.Index(by.index.astype(str)).get_indexer(out["currency"].astype(str))
        found = where >= 0
        saved_at = pd.Series(pd.NaT, index=out.index, dtype="datetime64[us, UTC]")
        saved_at[found] = at.to_numpy()[where[found]]
        saved_by = pd.Series(pd.NA, index=out.index, dtype="string")
        saved_by[found] = by["saved_by"].astype("string").to_numpy()[where[found]]
        out["saved_at"] = saved_at
        out["saved_by"] = saved_by
    return out


def price_book_with_ids(book: pd.DataFrame, licenses: pd.DataFrame) -> pd.DataFrame:
    """The price book with an empty license ID filled from the licenses the dashboard knows.

    Only where the row's integration and name (ignoring case) name licenses with exactly one ID: the row then
    prices the same licenses by ID as by name. Other rows keep an empty ID.
    """
    from lib.integrations import integration_key

    out = book.copy()
    if out.empty or licenses.empty:
        return out
    known = licenses[licenses["license_name"].notna()]
    # a name whose licenses all carry one ID (a license without an ID would no longer be priced by an ID row)
    ids = (
        known.assign(
            _k=known["integration"].astype(str).map(integration_key),
            _n=known["license_name"].astype(str).str.strip().str.casefold(),
        )
        .groupby(["_k", "_n"])["license_id"]
        .agg(lambda s: s.iloc[0] if s.notna().all() and s.nunique() == 1 else pd.NA)
    )
    ids = ids[ids.notna()].to_dict()
    empty = out["license_id"].isna() & out["license_name"].notna()
    keys = zip(
        out["integration"].astype(str).map(integration_key),
        out["license_name"].astype(str).str.strip().str.casefold(),
    )
    found = pd.array([ids.get(k, pd.NA) for k in keys], dtype="string")
    out["license_id"] = out["license_id"].astype("string").where(~empty, found)
    return out


@dataclass(frozen=True)
class PriceTable:
    """The Price book's table: the saved prices, each with its last change, then the paid licenses found
    in Truto without a price, their price left empty (``unpriced``: how many; they are the last rows)."""

    rows: pd.DataFrame
    unpriced: int
    saved: int = 0  # the saved prices: the first rows

    def note(self, can_edit: bool) -> str:
        """What to do next, above the table: price the licenses listed without one, or add the first."""
        n = self.unpriced
        if n:
            return (
                f"{n} paid license{'s' if n != 1 else ''} found in Truto "
                f"{'have' if n != 1 else 'has'} no price yet: {'they are' if n != 1 else 'it is'} the "
                f"last {'rows' if n != 1 else 'row'}, with the price empty. "
                + (
                    "Enter the price per seat and save. A license left without a price is not saved, "
                    "and its spend stays unknown."
                    if can_edit
                    else "An admin can price them here."
                )
            )
        if not self.saved:
            return "No prices yet, and no paid license found in Truto needs one. " + (
                "Add a row for each license you pay for and save, or upload a CSV file below."
                if can_edit
                else "An admin can add them here."
            )
        return ""


def price_table(
    book: pd.DataFrame, audit: pd.DataFrame, metrics: pd.DataFrame, currency: str
) -> PriceTable:
    """The Price book's table (:class:`PriceTable`): ``book`` with its last changes (``audit``) and the
    unpriced paid licenses of ``metrics`` (:func:`unpriced_paid`, Spend's template rows) in ``currency``;
    empty license IDs filled from the licenses the dashboard knows (:func:`price_book_with_ids`)."""
    saved = price_book_changes(book, audit)
    todo = (
        price_book_rows_for(unpriced_paid(metrics), currency)
        if len(metrics)
        else saved[list(book.columns)].iloc[0:0]
    )
    if "integration_label" in todo.columns:  # the editor shows the integration as people type it
        todo = todo.assign(integration=todo["integration_label"])
    todo = todo.assign(
        changed_at=pd.Series(pd.NaT, index=todo.index, dtype="datetime64[us, UTC]"),
        changed_by=pd.array([pd.NA] * len(todo), dtype="string"),
    )
    rows = pd.concat([saved, todo[saved.columns]], ignore_index=True) if len(todo) else saved
    rows = rows.astype(saved.dtypes.to_dict())
    return PriceTable(
        price_book_with_ids(rows, metrics).reset_index(drop=True), len(todo), len(saved)
    )


# The price editor's column headers (the page's column settings and its messages name them alike).
PRICE_EDITOR_HEADERS = {
    "integration": "Integration",
    "license_id": "License ID",
    "license_name": "License name",
    "unit_price": "Price per seat",
    "currency": "Currency",
    "billing_period": "Billing period",
}

_ROW_COLUMN = re.compile(r"^row (\d+), column ([a-z_]+): ")


def table_problem_words(problem: str, headers: dict[str, str]) -> str:
    """A problem found in an editor's table, named as the table shows it: "row 2, column unit_price: ..."
    (the CSV form: the header is row 1) -> "Row 1 of the table, column “Price per seat”: ..."."""

    def where(m: re.Match) -> str:
        return (
            f"Row {int(m.group(1)) - 1} of the table, "
            f"column “{headers.get(m.group(2), m.group(2))}”: "
        )

    text = _ROW_COLUMN.sub(where, problem)
    for column, header in headers.items():
        if "_" in column:
            text = re.sub(rf"\b{column}\b", f"“{header}”", text)
    return text


def _book_records(book: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in rec.items()}
        for rec in book.astype(object).to_dict("records")
    ]


@dataclass(frozen=True)
class ReplacePreview:
    """What replacing the price book with another would do, before it is done (:func:`replace_preview`)."""

    added: int
    changed: int
    removed: list[str]  # the saved rows the new book does not hold: replacing deletes them

    @property
    def nothing(self) -> bool:
        return not (self.added or self.changed or self.removed)

    def words(self, source: str) -> str:
        if self.nothing:
            return f"{source} holds the prices already saved: replacing changes nothing."
        return (
            f"Replacing the price book with {source}: {self.added} added, {self.changed} changed, "
            f"{len(self.removed)} removed."
        )

    def removed_words(self, source: str) -> str:
        n = len(self.removed)
        if not n:
            return ""
        names = ", ".join(self.removed[:5]) + (f" and {n - 5} more" if n > 5 else "")
        return (
            f"{n} saved price{'s are' if n != 1 else ' is'} not in {source}, so replacing "
            f"removes {'them' if n != 1 else 'it'}: {names}."
        )


def replace_preview(saved: pd.DataFrame, new: pd.DataFrame) -> ReplacePreview:
    """What replacing ``saved`` with ``new`` changes, as the audit log will record it
    (:func:`lib.schema.price_book_diff`)."""
    from lib.schema import price_book_diff

    diff = price_book_diff(_book_records(saved), _book_records(new))
    changes = diff["changes"]
    return ReplacePreview(
        added=sum(1 for e in changes if e.get("from") is None),
        changed=sum(1 for e in changes if e.get("from") is not None and e.get("to") is not None),
        removed=[e["row"] for e in changes if e.get("to") is None],
    )


def _audit_detail(text) -> dict:
    import json

    try:
        detail = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return detail if isinstance(detail, dict) else {}


def price_book_changes(book: pd.DataFrame, audit: pd.DataFrame) -> pd.DataFrame:
    """The price book with each row's last change: ``changed_at`` (UTC) and ``changed_by``, empty when the
    audit log does not name the row (a save before rows were named in it).

    A row whose empty license ID was filled in (``ids_filled``) or whose ID changed (``was``) is followed
    to its older name: filling in an ID is not a change of the row's price.
    """
    from lib.schema import price_row_label

    entries = []  # newest first: (at, who, names changed, {new name: old name})
    for at, who, what in zip(audit["at"], _who(audit), audit["detail"]):
        d = _audit_detail(what)
        renamed = {
            e["to"]: e["from"]
            for e in d.get("ids_filled") or []
            if isinstance(e, dict) and "to" in e and "from" in e
        }
        renamed.update(
            {
                e["row"]: e["was"]
                for e in d.get("changes") or []
                if isinstance(e, dict) and "was" in e
            }
        )
        entries.append((at, who, set(d.get("changed") or []), renamed))

    def last_change(label: str) -> tuple:
        for at, who, changed, renamed in entries:
            if label in changed:
                return at, who
            label = renamed.get(label, label)
        return pd.NaT, None

    found = [
        last_change(price_row_label(*r))
        for r in zip(book["integration"], book["license_id"], book["license_name"])
    ]
    out = book.copy()
    out["changed_at"] = pd.Series(
        [f[0] for f in found], index=book.index, dtype="datetime64[us, UTC]"
    )
    out["changed_by"] = pd.array([f[1] for f in found], dtype="string")
    return out


def _who(audit: pd.DataFrame) -> list[str]:
    return [
        "open access (no sign-in)"
        if role == "open"
        else (email if isinstance(email, str) else name if isinstance(name, str) else "unknown")
        for email, name, role in zip(audit["actor_email"], audit["actor_name"], audit["actor_role"])
    ]


def _fmt_num(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


# Audit actions that replace a list of rows: how the change history names them.
_LISTS = {
    "price_book": "Prices",
    "contracts": "Contracts",
    "vendor_contracts": "Contracts prefilled from billing",
}

# The settings as the Price book page names them, and how each value reads.
SETTING_LABELS = {
    "reporting_currency": "Reporting currency",
    "buffer": "Right-sizing buffer",
    "under_used_pct": "Under-used below",
    "at_capacity_pct": "At capacity from",
    "vendor_price_period": "Vendor prices are per",
    "retention_days": "History kept (days)",
}
_PER = {"monthly": "month", "annual": "year"}
_PRICE_FIELDS = {
    "unit_price": "price",
    "currency": "currency",
    "billing_period": "billing period",
    "license_name": "license name",
    "license_id": "license ID",
}
_SHOWN = 5  # changes named in one line of the history; the rest counted


def setting_value(key: str, value) -> str:
    """A setting's value as the history shows it: the buffer and thresholds in percent."""
    if value is None:
        return "(default)"
    if key == "buffer" and isinstance(value, (int, float)):
        return f"{value * 100:g}%"
    if key in ("under_used_pct", "at_capacity_pct") and isinstance(value, (int, float)):
        return f"{value:g}%"
    if key == "vendor_price_period":
        return _PER.get(str(value), str(value))
    return _fmt_num(value)


def setting_words(text: str) -> str:
    """A message naming settings by their keys, with the names the page shows (``under_used_pct`` ->
    "Under-used below")."""
    for key, label in SETTING_LABELS.items():
        text = text.replace(key, f"“{label}”")
    return text


def _price_value(c: str, v) -> str:
    if v is None or v == "":
        return "(none)"
    return _fmt_num(v)


def _price_terms(values: dict) -> str:
    price, cur = values.get("unit_price"), values.get("currency")
    per = _PER.get(str(values.get("billing_period")), str(values.get("billing_period")))
    return f"{_fmt_num(price)} {cur} per {per}"


def _price_change_words(e: dict) -> str:
    row = str(e.get("row", "?"))
    before, after = e.get("from"), e.get("to")
    if not isinstance(before, dict) and isinstance(after, dict):
        return f"{row} added at {_price_terms(after)}"
    if isinstance(before, dict) and not isinstance(after, dict):
        return f"{row} removed (was {_price_terms(before)})"
    before, after = before or {}, after or {}
    parts = [
        f"{_PRICE_FIELDS.get(c, c)} {_price_value(c, before.get(c))} → {_price_value(c, after.get(c))}"
        for c in _PRICE_FIELDS
        if c in before or c in after
    ]
    return f"{row}: {', '.join(parts)}"


def _some(items: list[str]) -> str:
    shown = "; ".join(items[:_SHOWN])
    return shown + (f"; and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def price_book_change_words(d: dict) -> str:
    """A price-book save's audit detail in words: each row added, removed or changed, old → new."""
    items = [_price_change_words(e) for e in d.get("changes") or [] if isinstance(e, dict)]
    filled = len(d.get("ids_filled") or [])
    if filled:
        items.append(
            f"license ID filled in from Truto for {filled} row{'s' if filled != 1 else ''}"
        )
    rows = ""
    if d.get("entries_before") != d.get("entries_after"):
        rows = f" ({d.get('entries_before', '?')} → {d.get('entries_after', '?')} rows)"
    return f"Prices{rows}: " + (_some(items) or "saved unchanged")


def fx_change_words(d: dict) -> str:
    """An exchange-rate save's audit detail in words: each rate old → new."""
    target = d.get("reporting_currency", "?")
    changes = d.get("changes") or {}
    moved = []
    for c, v in sorted(changes.items()):
        if not isinstance(v, dict):
            continue
        old, new = v.get("from"), v.get("to")
        if old is None:
            moved.append(f"{c} {_fmt_num(new)} (new)")
        elif new is None:
            moved.append(f"{c} removed (was {_fmt_num(old)})")
        else:
            moved.append(f"{c} {_fmt_num(old)} → {_fmt_num(new)}")
    what = f"Exchange rates to {target}: " + (", ".join(moved) or "none")
    if d.get("reporting_currency_from"):
        what = f"Reporting currency {d['reporting_currency_from']} → {target}; " + what
        gone = d.get("removed") or {}
        if gone:
            what += (
                f"; the rates to {d['reporting_currency_from']} were removed ("
                + ", ".join(f"{c} {_fmt_num(r)}" for c, r in sorted(gone.items()))
                + ")"
            )
    return what


def _old_fx_words(d: dict) -> str:
    """An entry written before only the changes were logged: the whole table before and after."""
    own = d.get("reporting_currency")  # its own rate of 1 is not a change anyone made
    before = {c: r for c, r in (d.get("before") or {}).items() if c != own}
    after = {c: r for c, r in (d.get("after") or {}).items() if c != own}
    moved = [
        f"{c} {_fmt_num(before[c])} → {_fmt_num(after[c])}"
        if c in before
        else f"{c} {_fmt_num(after[c])} (new)"
        for c in sorted(after)
        if before.get(c) != after[c]
    ]
    moved += [f"{c} removed" for c in sorted(set(before) - set(after))]
    return f"Exchange rates to {d.get('reporting_currency', '?')}: " + (
        ", ".join(moved) or "saved unchanged"
    )


def settings_change_words(d: dict) -> str:
    """A settings save's changes ({setting: {"from", "to"}}) in words, old → new."""
    return "Settings: " + ", ".join(
        f"{SETTING_LABELS.get(k, k)} {setting_value(k, v.get('from'))} → {setting_value(k, v.get('to'))}"
        for k, v in sorted(d.items())
        if isinstance(v, dict)
    )


def change_history(audit: pd.DataFrame) -> pd.DataFrame:
    """The audit log as a table: at (UTC), who, what changed (old → new), newest first."""
    whats = []
    for action, text in zip(audit["action"], audit["detail"]):
        d = _audit_detail(text)
        if action == "price_book" and "changes" in d:
            what = price_book_change_words(d)
        elif action in _LISTS:
            what = f"{_LISTS[action]}: {d.get('entries_before', '?')} → {d.get('entries_after', '?')} rows"
            if d.get("changed"):
                shown = d["changed"][:5]
                what += (
                    "; changed "
                    + ", ".join(shown)
                    + (f" and {len(d['changed']) - 5} more" if len(d["changed"]) > 5 else "")
                )
        elif action == "fx_rates":
            what = fx_change_words(d) if "changes" in d else _old_fx_words(d)
        elif action == "settings":
            what = settings_change_words(d)
        else:
            what = str(action)
        whats.append(what)
    return pd.DataFrame(
        {
            "at": audit["at"].astype("datetime64[us, UTC]"),
            "who": pd.array(_who(audit), dtype="string"),
            "what": pd.array(whats, dtype="string"),
        }
    )
