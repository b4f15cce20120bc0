"""``phonehome insights`` and ``phonehome collector --store``, as argparse parts.

``add_parser(subparsers)`` adds the subcommand; ``run(args)`` runs it and returns the exit
code. Bad input is one line on stderr naming the option, never a traceback.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DAYS = 28


class UsageError(Exception):
    """A bad option value; the message names it."""


def parse_time(option: str, value: str, now: float) -> int:
    """``2026-05-01``, ``2026-05-01T12:00:00[Z|+02:00]``, or ``7d``/``12h`` ago; in ns."""
    ago = re.fullmatch(r"(\d+)([dhm])", value.strip())
    if ago:
        seconds = int(ago.group(1)) * {"d": 86400, "h": 3600, "m": 60}[ago.group(2)]
        return int((now - seconds) * 1e9)
    try:
        moment = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {value!r}: expected a date (2026-05-01), a time "
            "(2026-05-01T12:00:00Z) or an age (7d, 12h)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp() * 1e9)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "insights",
        help="answer the product questions from the telemetry store",
        description="Installs, commands, failures, versions, platforms, runners, errors, "
        "events, retention and data loss for one product, from the embedded store of "
        "`phonehome collector --store` or from ClickHouse.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path, metavar="PATH", help="the embedded store file")
    where.add_argument(
        "--clickhouse",
        metavar="URL",
        help="a ClickHouse HTTP URL (http://127.0.0.1:8123/?database=otel)",
    )
    parser.add_argument("--product", required=True, metavar="NAME", help="the product's name")
    parser.add_argument(
        "--since", metavar="WHEN", help=f"default: {DEFAULT_DAYS} days before --until"
    )
    parser.add_argument("--until", metavar="WHEN", help="default: now")
    parser.add_argument("--funnel", metavar="A,B,C", help="events in order: installs reaching each")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON")
    output.add_argument("--html", type=Path, metavar="FILE", help="write a page with charts")
    return parser


def run(args: argparse.Namespace) -> int:
    from phonehome._tools.insights import questions, report
    from phonehome._tools.insights.engines import EngineError, open_engine
    from phonehome._tools.insights.store import StoreError

    try:
        now = time.time()
        until = parse_time("--until", args.until, now) if args.until else int(now * 1e9)
        since = (
            parse_time("--since", args.since, now)
            if args.since
            else until - DEFAULT_DAYS * questions.DAY
        )
        funnel = [s.strip() for s in (args.funnel or "").split(",") if s.strip()]
        if args.funnel is not None and not funnel:
            raise UsageError(f"--funnel {args.funnel!r}: name events, separated by commas")
        engine = open_engine(args.store, args.clickhouse)
        try:
            found = report.build(engine, questions.Range(args.product, since, until), funnel)
        finally:
            engine.close()
    except (UsageError, EngineError, StoreError, report.NoData) as error:
        print(f"phonehome insights: {error}", file=sys.stderr)
        return 1
    return _output(args, found)


def _output(args: argparse.Namespace, found: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(found, indent=1))
    elif args.html is not None:
        from phonehome._tools.insights import html

        try:
            args.html.write_text(html.render(found), encoding="utf-8")
        except OSError as error:
            print(f"phonehome insights: --html {args.html}: {error.strerror}", file=sys.stderr)
            return 1
        print(f"wrote {args.html}")
    else:
        from phonehome._tools.insights import text

        sys.stdout.write(text.render(found))
    return 0


def main(argv: list[str]) -> int:
    """``phonehome insights ...`` on its own (until the command is argparse throughout)."""
    parser = argparse.ArgumentParser(prog="phonehome")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["insights", *argv]))


def run_collector(store: Path, http_port: int, grpc_port: int) -> int:
    """``phonehome collector --store PATH``: until Ctrl-C or SIGTERM, restarting a dead
    writer; then Rotel is drained into the store before the writer stops."""
    import signal
    import threading

    from phonehome._tools.insights.collect import StoreCollector
    from phonehome._tools.insights.store import StoreError

    collector = StoreCollector(store, http_port=http_port, grpc_port=grpc_port)
    try:
        collector.start()
    except (StoreError, RuntimeError, OSError) as error:
        message = str(error).splitlines()[0]
        if not message.startswith("--store"):
            message = f"--store {store}: {message}"
        print(f"phonehome collector: {message}", file=sys.stderr)
        return 1
    print(
        f"collector listening on {collector.http_endpoint} (HTTP) and "
        f"{collector.grpc_endpoint} (gRPC), storing into {store}; Ctrl-C stops it",
        flush=True,
    )
    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop it in order (also when started with SIGINT ignored, as a
    # shell's background job is)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    try:
        while not stop.wait(0.2) and collector.alive():
            collector.watch()
    finally:
        collector.stop()
    print("collector stopped; the store is closed", flush=True)
    return 0
