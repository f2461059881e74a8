"""The view layer: filters, freshness, tiles, attention and page tables, on hand-made rows."""

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from lib.analytics import groupings
from lib.analytics import views as D
from lib.analytics.metrics import MetricOptions, add_metrics
from lib.analytics.rules import needs_price
from lib.analytics.totals import summarize
from lib.analytics.trends import trend_frame
from lib.schema import LICENSE_COLUMNS
from lib.truto.normalize import Listing, build_license_table

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _table():
    listings = [
        Listing(
            "gh",
            "github",
            "t1",
            [
                {
                    "id": "ent",
                    "name": "Enterprise",
                    "assigned_quantity": 12,
                    "available_quantity": 10,
                    "is_paid": True,
                },
                {
                    "id": "free",
                    "name": "Free",
                    "assigned_quantity": 3,
                    "available_quantity": 3,
                    "is_paid": False,
                },
            ],
            NOW - timedelta(minutes=12),
            "o1",
            "platform",
        ),
        Listing(
            "m365",
            "microsoft365",
            "t2",
            [
                {
                    "id": "e3",
                    "name": "E3",
                    "assigned_quantity": 20,
                    "available_quantity": 100,
                    "status": "active",
                },
                {
                    "id": "old",
                    "name": '=HYPERLINK("x")',
                    "assigned_quantity": 1,
                    "available_quantity": 2,
                    "status": "inactive",
                },
            ],
            NOW - timedelta(hours=3),
            product="azure_active_directory",
        ),
    ]
    df, _ = build_license_table(listings)
    book = pd.DataFrame(
        {
            "integration": ["GitHub", "Microsoft 365"],
            "license_id": ["ent", pd.NA],
            "license_name": [pd.NA, "E3"],
            "unit_price": [10.0, 100.0],
            "currency": ["USD", "EUR"],
            "billing_period": ["monthly", "annual"],
        }
    )
    return add_metrics(df, book, MetricOptions(fx_rates={"EUR": 1.5}))


def _accounts():
    return pd.DataFrame(
        {
            "account_id": ["gh", "m365", "zoom"],
            "integration": ["github", "microsoft365", "zoom"],
            "integration_label": ["GitHub", "Microsoft 365", "Zoom"],
            "tenant_id": ["t1", "t2", "t2"],
            "outcome": ["ok", "ok", "needs_reauth"],
            "message": ["", "", "token revoked"],
            "action": ["", "", "Reconnect this account in Truto."],
            "fetched_at": pd.to_datetime(
                [NOW - timedelta(minutes=12), NOW - timedelta(hours=3), NOW], utc=True
            ),
        }
    )


def test_filters_each_narrow_the_rows():
    df = _table()
    assert len(D.apply_filters(df, D.Filters())) == 4
    assert set(D.apply_filters(df, D.Filters(tenants=("t1",)))["license_id"]) == {"ent", "free"}
    assert set(D.apply_filters(df, D.Filters(integrations=("Microsoft 365",)))["license_id"]) == {
        "e3",
        "old",
    }
    assert set(D.apply_filters(df, D.Filters(accounts=("gh",)))["account_id"]) == {"gh"}
    # paid: GitHub Enterprise (vendor says paid) and E3 (vendor silent, priced); not Free, not the unpriced one
    assert set(D.apply_filters(df, D.Filters(paid_only=True))["license_id"]) == {"ent", "e3"}
    assert set(D.apply_filters(df, D.Filters(active_only=True))["license_id"]) == {
        "ent",
        "free",
        "e3",
    }
    assert set(D.apply_filters(df, D.Filters(search="ENTER"))["license_id"]) == {"ent"}
    assert set(D.apply_filters(df, D.Filters(search="platform"))["license_id"]) == {"ent", "free"}
    assert D.apply_filters(df, D.Filters(search="nothing like this")).empty
    assert D.Filters(search=" e3 ").describe() == "name contains “e3”"


def test_freshness_headline_and_per_account():
    acc = _accounts()
    fresh = D.freshness(acc, now=NOW)
    assert fresh.headline == "fetched 3 hours ago to just now"
    assert [t for _, t in fresh.per_account] == [
        "fetched 3 hours ago",
        "fetched 12 minutes ago",
        "fetched just now",
    ]
    same = D.freshness(acc.iloc[:1], now=NOW)
    assert same.headline == "fetched 12 minutes ago" and same.per_account == []


@pytest.mark.parametrize(
    "seconds, text",
    [
        (5, "just now"),
        (60, "1 minute ago"),
        (3599, "59 minutes ago"),
        (7200, "2 hours ago"),
        (3 * 86400, "3 days ago"),
    ],
)
def test_humanize_age(seconds, text):
    assert D.humanize_age(seconds) == text


def test_kpi_tiles_show_summary_figures_and_not_reported():
    df = _table()
    s = summarize(df)
    tiles = {
        t.label: t.value
        for t in D.kpi_tiles(s, D.spend_gaps(df, MetricOptions(fx_rates={"EUR": 1.5})))
    }
    assert tiles["Seats bought"] == f"{s.total_seats:,}" == "115"
    assert tiles["Seats assigned"] == "36"
    assert tiles["Seat utilization"] == "31.3%"  # 36 / 115
    # GitHub Enterprise: 10/month x 12 x 10 seats = 1,200 USD; E3: 100 EUR x 100 x 1.5 = 15,000 USD;
    # the inactive M365 license has no price (paid status not reported), so the total is a lower bound.
    assert tiles["Annual spend (USD)"] == "≥ USD 16,200"
    assert tiles["Over-allocated licenses"] == "1"
    empty = summarize(df.iloc[0:0])
    assert {t.label: t.value for t in D.kpi_tiles(empty)}["Seats bought"] == "not reported"


def test_attention_lists_failures_over_allocation_and_unpriced():
    df = _table()
    items = D.attention(
        df, _accounts(), pd.DataFrame({"account_id": []}), summarize(df), MetricOptions()
    )
    kinds = [i.kind for i in items]
    assert kinds[0] == "failed_accounts" and "needs reauthorisation" in items[0].text
    assert (
        "over_allocated" in kinds
        and "Enterprise (GitHub)" in items[kinds.index("over_allocated")].text
    )
    unpriced = items[kinds.index("unpriced")]
    assert (
        unpriced.count == 1 and unpriced.page == "price_book"
    )  # the inactive M365 license: paid status unknown
    assert items[kinds.index("under_used")].page == "utilization"


def test_utilization_table_puts_over_allocation_first():
    rows = D.utilization_table(_table())
    assert rows.loc[0, "flag"] == "over_allocated" and rows.loc[0, "license_name"] == "Enterprise"


def test_unpriced_paid_gives_a_price_book_template():
    unpriced = D.unpriced_paid(_table())
    tpl = D.price_book_rows_for(unpriced, "USD")
    assert list(tpl.columns) == [
        "integration",
        "integration_label",
        "license_id",
        "license_name",
        "unit_price",
        "currency",
        "billing_period",
    ]
    assert tpl["unit_price"].isna().all() and list(tpl["integration"]) == ["microsoft365"]
    assert list(tpl["integration_label"]) == ["Microsoft 365"]


def test_not_converted_lists_currencies_without_a_rate():
    df = _table()
    assert D.not_converted(df).empty
    book = pd.DataFrame(
        {
            "integration": ["GitHub"],
            "license_id": ["ent"],
            "license_name": [pd.NA],
            "unit_price": [5.0],
            "currency": ["CHF"],
            "billing_period": ["annual"],
        }
    )
    df2 = add_metrics(df[list(LICENSE_COLUMNS)], book, MetricOptions())
    nc = D.not_converted(df2)
    assert list(nc["currency"]) == ["CHF"] and float(nc["annual_cost"].iloc[0]) == 50.0


def test_accounts_view_says_which_fields_are_not_reported():
    view = D.accounts_view(_accounts())
    by = dict(zip(view["account_id"], view["fields_not_reported"]))
    assert by["gh"] == "license status, vendor price"
    assert "total seats" in by["zoom"]


def test_markdown_escape_makes_vendor_text_inert():
    text = D.md_escape("![x](http://evil.example/p.png) **bold** <b>")
    assert "![" not in text and "](" not in text and "**" not in text and "<b>" not in text


def test_trend_frame_sums_and_weights_utilization():
    hist = pd.DataFrame(
        {
            "taken_at": pd.to_datetime(
                ["2026-10-01", "2026-10-01", "2026-11-01", "2026-11-01"], utc=True
            ),
            "integration_label": ["GitHub", "GitHub", "GitHub", "GitHub"],
            "license_name": ["A", "B", "A", "B"],
            "license_id": ["a", "b", "a", "b"],
            "assigned_seats": pd.array([5, 3, 8, None], dtype="Int64"),
            "total_seats": pd.array([10, 10, 10, 10], dtype="Int64"),
            "annual_cost_reporting": pd.array([100.0, None, 100.0, None], dtype="Float64"),
        }
    )
    t = trend_frame(hist, "integration")
    assert list(t["assigned_seats"]) == [8, 8] and list(t["total_seats"]) == [20, 20]
    assert list(t["utilization_pct"]) == [40.0, 80.0]  # November: only A reports both (8/10)
    per_license = trend_frame(hist, "license")
    assert pd.isna(
        per_license.set_index(["taken_at", "license_name"]).loc[
            (pd.Timestamp("2026-11-01", tz="UTC"), "B"), "assigned_seats"
        ]
    )


def test_seat_tiles_lead_with_paid_licenses_and_divide_to_their_utilization():
    df = _table()
    tiles = {t.label: t for t in D.kpi_tiles(summarize(df, paid_only=True))}
    # paid: GitHub Enterprise (12 of 10) and E3 (20 of 100) -> 32 of 110 = 29.1%
    assert (tiles["Seats assigned"].value, tiles["Seats bought"].value) == ("32", "110")
    # The tile says which rule makes a license paid, and what it leaves apart: the M365 license
    # without a paid status or a price ("old") is neither paid nor free.
    assert tiles["Seat utilization"].value == "29.1%" and tiles["Seat utilization"].note == (
        "paid licenses (marked paid, or priced above 0); 1 not known (counted apart)"
    )
    assert D.PAID_WORDS in tiles["Seats bought"].help
    assert "1 license(s) whose vendor does not say and that have no price are not known" in (
        tiles["Seats bought"].help
    )
    assert "32 seats assigned ÷ 110 seats bought = 29.1%" in tiles["Seat utilization"].help
    assert "Over the 2 paid license rows that report both" in tiles["Seat utilization"].help
    every = {t.label: t for t in D.kpi_tiles(summarize(df))}
    assert (
        every["Seat utilization"].value == "31.3%"
        and every["Seat utilization"].note == "all licenses"
    )


def _partly_reported():
    """Zoom: 140 assigned, seats bought not reported, 219.90 a year; Atlassian: priced, no counts; DocuSign:
    25 bought, assigned not reported, 40 EUR a month from the vendor."""
    listings = [
        Listing(
            "zm",
            "zoom",
            "t1",
            [
                {
                    "id": "zb",
                    "name": "Zoom Workplace Business",
                    "assigned_quantity": 140,
                    "is_paid": True,
                },
                {"id": "zf", "name": "Zoom Basic", "assigned_quantity": 310, "is_paid": False},
            ],
            NOW,
        ),
        Listing("at", "atlassian", "t1", [{"id": "j", "name": "Jira", "is_paid": True}], NOW),
        Listing(
            "ds",
            "docusign",
            "t1",
            [
                {
                    "id": "d",
                    "name": "Business Pro",
                    "available_quantity": 25,
                    "is_paid": True,
                    "unit_amount": 40,
                    "currency": "EUR",
                }
            ],
            NOW,
        ),
        Listing(
            "sf",
            "salesforce",
            "t1",
            [
                {
                    "id": "c",
                    "name": "Chatter Free",
                    "assigned_quantity": 240,
                    "available_quantity": 5000,
                    "is_paid": False,
                },
                {
                    "id": "s",
                    "name": "Sales Cloud",
                    "assigned_quantity": 88,
                    "available_quantity": 120,
                    "is_paid": True,
                },
            ],
            NOW,
        ),
    ]
    df, _ = build_license_table(listings)
    book = pd.DataFrame(
        {
            "integration": ["Zoom", "Atlassian", "Salesforce"],
            "license_id": [pd.NA] * 3,
            "license_name": ["Zoom Workplace Business", "Jira", "Sales Cloud"],
            "unit_price": [219.90, 90.36, 165.0],
            "currency": ["USD"] * 3,
            "billing_period": ["annual", "annual", "monthly"],
        }
    )
    options = MetricOptions(fx_rates={"EUR": 1.08})
    return add_metrics(df, book, options), options


def test_spend_counts_seats_assigned_as_a_lower_bound_where_seats_bought_are_not_reported():
    df, options = _partly_reported()
    gaps = D.spend_gaps(df, options)
    assert gaps.floor == 30_786.0  # 140 x 219.90
    by_reason = dict(zip(gaps.left_out["license_name"], gaps.left_out["reason"]))
    assert by_reason == {"Zoom Workplace Business": "bought_not_reported", "Jira": "no_seat_counts"}
    s = summarize(df, paid_only=True)
    # Sales Cloud 165 x 12 x 120 = 237,600; DocuSign 40 x 12 x 25 x 1.08 = 12,960; + Zoom's 30,786 at least
    assert s.annual_spend == 250_560.0
    value, note, why = D.spend_words(s, gaps)
    assert value == "at least USD 281,346"
    assert note == "1 at seats assigned; 1 without seat counts"
    assert (
        "counted at seats assigned × price (USD 30,786)" in why and "report no seat counts" in why
    )
    chart = D.spend_chart_rows(groupings.spend_by_integration(df, options, paid_only=True), gaps)
    zoom = chart[chart["integration_label"] == "Zoom"]
    assert list(zoom["part"]) == ["at_least"] and list(zoom["amount"]) == [30_786.0]


def test_an_unknown_amount_never_reads_0():
    df, options = _partly_reported()
    atl = D.apply_filters(df, D.Filters(integrations=("Atlassian",)))
    gaps = D.spend_gaps(atl, options)
    s = summarize(atl, paid_only=True)
    assert D.spend_words(s, gaps)[0] == "not known"
    assert D.amount_words(s.idle_annual_spend, "USD", gaps) == "not known"
    # Free licenses alone: known to cost nothing.
    free = D.apply_filters(df, D.Filters(search="Chatter"))
    assert D.spend_words(summarize(free), D.spend_gaps(free, options))[0] == "USD 0.00"


def test_free_licenses_are_shown_as_free_and_not_in_attention_or_savings():
    df, options = _partly_reported()
    chatter = df[df["license_name"] == "Chatter Free"].iloc[0]
    assert chatter["flag"] == "free" and pd.isna(chatter["recommended_seats"])
    items = D.attention(
        df, _accounts().iloc[0:0], pd.DataFrame({"account_id": []}), summarize(df), options
    )
    assert all("Chatter" not in i.text and "Zoom Basic" not in i.text for i in items)
    assert "Chatter Free" not in set(D.savings_by_license(df)["license_name"])
    assert D.FLAG_DISPLAY["free"].startswith("Free")


def test_licenses_without_seat_counts_are_never_nothing_to_attend_to():
    df, options = _partly_reported()
    atl = D.apply_filters(df, D.Filters(integrations=("Atlassian",)))
    items = D.attention(
        atl, _accounts().iloc[0:0], pd.DataFrame({"account_id": []}), summarize(atl), options
    )
    assert [i.kind for i in items] == ["not_reported"]
    assert (
        "1 license(s) report no seat counts" in items[0].text
        and "Jira (Atlassian)" in items[0].text
    )
    assert "their spend is unknown" in items[0].text


def test_zoom_empty_states_are_true_of_zoom():
    df, options = _partly_reported()
    zoom = D.apply_filters(df, D.Filters(integrations=("Zoom",)))
    gaps = D.spend_gaps(zoom, options)
    assert not D.spend_chart_rows(
        groupings.spend_by_integration(zoom, options, paid_only=True), gaps
    ).empty
    text = D.savings_empty_text(zoom)
    assert text.startswith("No savings can be computed") and "within its buffer" not in text
    atl = D.apply_filters(df, D.Filters(integrations=("Atlassian",)))
    assert "1 report no seat counts" in D.spend_chart_empty_text(atl, D.spend_gaps(atl, options))
    nothing = D.apply_filters(df, D.Filters(search="Zoom Basic"))
    assert D.spend_chart_empty_text(nothing, D.spend_gaps(nothing, options)).startswith(
        "No paid license here has a price"
    )
    sales = D.apply_filters(df, D.Filters(integrations=("Salesforce",)))
    assert D.savings_by_license(sales).empty is False


def test_all_priced_rows_lists_only_priced_rows_with_price_from_in_words():
    df, _ = _partly_reported()
    rows = D.priced_rows(df)
    assert set(rows["license_name"]) == {
        "Zoom Workplace Business",
        "Jira",
        "Business Pro",
        "Sales Cloud",
    }
    assert set(rows["price_source_label"]) == {"Price book", "Vendor price"}
    assert set(rows["price_source"]) == {"price_book", "vendor"}  # one meaning per column name


def test_charts_escape_vendor_text():
    from lib.analytics.groupings import top_idle_spend
    from lib.ui import charts

    df = _table()
    df.loc[df["license_id"] == "e3", "license_name"] = '<a href="http://evil.example">Renew</a>'
    fig = charts.top_idle_spend(top_idle_spend(df, 5), "USD")
    labels = " ".join(map(str, fig.data[0].y))
    assert "<a " not in labels and "&lt;a href" in labels


def test_attention_names_a_license_without_a_name_by_its_id():
    df = _table()
    df["license_name"] = df["license_name"].astype("string")
    df.loc[df["license_id"] == "ent", "license_name"] = pd.NA
    items = D.attention(
        df, _accounts(), pd.DataFrame({"account_id": []}), summarize(df), MetricOptions()
    )
    over = next(i for i in items if i.kind == "over_allocated")
    assert "ent (GitHub)" in over.text


def test_not_reported_stays_not_reported_in_page_tables():
    listings = [
        Listing("at", "atlassian", "t1", [{"id": "j", "name": "Jira", "is_paid": True}], NOW)
    ]
    df, _ = build_license_table(listings)
    df = add_metrics(df, None, MetricOptions())
    rows = D.unpriced_paid(df)
    assert len(rows) == 1 and pd.isna(rows.loc[0, "total_seats"])  # not 0


def test_unpriced_rule_is_the_same_for_attention_table_and_tile():
    df = _table()
    count = int(needs_price(df).sum())
    assert count == len(D.unpriced_paid(df)) == 1
    gaps = D.spend_gaps(df, MetricOptions(fx_rates={"EUR": 1.5}))
    assert gaps.count("no_price") == count
    tiles = {t.label: t for t in D.kpi_tiles(summarize(df), gaps)}
    assert tiles["Annual spend (USD)"].note.startswith("at least: 1 paid without a price")


def test_trend_utilization_rounds_half_up_like_everywhere_else():
    hist = pd.DataFrame(
        {
            "taken_at": pd.to_datetime(["2026-11-01"], utc=True),
            "integration_label": ["X"],
            "license_name": ["A"],
            "license_id": ["a"],
            "assigned_seats": pd.array([1], dtype="Int64"),
            "total_seats": pd.array([16], dtype="Int64"),
        }
    )
    assert float(trend_frame(hist)["utilization_pct"].iloc[0]) == 6.3


def test_seats_chart_draws_partly_reported_licenses_apart():
    from lib.ui import charts

    df, options = _partly_reported()
    groups = groupings.group_summary(df, ["integration_label"], options)
    fig = charts.assigned_vs_unassigned(groups, "integration_label")
    bars = {t.name: dict(zip(t.y, t.x)) for t in fig.data}
    partly = bars["Partly reported (only bought or only assigned)"]
    assert (
        partly["DocuSign"] == 25 and partly["Zoom"] == 450
    )  # bought only; assigned only (140 + 310)
    assert (
        bars["Assigned"]["Zoom"] == 0 and bars["Bought, not assigned"]["DocuSign"] == 0
    )  # not 100%, not 0%
    assert (
        bars["Assigned"]["Salesforce"] == 328 and bars["Bought, not assigned"]["Salesforce"] == 4792
    )
    paid = groupings.group_summary(df, ["integration_label"], options, paid_only=True)
    assert (
        paid.set_index("integration_label").loc["Salesforce", "total_seats"] == 120
    )  # paid-only default


def test_accounts_view_puts_failed_accounts_first_with_their_last_good_fetch():
    acc = _accounts()
    acc["data_as_of"] = acc["fetched_at"]
    acc.loc[acc["account_id"] == "zoom", "data_as_of"] = NOW - timedelta(days=2)
    view = D.accounts_view(acc)
    assert view["account_id"].iloc[0] == "zoom"
    z = view.iloc[0]
    assert z["fetched_at"] == NOW - timedelta(days=2) and z["last_attempt_at"] == NOW
    # What to do before the long "What happened" (in view at 1440 px); the integration is in the name.
    assert list(view.columns[:4]) == ["account_id", "outcome", "action", "message"]


def test_headers_name_the_reporting_currency():
    h = D.headers(["annual_cost_reporting", "at_least"], "EUR")
    assert h == {
        "annual_cost_reporting": "Annual cost of seats bought (EUR)",
        "at_least": "At least (EUR)",
    }


# ------------------------------------------------------------------ issue 9: trends, price book, phone, dark theme


def _history(groups: int) -> pd.DataFrame:
    dates = pd.to_datetime(["2026-09-01", "2026-10-01"], utc=True)
    return pd.DataFrame(
        {
            "taken_at": [d for _ in range(groups) for d in dates],
            "label": [f"License {g:02d}" for g in range(groups) for _ in dates],
            "utilization_pct": pd.array(
                [50.25 + g for g in range(groups) for _ in dates], dtype="Float64"
            ),
        }
    )


def test_trend_lines_give_every_line_its_own_colour_and_marker():
    from lib.ui import charts

    fig = charts.trend_lines(
        _history(14), "taken_at", "utilization_pct", "label", "Utilization (%)", percent=True
    )
    styles = [(t.line.color, t.marker.symbol) for t in fig.data]
    assert len(set(styles)) == 14  # no two lines look alike
    assert len({c for c, _ in styles[:12]}) == 12  # the 12 lines the page draws: 12 colours
    assert fig.layout.yaxis.tickformat == ".1f" and fig.layout.yaxis.ticksuffix == "%"
    assert ":,.1f}%" in fig.data[0].hovertemplate


def test_percent_axes_show_one_decimal():
    from lib.ui import charts

    util = pd.DataFrame(
        {
            "integration_label": ["A"],
            "utilization_pct": [80.25],
            "assigned_seats": [1],
            "total_seats": [2],
        }
    )
    assert charts.utilization_by_integration(util).layout.xaxis.tickformat == ".1f"


def test_chart_legend_sits_below_the_plot_and_axis_titles_get_room():
    from lib.ui import charts

    fig = charts.trend_lines(
        _history(3), "taken_at", "utilization_pct", "label", "Utilization (%)", percent=True
    )
    legend = fig.layout.legend
    # the toolbar (modebar) is at the top right: a legend at the container's bottom is never under it
    assert (legend.orientation, legend.yref, legend.yanchor, legend.y) == (
        "h",
        "container",
        "bottom",
        0,
    )
    assert fig.layout.xaxis.automargin and fig.layout.yaxis.automargin
    assert (
        charts.trend_lines(_history(12), "taken_at", "utilization_pct", "label", "U").layout.height
        > fig.layout.height
    )  # more legend rows, more room


def test_charts_read_on_the_dark_theme_too():
    from lib.ui import charts

    fig = charts.trend_lines(_history(2), "taken_at", "utilization_pct", "label", "U")
    # transparent backgrounds, no template or font colour of their own: Streamlit's theme colours the text
    assert fig.layout.paper_bgcolor == fig.layout.plot_bgcolor == "rgba(0,0,0,0)"
    import plotly.io as pio

    assert (
        fig.layout.font.color is None
        and fig.layout.template == pio.templates[pio.templates.default]
    )
    # (Streamlit makes its own template the default and recolours it for the light or dark theme)


def test_trend_measures_name_the_reporting_currency():
    from lib.analytics.trends import MEASURES, measure_labels

    labels = measure_labels("EUR")
    assert labels["annual_cost_reporting"] == "Annual spend (EUR, at today's prices)"
    assert (
        "reporting currency" not in " ".join(labels.values()) and labels.keys() == MEASURES.keys()
    )


def _book(rows):
    return pd.DataFrame(
        rows,
        columns=[
            "integration",
            "license_id",
            "license_name",
            "unit_price",
            "currency",
            "billing_period",
        ],
    ).astype({"license_id": "string"})


def test_price_book_license_ids_are_filled_only_where_the_name_has_one_id():
    lic = pd.DataFrame(
        {
            "integration": ["github", "github", "github", "microsoft365", "microsoft365", "zoom"],
            "license_name": ["Enterprise", "Enterprise", "Copilot", "E3", "E3", "Pro"],
            "license_id": pd.array(["ent", "ent", "cop", "e3-a", "e3-b", None], dtype="string"),
        }
    )
    book = _book(
        [
            ("GitHub", None, "enterprise", 21.0, "USD", "monthly"),  # case ignored: one id
            ("GitHub", "kept", "Copilot", 19.0, "USD", "monthly"),  # an id already there stays
            ("Microsoft 365", None, "E3", 36.0, "USD", "monthly"),  # two ids: stays by name
            ("Zoom", None, "Pro", 15.0, "USD", "monthly"),  # no id known
            ("Microsoft 365", None, "Enterprise", 5.0, "USD", "monthly"),
        ]
    )  # another integration's name
    ids = D.price_book_with_ids(book, lic)["license_id"].tolist()
    assert ids[:2] == ["ent", "kept"] and all(pd.isna(v) for v in ids[2:])


def test_each_price_book_row_shows_its_last_change_and_the_history_reads(tmp_path):
    from lib.auth import Actor
    from lib.store import Store

    store = Store(f"sqlite:///{tmp_path / 'x.sqlite'}")
    boss, cfo = Actor("boss@acme.com", "Boss", "admin"), Actor("cfo@acme.com", "CFO", "admin")
    book = _book(
        [
            ("GitHub", None, "Enterprise", 21.0, "USD", "monthly"),
            ("Zoom", "z1", "Pro", 15.0, "USD", "annual"),
        ]
    )
    store.save_price_book(book, boss)
    book.loc[1, "unit_price"] = 16.0
    store.save_price_book(book, cfo)
    store.save_fx_rates({"EUR": 1.08}, "USD", cfo)
    audit = store.audit_log()
    rows = D.price_book_changes(store.get_price_book(), audit)
    assert rows["changed_by"].tolist() == ["boss@acme.com", "cfo@acme.com"]
    assert rows["changed_at"].iloc[1] > rows["changed_at"].iloc[0]
    history = D.change_history(audit)
    assert history["who"].tolist() == ["cfo@acme.com", "cfo@acme.com", "boss@acme.com"]
    assert history["what"].tolist() == [
        "Exchange rates to USD: EUR 1.08 (new)",
        "Prices: Zoom · Pro (z1): price 15 → 16",
        "Prices (0 → 2 rows): GitHub · Enterprise added at 21 USD per month; "
        "Zoom · Pro (z1) added at 15 USD per year",
    ]
    fx = D.fx_table(store.get_fx_rates(), "USD", store.fx_rates_saved())
    assert fx.columns.tolist() == ["currency", "rate", "saved_at", "saved_by"]
    assert fx["saved_by"].tolist() == ["cfo@acme.com"] and fx["saved_at"].notna().all()
    assert D.headers(["saved_at", "changed_by"]) == {
        "saved_at": "Rate saved (UTC)",
        "changed_by": "Changed by",
    }
    store.close()


def _audit_store(tmp_path):
    from lib.auth import Actor
    from lib.store import Store

    return (
        Store(f"sqlite:///{tmp_path / 'audit.sqlite'}"),
        Actor("boss@acme.com", "Boss", "admin"),
        Actor("cfo@acme.com", "CFO", "admin"),
    )


def test_editing_one_price_logs_that_row_old_to_new_and_keeps_the_others_last_change(tmp_path):
    """Issue 22, point 9: the editor fills license IDs in (from the licenses Truto reports); a save that
    changes one price logged every row twice (old name removed, new name added) and reset every row's
    "Last changed". Only the one row is a change, with its old and new price."""
    store, boss, cfo = _audit_store(tmp_path)
    lic = pd.DataFrame(
        {
            "integration": ["github", "github", "zoom"],
            "license_name": ["Enterprise", "Copilot", "Pro"],
            "license_id": pd.array(["ent", "cop", "z1"], dtype="string"),
        }
    )
    book = _book(
        [
            ("GitHub", None, "Enterprise", 21.0, "USD", "monthly"),
            ("GitHub", None, "Copilot", 19.0, "USD", "monthly"),
            ("Zoom", None, "Pro", 15.0, "USD", "annual"),
        ]
    )
    store.save_price_book(book, boss)
    edited = D.price_book_with_ids(store.get_price_book(), lic)  # what the editor shows and saves
    edited.loc[0, "unit_price"] = 25.0
    store.save_price_book(edited, cfo)
    assert len(store.audit_log()) == 2
    detail = json.loads(store.audit_log(limit=1)["detail"].iloc[0])
    assert detail["changed"] == ["GitHub · Enterprise (ent)"]
    assert detail["changes"] == [
        {
            "row": "GitHub · Enterprise (ent)",
            "was": "GitHub · Enterprise",
            "from": {"unit_price": 21.0, "license_id": None},
            "to": {"unit_price": 25.0, "license_id": "ent"},
        }
    ]
    assert [e["to"] for e in detail["ids_filled"]] == ["GitHub · Copilot (cop)", "Zoom · Pro (z1)"]
    rows = D.price_book_changes(store.get_price_book(), store.audit_log())
    assert rows["changed_by"].tolist() == ["cfo@acme.com", "boss@acme.com", "boss@acme.com"]
    what = D.change_history(store.audit_log())["what"].iloc[0]
    assert what == (
        "Prices: GitHub · Enterprise (ent): price 21 → 25, license ID (none) → ent; "
        "license ID filled in from Truto for 2 rows"
    )
    store.close()


def test_a_save_that_changes_nothing_writes_no_audit_entry(tmp_path):
    store, boss, cfo = _audit_store(tmp_path)
    book = _book([("GitHub", None, "Enterprise", 21.0, "USD", "monthly")])
    store.save_price_book(book, boss)
    store.save_fx_rates({"EUR": 1.08}, "USD", boss)
    store.save_settings({"buffer": 0.2}, boss)
    entries = len(store.audit_log())
    # The same again, a number as the page's percent input gives it back (7% -> 0.07000000000000001).
    store.save_price_book(book, cfo)
    store.save_fx_rates({"EUR": 1.08, "USD": 1.0}, "USD", cfo)
    store.save_settings({"buffer": 20.000000000000004 / 100}, cfo)
    assert len(store.audit_log()) == entries
    assert store.replace_price_book(book, cfo)[1] is None
    assert store.replace_fx_rates({"EUR": 1.08}, "USD", cfo)[1] is None
    assert store.change_settings({"buffer": 0.2}, cfo)[1] == {}
    assert set(store.fx_rates_saved()["saved_by"]) == {"boss@acme.com"}
    # A change logs only what changed, old -> new.
    assert store.change_settings({"buffer": 0.25, "under_used_pct": 70.0}, cfo)[1] == {
        "buffer": {"from": 0.2, "to": 0.25}
    }
    _, fx = store.replace_fx_rates({"EUR": 1.1, "GBP": 1.27}, "USD", cfo)
    assert fx == {
        "reporting_currency": "USD",
        "changes": {"EUR": {"from": 1.08, "to": 1.1}, "GBP": {"from": None, "to": 1.27}},
    }
    history = D.change_history(store.audit_log())["what"].tolist()
    assert history[:2] == [
        "Exchange rates to USD: EUR 1.08 → 1.1, GBP 1.27 (new)",
        "Settings: Right-sizing buffer 20% → 25%",
    ]
    _, fx = store.replace_fx_rates({"USD": 0.93}, "EUR", cfo)
    assert D.change_history(store.audit_log())["what"].iloc[0] == (
        "Reporting currency USD → EUR; Exchange rates to EUR: USD 0.93 (new); "
        "the rates to USD were removed (EUR 1.1, GBP 1.27)"
    )
    store.close()


def test_the_history_still_reads_entries_written_before_only_changes_were_logged():
    audit = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-01-02", "2026-01-01"], utc=True),
            "actor_email": pd.array(["a@x.com", "a@x.com"], dtype="string"),
            "actor_name": pd.array(["A", "A"], dtype="string"),
            "actor_role": pd.array(["admin", "admin"], dtype="string"),
            "action": pd.array(["fx_rates", "price_book"], dtype="string"),
            "detail": pd.array(
                [
                    '{"reporting_currency": "USD", "before": {"EUR": 1.0}, "after": {"EUR": 1.1, "USD": 1.0}}',
                    '{"entries_before": 0, "entries_after": 1, "changed": ["GitHub · Enterprise"]}',
                ],
                dtype="string",
            ),
        }
    )
    assert D.change_history(audit)["what"].tolist() == [
        "Exchange rates to USD: EUR 1 → 1.1",
        "Prices: 0 → 1 rows; changed GitHub · Enterprise",
    ]
    book = _book([("GitHub", None, "Enterprise", 21.0, "USD", "monthly")])
    assert D.price_book_changes(book, audit)["changed_by"].tolist() == ["a@x.com"]


def test_the_theme_follows_the_system_with_a_light_and_a_dark_variant():
    import tomllib
    from pathlib import Path

    theme = tomllib.loads(
        (Path(__file__).parent.parent / ".streamlit" / "config.toml").read_text()
    )["theme"]
    # A forced base pins one theme; with both [theme.light] and [theme.dark] Streamlit starts on "System"
    # (prefers-color-scheme) and offers Light / Dark in its menu.
    assert "base" not in theme and theme["light"] and theme["dark"]


def test_the_rates_table_on_the_first_day_with_no_rate_saved(tmp_path):
    """Nothing saved yet: the rates table still builds (map() over the empty saved table made float)."""
    from lib.store import Store

    store = Store(f"sqlite:///{tmp_path / 'first-day.sqlite'}")
    fx = D.fx_table({"EUR": 1.08, "USD": 1.0}, "USD", store.fx_rates_saved())
    assert fx["currency"].tolist() == ["EUR"]
    assert fx["saved_at"].isna().all() and str(fx["saved_at"].dtype) == "datetime64[us, UTC]"
    assert fx["saved_by"].isna().all()
    store.close()


def _contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    def lum(rgb):
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    return tuple(int(h[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_both_themes_meet_wcag_aa_for_buttons_and_the_pinned_column(scheme):
    """White text on the accent (primary buttons) and the pinned first column (60% of the text colour
    over the background, as Streamlit's table draws it) at 4.5:1 or more: the dark accent was 2.71:1,
    the light theme's pinned column 3.9:1."""
    import tomllib
    from pathlib import Path

    theme = tomllib.loads(
        (Path(__file__).parent.parent / ".streamlit" / "config.toml").read_text()
    )["theme"][scheme]
    white = (1.0, 1.0, 1.0)
    background, text = _rgb(theme["backgroundColor"]), _rgb(theme["textColor"])
    assert _contrast(white, _rgb(theme["primaryColor"])) >= 4.5
    assert _contrast(text, background) >= 4.5
    faded = tuple(0.6 * t + 0.4 * b for t, b in zip(text, background))
    assert _contrast(faded, background) >= 4.5


def _first_day_rows(book=None, rates=None):
    """Nothing saved (issue 22): an Adobe license with idle seats and no price, a Microsoft 365 one
    whose vendor does not say paid, a free one with idle seats, and DocuSign priced in EUR."""
    listings = [
        Listing(
            "ad",
            "adobe",
            "t1",
            [
                {
                    "id": "a",
                    "name": "Acrobat Pro",
                    "assigned_quantity": 6,
                    "available_quantity": 10,
                    "is_paid": True,
                },
                {
                    "id": "f",
                    "name": "Express",
                    "assigned_quantity": 1,
                    "available_quantity": 50,
                    "is_paid": False,
                },
            ],
            NOW,
        ),
        Listing(
            "ms",
            "microsoft365",
            "t1",
            [{"id": "e3", "name": "E3", "assigned_quantity": 40, "available_quantity": 45}],
            NOW,
        ),
    ]
    df, _ = build_license_table(listings)
    options = MetricOptions(fx_rates=rates or {})
    empty = _book([])
    return add_metrics(df, empty if book is None else book, options), options


def test_the_first_day_idle_spend_empty_state_says_what_is_missing_and_where_to_add_it():
    df, options = _first_day_rows()
    assert groupings.top_idle_spend(df, 10, options).empty
    text, target = D.idle_spend_empty_text(df, D.spend_gaps(df, options))
    # Acrobat Pro and E3 (its vendor does not say whether it is paid); the free license is not counted.
    assert (
        text.startswith("No idle spend to show yet: none of the 2 license(s)")
        and target == "price_book"
    )
    assert "Add their prices in the Price book" in text
    book = pd.DataFrame(
        {
            "integration": ["adobe"],
            "license_id": ["a"],
            "license_name": ["Acrobat Pro"],
            "unit_price": [20.0],
            "currency": ["EUR"],
            "billing_period": ["monthly"],
        }
    )
    df, options = _first_day_rows(book)
    text, target = D.idle_spend_empty_text(df, D.spend_gaps(df, options))
    assert "1 have a price in EUR with no exchange rate to USD and 1 have no price" in text
    assert target == "price_book"
    all_assigned = df.assign(unassigned_seats=pd.array([0] * len(df), dtype="Int64"))
    text, target = D.idle_spend_empty_text(all_assigned, D.spend_gaps(all_assigned, options))
    assert "has all its seats bought assigned" in text and target is None
