"""The ``phonehome`` command: manage telemetry as an end user, check it as an integrator.

    phonehome list                       the products with telemetry state here
    phonehome status -p democli          what is decided, by whom, sent where
    phonehome disable --all              opt out of every product built on phonehome
    phonehome schema check telemetry.toml
    phonehome collector --forward-to https://backend.example.com:4318
    phonehome collector --store telemetry.duckdb
    phonehome insights --store telemetry.duckdb -p democli

Built on ``argparse`` so that the base install needs nothing beyond OpenTelemetry. Each
subcommand is a :class:`~phonehome._tools.subcommand.Subcommand` (a function that adds its
arguments, one that runs it); :data:`SUBCOMMANDS` lists them, in ``--help`` order.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from phonehome._tools import develop, manage
from phonehome._tools.insights import command as insights
from phonehome._tools.subcommand import USAGE, Failure, Subcommand, add_product_options

SUBCOMMANDS: tuple[Subcommand, ...] = (
    *manage.SUBCOMMANDS,
    *develop.SUBCOMMANDS,
    insights.SUBCOMMAND,
)
"""Every subcommand: add one here."""


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (``phonehome status: ...``), no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> Parser:
    """The whole command line: the shared options, then one parser per subcommand."""
    from phonehome._core import VERSION

    top = Parser(
        prog="phonehome",
        description="Manage the telemetry of products built on phonehome, and check your own.",
    )
    top.add_argument("--version", action="version", version=f"phonehome {VERSION}")
    add_product_options(top)
    commands = top.add_subparsers(dest="subcommand", metavar="COMMAND", parser_class=Parser)
    for command in SUBCOMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        command.add(sub)
        sub.set_defaults(run=command.run, prog=sub.prog)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``python -m phonehome`` exits with it).

    What follows ``--`` is a command to run (``phonehome schema check -- pytest``), kept
    apart before parsing so that no option of it is taken for one of ours.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] | None = None
    if "--" in arguments:
        at = arguments.index("--")
        arguments, rest = arguments[:at], arguments[at + 1 :]
    top = parser()
    args = top.parse_args(arguments)
    args.rest = rest
    if args.subcommand is None:
        top.print_help()
        return USAGE
    if rest is not None and args.subcommand != "schema":
        top.error(f"{args.subcommand} takes nothing after --")
    try:
        return int(args.run(args))
    except Failure as failure:
        print(f"{args.prog}: {failure}", file=sys.stderr)
        return failure.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `phonehome list | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
