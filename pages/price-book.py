"""Price book: prices per license, exchange rates, the reporting currency, thresholds and buffer."""

import streamlit as st

from lib import ui
from lib.analytics import views as D
from lib.analytics.pricing import fx_rates_to_csv, price_book_to_csv
from lib.export import dated_filename
from lib.schema import BILLING_PERIODS, CURRENCY_CODES
from lib.ui import workflows

view = ui.current_view()
can_edit = view.actor.can_edit
st.title("Price book")
st.caption(
    "What each license costs, how currencies convert, and when a license counts as under-used. "
    "Saved for every user of this dashboard. Truto sends prices only for DocuSign; everything else is priced "
    "here."
)
if not can_edit:
    st.info("You can see the prices; only admins can change them.", icon=":material/lock:")
workflows.saved_note()

prices_tab, fx_tab, settings_tab = st.tabs(
    ["Prices", "Currency and exchange rates", "Thresholds and buffer"]
)

with prices_tab:
    # The saved prices with their last change, then the paid licenses Truto reports without a price (price
    # empty); empty license IDs filled from the licenses this dashboard knows: saved with the next save.
    table = D.price_table(view.price_book, view.audit_log, view.metrics, view.currency)
    with_changes = table.rows
    audit = view.audit_log
    note = table.note(can_edit)
    if note:
        st.info(note, icon=":material/sell:")
    st.caption(
        "One row per license, matched within its integration by license ID, else by exact name, else by "
        "name ignoring case. The price is per seat, for one billing period: a month or a year."
    )
    heads = D.PRICE_EDITOR_HEADERS
    if can_edit:
        edited = st.data_editor(
            with_changes,
            num_rows="dynamic",
            hide_index=True,
            width="stretch",
            key="price-editor",
            disabled=["changed_at", "changed_by"],
            placeholder=ui.MISSING,
            column_config={
                "integration": st.column_config.TextColumn(heads["integration"], required=True),
                "license_id": st.column_config.TextColumn(heads["license_id"]),
                "license_name": st.column_config.TextColumn(heads["license_name"]),
                "unit_price": st.column_config.NumberColumn(
                    heads["unit_price"], min_value=0.0, format="%.2f", required=True
                ),
                "currency": st.column_config.SelectboxColumn(
                    heads["currency"], options=sorted(CURRENCY_CODES), required=True
                ),
                "billing_period": st.column_config.SelectboxColumn(
                    heads["billing_period"], options=list(BILLING_PERIODS), required=True
                ),
                "changed_at": st.column_config.DatetimeColumn(
                    D.headers(["changed_at"])["changed_at"],
                    format="YYYY-MM-DD HH:mm",
                    timezone="UTC",
                ),
                "changed_by": st.column_config.TextColumn(D.headers(["changed_by"])["changed_by"]),
            },
        )
        edited = edited[list(view.price_book.columns)]
        if st.button("Save prices", type="primary", key="save-prices"):
            workflows.save_prices(view, edited)

        st.markdown(
            "**Replace the price book from a CSV file**, with the columns of the downloaded price book "
            "(or of Spend's template). A row with an empty price is left without a price."
        )
        upload = st.file_uploader("Price-book CSV", type=["csv"], key="price-upload")
        workflows.replace_prices_from_upload(view, upload)
    else:
        ui.table(
            with_changes,
            key="price-table",
            show=("integration", "license_id"),
            column_config={
                "integration": st.column_config.TextColumn(heads["integration"]),
                "changed_at": st.column_config.DatetimeColumn(
                    D.headers(["changed_at"])["changed_at"],
                    format="YYYY-MM-DD HH:mm",
                    timezone="UTC",
                ),
            },
        )
    st.download_button(
        "Download the price book",
        price_book_to_csv(D.price_book_with_ids(view.price_book, view.metrics)),
        file_name=dated_filename("price-book"),
        mime="text/csv",
        icon=":material/download:",
        key="dl-price-book",
        on_click="ignore",
    )

with fx_tab:
    cur = view.options.reporting_currency
    rates = view.fx_rates
    codes = sorted(CURRENCY_CODES)
    target = st.selectbox(
        "Reporting currency",
        codes,
        index=codes.index(cur),
        disabled=not can_edit,
        key="fx-currency",
        help="Every total is converted to this currency.",
    )
    frame = D.fx_table(rates, cur, view.fx_rates_saved)
    if target != cur:
        frame = frame.iloc[0:0]  # rates to the old currency are wrong for the new one: start empty
        st.info(
            f"Enter how many {target} one unit of each currency buys, then save: the currency and its rates "
            f"change together. Currencies left without a rate stay out of the {target} totals.",
            icon=":material/info:",
        )
    st.caption(
        f"How many {target} one unit of each currency buys. Amounts in a currency without a rate are shown "
        f"in their own currency and left out of the {target} totals."
    )
    missing = D.currencies_without_rate(view.metrics) if target == cur else []
    if missing:
        st.warning(
            f"Licenses priced in {', '.join(missing)} have no exchange rate to {cur}, so their spend is left "
            f"out of the {cur} totals. "
            + (
                f"Add a row for {'each' if len(missing) > 1 else missing[0]} with how many {cur} one unit buys, "
                "and save."
                if can_edit
                else "An admin can add the rates here."
            ),
            icon=":material/currency_exchange:",
        )
    if can_edit:
        fx_edited = st.data_editor(
            frame,
            num_rows="dynamic",
            hide_index=True,
            key="fx-editor",
            placeholder=ui.MISSING,
            disabled=["saved_at", "saved_by"],
            column_config={
                "saved_at": st.column_config.DatetimeColumn(
                    D.headers(["saved_at"])["saved_at"], format="YYYY-MM-DD HH:mm", timezone="UTC"
                ),
                "saved_by": st.column_config.TextColumn(D.headers(["saved_by"])["saved_by"]),
                "currency": st.column_config.SelectboxColumn(
                    "Currency", options=codes, required=True
                ),
                "rate": st.column_config.NumberColumn(
                    f"{target} per unit", min_value=0.0, format="%.6f", required=True
                ),
            },
        )
        if st.button("Save exchange rates", type="primary", key="save-fx"):
            workflows.save_fx_rates(view, fx_edited, target)
        fx_upload = st.file_uploader(
            f"Exchange-rate CSV (currency,rate: {target} per unit)", type=["csv"], key="fx-upload"
        )
        workflows.replace_fx_rates_from_upload(view, fx_upload, target)
    else:
        ui.table(
            frame,
            key="fx-table",
            column_config={
                "rate": st.column_config.NumberColumn(f"{target} per unit", format="%.6f"),
                "saved_at": st.column_config.DatetimeColumn(
                    D.headers(["saved_at"])["saved_at"], format="YYYY-MM-DD HH:mm", timezone="UTC"
                ),
            },
        )
    st.download_button(
        "Download exchange rates",
        fx_rates_to_csv(rates, cur),
        file_name=dated_filename("fx-rates"),
        mime="text/csv",
        icon=":material/download:",
        key="dl-fx",
        on_click="ignore",
    )

with settings_tab:
    current = view.saved_settings
    with st.form("settings-form", border=True):
        buffer = st.number_input(
            f"{D.SETTING_LABELS['buffer']} (%)",
            min_value=0.0,
            max_value=500.0,
            step=5.0,
            value=float(current["buffer"]) * 100,
            disabled=not can_edit,
            key="set-buffer",
            help="Recommended seats = seats assigned × (1 + buffer), rounded up.",
        )
        under = st.number_input(
            f"{D.SETTING_LABELS['under_used_pct']} (% of seats bought assigned)",
            min_value=0.0,
            max_value=100.0,
            value=float(current["under_used_pct"]),
            disabled=not can_edit,
            key="set-under",
        )
        capacity = st.number_input(
            f"{D.SETTING_LABELS['at_capacity_pct']} (% of seats bought assigned)",
            min_value=0.0,
            max_value=100.0,
            value=float(current["at_capacity_pct"]),
            disabled=not can_edit,
            key="set-capacity",
        )
        period = st.selectbox(
            D.SETTING_LABELS["vendor_price_period"],
            list(BILLING_PERIODS),
            index=list(BILLING_PERIODS).index(current["vendor_price_period"]),
            disabled=not can_edit,
            key="set-period",
            help="DocuSign's prices from Truto do not say whether they are per month or per year.",
        )
        submitted = st.form_submit_button("Save settings", type="primary", disabled=not can_edit)
    if submitted:
        workflows.save_settings(
            view,
            {
                "buffer": buffer / 100,
                "under_used_pct": under,
                "at_capacity_pct": capacity,
                "vendor_price_period": period,
            },
        )

st.subheader("Change history")
st.caption("Who changed the prices, exchange rates and settings, and when; newest first.")
if audit.empty:
    st.info("Nothing has been changed yet.")
else:
    ui.table(
        D.change_history(audit, view.names),
        key="change-history",
        column_config={
            "at": st.column_config.DatetimeColumn(
                D.headers(["at"])["at"], format="YYYY-MM-DD HH:mm", timezone="UTC"
            )
        },
    )
