"""Run a CLI's entry object as its console script would, instrumented or not.

    python tests/clis/entry.py KIND MODULE:ATTR PROG [ARGS...]

KIND is ``click`` (a click command or group), ``typer`` (a ``Typer`` app) or ``argparse``
(a ``main`` function that builds and parses its own parser; its return value is the exit
code). With ``PHONEHOME_ENTRY=PRODUCT`` in the environment the object is instrumented with
the matching integration (settings from ``<PRODUCT>_TELEMETRY_*`` variables and
``<PRODUCT>_VENDOR``); without it, it runs plain. Generic: any real CLI's entry object in,
the same program out, instrumented.
"""

from __future__ import annotations

import importlib
import os
import sys


def main() -> None:
    kind, entry, prog, *args = sys.argv[1:]
    module, _, attr = entry.partition(":")
    target = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    sys.argv = [prog, *args]
    product = os.environ.get("PHONEHOME_ENTRY")
    if product:
        vendor = os.environ.get(f"{product.upper()}_VENDOR")
        if kind == "click":
            from phonehome.integrations import instrument_click

            instrument_click(target, product, vendor=vendor)
        elif kind == "typer":
            from phonehome.integrations import instrument_typer

            instrument_typer(target, product, vendor=vendor)
        else:
            from phonehome.integrations import instrument_argparse

            target = instrument_argparse(None, product, vendor=vendor)(target)
    if kind == "argparse":
        sys.exit(target())
    target()


if __name__ == "__main__":
    main()
