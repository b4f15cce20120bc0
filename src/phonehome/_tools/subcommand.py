"""What every ``phonehome`` subcommand is made of, and the arguments they share.

A subcommand is two functions: one adds its arguments to its parser, one runs it and returns
the exit code. ``phonehome._tools.cli`` lists them; adding one is a :class:`Subcommand` and a
line in that list. A problem the user can fix is a :class:`Failure`: one line on stderr, no
traceback.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from phonehome._core import environment as env

PRODUCT_VARIABLE = "PHONEHOME_PRODUCT"
"""The product the product subcommands manage when ``-p`` is not given."""

USAGE = 2
"""The exit code of a usage error (argparse's)."""


class Subcommand(NamedTuple):
    """One ``phonehome`` subcommand: its name, one line of help, and its two functions."""

    name: str
    help: str
    add: Callable[[argparse.ArgumentParser], None]
    """Adds the subcommand's arguments to its parser."""
    run: Callable[[argparse.Namespace], int]
    """Runs it; returns the exit code."""


class Failure(Exception):
    """A problem the user can fix: printed as one line, ``phonehome <command>: <message>``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# -- argument types: one line naming the value and what is expected -----------------------------
def port(value: str) -> int:
    """A TCP port, 1 to 65535."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port (use 1 to 65535)")
    return int(text)


def seconds(value: str) -> float:
    """A positive number of seconds, at most an hour."""
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 < number <= 3600:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (0 to 3600)")
    return number


def base_url(value: str) -> str:
    """An OTLP/HTTP base URL (``http://host:4318``), not a signal's own path."""
    from phonehome._core.destinations import check_base, check_url
    from phonehome._core.errors import DestinationError

    try:
        check_url(value)
        check_base(value)
    except DestinationError as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error}") from None
    return value.strip().rstrip("/")


def existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "does not exist"
        raise argparse.ArgumentTypeError(f"{value} {reason}")
    return path


# -- the product a subcommand manages -----------------------------------------------------------
def add_product_options(parser: argparse.ArgumentParser) -> None:
    """``-p/--product`` and ``--state-dir``, accepted before or after the subcommand.

    (Their default is "absent", so that a value given before the subcommand is not replaced
    by the subcommand's own default.)
    """
    parser.add_argument(
        "-p",
        "--product",
        default=argparse.SUPPRESS,
        help=f"the product whose telemetry to manage (or {PRODUCT_VARIABLE})",
    )
    parser.add_argument(
        "--state-dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help="the product's state directory, if not the default",
    )


def known_text() -> str:
    from phonehome._tools.admin import known_products

    known = known_products()
    return f"known on this machine: {', '.join(known)}" if known else "none has run here yet"


def product_of(args: argparse.Namespace) -> tuple[str, Path]:
    """The product named by ``-p`` (or ``PHONEHOME_PRODUCT``) and its state directory.

    Raises :class:`Failure` when there is no product, or it has no state here: a typo must
    not create a new state directory.
    """
    from phonehome._tools.admin import state_dir

    product = (getattr(args, "product", None) or os.environ.get(PRODUCT_VARIABLE, "")).strip()
    if not product:
        raise Failure(f"name the product with -p NAME ({known_text()})", USAGE)
    override = getattr(args, "state_dir", None)
    directory = state_dir(product, override)
    if not directory.is_dir():
        variable = env.TELEMETRY_DIR.format(prefix=env.prefix_for(product))
        where = "--state-dir" if override else variable if os.environ.get(variable) else ""
        if where:
            raise Failure(f"{directory} ({where}) is not a directory", USAGE)
        raise Failure(
            f"no product {product!r} has telemetry state on this machine ({known_text()}); "
            f"to opt out of every product, even one not run yet: phonehome disable --all",
            USAGE,
        )
    return product, directory


def print_rows(rows: list[tuple[str, str]]) -> None:
    """``key  value`` lines, the values aligned."""
    width = max((len(key) for key, _ in rows), default=0)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
