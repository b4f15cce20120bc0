#!/usr/bin/env python3
"""The demo: democli runs several times; the vendor's and the user's destinations both receive.

Starts, all on 127.0.0.1: a capture receiver for the vendor with a real Rotel collector in
front of it, and a capture receiver standing for the user's own backend. Runs democli as an
end user would (one run fails), then prints what each destination received. Stops
everything it started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from phonehome.testing import OTLPReceiver, Rotel

HERE = Path(__file__).resolve().parent
RUNS = [
    ["generate", "--language", "python", "--openapi", "spec.yaml"],
    ["generate", "--language", "go", "--openapi", "/home/alice/private/petstore.yaml"],
    ["version"],
    ["fail"],
    ["generate", "--language", "typescript", "--openapi", "spec.yaml"],
]


def table(title: str, receiver: OTLPReceiver) -> str:
    rows = [("command", "result", "duration", "collected parameters", "parameter names")]
    for span in sorted(receiver.spans, key=lambda s: s.start):
        collected = ", ".join(
            f"{k.removeprefix('command.param.')}={v}"
            for k, v in span.attributes.items()
            if k.startswith("command.param.")
        )
        rows.append(
            (
                span.name,
                str(span.attributes.get("command.result")),
                f"{span.duration * 1000:.2f} ms",
                collected or "-",
                ", ".join(span.attributes.get("command.params", [])) or "-",
            )
        )
    executions: dict[tuple[str, str], float] = {}
    for point in receiver.points("democli.command.executions"):
        key = (point.attributes["command.name"], point.attributes["command.result"])
        executions[key] = executions.get(key, 0) + point.value
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"{title}: {len(receiver.spans)} spans, {len(receiver.metrics)} metric streams, "
        f"{len(receiver.logs)} log records"
    ]
    for index, row in enumerate(rows):
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    totals = ", ".join(
        f"{name}/{result}={int(n)}" for (name, result), n in sorted(executions.items())
    )
    lines.append(f"  democli.command.executions: {totals}")
    return "\n".join(lines)


def arrived(receiver: OTLPReceiver) -> int:
    """Commands whose span and whose execution count have both arrived."""
    counted = sum(p.value for p in receiver.points("democli.command.executions"))
    return min(len(receiver.spans), int(counted))


def main() -> int:
    started = time.monotonic()
    with (
        OTLPReceiver() as vendor,
        OTLPReceiver() as user,
        Rotel(vendor.url) as rotel,
        tempfile.TemporaryDirectory(prefix="democli-state-") as state,
    ):
        print(f"vendor: Rotel on {rotel.http_endpoint} -> capture receiver on {vendor.url}")
        print(f"user:   capture receiver on {user.url} (OTEL_EXPORTER_OTLP_ENDPOINT)\n")
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OTEL_", "DO_NOT_TRACK", "DEMOCLI_", "APPLICATIONINSIGHTS"))
        }
        environ.update(
            DEMOCLI_VENDOR=rotel.http_endpoint,
            OTEL_EXPORTER_OTLP_ENDPOINT=user.url,
            DEMOCLI_TELEMETRY_DIR=state,
        )
        for argv in RUNS:
            result = subprocess.run(
                [sys.executable, str(HERE / "democli.py"), *argv],
                env=environ,
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
            output = (result.stdout + result.stderr).strip()
            print(f"$ democli {' '.join(argv)}\n  {output}  [exit {result.returncode}]")
        expected = len(RUNS)
        for receiver in (vendor, user):
            if not receiver.wait_until(lambda r=receiver: arrived(r) >= expected, timeout=20):
                print(f"only {len(receiver.spans)} of {expected} commands arrived", file=sys.stderr)
                return 1
        print()
        print(table("vendor (through Rotel)", vendor))
        print()
        print(table("user's own destination", user))
    print(f"\ndone in {time.monotonic() - started:.1f} s; everything started has been stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
