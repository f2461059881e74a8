"""Benchmark: tidy-table build, per-row metrics and all totals at 10k, 100k and 1M license rows.

    .venv/bin/python bench/metrics.py                  # 10k, 100k, 1M
    .venv/bin/python bench/metrics.py --sizes 10000 --repeat 5

Each size runs in a fresh Python process, so its peak memory (ru_maxrss) is
its own. Per size it times, after a small warm-up run:

- build: ``lib.normalize.build_license_table`` from raw Truto-shaped records;
- metrics: ``lib.metrics.add_metrics`` with a price book and exchange rates,
  ``prepare`` (reads the table once for all totals) and ``summarize`` (all
  licenses and paid only);
- group-bys: ``group_summary`` for every entry of ``GROUPINGS`` (integration,
  account, tenant, organization, license) and the chart helpers
  (``top_idle_spend``, ``utilization_by_integration``, ``spend_by_integration``).

Like the app and ``python -m lib``, each process first opts out of transparent huge pages
(:func:`lib.process.prefer_small_pages`; ``DASHBOARD_HUGE_PAGES=1`` keeps them, to compare).

"cold" is the first run in the process, "warm" the median of the other
``--repeat`` - 1 runs (memory already mapped: a long-running app). "per row vs smallest" is the time
per row of the whole pipeline divided by that at the smallest size: at most
about 1 means time grows no worse than linearly. Peak memory includes the raw
records the build reads (they are shown separately as "input").

The data are synthetic and deterministic (seeded): integrations from the
vendor pages, each record carrying only the fields its integration sends (so
Atlassian rows have no seat counts and only DocuSign has prices), ~3% of
licenses over-allocated, ~1% with the assigned count missing, some names in
another case than the price book's, and a price book covering ~90% of the
license names in USD, EUR and GBP with a rate for EUR only (GBP stays out of
the reporting totals).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lib.analytics import groupings  # noqa: E402
from lib.analytics import metrics as M  # noqa: E402
from lib.analytics import totals as T  # noqa: E402
from lib.analytics.pricing import validate_price_book  # noqa: E402
from lib.integrations import LICENSE_INTEGRATIONS, integration_key, supported_license_fields  # noqa: E402
from lib.process import huge_pages_disabled, prefer_small_pages  # noqa: E402
from lib.truto.normalize import Listing, build_license_table  # noqa: E402

SEED = 20240601
TIERS = ("Free", "Standard", "Pro", "Business", "Enterprise", "Premium", "Team", "Plus")
EDITIONS = 5
FX = {"EUR": 1.08}  # GBP deliberately has no rate
FETCHED_AT = datetime(2024, 6, 1, tzinfo=UTC)


def _catalog() -> dict[str, list[str]]:
    return {
        label: [f"{label} {tier} {k}" for tier in TIERS for k in range(1, EDITIONS + 1)]
        for label in LICENSE_INTEGRATIONS
    }


def make_listings(rows: int, seed: int = SEED) -> list[Listing]:
    """About ``rows`` raw license records in listings of 200-800, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    catalog = _catalog()
    labels = list(LICENSE_INTEGRATIONS)
    listings: list[Listing] = []
    made = 0
    n_listing = 0
    while made < rows:
        size = int(min(rng.integers(200, 801), rows - made))
        label = labels[int(rng.integers(0, len(labels)))]
        fields = set(supported_license_fields(label) or ())
        machine = integration_key(label)
        account = f"acct-{n_listing // 3:05d}"  # a few listings (orgs/products) per account
        tenant = f"tenant-{n_listing % 40:02d}" if n_listing % 13 else None
        org_id = f"org-{n_listing:05d}"
        names = catalog[label]
        name_idx = rng.integers(0, len(names), size)
        total = rng.integers(1, 500, size)
        ratio = rng.beta(4, 2, size)
        assigned = np.floor(total * ratio).astype(np.int64)
        over = rng.random(size) < 0.03
        assigned[over] = total[over] + rng.integers(1, 20, over.sum())
        no_assigned = rng.random(size) < 0.01
        lower = rng.random(size) < 0.05
        paid = rng.random(size) < 0.85
        amounts = rng.choice([25.0, 40.0, 65.0], size)
        vendor_cur = np.where(rng.random(size) < 0.7, "USD", "EUR")
        records = []
        has_assigned = "assigned_quantity" in fields
        has_total = "available_quantity" in fields
        has_paid = "is_paid" in fields
        has_price = "unit_amount" in fields
        has_status = "status" in fields
        prefix = f"lic-{n_listing:05d}-"
        for i in range(size):
            name = names[name_idx[i]]
            rec = {"id": prefix + str(i), "name": name.lower() if lower[i] else name}
            if has_assigned and not no_assigned[i]:
                rec["assigned_quantity"] = int(assigned[i])
            if has_total:
                rec["available_quantity"] = int(total[i])
            if has_paid:
                rec["is_paid"] = bool(paid[i])
            if has_status:
                rec["status"] = "active"
            if has_price:
                rec["unit_amount"] = float(amounts[i])
                rec["currency"] = str(vendor_cur[i])
            records.append(rec)
        listings.append(
            Listing(
                account_id=account,
                integration=machine,
                tenant_id=tenant,
                records=records,
                fetched_at=FETCHED_AT,
                organization_id=org_id,
                organization_name=f"Org {n_listing % 500}",
                product="azure_active_directory" if label == "Microsoft 365" else None,
            )
        )
        made += size
        n_listing += 1
    return listings


def make_price_book(seed: int = SEED) -> pd.DataFrame:
    """Prices for ~90% of the catalog's names (by name), in USD, EUR and GBP, plus a few by id."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    for label, names in _catalog().items():
        if label == "DocuSign":
            continue  # priced by the vendor
        for name in names:
            if rng.random() < 0.10:
                continue
            cur = str(rng.choice(["USD", "EUR", "GBP"], p=[0.6, 0.25, 0.15]))
            period = "monthly" if rng.random() < 0.7 else "annual"
            price = float(rng.choice([0, 4, 8, 12.5, 21, 35, 57.75, 99]))
            rows.append(
                {
                    "integration": label,
                    "license_id": None,
                    "license_name": name,
                    "unit_price": price * (12 if period == "annual" else 1),
                    "currency": cur,
                    "billing_period": period,
                }
            )
    for i in range(20):  # a negotiated price for single licenses
        rows.append(
            {
                "integration": "GitHub",
                "license_id": f"lic-{i:05d}-{i}",
                "license_name": None,
                "unit_price": 19.0,
                "currency": "USD",
                "billing_period": "monthly",
            }
        )
    return validate_price_book(pd.DataFrame(rows))


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _summaries(prepared: T.PreparedMetrics) -> dict:
    return {
        "all": T.summarize(prepared, paid_only=False),
        "paid": T.summarize(prepared, paid_only=True),
    }


def _groups(prepared: T.PreparedMetrics) -> dict:
    return {
        **groupings.all_group_summaries(prepared),
        "top_idle": groupings.top_idle_spend(prepared, 10),
        "utilization": groupings.utilization_by_integration(prepared),
        "spend": groupings.spend_by_integration(prepared),
    }


def run_one(rows: int, repeat: int) -> dict:
    options = M.MetricOptions(reporting_currency="USD", fx_rates=FX)
    book = make_price_book()
    # Warm-up (first-call costs of pandas/arrow), not measured.
    warm, _ = build_license_table(make_listings(2000, seed=SEED + 7))
    prepared = T.prepare(M.add_metrics(warm, book, options), options)
    _summaries(prepared)
    _groups(prepared)
    del prepared
    del warm
    gc.collect()
    base = _rss_now_mb()

    listings = make_listings(rows)
    gc.collect()
    gc.freeze()  # the raw records stay alive for the repeats; in the app they are gone after the build
    input_mb = _rss_now_mb() - base

    build, metric, total = [], [], []
    df = table = None
    for _ in range(max(repeat, 1)):
        del df, table
        df = table = None
        gc.collect()
        t0 = time.perf_counter()
        table, problems = build_license_table(listings)
        t1 = time.perf_counter()
        df = M.add_metrics(table, book, options)
        prepared = T.prepare(df, options)
        result = _summaries(prepared)
        t2 = time.perf_counter()
        result.update(_groups(prepared))
        t3 = time.perf_counter()
        del prepared
        build.append(t1 - t0)
        metric.append(t2 - t1)
        total.append(t3 - t2)
    summary = result["all"]
    warm = slice(1, None) if len(build) > 1 else slice(0, None)
    return {
        "rows": len(df),
        "listings": len(listings),
        "cold": [build[0], metric[0], total[0]],
        "build_s": statistics.median(build[warm]),
        "metrics_s": statistics.median(metric[warm]),
        "totals_s": statistics.median(total[warm]),
        "peak_mb": _peak_mb(),
        "input_mb": input_mb,
        "annual_spend": summary.annual_spend,
        "excluded": summary.excluded_by_currency,
        "flags": summary.flag_counts,
        "price_sources": df["price_source"].value_counts().to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        prefer_small_pages()  # as the app and the command line do (lib/process.py)
        print(
            json.dumps({**run_one(args.child, args.repeat), "small_pages": huge_pages_disabled()})
        )
        return 0

    print(
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs; each size in a fresh process"
    )
    print("cold: the first run in the process (fresh memory); warm: median of the later runs")
    if os.environ.get("DASHBOARD_HUGE_PAGES"):
        print("DASHBOARD_HUGE_PAGES set: the processes keep transparent huge pages")
    print(
        "per-row ratios: time per row divided by that at the smallest size (<= 1: no worse than linear)"
    )
    head = (
        f"{'rows':>9} {'run':>4} {'build s':>8} {'metrics s':>9} {'group-bys s':>11} {'total s':>8} "
        f"{'ratio all':>9} {'ratio metrics+groups':>20} {'peak MB':>8} {'input MB':>8}"
    )
    print(head)
    first: dict[str, tuple[float, float]] = {}
    results = []
    for size in args.sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--repeat", str(args.repeat)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        for kind, (b, m, t) in (
            ("cold", r["cold"]),
            ("warm", (r["build_s"], r["metrics_s"], r["totals_s"])),
        ):
            if kind == "warm" and args.repeat < 2:
                continue
            all_s = b + m + t
            per_row = (all_s / r["rows"], (m + t) / r["rows"])
            base = first.setdefault(kind, per_row)
            print(
                f"{r['rows']:>9,} {kind:>4} {b:>8.3f} {m:>9.3f} {t:>11.3f} {all_s:>8.3f} "
                f"{per_row[0] / base[0]:>9.2f} {per_row[1] / base[1]:>20.2f} {r['peak_mb']:>8.0f} {r['input_mb']:>8.0f}"
            )
    last = results[-1]
    print(
        f"\nlargest run: annual spend {last['annual_spend']:,.2f} USD; left out (no rate): "
        + ", ".join(f"{c} {v:,.2f}" for c, v in last["excluded"].items())
    )
    print("flags:", last["flags"])
    print("price sources:", last["price_sources"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
