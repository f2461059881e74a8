"""Command line: ``python -m lib export|summary|reclaim|sync|alerts|emulator``.

Exit codes of ``export`` (and of the other fetching commands):
0 every account was fetched; 2 some failed (the file still holds the rest,
one line per failure on stderr); 1 nothing could be fetched or the
configuration is wrong. Progress goes to stderr; the token never appears.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from lib.config import ConfigError, Settings, load_settings
from lib.jobs.cli_format import format_summary, strict_json
from lib.truto.fetch import FetchError, FetchResult

EXIT_OK, EXIT_NOTHING, EXIT_PARTIAL = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse with the documented exit code for a wrong flag: 1, a configuration error (argparse's own
    is 2, which here means that some accounts failed)."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(EXIT_NOTHING, f"{self.prog}: error: {message}\n")


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress(done: int, total: int, account_id: str) -> None:
    if total:
        _err(f"fetched {done}/{total} accounts")


def _fetch(settings: Settings, quiet: bool = False) -> FetchResult:
    from lib.truto.source import fetch

    if settings.demo:
        _err("No Truto API token configured: using the built-in demo data.")
    return fetch(settings, progress=None if quiet else _progress)


def _report(result: FetchResult) -> int:
    for outcome in result.failures:
        _err(f"FAILED {outcome.sentence()}")
    if not result.outcomes:
        _err("No integrated accounts found for this token (and tenant filter).")
    # every problem found: an account's users keep their first 1,000 rows, the rest counted in one
    problems = max(len(result.problems), sum(o.problems for o in result.outcomes))
    if problems:
        _err(
            f"{problems} record(s) could not be read as sent; see the Accounts page or the problems below:"
        )
        for row in result.problems.itertuples(index=False):
            _err(
                f"  {row.integration_label} account {row.account_id}: {row.resource}: {row.detail}"
            )
    return result.exit_code()


def _saved(args: argparse.Namespace):
    """(price book, exchange rates, settings) saved in the deployment's database, or None (said on stderr).

    The same database the dashboard uses (``DATABASE_URL``, else ``[database] url``, else the default SQLite
    file); a SQLite file that does not exist is not created.
    """
    if getattr(args, "no_saved", False):
        return None
    from sqlalchemy.engine import make_url

    from lib.store import Store, database_url, redact_url

    url = database_url()
    shown = redact_url(url)
    parsed = make_url(url)
    if (
        parsed.get_backend_name() == "sqlite"
        and parsed.database not in (None, "", ":memory:")
        and not Path(parsed.database).expanduser().exists()
    ):
        _err(
            f"No saved price book, rates or settings: {shown} does not exist (the dashboard creates it)."
        )
        return None
    try:
        store = Store(url)
        try:
            saved = store.get_price_book(), store.get_fx_rates(), store.get_settings()
            args.saved_exemptions = store.exemptions()
        finally:
            store.close()
    except Exception as exc:  # noqa: BLE001  (driver errors can quote the URL: show the type only)
        _err(
            f"Could not read the saved price book and settings from {shown} ({type(exc).__name__}); "
            "using the command-line options only."
        )
        return None
    _err(
        f"Using the price book ({len(saved[0])} prices), exchange rates and settings saved in {shown}; "
        "--price-book, --fx, --currency and --buffer override them, --no-saved ignores them."
    )
    return saved


def _analytics(args: argparse.Namespace):
    """(price book, metric options): the deployment's saved ones, overridden by the command line.

    Raises ConfigError listing the problem.
    """
    from lib.analytics.metrics import MetricOptions
    from lib.analytics.pricing import FxRatesError, PriceBookError, load_fx_rates, load_price_book

    saved = _saved(args)
    book, rates, stored = saved if saved is not None else (None, {}, {})
    currency = (args.currency or stored.get("reporting_currency") or "USD").strip().upper()
    if not args.fx and stored and currency != stored.get("reporting_currency"):
        _err(
            f"The saved exchange rates are to {stored.get('reporting_currency')}, not {currency}: amounts in "
            f"other currencies are left out of the {currency} totals (give --fx)."
        )
        rates = {}
    try:
        book = load_price_book(Path(args.price_book)) if args.price_book else book
    except (PriceBookError, OSError) as exc:
        raise ConfigError(f"--price-book {args.price_book}: {exc}") from None
    try:
        rates = load_fx_rates(Path(args.fx), currency) if args.fx else rates
    except (FxRatesError, OSError) as exc:
        raise ConfigError(f"--fx {args.fx}: {exc}") from None
    extra = {
        k: stored[k]
        for k in ("under_used_pct", "at_capacity_pct", "vendor_price_period")
        if k in stored
    }
    try:
        options = MetricOptions(
            reporting_currency=currency,
            fx_rates=rates,
            buffer=args.buffer if args.buffer is not None else stored.get("buffer", 0.10),
            **extra,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return book, options


def _buffer(text: str) -> float:
    """A buffer as a fraction: "0.1" or "10%", from 0 to :data:`lib.schema.MAX_BUFFER` (as the saved
    setting)."""
    from lib.schema import MAX_BUFFER

    try:
        value = float(text.strip()[:-1]) / 100 if text.strip().endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number like 0.1 or 10%") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the buffer cannot be negative")
    if not value <= MAX_BUFFER:  # NaN too
        raise argparse.ArgumentTypeError(
            f"{text!r} is more than {MAX_BUFFER:g} ({MAX_BUFFER:.0%}), so it cannot be right"
        )
    return value


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    # Every flag and input file is checked before anything is fetched: a wrong --fx file is a
    # configuration error (exit 1) at once, not after every account was listed.
    days = _inactive_days(args)
    book, options = _analytics(args)
    result = _fetch(settings, args.quiet)

    from lib.analytics.labels import EXPORT_PRE_RENAME, export_frame
    from lib.analytics.metrics import add_metrics
    from lib.export import write_csv

    table = add_metrics(result.licenses, book, options)
    if len(
        result.seats
    ):  # the per-license seat activity (lib.analytics.reclaim_views.with_activity)
        from lib.analytics.reclaim_views import with_activity

        table = with_activity(table, _reclaim(args, result, table, options, days), options)
    out = Path(args.out)
    # The exported column names (docs/export.md), and the names before them as deprecated copies.
    write_csv(export_frame(table, options.reporting_currency, EXPORT_PRE_RENAME), out)
    code = _report(result)
    _err(f"wrote {len(table)} license rows to {out}")
    return code


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    from lib.analytics.metrics import add_metrics
    from lib.analytics.totals import prepare, summarize

    book, options = _analytics(args)
    result = _fetch(settings, quiet=True)
    from lib.analytics.spend_gaps import spend_gaps

    table = add_metrics(result.licenses, book, options)
    prep = prepare(table, options)
    summaries = {"all_licenses": summarize(prep), "paid_licenses": summarize(prep, paid_only=True)}
    gaps = spend_gaps(table, options)
    reclaimed, reclaim_figures = None, None
    if len(result.seats):  # seat activity: what the Reclaim page and the Overview's tile show
        from dataclasses import asdict

        from lib.analytics.activity import DEFAULT_INACTIVE_DAYS, reclaim_summary

        priced = _reclaim(args, result, table, options, DEFAULT_INACTIVE_DAYS)
        reclaim_figures = reclaim_summary(priced, options.reporting_currency)
        reclaimed = asdict(reclaim_figures)
    code = _report(result)
    if args.json:
        out: dict = {k: s.as_dict() for k, s in summaries.items()}
        out["reclaim_90_days"] = reclaimed
        out["spend_left_out"] = {
            "at_least_from_seats_assigned": gaps.floor,
            "rows": {
                r: gaps.count(r)
                for r in ("bought_not_reported", "no_seat_counts", "no_price", "no_rate")
            },
        }
        print(strict_json(out))
    else:
        print(format_summary(summaries, gaps, reclaim_figures))
    return code


def cmd_reclaim(args: argparse.Namespace, settings: Settings) -> int:
    """One row per reclaimable seat (lib.analytics.activity); exit codes as ``export``, and 2 when an
    account's users could not be listed (the file lacks its seats)."""
    from lib.analytics.activity import reclaim_cost_words, reclaim_export, reclaim_summary
    from lib.analytics.metrics import add_metrics
    from lib.export import write_csv

    days = _inactive_days(args)
    book, options = _analytics(args)
    result = _fetch(settings, args.quiet)
    priced = _reclaim(args, result, add_metrics(result.licenses, book, options), options, days)
    table = reclaim_export(priced, options.reporting_currency)
    out = Path(args.out)
    write_csv(table, out)
    code = _report(result)
    failed = result.activity[result.activity["activity"] == "failed"]
    for row in failed.itertuples(index=False):
        _err(f"FAILED seat activity of account {row.account_id}: {row.activity_message}")
    if len(failed) and code == EXIT_OK:
        code = EXIT_PARTIAL
    s = reclaim_summary(priced, options.reporting_currency)
    # "not known" while nothing reclaimable is priced (reclaim_cost_words): 0.00 would claim it.
    cost = (
        "not known a year"
        if reclaim_cost_words(s) == "not known" or s.reclaimable_annual_cost is None
        else f"{s.reclaimable_annual_cost:,.2f} {s.reporting_currency} a year"
    )
    _err(
        f"wrote {len(table)} reclaimable seats (of {s.seats} seat assignments; inactive for more "
        f"than {days} days, never active, departed or invited) to {out}: {cost}"
        + (
            f"; {s.unpriced_reclaimable_seats} without a price"
            if s.unpriced_reclaimable_seats
            else ""
        )
    )
    return code


def _inactive_days(args: argparse.Namespace) -> int:
    from lib.analytics.activity import validate_threshold

    try:
        return validate_threshold(args.inactive_days)
    except ValueError as exc:
        raise ConfigError(f"--inactive-days: {exc}") from None


def _reclaim(args: argparse.Namespace, result, metrics, options, days: int):
    """Every seat classified and priced, without the exemptions saved in the dashboard (unless
    --no-saved)."""
    from lib.analytics.activity import exemption_lists, reclaim

    saved = getattr(args, "saved_exemptions", None)
    users, licenses = exemption_lists(saved) if saved is not None else (frozenset(), frozenset())
    if users or licenses:
        _err(f"Leaving out {len(users) + len(licenses)} exemption(s) saved in the dashboard.")
    return reclaim(result.seats, metrics, options, days, None, users, licenses)


def cmd_emulator(args: argparse.Namespace) -> int:
    from lib.truto.demo import DEMO_TOKEN, demo_dataset, first_day_dataset, synthetic_dataset
    from lib.truto.emulator import Emulator

    faults: dict = {}
    if args.every_fault:
        dataset, faults = first_day_dataset()
    elif args.data:
        dataset = json.loads(Path(args.data).read_text())
    elif args.accounts:
        dataset = synthetic_dataset(args.accounts)
    else:
        dataset = demo_dataset()
    emu = Emulator(
        dataset,
        token=args.token or DEMO_TOKEN,
        host=args.host,
        port=args.port,
        latency=args.latency,
        faults=faults,
    ).start()
    print(
        f"Truto emulator serving {len(dataset['accounts'])} accounts at {emu.base_url}", flush=True
    )
    print(
        "Point the dashboard at it with TRUTO_BASE_URL and TRUTO_API_TOKEN set to the emulator's token.",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    emu.stop()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lib", description="License-utilization analytics over Truto.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "export",
        help="fetch every account and write the license table, with its seat activity, as CSV",
    )
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _inactive_days_arg(p)
    _analytics_args(p)

    p = sub.add_parser("summary", help="fetch every account and print the seat and spend summary")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _analytics_args(p)

    p = sub.add_parser(
        "reclaim", help="fetch every account and write one row per reclaimable seat as CSV"
    )
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _inactive_days_arg(p)
    _analytics_args(p)

    p = sub.add_parser("sync", help="fetch every account and store a snapshot (the scheduled job)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--keep-days",
        type=int,
        default=None,
        help="retention: keep daily snapshots this many days, 1 to 36500 (default: the stored "
        "setting, 730)",
    )
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        metavar="N",
        help="this process is one of N sharing one run (PostgreSQL only): each claims accounts "
        "until all are fetched, and paces at token_rate_limit / N",
    )
    p.add_argument(
        "--run-id",
        default=None,
        help="with --shards: the run's key, the same for the N processes (e.g. the Kubernetes "
        "Job's name); default: the schedule slot",
    )
    p.add_argument(
        "--slot-minutes",
        type=int,
        default=None,
        help="with --shards and no --run-id: the schedule slot's length (default 60)",
    )
    p.add_argument(
        "--rate-limit",
        type=int,
        default=None,
        help="with --shards: this process's requests per rate window (default: token_rate_limit / N)",
    )
    p.add_argument(
        "--lease-seconds",
        type=float,
        default=None,
        help="with --shards: a claim expires this long after its holder's last renewal (default 120)",
    )

    p = sub.add_parser(
        "alerts",
        help="evaluate the alert rules on the latest snapshot and send what fired "
        "(exit 0 nothing to send, 3 alerts fired, 1 configuration error)",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would fire; send nothing")
    p.add_argument("--json", action="store_true", help="print what happened as JSON")
    p.add_argument("--digest", action="store_true", help="also send the weekly digest now")

    p = sub.add_parser("emulator", help="run the Truto emulator on loopback")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--data", help="a JSON data set (default: the demo data)")
    p.add_argument("--accounts", type=int, help="serve a synthetic data set of this many accounts")
    p.add_argument("--token", help="the token it accepts (default: the demo token)")
    p.add_argument(
        "--every-fault",
        action="store_true",
        help="the demo data plus one account per fault the emulator knows (failing, blocked, "
        "reauthorisation, malformed, rate-limited, not supported, ...), users and billing failing",
    )
    return parser


def _inactive_days_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--inactive-days",
        default=90,
        help="a seat is inactive after this many days without activity, 1 to 3650 (default 90)",
    )


def _analytics_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--price-book",
        metavar="FILE",
        help="price-book CSV: integration,license_id,license_name,"
        "unit_price,currency,billing_period (default: the saved one)",
    )
    p.add_argument(
        "--fx",
        metavar="FILE",
        help="exchange rates CSV: currency,rate (units of --currency per unit); "
        "default: the saved rates",
    )
    p.add_argument(
        "--currency",
        default=None,
        help="reporting currency (ISO 4217; default: the saved one, else USD)",
    )
    p.add_argument(
        "--buffer",
        type=_buffer,
        default=None,
        help="right-sizing headroom, 0.1 or 10%%, at most 10 (1000%%) (default: the saved one, "
        "else 10%%)",
    )
    p.add_argument(
        "--no-saved",
        action="store_true",
        help="ignore the price book, exchange rates, settings and reclaim exemptions saved in the "
        "dashboard's database",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "emulator":
        return cmd_emulator(args)
    try:
        settings = load_settings()
    except ConfigError as exc:
        _err(f"Configuration error: {exc}")
        return EXIT_NOTHING
    try:
        if args.command == "export":
            return cmd_export(args, settings)
        if args.command == "summary":
            return cmd_summary(args, settings)
        if args.command == "reclaim":
            return cmd_reclaim(args, settings)
        if args.command == "sync":
            from lib.jobs.sync import cmd_sync

            return cmd_sync(args, settings)
        if args.command == "alerts":
            from lib.jobs.alerts import cmd_alerts

            return cmd_alerts(args, settings)
    except FetchError as exc:
        _err(f"Nothing fetched: {exc}")
        return EXIT_NOTHING
    except ConfigError as exc:
        _err(f"Configuration error: {exc}")
        return EXIT_NOTHING
    parser.error(f"unknown command {args.command}")
    return EXIT_NOTHING
