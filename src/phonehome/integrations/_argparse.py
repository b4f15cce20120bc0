"""argparse: run the parsed command inside ``telemetry.command``; ``telemetry`` is added.

argparse parses but does not dispatch, so the integration does both for the common pattern:
subcommands with ``set_defaults(func=...)``. The command path is the chain of chosen
subcommands; the parameters are the options the user gave (not left at their default).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from phonehome.integrations import _common

_PATH = "_phonehome_path"


def run_argparse(
    parser: argparse.ArgumentParser,
    product: str,
    argv: Sequence[str] | None = None,
    **instrument_kwargs: Any,
) -> int:
    """Parse ``argv``, run the chosen subcommand's ``func(args)``, return its exit code.

    ``func`` may return an int (the exit code) or ``None`` (0). A ``telemetry`` subcommand
    (``status``, ``enable``, ``disable``) is added to the parser's subcommands.
    """
    import phonehome

    _add_telemetry(parser, product, instrument_kwargs)
    _mark_paths(parser, ())
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    path = " ".join(getattr(args, _PATH, ())) or parser.prog
    if getattr(args, "_phonehome_admin", False):
        print(func(args) if func else "")
        return 0
    given = _common.given(
        {k: v for k, v in vars(args).items() if k not in ("func", _PATH) and v is not None},
        _defaults(parser),
    )
    with phonehome.instrument(product, **instrument_kwargs) as telemetry:
        if func is None:
            parser.print_help(sys.stderr)
            return 2
        try:
            with telemetry.command(path, params=given):
                result = func(args)
                code = int(result) if isinstance(result, int) else 0
                if code:
                    raise SystemExit(code)  # a non-zero exit is recorded as a failure
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
    return code


def _subparsers(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _mark_paths(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
    """Each subparser sets the path of subcommands that chose it."""
    subparsers = _subparsers(parser)
    if subparsers is None:
        return
    for name, child in subparsers.choices.items():
        child.set_defaults(**{_PATH: (*path, name)})
        _mark_paths(child, (*path, name))


def _defaults(parser: argparse.ArgumentParser) -> dict[str, Any]:
    found = {a.dest: a.default for a in parser._actions if a.dest != argparse.SUPPRESS}
    subparsers = _subparsers(parser)
    if subparsers is not None:
        for child in subparsers.choices.values():
            found.update(_defaults(child))
    return found


def _add_telemetry(
    parser: argparse.ArgumentParser, product: str, instrument_kwargs: dict[str, Any]
) -> None:
    subparsers = _subparsers(parser)
    if subparsers is None or "telemetry" in subparsers.choices:
        return
    telemetry = subparsers.add_parser("telemetry", help="show or change usage telemetry")
    actions = telemetry.add_subparsers(dest="telemetry_action", required=True)
    for action, text, run in _common.ACTIONS:
        actions.add_parser(action, help=text).set_defaults(
            func=lambda _, run=run: run(product, instrument_kwargs), _phonehome_admin=True
        )
