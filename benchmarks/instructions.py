#!/usr/bin/env python3
"""What phonehome costs, counted in instructions (valgrind's callgrind): figures that a busy
or throttled machine does not change, beside the wall-clock ones of ``make bench``.

    make bench-instructions               # needs valgrind (apt-get install valgrind)
    make bench-instructions ARGS="--before /path/to/another/checkout"   # and that tree's too
    make bench-instructions ARGS=--write  # also writes its section of docs/benchmarks.md

For the minimal click, typer and argparse CLIs of ``benchmarks/run.py``: the whole process,
instrumented minus plain, with consent off and on (a later run of one install); and per
command: ``with telemetry.command(...)`` with consent on, 4,000 commands minus none, beside
the raw OpenTelemetry SDK's recorded span. Every server is on 127.0.0.1 (a closed port: the
figures are the host's; its detached sender is not counted, callgrind follows no child).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import CLEAN, INSTRUCTIONS, MINIMAL, instructions_section, minimal

ROOT = Path(__file__).resolve().parent.parent
VENDOR = "http://127.0.0.1:9"
CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
COMMANDS = 4_000
PER_COMMAND = """
import sys, tempfile
n = int(sys.argv[1])
params = {"language": "go", "openapi": "a.yaml", "out": "x"}
if sys.argv[2] == "phonehome":
    import phonehome
    t = phonehome.instrument("democli", vendor="http://127.0.0.1:9",
                             state_dir=tempfile.mkdtemp(), mode="cli")
    def call():
        with t.command("generate", params=params, collect={"language"}):
            pass
else:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces"), max_queue_size=n + 1))
    tracer = provider.get_tracer("democli")
    def call():
        with tracer.start_as_current_span("generate", attributes=params):
            pass
for _ in range(n):
    call()
"""


def count(code: str, environ: dict[str, str], *args: str) -> int:
    """Instructions of ``python -c code args``, the whole process."""
    result = subprocess.run(
        [*CALLGRIND, sys.executable, "-c", code, *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise SystemExit(f"callgrind gave no count: {result.stderr.strip()[-300:]}")
    return int(found.group(1))


def figures(tree: Path) -> dict[str, float]:
    """Millions of instructions per figure, for the phonehome under ``tree``/src."""
    environ = {**CLEAN, "PYTHONPATH": str(tree / "src")}
    environ.pop("PYTHONDONTWRITEBYTECODE", None)  # the cached bytecode an install has
    off = {**environ, "DO_NOT_TRACK": "1"}
    found: dict[str, float] = {}
    for framework in MINIMAL:
        plain, instrumented = minimal(framework, False), minimal(framework, True)
        state = tempfile.mkdtemp(prefix="phonehome-instructions-")
        try:
            for run_environ in (environ, environ, off):  # the first run, and the bytecode
                subprocess.run(
                    [sys.executable, "-c", instrumented, VENDOR, state],
                    env=run_environ,
                    capture_output=True,
                    timeout=120,
                )
            base = count(plain, environ)
            found[f"{framework} off"] = (count(instrumented, off, VENDOR, state) - base) / 1e6
            found[f"{framework} on"] = (count(instrumented, environ, VENDOR, state) - base) / 1e6
        finally:
            shutil.rmtree(state, ignore_errors=True)
    for variant in ("phonehome", "otel"):
        none = count(PER_COMMAND, environ, "0", variant)
        many = count(PER_COMMAND, environ, str(COMMANDS), variant)
        found[f"per command {variant}"] = (many - none) / COMMANDS / 1e3
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="another checkout, measured beside this one")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md's section")
    options = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("bench-instructions: valgrind is not installed (apt-get install valgrind)")
        return 1
    trees = {"this tree": ROOT}
    if options.before is not None:
        trees = {"before": options.before.resolve(), **trees}
    measured = {name: figures(tree) for name, tree in trees.items()}
    table = render(measured)
    print(table)
    if options.write:
        write(table, options.before)
    return 0


def render(measured: dict[str, dict[str, float]]) -> str:
    names = list(measured)
    lines = [f"| figure | {' | '.join(names)} |", f"| --- |{' ---: |' * len(names)}"]
    for framework in MINIMAL:
        for consent in ("off", "on"):
            key = f"{framework} {consent}"
            cells = " | ".join(f"+{measured[n][key]:.1f} M" for n in names)
            lines.append(
                f"| minimal {framework} CLI, consent {consent}, over the plain CLI | {cells} |"
            )
    for variant, label in (
        ("phonehome", "with telemetry.command(...), 3 params, consent on"),
        ("otel", "raw OTel SDK recorded span, 3 attributes"),
    ):
        cells = " | ".join(f"{measured[n][f'per command {variant}']:.1f} K" for n in names)
        lines.append(f"| per command: {label} | {cells} |")
    return "\n".join(lines) + "\n"


def write(table: str, before: Path | None) -> None:
    import platform
    import time

    page = ROOT / "docs" / "benchmarks.md"
    text = page.read_text()
    compared = f" `before` is the checkout at `{before}`." if before is not None else ""
    section = (
        f"{INSTRUCTIONS} (callgrind)\n\n"
        "Produced by `make bench-instructions ARGS=--write` (`benchmarks/instructions.py`, needs\n"
        "valgrind): the same programs counted in instructions, which a busy or slowed machine "
        "does not\nchange (M: millions over the plain CLI's whole process, consent on being a "
        "later run of one\ninstall; K: thousands per command)."
        f"{compared}\n{platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}.\n\n{table}"
    )
    old = instructions_section(text)
    if old:
        text = text.replace(old, section)
    else:
        marker = "\n## How each figure is taken"
        text = text.replace(marker, section + marker, 1)
    page.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
