"""Plotly figures for the pages, built from the tables lib.analytics computes.

Backgrounds are transparent and colours come from one palette with enough
contrast on both Streamlit's light and dark themes; axes and hovers carry
the currency or the percent sign.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import plotly.graph_objects as go

USED = "#2E7D9A"  # assigned / used
IDLE = "#E8833A"  # unassigned / idle
OVER = "#C23B3B"  # over-allocated
UNKNOWN = "#8C8C8C"  # not reported
PARTIAL = "#9BC3D3"  # partly reported: a lower bound
# One colour per line (mid-luminance: readable on the light and the dark theme), and a marker shape per round of
# colours, so up to len(SERIES) x len(SYMBOLS) lines never share both.
SERIES = (
    "#4C78A8",
    "#F58518",
    "#54A24B",
    "#E45756",
    "#72B7B2",
    "#EECA3B",
    "#B279A2",
    "#FF9DA6",
    "#9D755D",
    "#17BECF",
    "#A0CB41",
    "#BAB0AC",
)
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")


def _safe(values) -> list[str]:
    """Vendor text for tick labels, legends and hovers: Plotly reads a subset of HTML (links, styles) in them."""
    return [html.escape(str(v), quote=False) for v in values]


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        # below the plot (container bottom, margins grow to fit): never under the toolbar at the top right
        legend=dict(orientation="h", yref="container", yanchor="bottom", y=0, x=0, xanchor="left"),
        hoverlabel=dict(namelength=-1),
        **kw,
    )
    fig.update_xaxes(
        gridcolor="rgba(128,128,128,0.25)", zerolinecolor="rgba(128,128,128,0.4)", automargin=True
    )
    fig.update_yaxes(gridcolor="rgba(128,128,128,0.25)", automargin=True)
    return fig


def _money_axis(currency: str) -> dict:
    return dict(title=f"Annual amount ({currency})", tickformat="~s")


def top_idle_spend(top: pd.DataFrame, currency: str) -> go.Figure:
    """Horizontal bars: the licenses with the most idle annual spend."""
    rows = top.iloc[::-1]
    labels = _safe(
        f"{n} ({i})"
        for n, i in zip(rows["license_name"].fillna("(no name)"), rows["integration_label"])
    )
    fig = go.Figure(
        go.Bar(
            x=rows["idle_annual_spend"].astype(float),
            y=labels,
            orientation="h",
            marker_color=IDLE,
            customdata=rows[["unassigned_seats"]]
            .astype("Float64")
            .to_numpy(dtype=float, na_value=float("nan")),
            hovertemplate="%{y}<br>Idle spend: %{x:,.2f} "
            + currency
            + "<br>Unassigned seats: %{customdata[0]:,}"
            "<extra></extra>",
        )
    )
    return _layout(fig, max(260, 32 * len(rows) + 80), xaxis=_money_axis(currency))


def utilization_by_integration(util: pd.DataFrame) -> go.Figure:
    """Bars of seat-weighted utilization per integration, with the assigned and bought seats in the hover."""
    rows = util[util["utilization_pct"].notna()].iloc[::-1]
    colours = [OVER if u > 100 else USED for u in rows["utilization_pct"].astype(float)]
    fig = go.Figure(
        go.Bar(
            x=rows["utilization_pct"].astype(float),
            y=_safe(rows["integration_label"]),
            orientation="h",
            marker_color=colours,
            customdata=rows[["assigned_seats", "total_seats"]]
            .astype("Float64")
            .to_numpy(dtype=float, na_value=float("nan")),
            hovertemplate="%{y}<br>Utilization: %{x:.1f}%<br>Seats assigned: %{customdata[0]:,}"
            "<br>Seats bought: %{customdata[1]:,}<extra></extra>",
        )
    )
    fig.add_vline(x=100, line_dash="dot", line_color=UNKNOWN)
    return _layout(
        fig,
        max(240, 32 * len(rows) + 80),
        xaxis=dict(
            title="Seats assigned ÷ seats bought (%)",
            ticksuffix="%",
            tickformat=".1f",
            rangemode="tozero",
        ),
    )


def spend_by_integration(spend: pd.DataFrame, currency: str) -> go.Figure:
    """Stacked bars per integration: spend on assigned seats, unassigned seats, and not splittable."""
    names = {
        "used": "Assigned seats",
        "idle": "Unassigned seats (idle)",
        "not_reported": "Assigned seats not reported",
        "at_least": "At least: seats bought not reported, at seats assigned",
    }
    colours = {"used": USED, "idle": IDLE, "not_reported": UNKNOWN, "at_least": PARTIAL}
    fig = go.Figure()
    for part in ("used", "idle", "not_reported", "at_least"):
        rows = spend[spend["part"] == part]
        if rows.empty:
            continue
        fig.add_bar(
            x=rows["amount"].astype(float),
            y=_safe(rows["integration_label"]),
            orientation="h",
            name=names[part],
            marker_color=colours[part],
            marker_pattern_shape="/" if part == "at_least" else "",
            hovertemplate="%{y}<br>" + names[part] + ": %{x:,.2f} " + currency + "<extra></extra>",
        )
    n = spend["integration_label"].nunique()
    return _layout(fig, max(260, 34 * n + 100), barmode="stack", xaxis=_money_axis(currency))


def assigned_vs_unassigned(groups: pd.DataFrame, label_col: str, title_col: str = "") -> go.Figure:
    """Stacked bars per group: assigned and unassigned seats over the rows reporting both counts (over-allocation
    in red), and, hatched grey, "partly reported" seats: on rows reporting only seats bought (DocuSign) or only
    seats assigned (Zoom), which are neither 0 nor 100% used. The page draws paid licenses by default, so a free
    tier of thousands of seats does not flatten the rest (a log scale would distort the stacked parts)."""
    rows = groups[groups["total_seats"].notna() | groups["assigned_seats"].notna()].iloc[::-1]
    labels = _safe(rows[label_col].astype("string").fillna("(none)"))

    def num(col):
        return rows[col].astype("Float64").fillna(0).astype(float)

    over = num("over_allocated_seats")
    within = num("utilization_assigned_seats") - over
    partly_bought = num("total_seats") - num("utilization_total_seats")
    partly_assigned = num("assigned_seats") - num("utilization_assigned_seats")
    fig = go.Figure()
    fig.add_bar(
        x=within,
        y=labels,
        orientation="h",
        name="Assigned",
        marker_color=USED,
        hovertemplate="%{y}<br>Assigned (within seats bought): %{x:,}<extra></extra>",
    )
    fig.add_bar(
        x=num("unassigned_seats"),
        y=labels,
        orientation="h",
        name="Bought, not assigned",
        marker_color=IDLE,
        hovertemplate="%{y}<br>Bought, not assigned: %{x:,}<extra></extra>",
    )
    if over.gt(0).any():
        fig.add_bar(
            x=over,
            y=labels,
            orientation="h",
            name="Assigned beyond seats bought",
            marker_color=OVER,
            hovertemplate="%{y}<br>Assigned beyond seats bought: %{x:,}<extra></extra>",
        )
    if (partly_bought + partly_assigned).gt(0).any():
        fig.add_bar(
            x=partly_bought + partly_assigned,
            y=labels,
            orientation="h",
            name="Partly reported (only bought or only assigned)",
            marker_color=UNKNOWN,
            marker_pattern_shape="/",
            customdata=list(zip(partly_bought, partly_assigned)),
            hovertemplate="%{y}<br>Partly reported: %{customdata[0]:,} bought (assigned not reported), "
            "%{customdata[1]:,} assigned (bought not reported)<extra></extra>",
        )
    axis = dict(title="Seats", tickformat=",d")
    return _layout(fig, max(260, 30 * len(rows) + 100), barmode="stack", xaxis=axis)


def savings_by_license(rows: pd.DataFrame, currency: str) -> go.Figure:
    rows = rows.iloc[::-1]
    labels = _safe(
        f"{n} ({i})"
        for n, i in zip(rows["license_name"].fillna("(no name)"), rows["integration_label"])
    )
    fig = go.Figure(
        go.Bar(
            x=rows["potential_annual_savings_reporting"].astype(float),
            y=labels,
            orientation="h",
            marker_color=USED,
            customdata=rows[["total_seats", "recommended_seats"]]
            .astype("Float64")
            .to_numpy(dtype=float, na_value=float("nan")),
            hovertemplate="%{y}<br>Potential savings: %{x:,.2f} "
            + currency
            + "<br>Seats bought: %{customdata[0]:,}<br>Recommended: %{customdata[1]:,}<extra></extra>",
        )
    )
    return _layout(fig, max(260, 30 * len(rows) + 80), xaxis=_money_axis(currency))


def trend_lines(
    history: pd.DataFrame,
    x: str,
    y: str,
    colour: str,
    y_title: str,
    percent: bool = False,
    currency: str | None = None,
) -> go.Figure:
    """One line per group over time."""
    fig = go.Figure()
    for i, (name, rows) in enumerate(history.groupby(colour, observed=True, sort=True)):
        rows = rows.sort_values(x)
        name = _safe([name])[0]
        fig.add_scatter(
            x=rows[x],
            y=rows[y].astype("Float64").astype(float),
            mode="lines+markers",
            name=name,
            connectgaps=False,
            line_color=SERIES[i % len(SERIES)],
            marker=dict(symbol=SYMBOLS[i // len(SERIES) % len(SYMBOLS)], size=7),
            hovertemplate="%{fullData.name}<br>%{x|%Y-%m-%d}: %{y:,.1f}"
            + ("%" if percent else "")
            + (f" {currency}" if currency else "")
            + "<extra></extra>",
        )
    dates = sorted(history[x].unique())
    xaxis: dict[str, Any] = dict(title="Snapshot date", tickformat="%Y-%m-%d")
    if len(dates) <= 14:
        xaxis["tickvals"] = dates  # a few snapshots: mark each, not the hours between them
    axis = dict(title=y_title)
    if percent:
        axis.update(ticksuffix="%", tickformat=".1f")
    if currency:
        axis.update(tickformat="~s")
    # the legend sits below the plot: room for it, so many lines do not squash the plot on a phone
    return _layout(fig, 340 + 22 * len(fig.data), yaxis=axis, xaxis=xaxis)


def renewal_timeline(points: pd.DataFrame, today) -> go.Figure:
    """The year ahead: one row per contract, a diamond at its opt-out deadline (grey once passed)
    and a circle at its renewal; a line marks today. ``points``: renewal_views.timeline."""
    fig = go.Figure()
    styles = {
        ("Opt-out deadline", False): ("diamond", IDLE, "Opt-out deadline"),
        ("Opt-out deadline", True): ("diamond-open", UNKNOWN, "Opt-out deadline (passed)"),
        ("Renewal", False): ("circle", USED, "Renewal"),
    }
    for (kind, passed), (symbol, colour, name) in styles.items():
        rows = points[(points["kind"] == kind) & (points["passed"] == passed)]
        if rows.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=rows["day"],
                y=_safe(rows["label"]),
                mode="markers",
                name=name,
                marker=dict(symbol=symbol, size=13, color=colour, line=dict(width=1, color=colour)),
                customdata=list(zip(_safe(rows["advice"]))),
                hovertemplate=f"{name}: %{{x|%Y-%m-%d}}<br>%{{y}}<br>%{{customdata[0]}}<extra></extra>",
            )
        )
    start = pd.Timestamp(today)
    fig.add_vline(x=start, line=dict(color=OVER, width=1, dash="dot"))
    fig.add_annotation(x=start, y=1, yref="paper", text="Today", showarrow=False, yanchor="bottom")
    labels = points["label"].drop_duplicates().tolist()
    _layout(fig, height=max(260, 40 * len(labels) + 140))
    fig.update_xaxes(
        range=[start - pd.Timedelta(days=14), start + pd.Timedelta(days=366)], title="Date"
    )
    fig.update_yaxes(autorange="reversed", title=None)
    return fig
