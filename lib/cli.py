"""Command line: ``python -m lib export|summary|emulator``.

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

from .config import ConfigError, Settings, load_settings
from .fetch import FetchError, FetchResult

EXIT_OK, EXIT_NOTHING, EXIT_PARTIAL = 0, 1, 2


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress(done: int, total: int, account_id: str) -> None:
    if total:
        _err(f"fetched {done}/{total} accounts")


def _fetch(settings: Settings, quiet: bool = False) -> FetchResult:
    from .source import fetch

    if settings.demo:
        _err("No Truto API token configured: using the built-in demo data.")
    return fetch(settings, progress=None if quiet else _progress)


def _report(result: FetchResult) -> int:
    for outcome in result.failures:
        _err(f"FAILED {outcome.sentence()}")
    if not result.outcomes:
        _err("No integrated accounts found for this token (and tenant filter).")
    problems = len(result.problems)
    if problems:
        _err(f"{problems} record(s) could not be read as sent; see the Accounts page or the problems below:")
        for row in result.problems.itertuples(index=False):
            _err(f"  {row.integration_label} account {row.account_id}: {row.resource}: {row.detail}")
    return result.exit_code()


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from .export import write_csv

    result = _fetch(settings, args.quiet)
    table = result.licenses
    out = Path(args.out)
    write_csv(table, out)
    code = _report(result)
    _err(f"wrote {len(table)} license rows to {out}")
    return code


def cmd_emulator(args: argparse.Namespace) -> int:
    from .demo import DEMO_TOKEN, demo_dataset, synthetic_dataset
    from .emulator import Emulator

    if args.data:
        dataset = json.loads(Path(args.data).read_text())
    elif args.accounts:
        dataset = synthetic_dataset(args.accounts)
    else:
        dataset = demo_dataset()
    emu = Emulator(dataset, token=args.token or DEMO_TOKEN, host=args.host, port=args.port,
                   latency=args.latency).start()
    print(f"Truto emulator serving {len(dataset['accounts'])} accounts at {emu.base_url}", flush=True)
    print("Point the dashboard at it with TRUTO_BASE_URL and TRUTO_API_TOKEN set to the emulator's token.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    emu.stop()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib", description="License-utilization analytics over Truto.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="fetch every account and write the license table as CSV")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = sub.add_parser("emulator", help="run the Truto emulator on loopback")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    p.add_argument("--data", help="a JSON data set (default: the demo data)")
    p.add_argument("--accounts", type=int, help="serve a synthetic data set of this many accounts")
    p.add_argument("--token", help="the token it accepts (default: the demo token)")
    return parser


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
    except FetchError as exc:
        _err(f"Nothing fetched: {exc}")
        return EXIT_NOTHING
    except ConfigError as exc:
        _err(f"Configuration error: {exc}")
        return EXIT_NOTHING
    parser.error(f"unknown command {args.command}")
    return EXIT_NOTHING
