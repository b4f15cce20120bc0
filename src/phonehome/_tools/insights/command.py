"""``phonehome insights`` (:data:`SUBCOMMAND`) and ``phonehome collector --store``.

Bad input is one line on stderr naming the option, never a traceback. Nothing here imports
DuckDB until a command runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phonehome._tools.subcommand import PRODUCT_VARIABLE, USAGE, Failure, Subcommand

if TYPE_CHECKING:
    import threading

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


HELP = "Answer the product questions from the telemetry store (the embedded store or ClickHouse)."


def add(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Installs, commands, failures, versions, platforms, runners, errors, events, "
        "retention and data loss for one product, from the embedded store of "
        "`phonehome collector --store` or from ClickHouse."
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path, metavar="PATH", help="the embedded store file")
    where.add_argument(
        "--clickhouse",
        metavar="URL",
        help="a ClickHouse HTTP URL (http://127.0.0.1:8123/?database=otel)",
    )
    parser.add_argument(
        "-p",
        "--product",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help=f"the product to answer for (or {PRODUCT_VARIABLE})",
    )
    parser.add_argument(
        "--since", metavar="WHEN", help=f"default: {DEFAULT_DAYS} days before --until"
    )
    parser.add_argument("--until", metavar="WHEN", help="default: now")
    parser.add_argument("--funnel", metavar="A,B,C", help="events in order: installs reaching each")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON")
    output.add_argument("--html", type=Path, metavar="FILE", help="write a page with charts")


def run(args: argparse.Namespace) -> int:
    from phonehome._tools.insights import questions, report
    from phonehome._tools.insights.engines import EngineError, open_engine
    from phonehome._tools.insights.store import StoreError

    product = (getattr(args, "product", None) or os.environ.get(PRODUCT_VARIABLE, "")).strip()
    if not product:
        raise Failure("name the product with -p NAME", USAGE)
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
            found = report.build(engine, questions.Range(product, since, until), funnel)
        finally:
            engine.close()
    except (UsageError, EngineError, StoreError, report.NoData) as error:
        raise Failure(str(error)) from None
    return _output(args, found)


def _output(args: argparse.Namespace, found: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(found, indent=1))
    elif args.html is not None:
        from phonehome._tools.insights import html

        try:
            args.html.write_text(html.render(found), encoding="utf-8")
        except OSError as error:
            raise Failure(f"--html {args.html}: {error.strerror}") from None
        print(f"wrote {args.html}")
    else:
        from phonehome._tools.insights import text

        sys.stdout.write(text.render(found))
    return 0


def run_collector(store: Path, http_port: int, grpc_port: int, stop: threading.Event) -> int:
    """``phonehome collector --store PATH``: until ``stop`` is set (Ctrl-C, SIGTERM),
    restarting a dead writer; then Rotel is drained into the store before the writer stops."""
    from phonehome._tools.insights.collect import StoreCollector
    from phonehome._tools.insights.store import StoreError

    collector = StoreCollector(store, http_port=http_port, grpc_port=grpc_port)
    try:
        collector.start()
    except (StoreError, RuntimeError, OSError) as error:
        message = str(error).splitlines()[0]
        if not message.startswith("--store"):
            message = f"--store {store}: {message}"
        raise Failure(message) from None
    print(
        f"collector listening on {collector.http_endpoint} (HTTP) and "
        f"{collector.grpc_endpoint} (gRPC), storing into {store}; Ctrl-C stops it",
        flush=True,
    )
    try:
        while not stop.wait(0.2) and collector.alive():
            collector.watch()
    finally:
        collector.stop()
    print("collector stopped; the store is closed", flush=True)
    return 0


SUBCOMMAND = Subcommand("insights", HELP, add, run)
