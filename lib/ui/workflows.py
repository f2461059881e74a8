"""The price book's save workflows: check, save (the store writes the audit entry), recompute, say so.

Each save is all or nothing: a table or file with problems is refused with every problem listed,
and nothing is written. A blank price is not a problem: that license stays unpriced, said once.
A save that changes nothing writes nothing and says "Nothing changed". After a save the metric caches are cleared and the page reruns, showing
the note ``saved_note`` pops.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

import pandas as pd
import streamlit as st

from lib.analytics import views as D
from lib.analytics.pricing import (
    MAX_LISTED_PROBLEMS,
    FxRatesError,
    PriceBookError,
    check_price_table,
    load_fx_rates,
    read_price_table,
    validate_fx_rates,
)
from lib.ui.state import View, clear_data_caches

_NOTE_KEY = "_saved"


class Upload(Protocol):
    """What st.file_uploader returns: a name and the bytes."""

    name: str

    def getvalue(self) -> bytes: ...


def saved_note() -> None:
    """The note of the save that led to this run, shown once.

    Always in one container, shown or not: the elements after it keep their place in the page, so
    the next run (the note gone) does not draw the page's tabs anew on their first tab.
    """
    note = st.session_state.pop(_NOTE_KEY, None)
    with st.container():
        if note:
            st.success(note, icon=":material/check:")


def show_problems(title: str, problems: list[str], more: int = 0) -> None:
    """The problems of a refused table or file: at most :data:`MAX_LISTED_PROBLEMS` listed, the rest
    counted (``more``: found beyond the list), so a file of bad rows never becomes megabytes of page."""
    listed = list(problems[:MAX_LISTED_PROBLEMS])
    more += len(problems) - len(listed)
    st.error(f"{title} Nothing was saved. Fix these and try again:", icon=":material/error:")
    lines = [f"- {D.md_escape(p)}" for p in listed]
    if more:
        lines.append(f"- … and {more:,} more problem{'s' if more != 1 else ''} (not listed)")
    st.markdown("\n".join(lines))


def _saved(message: str) -> NoReturn:
    st.session_state[_NOTE_KEY] = message
    clear_data_caches()
    st.rerun()


def _nothing_changed(what: str, extra: str = "") -> None:
    st.info(f"Nothing changed: {what} are as saved. {extra}".strip(), icon=":material/info:")


def save_prices(view: View, edited: pd.DataFrame) -> None:
    """The price editor's table, checked, replaces the price book; rows left without a price stay unpriced."""
    try:
        table = check_price_table(edited)
        _, detail = view.store.replace_price_book(table.book, view.actor)
    except PriceBookError as exc:
        show_problems(
            "The prices have problems.",
            [D.table_problem_words(p, D.PRICE_EDITOR_HEADERS) for p in exc.problems],
            exc.more,
        )
        return
    if detail is None:
        _nothing_changed("the prices", table.unpriced_words())
        return
    _saved(f"Saved. {D.price_book_change_words(detail)}. {table.unpriced_words()}".strip())


def replace_prices_from_upload(view: View, upload: Upload | None) -> None:
    """An uploaded price-book CSV (a partly filled template too): checked, then replaces the book once the
    admin confirms. Rows with a blank price stay unpriced, said once; any other problem refuses the file."""
    if upload is None:
        return
    try:
        table = read_price_table(upload.getvalue())
    except PriceBookError as exc:
        show_problems(f"{upload.name} was rejected.", exc.problems, exc.more)
        return
    new_book = table.book
    if new_book.empty:
        st.warning(
            f"{upload.name} holds no prices; the price book was left as it is. "
            + table.unpriced_words()
        )
        return
    st.success(
        f"{upload.name}: {len(new_book)} prices, all valid. {table.unpriced_words()}".strip()
    )
    preview = D.replace_preview(view.price_book, new_book)
    st.caption(preview.words(upload.name))
    if preview.removed:
        st.warning(preview.removed_words(upload.name), icon=":material/warning:")
    if preview.nothing:
        return
    if st.button(f"Replace the price book with these {len(new_book)} prices", key="apply-upload"):
        _, detail = view.store.replace_price_book(new_book, view.actor)
        if detail is None:
            _nothing_changed("the prices")
            return
        _saved(
            f"Replaced the price book with {len(new_book)} prices from {upload.name}. "
            f"{D.price_book_change_words(detail)}."
        )


def save_fx_rates(view: View, edited: pd.DataFrame, target: str) -> None:
    """The rate editor's table, checked, replaces the rates; ``target`` becomes the reporting currency."""
    try:
        rates = validate_fx_rates(edited[["currency", "rate"]], target)
        _, detail = view.store.replace_fx_rates(rates, target, view.actor)
    except (FxRatesError, ValueError) as exc:
        headers = {"currency": "Currency", "rate": f"{target} per unit"}
        show_problems(
            "The exchange rates have problems.",
            [D.table_problem_words(p, headers) for p in getattr(exc, "problems", [str(exc)])],
            getattr(exc, "more", 0),
        )
        return
    if detail is None:
        _nothing_changed("the exchange rates")
        return
    _saved(f"Saved. {D.fx_change_words(detail)}.")


def replace_fx_rates_from_upload(view: View, upload: Upload | None, target: str) -> None:
    """An uploaded rate CSV (currency,rate: ``target`` per unit): checked, then saved once confirmed."""
    if upload is None:
        return
    try:
        new_rates = load_fx_rates(upload.getvalue(), target)
    except FxRatesError as exc:
        show_problems(f"{upload.name} was rejected.", exc.problems, exc.more)
        return
    if st.button(
        f"Replace the exchange rates with these {len(new_rates) - 1} rates to {target}",
        key="apply-fx",
    ):
        _, detail = view.store.replace_fx_rates(new_rates, target, view.actor)
        if detail is None:
            _nothing_changed("the exchange rates")
            return
        _saved(f"Replaced the exchange rates from {upload.name}. {D.fx_change_words(detail)}.")


def save_settings(view: View, values: dict[str, Any]) -> None:
    """Thresholds, buffer and the vendor price period; the store refuses a viewer and bad values."""
    try:
        _, changes = view.store.change_settings(values, view.actor)
    except (ValueError, PermissionError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        st.error(
            "The settings were not saved: "
            + D.md_escape("; ".join(D.setting_words(p) for p in problems))
        )
        return
    if not changes:
        _nothing_changed("the settings")
        return
    _saved(f"Saved. {D.settings_change_words(changes)}.")
