"""One call to instrument an existing CLI: click, typer and argparse.

Each instruments every command (span name = the command path; parameter names always,
values per the schema) and adds a ``telemetry`` command group (``status``, ``enable``,
``disable``) to the host CLI, so end users manage consent in the tool they already use.

    cli = instrument_click(cli, "democli", version="1.4.0", vendor=URL, schema="t.toml")
    cli = instrument_typer(app, "democli", ...)
    sys.exit(run_argparse(parser, "democli", ...))
"""

from phonehome.integrations._argparse import run_argparse
from phonehome.integrations._click import instrument_click, instrument_typer

__all__ = ["instrument_click", "instrument_typer", "run_argparse"]
