"""Seat activity and reclaim: which assigned seats are used, and what the unused ones cost. Pure.

Definitions (one place; pinned by ``tests/test_activity.py`` on hand-computed rows):

- A seat's **last activity** is the per-license last-active time, else the user's
  ``last_active_at``, else the user's ``last_login_at``; none of them: not reported.
- Relative to the snapshot's fetch time (the seat row's ``fetched_at``) and ``inactive_days``
  (default 90), each seat is in the first class that matches, in :data:`CLASSES` order:
  ``departed`` (the user's status is inactive or deleted, and still holds the license),
  ``invited`` (status invited, created longer ago than the threshold), ``active`` (last activity
  within the threshold), ``inactive`` (last activity older), ``never_active`` (the account's users
  listing reports activity, this user has none, and was created longer ago than the threshold),
  ``not_reported`` (everything else: no activity data is never "inactive").
- **Reclaimable** seats are the :data:`RECLAIMABLE` classes, minus exemptions.
- **Reclaimable annual cost** = reclaimable seats x the license's annual unit price (the metrics
  table's ``annual_unit_price`` in its ``currency``; in the reporting currency converted with the
  same rates as :func:`lib.analytics.metrics.add_metrics`). Unpriced stays unpriced (empty); a free
  license costs 0 and is never reclaimable cost.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lib.analytics._engine import _masked, _round_cents
from lib.analytics.labels import fmt_money
from lib.analytics.metrics import MetricOptions
from lib.analytics.rules import free_rule, paid_rule

CLASSES = ("departed", "invited", "active", "inactive", "never_active", "not_reported")
RECLAIMABLE = ("inactive", "never_active", "departed", "invited")
DEPARTED_STATUSES = ("inactive", "deleted")
DEFAULT_INACTIVE_DAYS = 90
# ten years: beyond it a threshold is a typing error (and days x 86400 s overflows)
MAX_INACTIVE_DAYS = 3650
THRESHOLD_CHOICES = (30, 60, 90)

_DAY_US = 86_400_000_000
_STR = pa.large_string()
_NAT = np.iinfo(np.int64).min


def _us(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds since the epoch, missing mask) of a UTC datetime column."""
    s = pd.to_datetime(series, utc=True).astype("datetime64[us, UTC]")
    values = s.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT")).view(np.int64)
    missing = values == _NAT
    return values, missing


def last_activity(seats: pd.DataFrame) -> pd.Series:
    """Per seat: per-license last active, else the user's last_active_at, else last_login_at."""
    out = seats["license_last_active_at"]
    out = out.where(out.notna(), seats["user_last_active_at"])
    out = out.where(out.notna(), seats["user_last_login_at"])
    return out.astype("datetime64[us, UTC]")


def validate_threshold(days) -> int:
    """The inactivity threshold as whole days from 1 to :data:`MAX_INACTIVE_DAYS` (ValueError naming the
    value otherwise)."""
    shown = repr(days) if len(repr(days)) <= 40 else repr(days)[:39] + "…"  # a URL: any text
    if isinstance(days, bool) or not isinstance(days, (int, float, np.integer)):
        try:
            days = float(str(days).strip())
        except ValueError:
            raise ValueError(f"inactive days {shown} is not a number") from None
    # Compared as they are (a huge int never becomes a float); NaN is in no range.
    if not 1 <= days <= MAX_INACTIVE_DAYS or int(days) != days:
        raise ValueError(
            f"inactive days must be a whole number of days from 1 to {MAX_INACTIVE_DAYS}, "
            f"not {shown}"
        )
    return int(days)


def classify(
    seats: pd.DataFrame,
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    as_of: datetime | None = None,
    exempt_users: Collection[str] = (),
    exempt_licenses: Collection[tuple[str | None, str]] = (),
) -> pd.DataFrame:
    """The seat table plus ``last_active_at``, ``days_inactive``, ``activity_class``, ``exempt``,
    ``reclaimable``. ``as_of``: the time the figures are relative to (default: each row's fetched_at).
    ``exempt_users``: user ids or emails (case-insensitive) never counted reclaimable;
    ``exempt_licenses``: (integration or None for any, license id) pairs, likewise."""
    days = validate_threshold(inactive_days)
    n = len(seats)
    threshold = days * _DAY_US
    last = last_activity(seats)
    last_us, last_na = _us(last)
    if as_of is not None:
        now = np.full(n, pd.Timestamp(as_of).tz_convert("UTC").as_unit("us").value, dtype=np.int64)
    else:
        now, _ = _us(seats["fetched_at"])
    created_us, created_na = _us(seats["user_created_at"])
    status = seats["user_status"].astype("string").str.strip().str.lower()
    departed = status.isin(DEPARTED_STATUSES).to_numpy(dtype=bool)
    invited_status = (status == "invited").fillna(False).to_numpy(dtype=bool)
    old_account = ~created_na & (now - created_us > threshold)
    reported, reported_na = _masked(seats["activity_reported"], "boolean", bool)
    reported = reported & ~reported_na

    idle = now - last_us
    cls = np.full(n, CLASSES.index("not_reported"), dtype=np.int8)
    # Lowest precedence first, so earlier classes overwrite.
    cls[reported & last_na & old_account] = CLASSES.index("never_active")
    cls[~last_na & (idle > threshold)] = CLASSES.index("inactive")
    cls[~last_na & (idle <= threshold)] = CLASSES.index("active")
    cls[invited_status & old_account] = CLASSES.index("invited")
    cls[departed] = CLASSES.index("departed")

    exempt = np.zeros(n, dtype=bool)
    wanted = {str(x).strip().lower() for x in exempt_users if str(x).strip()}
    if wanted:
        exempt = (
            seats["user_id"].astype("string").str.lower().isin(wanted)
            | seats["user_email"].astype("string").str.lower().isin(wanted)
        ).to_numpy(dtype=bool)
    if exempt_licenses and n:
        lic = seats["license_id"].astype("string").str.strip()
        integ = seats["integration"].astype("string").str.strip().str.lower()
        for integration, license_id in exempt_licenses:
            hit = (lic == str(license_id).strip()).fillna(False)
            if integration:
                hit &= (integ == str(integration).strip().lower()).fillna(False)
            exempt |= hit.to_numpy(dtype=bool)
    reclaimable = np.isin(cls, [CLASSES.index(c) for c in RECLAIMABLE]) & ~exempt
    days_idle = np.where(last_na, 0, np.maximum(idle, 0) // _DAY_US)
    out = seats.copy(deep=False)
    out["last_active_at"] = last
    out["days_inactive"] = pd.arrays.IntegerArray(days_idle.astype(np.int64), last_na)
    out["activity_class"] = pd.Categorical.from_codes(cls, CLASSES)
    out["exempt"] = pd.array(exempt, dtype="boolean")
    out["reclaimable"] = pd.array(reclaimable, dtype="boolean")
    return out


def exemption_lists(
    exemptions: pd.DataFrame,
) -> tuple[frozenset[str], frozenset[tuple[str | None, str]]]:
    """(exempt users, exempt licenses) of an exemptions table (kind, value, integration), as
    :func:`classify` takes them."""
    users: set[str] = set()
    licenses: set[tuple[str | None, str]] = set()
    for row in exemptions.itertuples(index=False):
        value = str(row.value).strip() if isinstance(row.value, str) else ""
        if not value:
            continue
        if row.kind == "user":
            users.add(value.lower())
        elif row.kind == "license":
            scope = (
                row.integration if isinstance(row.integration, str) and row.integration else None
            )
            licenses.add((scope, value))
    return frozenset(users), frozenset(licenses)


# ------------------------------------------------------------------ matching seats to licenses


def _text(series: pd.Series) -> pa.Array:
    """A text column as one Arrow string array (no copy for Arrow-backed columns)."""
    arr = pa.array(series.astype("string").array, from_pandas=True)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.cast(_STR)


def _text_of(codes: np.ndarray, names: list[str]) -> pd.api.extensions.ExtensionArray:
    """A text column from codes into ``names`` (-1: empty), built in Arrow (fast at 1M rows)."""
    dictionary = pa.array(names, _STR)
    if not len(names):
        return pd.arrays.ArrowStringArray(pa.nulls(len(codes), _STR))
    indices = pa.array(np.where(codes < 0, 0, codes).astype(np.int32), mask=codes < 0)
    return pd.arrays.ArrowStringArray(
        pa.DictionaryArray.from_arrays(indices, dictionary).cast(_STR)
    )


def _text_rank(series: pd.Series, at: np.ndarray) -> np.ndarray:
    """The alphabetical rank of each text value at positions ``at`` (empty last): a sort key that
    costs one dictionary encoding, not a string sort (a column holds few distinct names)."""
    encoded = pc.dictionary_encode(_text(series).take(pa.array(at)))
    words = encoded.dictionary.to_pylist()
    rank_of = np.empty(len(words) + 1, dtype=np.int64)
    rank_of[sorted(range(len(words)), key=words.__getitem__)] = np.arange(len(words))
    rank_of[len(words)] = len(words)
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return rank_of[np.where(np.isnan(indices), len(words), indices).astype(np.int64)]


def _keys(df: pd.DataFrame, with_org: bool) -> pa.Array:
    """account, license id (and organization) joined into one key; empty where the license id is."""
    parts = [pc.fill_null(_text(df["account_id"]), ""), _text(df["license_id"])]
    if with_org:
        parts.append(pc.fill_null(_text(df["organization_id"]), ""))
    return pc.binary_join_element_wise(
        *parts, pa.scalar("\x1f", _STR)
    )  # null when the license id is


def match_licenses(seats: pd.DataFrame, licenses: pd.DataFrame) -> np.ndarray:
    """For each seat row, the position of its license row (-1: none): same account and license id,
    and the same organization when the seat names one; a license id found in several organizations
    of the account without the seat naming one is not matched (its price could be either's)."""
    if not len(seats) or not len(licenses):
        return np.full(len(seats), -1, dtype=np.int64)
    k3 = _keys(licenses, True)
    k2 = _keys(licenses, False)
    # Hash lookups in Arrow: the first license row of each full key; a key without organization
    # only when it is unique in the account.
    k2_counts = pd.Series(k2.to_numpy(zero_copy_only=False)).value_counts(dropna=True)
    unique2 = pc.is_in(k2, value_set=pa.array(k2_counts.index[k2_counts.to_numpy() == 1], _STR))
    k2_unique = pc.if_else(unique2, k2, pa.scalar(None, _STR))
    found = pc.index_in(_keys(seats, True), value_set=k3, skip_nulls=True)
    fallback = pc.index_in(_keys(seats, False), value_set=k2_unique, skip_nulls=True)
    found_np = found.to_numpy(zero_copy_only=False)
    fallback_np = fallback.to_numpy(zero_copy_only=False)
    found_np = np.where(np.isnan(found_np), -1, found_np).astype(np.int64)
    fallback_np = np.where(np.isnan(fallback_np), -1, fallback_np).astype(np.int64)
    has_org = seats["organization_id"].notna().to_numpy(dtype=bool)
    return np.where((found_np >= 0) | has_org, found_np, fallback_np)


# ------------------------------------------------------------------ reclaim


@dataclass(frozen=True)
class ReclaimSummary:
    seats: int  # seat rows (assignments) from the users side
    reclaimable_seats: int
    reclaimable_paid_seats: int  # of them, on licenses that are paid (or priced, when not said)
    reclaimable_annual_cost: float | None  # reporting currency; None when nothing priced
    reporting_currency: str
    unpriced_reclaimable_seats: int  # reclaimable paid (or paid-unknown) seats without a price
    unconverted_reclaimable_seats: int  # priced, but no exchange rate for their currency
    departed_paid_users: int  # distinct departed users still holding a paid seat
    seats_with_activity: int  # seat rows whose account reports activity
    activity_share_pct: float | None  # seats_with_activity / seats, one decimal


def reclaim(
    seats: pd.DataFrame,
    metrics: pd.DataFrame,
    options: MetricOptions | None = None,
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    as_of: datetime | None = None,
    exempt_users: Collection[str] = (),
    exempt_licenses: Collection[tuple[str | None, str]] = (),
) -> pd.DataFrame:
    """Every seat row classified (:func:`classify`) and priced from its license's metrics row:
    ``annual_unit_price``, ``currency``, ``is_paid_seat``, ``is_free_seat``, ``annual_cost`` (in the
    license's currency: the seat's reclaimable annual cost, 0 when free or not reclaimable, empty
    when unpriced) and ``annual_cost_reporting`` (converted; empty without a rate). A seat whose
    users listing names no license name takes its license's name."""
    options = options or MetricOptions()
    out = classify(seats, inactive_days, as_of, exempt_users, exempt_licenses)
    n = len(out)
    at = match_licenses(out, metrics)
    hit = at >= 0
    safe = np.where(hit, at, 0)

    def pick(col: str, dtype: str, np_dtype):
        if not len(metrics):
            return np.zeros(n, dtype=np_dtype), np.ones(n, dtype=bool)
        values, na = _masked(metrics[col], dtype, np_dtype)
        return values[safe], na[safe] | ~hit

    price, price_na = pick("annual_unit_price", "Float64", np.float64)
    paid, paid_na = pick("is_paid", "boolean", bool)
    # Currencies and their rates per license row (few), then taken per seat.
    lic_cur = pd.Categorical(metrics["currency"].astype("string")) if len(metrics) else None
    codes = lic_cur.codes[safe] if lic_cur is not None else np.full(n, -1, dtype=np.int16)
    codes = np.where(hit, codes, -1)
    names = list(lic_cur.categories) if lic_cur is not None else []
    rates = [options.rate(c) for c in names]
    rate_of = np.array([r if r is not None else np.nan for r in rates] + [np.nan], dtype=np.float64)
    is_free = free_rule(paid, paid_na, price, price_na)
    is_paid = paid_rule(paid, paid_na, price, price_na) & ~is_free
    reclaimable = out["reclaimable"].to_numpy(dtype=bool, na_value=False)
    cost = np.where(reclaimable & ~is_free, np.where(price_na, 0.0, price), 0.0)
    cost_na = price_na & ~is_free & reclaimable
    rate = rate_of[codes]  # code -1 (no currency) takes the trailing NaN
    rate_na = np.isnan(rate)
    rate_f = np.where(rate_na, 0.0, rate)
    converted = cost * rate_f
    converted_na = cost_na | (rate_na & (cost != 0))
    own = _text(out["license_name"])
    if own.null_count and len(metrics) and hit.any():  # none named: the license's own name
        theirs = _text(metrics["license_name"]).take(pa.array(safe))
        theirs = pc.if_else(pa.array(hit), theirs, pa.nulls(n, _STR))
        out["license_name"] = pd.arrays.ArrowStringArray(pc.coalesce(own, theirs))
    out["annual_unit_price"] = pd.arrays.FloatingArray(np.where(price_na, 0.0, price), price_na)
    out["currency"] = _text_of(codes, names)
    out["is_paid_seat"] = pd.array(is_paid, dtype="boolean")
    out["is_free_seat"] = pd.array(is_free, dtype="boolean")
    out["annual_cost"] = pd.arrays.FloatingArray(
        _round_cents(np.where(cost_na, 0.0, cost)), cost_na
    )
    out["annual_cost_reporting"] = pd.arrays.FloatingArray(
        _round_cents(np.where(converted_na, 0.0, converted)), converted_na
    )
    out["reporting_currency"] = _text_of(np.zeros(n, dtype=np.int8), [options.reporting_currency])
    return out


def reclaim_summary(priced: pd.DataFrame, reporting_currency: str) -> ReclaimSummary:
    """The KPI figures of a :func:`reclaim` table."""
    n = len(priced)
    rec = priced["reclaimable"].to_numpy(dtype=bool, na_value=False)
    cost_na = priced["annual_cost"].isna().to_numpy(dtype=bool)
    conv_na = priced["annual_cost_reporting"].isna().to_numpy(dtype=bool)
    conv = priced["annual_cost_reporting"].to_numpy(dtype=np.float64, na_value=0.0)
    priced_rec = rec & ~conv_na
    total = float(_round_cents(np.array([conv[priced_rec].sum()]))[0]) if priced_rec.any() else None
    departed = (priced["activity_class"] == "departed").to_numpy(dtype=bool)
    paid = priced["is_paid_seat"].to_numpy(dtype=bool, na_value=False)
    free = priced["is_free_seat"].to_numpy(dtype=bool, na_value=False)
    dep = priced.loc[departed & paid, ["account_id", "user_id"]].drop_duplicates()
    reported = priced["activity_reported"].to_numpy(dtype=bool, na_value=False)
    share = round(100 * int(reported.sum()) / n, 1) if n else None
    return ReclaimSummary(
        seats=n,
        reclaimable_seats=int(rec.sum()),
        reclaimable_paid_seats=int((rec & ~free).sum()),
        reclaimable_annual_cost=total,
        reporting_currency=reporting_currency,
        unpriced_reclaimable_seats=int((rec & cost_na).sum()),
        unconverted_reclaimable_seats=int((rec & ~cost_na & conv_na).sum()),
        departed_paid_users=len(dep),
        seats_with_activity=int(reported.sum()),
        activity_share_pct=share,
    )


def reclaim_cost_words(s: ReclaimSummary) -> str:
    """The reclaimable annual cost in words: "not known" when nothing is priced, or when it is 0
    while seats are left out (0 would claim what is not known); "at least …" while seats are left
    out (without a price or a rate)."""
    cost = s.reclaimable_annual_cost
    left_out = s.unpriced_reclaimable_seats + s.unconverted_reclaimable_seats
    if cost is None or (left_out and float(cost) == 0):
        return "not known"
    return ("at least " if left_out else "") + fmt_money(cost, s.reporting_currency)


def reclaimable_seats(priced: pd.DataFrame) -> pd.DataFrame:
    """The reclaimable rows of a :func:`reclaim` table, highest reporting-currency cost first
    (unpriced last), then by integration and license name, then as listed (the sort is stable)."""
    at = np.flatnonzero(priced["reclaimable"].to_numpy(dtype=bool, na_value=False))

    def amount(col: str) -> np.ndarray:  # descending, empty last: negate, NaN sorts last
        return -priced[col].to_numpy(np.float64, na_value=np.nan)[at]

    order = np.lexsort(
        (
            _text_rank(priced["license_name"], at),
            _text_rank(priced["integration_label"], at),
            amount("annual_cost"),
            amount("annual_cost_reporting"),
        )
    )
    return priced.take(at[order]).reset_index(drop=True)


# ------------------------------------------------------------------ per license

LICENSE_ACTIVITY_COLUMNS = {
    "users_assigned_seats": "Int64",  # seat rows from the users side
    "assigned_difference": "Int64",  # users side - the license's assigned_seats
    "active_seats": "Int64",
    "inactive_seats": "Int64",  # inactive + never active
    "departed_seats": "Int64",
    "invited_seats": "Int64",
    "activity_not_reported_seats": "Int64",
    "active_utilization_pct": "Float64",  # active / seats bought, one decimal
}


def license_activity(classified: pd.DataFrame, licenses: pd.DataFrame) -> pd.DataFrame:
    """The license table plus :data:`LICENSE_ACTIVITY_COLUMNS`. A license no seat row matches has
    its activity figures empty (not reported), never 0; both seat counts are kept, with the difference.
    """
    n = len(licenses)
    at = match_licenses(classified, licenses)
    hit = at >= 0
    cls = classified["activity_class"].cat.codes.to_numpy()[hit]
    where = at[hit]
    reported = classified["activity_reported"].to_numpy(dtype=bool, na_value=False)[hit]

    def count(mask) -> np.ndarray:
        return np.bincount(where[mask], minlength=n).astype(np.int64)

    seats = count(np.ones(len(where), dtype=bool))
    any_reported = count(reported) > 0
    none = seats == 0
    out = licenses.copy()
    assigned, assigned_na = _masked(licenses["assigned_seats"], "Int64", np.int64)
    out["users_assigned_seats"] = pd.arrays.IntegerArray(seats, none)
    out["assigned_difference"] = pd.arrays.IntegerArray(seats - assigned, none | assigned_na)
    figures = {
        "active_seats": [CLASSES.index("active")],
        "inactive_seats": [CLASSES.index("inactive"), CLASSES.index("never_active")],
        "departed_seats": [CLASSES.index("departed")],
        "invited_seats": [CLASSES.index("invited")],
        "activity_not_reported_seats": [CLASSES.index("not_reported")],
    }
    for name, codes in figures.items():
        values = count(np.isin(cls, codes))
        na = (
            none
            if name in ("departed_seats", "activity_not_reported_seats")
            else none | ~any_reported
        )
        out[name] = pd.arrays.IntegerArray(values, na)
    total, total_na = _masked(licenses["total_seats"], "Int64", np.int64)
    active = out["active_seats"].to_numpy(dtype=np.int64, na_value=0)
    util_na = out["active_seats"].isna().to_numpy() | total_na | (total <= 0)
    safe_t = np.where(util_na, 1, total)
    tenths = (2000 * active + safe_t) // (2 * safe_t)
    out["active_utilization_pct"] = pd.arrays.FloatingArray(tenths / 10.0, util_na)
    return out


# ------------------------------------------------------------------ export

RECLAIM_EXPORT_COLUMNS = (
    "account_id",
    "integration",
    "integration_label",
    "license_id",
    "license_name",
    "organization_id",
    "user_id",
    "user_name",
    "user_email",
    "user_status",
    "last_active_at",
    "days_inactive",
    "activity_class",
    "reclaimable_annual_cost_price_currency",
    "currency",
    "reclaimable_annual_cost_reporting",
    "reporting_currency",
)


def reclaim_export(priced: pd.DataFrame, reporting_currency: str) -> pd.DataFrame:
    """One row per reclaimable seat, costliest first: :data:`RECLAIM_EXPORT_COLUMNS` (docs/export.md:
    ``activity_class`` the machine name of why it is reclaimable; the seat's annual cost in the
    license's ``currency`` and converted, empty without a price or a rate), then 0.3.0's names as
    deprecated copies (``reason``, ``annual_cost``, ``annual_cost_<CODE>``) until
    :data:`~lib.analytics.labels.DEPRECATED_UNTIL`."""
    rows = reclaimable_seats(priced)
    out = pd.DataFrame({c: rows[c] for c in RECLAIM_EXPORT_COLUMNS[:12] if c != "last_active_at"})
    out["last_active_at"] = rows["last_active_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["activity_class"] = rows["activity_class"].astype("string")
    out["reclaimable_annual_cost_price_currency"] = rows["annual_cost"]
    out["currency"] = rows["currency"]
    out["reclaimable_annual_cost_reporting"] = rows["annual_cost_reporting"]
    out["reporting_currency"] = pd.Series(reporting_currency, index=out.index, dtype="string")
    out = out[list(RECLAIM_EXPORT_COLUMNS)]
    out["reason"] = out["activity_class"]
    out["annual_cost"] = out["reclaimable_annual_cost_price_currency"]
    out[f"annual_cost_{reporting_currency}"] = out["reclaimable_annual_cost_reporting"]
    return out
