#!/usr/bin/env python3
"""The demo: democli runs several times; the vendor's and the user's destinations both receive.

Starts, all on 127.0.0.1: the vendor's collector as a vendor runs it (`phonehome collector
--store`: Rotel in front of the embedded store), and a capture receiver standing for the
user's own backend. Runs democli as an end user would (one run fails), prints what the
user's destination received, stops the collector with Ctrl-C and ends with the vendor's
answers: `phonehome insights` over the store. Stops everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from phonehome.testing import OTLPReceiver, free_port

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


PHONEHOME = [sys.executable, "-m", "phonehome"]


def flushed(state: str, environ: dict[str, str]) -> bool:
    """Whether everything spooled went (``phonehome flush`` waits for the background sender
    to finish, then sends what is left): after it, nothing writes in ``state``."""
    result = subprocess.run(
        [*PHONEHOME, "--product", "democli", "--state-dir", state, "flush", "--timeout", "30"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0  # non-zero while anything still waits


def main() -> int:
    started = time.monotonic()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "DO_NOT_TRACK", "DEMOCLI_", "APPLICATIONINSIGHTS"))
    }
    with (
        OTLPReceiver() as user,
        tempfile.TemporaryDirectory(prefix="democli-state-") as state,
    ):
        store = Path(state) / "vendor.duckdb"
        with store_collector(store, environ) as (collector, port):
            return run(environ, user, state, store, port, collector, started)


@contextlib.contextmanager
def store_collector(
    store: Path, environ: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``phonehome collector --store STORE`` on free loopback ports: the process and its
    HTTP port. Stopped at the end if it still runs (Rotel and the writer with it)."""
    port = free_port()
    collector = subprocess.Popen(
        [
            *PHONEHOME,
            "collector",
            "--store",
            str(store),
            "--http-port",
            str(port),
            "--grpc-port",
            str(free_port()),
        ],
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # so that a failed run can stop Rotel and the writer too
    )
    try:
        yield collector, port
    finally:
        if collector.poll() is None:
            os.killpg(collector.pid, signal.SIGKILL)
            collector.wait(timeout=10)


def run(
    environ: dict[str, str],
    user: OTLPReceiver,
    state: str,
    store: Path,
    port: int,
    collector: subprocess.Popen[str],
    started: float,
) -> int:
    assert collector.stdout is not None
    print(f"vendor: {collector.stdout.readline().strip()}")
    print(f"user:   capture receiver on {user.url} (OTEL_EXPORTER_OTLP_ENDPOINT)\n")
    environ = {
        **environ,
        "DEMOCLI_VENDOR": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_ENDPOINT": user.url,
        "DEMOCLI_TELEMETRY_DIR": state,
    }
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
    if not user.wait_until(lambda: arrived(user) >= expected, timeout=20):
        print(f"only {len(user.spans)} of {expected} commands arrived", file=sys.stderr)
        return 1
    if not flushed(state, environ):
        print("the vendor's copy is still waiting in the spool", file=sys.stderr)
        return 1
    print()
    print(table("user's own destination", user))
    collector.send_signal(signal.SIGINT)  # Ctrl-C: Rotel drains into the store
    collector.wait(timeout=30)
    print("\nvendor: phonehome insights --store vendor.duckdb --product democli --since 1d\n")
    report = subprocess.run(
        [*PHONEHOME, "insights", "--store", str(store), "--product", "democli", "--since", "1d"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    print(report.stdout or report.stderr)
    if report.returncode != 0:
        return 1
    print(f"done in {time.monotonic() - started:.1f} s; everything started has been stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
