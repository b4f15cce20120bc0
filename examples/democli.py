#!/usr/bin/env python3
"""democli: a small command-line tool, instrumented with phonehome in about ten lines.

    democli generate --language python --openapi spec.yaml
    democli fail
    democli version

The vendor's endpoint comes from DEMOCLI_VENDOR; end users opt out with
DEMOCLI_TELEMETRY_OPTOUT=1 (or DO_NOT_TRACK=1) and get their own copy with the standard
OTEL_EXPORTER_OTLP_ENDPOINT or APPLICATIONINSIGHTS_CONNECTION_STRING.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import phonehome

__version__ = "1.4.0"


class DemoError(Exception):
    """A failure the tool reports to its user."""


def run(args: argparse.Namespace) -> None:
    if args.command == "generate":
        print(f"generated a {args.language} client from {args.openapi}")
    elif args.command == "fail":
        raise DemoError("the spec could not be read")
    else:
        print(f"democli {__version__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="democli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser("generate", help="generate a client from an OpenAPI spec")
    generate.add_argument("--language", required=True)
    generate.add_argument("--openapi", required=True)
    commands.add_parser("fail", help="fail, to show how failures are recorded")
    commands.add_parser("version", help="print the version")
    args = parser.parse_args(argv)

    # -- phonehome: these lines are all the instrumentation there is ---------------------
    with phonehome.instrument(
        "democli",
        version=__version__,
        vendor=os.environ.get("DEMOCLI_VENDOR"),
        consent="opt-out",
        schema=Path(__file__).with_name("democli.toml"),  # what may be sent, and how
    ) as telemetry:
        params = {name: value for name, value in vars(args).items() if name != "command"}
        try:
            with telemetry.command(args.command, params=params):
                run(args)
        except DemoError as error:
            print(f"democli: error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
