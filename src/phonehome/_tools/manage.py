"""The ``phonehome`` subcommands for end users: a product's telemetry, or every product's.

phonehome list                       the products with telemetry state here
phonehome status -p democli          what is decided, by whom, sent where
phonehome disable -p democli         opt out of one product (purges what is waiting)
phonehome disable --all              opt out of every product built on phonehome
phonehome preview | flush | reset-id -p democli
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from phonehome._tools import admin
from phonehome._tools.subcommand import (
    USAGE,
    Failure,
    Subcommand,
    add_product_options,
    known_text,
    print_rows,
    product_of,
    seconds,
)


# -- list ------------------------------------------------------------------------------------
def add_list(parser: argparse.ArgumentParser) -> None:
    del parser  # no arguments


def run_list(args: argparse.Namespace) -> int:
    rows = admin.products()
    if not rows:
        print(f"no product built on phonehome has telemetry state here ({known_text()})")
    print_rows(rows)
    return 0


# -- status ----------------------------------------------------------------------------------
def add_status(parser: argparse.ArgumentParser) -> None:
    add_product_options(parser)


def run_status(args: argparse.Namespace) -> int:
    product, directory = product_of(args)
    print_rows(admin.status(product, directory))
    return 0


# -- enable, disable -------------------------------------------------------------------------
def add_choice(parser: argparse.ArgumentParser) -> None:
    add_product_options(parser)
    parser.add_argument(
        "--all",
        action="store_true",
        dest="everywhere",
        help="every product built on phonehome, present and future (a user-wide choice)",
    )


def run_enable(args: argparse.Namespace) -> int:
    return _choose(args, True)


def run_disable(args: argparse.Namespace) -> int:
    return _choose(args, False)


def _choose(args: argparse.Namespace, enabled: bool) -> int:
    word = "on" if enabled else "off"
    if args.everywhere:
        if getattr(args, "product", None):
            raise Failure("give either -p PRODUCT or --all, not both", USAGE)
        try:
            path, purged = admin.set_consent_everywhere(enabled)
        except OSError as error:
            raise Failure(f"cannot store the choice ({error.strerror or error})") from None
        print(f"telemetry is {word} for every product built on phonehome (stored in {path})")
        if purged:
            print(f"purged what was waiting, and forgot the install ids of: {', '.join(purged)}")
        if enabled:
            print("a product's own 'off' (its variable, its stored choice) still wins")
        return 0
    product, directory = product_of(args)
    try:
        admin.set_consent(product, directory, enabled)
    except OSError as error:
        raise Failure(f"cannot store the choice in {directory} ({error.strerror})") from None
    print(f"telemetry for {product} is {word} (stored choice)")
    if not enabled:
        print("nothing waiting will be sent, and the install id is forgotten")
    return 0


# -- reset-id --------------------------------------------------------------------------------
def add_reset_id(parser: argparse.ArgumentParser) -> None:
    add_product_options(parser)


def run_reset_id(args: argparse.Namespace) -> int:
    product, directory = product_of(args)
    admin.reset_id(directory)
    print(f"install id of {product} forgotten; a new one is made on its next run with consent")
    return 0


# -- preview ---------------------------------------------------------------------------------
def add_preview(parser: argparse.ArgumentParser) -> None:
    add_product_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def run_preview(args: argparse.Namespace) -> int:
    _, directory = product_of(args)
    shown = admin.preview(directory)
    if args.json:
        print(json.dumps(shown, indent=1, default=str))
        return 0
    print(f"waiting to be sent: {len(shown['waiting'])} record(s)")
    for item in shown["waiting"]:
        print("  " + _line(item))
    print(f"sent (newest last, at most 100 exports kept): {len(shown['sent'])} export(s)")
    for entry in shown["sent"]:
        counts = entry.get("counts", {})
        print(
            f"  {entry.get('at')} to {entry.get('destination')}: "
            f"{counts.get('spans', 0)} span(s), {counts.get('logs', 0)} log record(s), "
            f"metrics {', '.join(entry.get('metrics', [])) or '-'}"
        )
    return 0


def _line(item: dict[str, Any]) -> str:
    kind = next(k for k in ("span", "log", "metric") if k in item)
    attributes = ", ".join(f"{k}={v}" for k, v in item.get("attributes", {}).items())
    return f"{kind} {item[kind]}" + (f" ({attributes})" if attributes else "")


# -- flush -----------------------------------------------------------------------------------
def add_flush(parser: argparse.ArgumentParser) -> None:
    add_product_options(parser)
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="seconds to spend at most (default: 10)",
    )


def run_flush(args: argparse.Namespace) -> int:
    product, directory = product_of(args)
    failures, summary = admin.flush(
        product, directory, args.timeout, lambda line: print(line, flush=True)
    )
    print(summary)
    for line in failures:
        print(f"phonehome flush: {line}", file=sys.stderr)
    return 1 if failures else 0


SUBCOMMANDS = (
    Subcommand(
        "list", "List the products with telemetry state on this machine.", add_list, run_list
    ),
    Subcommand(
        "status",
        "Show whether telemetry is on, who decided, the destinations and the state.",
        add_status,
        run_status,
    ),
    Subcommand(
        "enable", "Opt in: for one product (-p), or every product (--all).", add_choice, run_enable
    ),
    Subcommand(
        "disable",
        "Opt out: for one product (-p), or every product (--all); purges what waits.",
        add_choice,
        run_disable,
    ),
    Subcommand(
        "reset-id",
        "Forget a product's random install id: its next run is a new install.",
        add_reset_id,
        run_reset_id,
    ),
    Subcommand(
        "preview",
        "Show what is waiting to be sent, and the ledger of what was sent.",
        add_preview,
        run_preview,
    ),
    Subcommand("flush", "Send what is waiting now, in this process.", add_flush, run_flush),
)
"""The end users' subcommands, in the order ``phonehome --help`` lists them."""
