"""What the command line prints: strict JSON (non-finite numbers as null) and the plain-text summary."""

from __future__ import annotations

import json


def _json_ready(value):
    """``value`` with every unknown (None, NA, NaN) and every non-finite number as None: JSON has no NaN."""
    import math

    import pandas as pd

    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, float) and not math.isfinite(number):
            return None
        return number
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def strict_json(value) -> str:
    """Valid JSON (no NaN or Infinity: unknown is null), indented."""
    return json.dumps(_json_ready(value), indent=2, allow_nan=False)


def format_summary(summaries: dict, gaps=None, reclaim=None) -> str:
    """The two summaries side by side, as a plain-text table (amounts in words: never 0 for unknown);
    ``reclaim``: the seat activity's :class:`~lib.analytics.activity.ReclaimSummary` at 90 days."""
    from lib.analytics.labels import amount_words, fmt_pct, fmt_seats, spend_words
    from lib.analytics.spend_gaps import SpendGaps

    a, p = summaries["all_licenses"], summaries["paid_licenses"]
    cur = a.reporting_currency
    if gaps is None:
        import pandas as pd

        gaps = SpendGaps(0.0, pd.DataFrame({"reason": pd.Series(dtype="string")}), cur)

    def money(s, name):
        return amount_words(getattr(s, name), cur, gaps)

    rows = [
        ("License rows", f"{a.licenses:,}", f"{p.licenses:,}"),
        (
            "Seats bought (rows with both counts)",
            fmt_seats(a.utilization_total_seats),
            fmt_seats(p.utilization_total_seats),
        ),
        (
            "Seats assigned (rows with both counts)",
            fmt_seats(a.utilization_assigned_seats),
            fmt_seats(p.utilization_assigned_seats),
        ),
        (
            "Seat utilization (assigned ÷ bought)",
            fmt_pct(a.utilization_pct),
            fmt_pct(p.utilization_pct),
        ),
        (
            "  rows without both seat counts",
            f"{a.rows_without_seat_counts:,}",
            f"{p.rows_without_seat_counts:,}",
        ),
        (
            "Seats bought (every row reporting it)",
            fmt_seats(a.total_seats),
            fmt_seats(p.total_seats),
        ),
        (
            "Seats assigned (every row reporting it)",
            fmt_seats(a.assigned_seats),
            fmt_seats(p.assigned_seats),
        ),
        (
            "Seats bought, not assigned",
            fmt_seats(a.unassigned_seats),
            fmt_seats(p.unassigned_seats),
        ),
        (f"Annual spend ({cur})", spend_words(a, gaps)[0], spend_words(p, gaps)[0]),
        (
            f"Idle annual spend ({cur})",
            money(a, "idle_annual_spend"),
            money(p, "idle_annual_spend"),
        ),
        (
            f"Potential annual savings ({cur})",
            money(a, "potential_annual_savings"),
            money(p, "potential_annual_savings"),
        ),
        (f"True-up exposure ({cur})", money(a, "true_up_exposure"), money(p, "true_up_exposure")),
        # One rule with the pages (rules.needs_price): paid, or paid status not reported, and no price.
        (
            "Paid licenses without a price",
            f"{gaps.count('no_price'):,}",
            f"{gaps.count('no_price'):,}",
        ),
    ]
    rows += [
        (
            f"Flag: {flag.replace('_', ' ')}",
            f"{a.flag_counts.get(flag, 0):,}",
            f"{p.flag_counts.get(flag, 0):,}",
        )
        for flag in a.flag_counts
    ]
    for currency, amount in a.excluded_by_currency.items():
        rows.append(
            (
                f"Left out: no rate for {currency}",
                f"{currency} {amount:,.2f}",
                f"{currency} {p.excluded_by_currency.get(currency, 0):,.2f}",
            )
        )
    width = max(len(r[0]) for r in rows)
    col = max(16, *(len(x) for r in rows for x in r[1:]))
    lines = [f"{'':{width}}  {'All licenses':>{col}}  {'Paid licenses':>{col}}"]
    lines += [f"{label:{width}}  {x:>{col}}  {y:>{col}}" for label, x, y in rows]
    why = spend_words(a, gaps)[2]
    if "Left out or estimated:" in why:
        lines.append(
            "Spend: "
            + why.split("Left out or estimated: ", 1)[1].replace(" The Spend page lists them.", "")
        )
    if reclaim is not None:
        from lib.analytics.activity import reclaim_cost_words

        cost = reclaim_cost_words(reclaim)
        lines.append(
            f"Reclaimable (unused 90 days, never used, departed, invited): "
            f"{reclaim.reclaimable_paid_seats:,} paid seats, {cost} a year; "
            f"{reclaim.departed_paid_users:,} departed users on paid seats "
            f"(of {reclaim.seats:,} seat assignments listed)."
        )
    lines.append(f"Measured: {a.measure}.")
    return "\n".join(lines)
