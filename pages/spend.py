"""Spend: paid-license spend per integration, used vs idle, savings, unconverted currencies, unpriced licenses."""

import streamlit as st

from lib import ui
from lib.analytics import groupings
from lib.analytics import views as D
from lib.ui import charts

view = ui.current_view()
cur = view.currency
st.title("Spend")
st.caption(
    f"Annual spend on paid licenses in {cur}: price per seat per year × seats bought. "
    "Idle spend is the part on seats bought but not assigned. Prices come from the price book, "
    "else the vendor (DocuSign only)."
)
if ui.empty_state(view, "licenses"):
    st.stop()

paid = view.summary(paid_only=True)
gaps = D.spend_gaps(view.filtered, view.options)
spend_value, spend_note, spend_help = D.spend_words(paid, gaps)
ui.tiles(
    [
        D.money_tile(f"Annual spend ({cur})", spend_value, spend_help, spend_note),
        D.money_tile(
            f"Idle spend ({cur})",
            D.amount_words(paid.idle_annual_spend, cur, gaps),
            "Spend on seats bought, not assigned.",
            None,
        ),
        D.money_tile(
            f"Potential savings ({cur})",
            D.amount_words(paid.potential_annual_savings, cur, gaps),
            f"Dropping each license to assigned seats + {view.options.buffer:.0%} buffer.",
            None,
        ),
        D.money_tile(
            f"True-up exposure ({cur})",
            D.amount_words(paid.true_up_exposure, cur, gaps),
            "The annual price of seats assigned beyond those bought.",
            None,
        ),
    ],
    per_row=2,
)

st.subheader("Spend per integration")
spend = D.spend_chart_rows(groupings.spend_by_integration(view.prepared, paid_only=True), gaps)
if spend.empty:
    st.info(D.spend_chart_empty_text(view.filtered, gaps))
else:
    ui.chart(charts.spend_by_integration(spend, cur), key="chart-spend")
    ui.download(spend, "spend-by-integration", key="dl-spend-integration")

st.subheader("Potential savings by license")
st.caption(
    f"Seats bought beyond assigned + {view.options.buffer:.0%} buffer, at the license's annual price."
)
savings = D.savings_by_license(view.filtered)
if savings.empty:
    st.info(D.savings_empty_text(view.filtered))
else:
    ui.chart(charts.savings_by_license(savings, cur), key="chart-savings")
    ui.table(savings, key="savings-table")
    ui.download(savings, "potential-savings", key="dl-savings")

st.subheader("What the spend total leaves out")
if gaps.complete:
    st.caption(f"Nothing: every paid license has a price, seat counts and a rate to {cur}.")
else:
    st.caption(
        f"Rows the annual spend cannot fully count. Where seats bought are not reported, spend is at least "
        f"seats assigned × price, and that lower bound is counted (“At least ({cur})”)."
    )
    ui.table(
        gaps.left_out.assign(
            reason=gaps.left_out["reason"].map(D.LEFT_OUT_REASONS).astype("string")
        ),
        key="left-out-table",
    )
    ui.download(gaps.left_out, "spend-left-out", key="dl-left-out")

missing = D.not_converted(view.filtered)
st.subheader("Not converted")
if missing.empty:
    st.caption(f"Every priced license converts to {cur}.")
else:
    st.warning(
        f"These amounts have no exchange rate to {cur}, so they are left out of the totals above. "
        "Add a rate in the Price book.",
        icon=":material/currency_exchange:",
    )
    ui.table(missing, key="not-converted-table")
    ui.download(missing, "not-converted", key="dl-not-converted")

st.subheader("Paid licenses without a price")
unpriced = D.unpriced_paid(view.filtered)
if unpriced.empty:
    st.caption("Every paid license has a price.")
else:
    st.caption(
        "Their spend is unknown until they are priced. Download them as a price-book file, fill in "
        "the price per seat (column `unit_price`), and upload it on the Price book page."
    )
    ui.table(unpriced, key="unpriced-table")
    ui.download(
        D.price_book_rows_for(unpriced, cur),
        "price-book-template",
        label="Download as price-book template",
        key="dl-unpriced-template",
    )
    st.page_link(ui.page_path("price_book"), label="Open the Price book", icon=":material/sell:")

st.subheader("All priced rows")
rows = D.priced_rows(view.filtered)
ui.table(rows, key="spend-table")
ui.download(rows, "license-spend", key="dl-spend")
