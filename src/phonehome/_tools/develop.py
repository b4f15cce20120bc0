"""The ``phonehome`` subcommands for integrators: the schema, and the local collector.

phonehome schema check telemetry.toml            is the file valid? (runs nothing)
phonehome schema check -- pytest tests/          does the code record undeclared fields?
phonehome schema doc telemetry.toml -o docs/telemetry.md
phonehome collector --forward-to https://backend.example.com:4318
"""

from __future__ import annotations

import argparse
import errno
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from phonehome._tools.subcommand import (
    USAGE,
    Failure,
    Subcommand,
    base_url,
    existing_file,
    port,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from phonehome._policy.schema import Schema

DEFAULT_HTTP_PORT = 4318
DEFAULT_GRPC_PORT = 4317


# -- schema ----------------------------------------------------------------------------------
def add_schema(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="schema_action", metavar="ACTION", required=True)
    doc = actions.add_parser(
        "doc", help='write the end users\' "what we collect" page from a schema file'
    )
    doc.add_argument("schema_file", type=existing_file, metavar="FILE")
    doc.add_argument("--product", dest="doc_product", help="the product's name, for the title")
    doc.add_argument("-o", "--output", type=Path, help="write the page here instead of printing")
    doc.set_defaults(prog=doc.prog)
    check = actions.add_parser(
        "check",
        help="check a schema file (FILE), or run a command and fail if it records a field "
        "the schema does not declare (-- COMMAND ...)",
        usage="phonehome schema check FILE | phonehome schema check -- COMMAND [ARG ...]",
    )
    check.add_argument("schema_file", nargs="?", type=existing_file, metavar="FILE")
    check.set_defaults(prog=check.prog)


def run_schema(args: argparse.Namespace) -> int:
    if args.schema_action == "doc":
        return _doc(args.schema_file, args.doc_product, args.output)
    if args.rest is not None:
        if args.schema_file is not None or not args.rest:
            raise Failure("use: phonehome schema check FILE, or -- COMMAND [ARG ...]", USAGE)
        return _check_command(args.rest)
    if args.schema_file is None:
        raise Failure("name a schema file, or a command after --", USAGE)
    schema = _load(args.schema_file)
    print(
        f"{args.schema_file}: valid ({len(schema.commands)} command(s), "
        f"{len(schema.events)} event(s), {len(schema.attributes)} shared attribute(s))"
    )
    return 0


def _load(path: Path) -> Schema:
    from phonehome._core.errors import SchemaError
    from phonehome._policy.schema import Schema

    try:
        return Schema.from_toml(path)
    except (SchemaError, OSError) as error:
        raise Failure(f"{path}: {error}") from None


def _doc(path: Path, product: str | None, output: Path | None) -> int:
    schema = _load(path)
    page = schema.doc(product or path.stem)
    if output is None:
        sys.stdout.write(page)
        return 0
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, encoding="utf-8")
    except OSError as error:
        raise Failure(f"cannot write {output} ({error.strerror or error})") from None
    print(f"wrote {output}")
    return 0


def _check_command(command: list[str]) -> int:
    """Run ``command`` with schema-check mode on and report what it recorded undeclared."""
    from phonehome._core import environment as env

    with tempfile.TemporaryDirectory(prefix="phonehome-check-") as directory:
        report = Path(directory) / "undeclared.txt"
        environ = {**os.environ, env.SCHEMA_CHECK: str(report)}
        try:
            code = subprocess.run(command, env=environ, check=False).returncode
        except OSError as error:
            raise Failure(f"cannot run {command[0]}: {error.strerror or error}") from None
        found = sorted(set(report.read_text().splitlines())) if report.exists() else []
    for line in found:
        print(f"undeclared: {line}", file=sys.stderr)
    if found:
        raise Failure(
            f"{len(found)} undeclared field(s): declare them in the schema or stop recording them"
        )
    if code != 0:
        print(f"no undeclared fields, but the command exited with {code}", file=sys.stderr)
        return code
    print("no undeclared fields")
    return 0


# -- collector -------------------------------------------------------------------------------
def add_collector(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--forward-to",
        type=base_url,
        metavar="URL",
        help="the OTLP/HTTP base URL to forward to (default: discard what arrives)",
    )
    parser.add_argument(
        "--config",
        type=existing_file,
        metavar="FILE",
        help="a Rotel .env file (collector-config/rotel/) instead of --forward-to",
    )
    parser.add_argument(
        "--set",
        dest="values",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a value for a ${NAME} placeholder of --config (repeatable)",
    )
    parser.add_argument(
        "--store",
        type=Path,
        metavar="PATH",
        help="land everything in the embedded store at PATH, for `phonehome insights` "
        "(phonehome[insights])",
    )
    parser.add_argument(
        "--http-port",
        type=port,
        default=DEFAULT_HTTP_PORT,
        help=f"the OTLP/HTTP port on 127.0.0.1 (default: {DEFAULT_HTTP_PORT})",
    )
    parser.add_argument(
        "--grpc-port",
        type=port,
        default=DEFAULT_GRPC_PORT,
        help=f"the OTLP/gRPC port on 127.0.0.1 (default: {DEFAULT_GRPC_PORT})",
    )


def run_collector(args: argparse.Namespace) -> int:
    import signal
    import threading

    values = _collector_values(args)
    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop it in order, also when they come during the start (set
    # first) and when it was started with SIGINT ignored, as a shell's background job is
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    if args.store is not None:
        from phonehome._tools.insights.command import run_collector as run_store

        return run_store(args.store, args.http_port, args.grpc_port, stop)

    from phonehome._tools.collector import Rotel

    rotel = Rotel(
        args.forward_to,
        config=args.config,
        values=values,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
    )
    try:
        rotel.start()
    except (RuntimeError, ValueError, OSError) as error:
        raise Failure(str(error).splitlines()[0]) from None
    target = args.forward_to or (
        f"the destinations in {args.config}" if args.config else "nowhere (discarded)"
    )
    print(
        f"collector listening on {rotel.http_endpoint} (HTTP) and {rotel.grpc_endpoint} "
        f"(gRPC), forwarding to {target}; Ctrl-C stops it",
        flush=True,
    )
    try:
        while not stop.wait(0.5) and rotel.alive():
            pass
    finally:
        rotel.stop()
    print("collector stopped")
    return 0


def _collector_values(args: argparse.Namespace) -> dict[str, str]:
    """The options checked together: one line for the first conflict found."""
    if args.forward_to and args.config:
        raise Failure("give either --forward-to or --config (it says where to send)", USAGE)
    if args.store is not None and (args.forward_to or args.config):
        raise Failure("--store lands everything in the store: drop --forward-to/--config", USAGE)
    if args.values and not args.config:
        raise Failure("--set fills the placeholders of a --config file; give one", USAGE)
    if args.http_port == args.grpc_port:
        raise Failure(f"--http-port and --grpc-port are both {args.http_port}", USAGE)
    values = {}
    for item in args.values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise Failure(f"--set {item!r}: use NAME=VALUE", USAGE)
        values[name] = value
    if args.forward_to:
        _not_itself(args.forward_to, (args.http_port, args.grpc_port))
    for option, number in (("--http-port", args.http_port), ("--grpc-port", args.grpc_port)):
        _free(option, number)
    return values


_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")


def _not_itself(url: str, ports: tuple[int, int]) -> None:
    """Forwarding to the collector's own address would send what arrives back to itself."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    if (parts.hostname or "").lower() in _LOCAL_HOSTS and (parts.port or default) in ports:
        raise Failure(
            f"--forward-to {url} is the collector's own address: it would send what it "
            "receives to itself; forward to your backend, or move the collector "
            "(--http-port, --grpc-port)",
            USAGE,
        )


def _free(option: str, number: int) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", number))
        except OSError as error:
            reason = "in use" if error.errno == errno.EADDRINUSE else error.strerror or error
            raise Failure(f"{option} {number}: 127.0.0.1:{number} is {reason}") from None


SUBCOMMANDS = (
    Subcommand(
        "schema",
        "Check a telemetry schema (TOML), or write its page for end users.",
        add_schema,
        run_schema,
    ),
    Subcommand(
        "collector",
        "Run Rotel on loopback: the embedded collector for local development.",
        add_collector,
        run_collector,
    ),
)
"""The integrators' subcommands."""
