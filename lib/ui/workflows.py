"""The price book's save workflows: check, save (the store writes the audit entry), recompute, say so.

Each save is all or nothing: a table or file with problems is refused with every problem listed,
and nothing is written. After a save the metric caches are cleared and the page reruns, showing
the note ``saved_note`` pops.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

import pandas as pd
import streamlit as st

from lib.analytics import views as D
from lib.analytics.pricing import (
    FxRatesError,
    PriceBookError,
    load_fx_rates,
    load_price_book,
    validate_fx_rates,
    validate_price_book,
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


def show_problems(title: str, problems: list[str]) -> None:
    st.error(f"{title} Nothing was saved. Fix these and try again:", icon=":material/error:")
    st.markdown("\n".join(f"- {D.md_escape(p)}" for p in problems))


def _saved(message: str) -> NoReturn:
    st.session_state[_NOTE_KEY] = message
    clear_data_caches()
    st.rerun()


def save_prices(view: View, edited: pd.DataFrame) -> None:
    """The price editor's table, checked, replaces the price book."""
    try:
        view.store.save_price_book(validate_price_book(edited), view.actor)
    except PriceBookError as exc:
        show_problems("The prices have problems.", exc.problems)
    else:
        _saved(f"Saved {len(edited)} prices.")


def replace_prices_from_upload(view: View, upload: Upload | None) -> None:
    """An uploaded price-book CSV: checked, then replaces the book once the admin confirms."""
    if upload is None:
        return
    try:
        new_book = load_price_book(upload.getvalue())
    except PriceBookError as exc:
        show_problems(f"{upload.name} was rejected.", exc.problems)
        return
    if new_book.empty:
        st.warning(f"{upload.name} holds no prices; the price book was left as it is.")
        return
    st.success(f"{upload.name}: {len(new_book)} prices, all valid.")
    if st.button(f"Replace the price book with these {len(new_book)} prices", key="apply-upload"):
        view.store.save_price_book(new_book, view.actor)
        _saved(f"Replaced the price book with {len(new_book)} prices from {upload.name}.")


def save_fx_rates(view: View, edited: pd.DataFrame, target: str) -> None:
    """The rate editor's table, checked, replaces the rates; ``target`` becomes the reporting currency."""
    try:
        rates = validate_fx_rates(edited[["currency", "rate"]], target)
        view.store.save_fx_rates(rates, target, view.actor)
    except (FxRatesError, ValueError) as exc:
        show_problems("The exchange rates have problems.", getattr(exc, "problems", [str(exc)]))
    else:
        _saved(f"Saved {len(edited)} exchange rates to {target}.")


def replace_fx_rates_from_upload(view: View, upload: Upload | None, target: str) -> None:
    """An uploaded rate CSV (currency,rate: ``target`` per unit): checked, then saved once confirmed."""
    if upload is None:
        return
    try:
        new_rates = load_fx_rates(upload.getvalue(), target)
    except FxRatesError as exc:
        show_problems(f"{upload.name} was rejected.", exc.problems)
        return
    if st.button(
        f"Replace the exchange rates with these {len(new_rates) - 1} rates to {target}",
        key="apply-fx",
    ):
        view.store.save_fx_rates(new_rates, target, view.actor)
        _saved(f"Replaced the exchange rates from {upload.name}.")


def save_settings(view: View, values: dict[str, Any]) -> None:
    """Thresholds, buffer and the vendor price period; the store refuses a viewer and bad values."""
    try:
        view.store.save_settings(values, view.actor)
    except (ValueError, PermissionError) as exc:
        st.error(f"Not saved: {D.md_escape(str(exc))}")
    else:
        _saved("Saved the settings.")
