"""One call to instrument an existing CLI: click, typer and argparse.

Each records every run of the program as a command (span name = the command path;
parameter names always, values per the schema; the result and exit code per
``docs/integrations.md``) and answers ``<cli> telemetry status|enable|disable`` (hidden from
the host's help), so end users manage consent in the tool they already use.

    instrument_click(cli, "democli", version="1.4.0", vendor=URL, schema="t.toml")
    instrument_typer(app, "democli", ...)          # then app() as before
    sys.exit(run_argparse(parser, "democli", ...))  # or instrument_argparse(...)

Importing this package loads nothing more: each integration loads on first use.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from phonehome.integrations._argparse import (
        ArgparseCommand,
        instrument_argparse,
        run_argparse,
    )
    from phonehome.integrations._click import instrument_click, instrument_typer

__all__ = [
    "ArgparseCommand",
    "instrument_argparse",
    "instrument_click",
    "instrument_typer",
    "run_argparse",
]

_ARGPARSE = ("ArgparseCommand", "instrument_argparse", "run_argparse")
_CLICK = ("instrument_click", "instrument_typer")


def __getattr__(name: str) -> "Any":
    module: Any
    if name in _ARGPARSE:
        from phonehome.integrations import _argparse as module
    elif name in _CLICK:
        from phonehome.integrations import _click as module
    else:
        raise AttributeError(f"module 'phonehome.integrations' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value
