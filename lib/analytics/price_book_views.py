"""What the Price book and Spend pages show about prices, exchange rates and price changes."""

from __future__ import annotations

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
    integration's machine name, and its name in words in ``integration_label`` (not read back)."""
    return pd.DataFrame(
        {
            "integration": unpriced["integration"].astype("string"),
            "integration_label": unpriced["integration_label"].astype("string"),
            "license_id": pd.array([pd.NA] * len(unpriced), dtype="string"),
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


def _audit_detail(text) -> dict:
    import json

    try:
        detail = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return detail if isinstance(detail, dict) else {}


def price_book_changes(book: pd.DataFrame, audit: pd.DataFrame) -> pd.DataFrame:
    """The price book with each row's last change: ``changed_at`` (UTC) and ``changed_by``, empty when the
    audit log does not name the row (a save before rows were named in it)."""
    from lib.schema import price_row_label

    last: dict[str, tuple] = {}
    for at, who, what in zip(audit["at"], _who(audit), audit["detail"]):
        for label in _audit_detail(what).get("changed", []):
            last.setdefault(label, (at, who))  # newest first: the first mention is the last change
    labels = [
        price_row_label(*r)
        for r in zip(book["integration"], book["license_id"], book["license_name"])
    ]
    out = book.copy()
    out["changed_at"] = pd.Series(
        [last.get(k, (pd.NaT, None))[0] for k in labels],
        index=book.index,
        dtype="datetime64[us, UTC]",
    )
    out["changed_by"] = pd.array([last.get(k, (None, None))[1] for k in labels], dtype="string")
    return out


def _who(audit: pd.DataFrame) -> list[str]:
    return [
        "open access (no sign-in)"
        if role == "open"
        else (email if isinstance(email, str) else name if isinstance(name, str) else "unknown")
        for email, name, role in zip(audit["actor_email"], audit["actor_name"], audit["actor_role"])
    ]


_ACTIONS = {"price_book": "Prices", "fx_rates": "Exchange rates", "settings": "Settings"}


def _fmt_num(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


# Audit actions that replace a list of rows: how the change history names them.
_LISTS = {
    "price_book": "Prices",
    "contracts": "Contracts",
    "vendor_contracts": "Contracts prefilled from billing",
}


def change_history(audit: pd.DataFrame) -> pd.DataFrame:
    """The audit log as a table: at (UTC), who, what changed, newest first."""
    whats = []
    for action, text in zip(audit["action"], audit["detail"]):
        d = _audit_detail(text)
        if action in _LISTS:
            what = f"{_LISTS[action]}: {d.get('entries_before', '?')} → {d.get('entries_after', '?')} rows"
            if d.get("changed"):
                shown = d["changed"][:5]
                what += (
                    "; changed "
                    + ", ".join(shown)
                    + (f" and {len(d['changed']) - 5} more" if len(d["changed"]) > 5 else "")
                )
        elif action == "fx_rates":
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
            what = f"Exchange rates to {d.get('reporting_currency', '?')}: " + (
                ", ".join(moved) or "saved unchanged"
            )
        elif action == "settings":
            what = "Settings: " + ", ".join(
                f"{k} {_fmt_num(v.get('from'))} → {_fmt_num(v.get('to'))}"
                for k, v in sorted(d.items())
                if isinstance(v, dict)
            )
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
