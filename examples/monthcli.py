#!/usr/bin/env python3
"""monthcli: the product of the month demo (examples/month.py), a CLI instrumented as any.

    monthcli init | generate --language go | deploy | fail

Its own two demo knobs, read here and nowhere else: MONTHCLI_CLOCK_OFFSET (seconds added to
this process's clock, as libfaketime would: the demo plays a month in minutes) and
MONTHCLI_VERSION (the installed version, so that installs upgrade during the month).
MONTHCLI_EVENT names a business event to record after the command (signup, purchase, ...).
"""

from __future__ import annotations

import os
import sys
import time

_OFFSET = float(os.environ.get("MONTHCLI_CLOCK_OFFSET") or 0)
if _OFFSET:  # before anything reads the clock: this process lives on another day
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _OFFSET
    time.time_ns = lambda: _time_ns() + int(_OFFSET * 1e9)

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import phonehome  # noqa: E402

VERSION = os.environ.get("MONTHCLI_VERSION", "1.0.0")
_WORK = {"init": 0.005, "generate": 0.02 + (os.getpid() % 7) / 100, "deploy": 0.05}


class Failed(Exception):
    """A failure reported to the user."""


def main() -> int:
    parser = argparse.ArgumentParser(prog="monthcli")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("init")
    commands.add_parser("generate").add_argument("--language", default="python")
    commands.add_parser("deploy")
    commands.add_parser("fail")
    args = parser.parse_args()
    with phonehome.instrument(
        "monthcli",
        version=VERSION,
        vendor=os.environ.get("MONTHCLI_VENDOR"),
        schema=Path(__file__).with_name("monthcli.toml"),
        spool_max_age=60 * 86400,  # the demo's clock runs up to a month behind the sender's
    ) as telemetry:
        name = "deploy" if args.command == "fail" else args.command
        params = {"language": args.language} if name == "generate" else {}
        try:
            with telemetry.command(name, params=params):
                time.sleep(_WORK.get(name, 0.0))  # the product's own work, in seconds
                if args.command == "fail":
                    raise Failed("the deployment was refused")
        except Failed as error:
            print(f"monthcli: error: {error}", file=sys.stderr)
            return 1
        event = os.environ.get("MONTHCLI_EVENT")
        if event:
            telemetry.event(event)
    return 0


if __name__ == "__main__":
    sys.exit(main())
