"""The ``phonehome`` command: manage a product's telemetry as its end user or integrator.

phonehome -p democli status          what is decided, by whom, sent where
phonehome -p democli disable         opt out (purges what is waiting)
phonehome schema doc telemetry.toml  the "what we collect" page
phonehome schema check -- democli generate --language go --openapi a.yaml
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from phonehome._tools import admin

PRODUCT_HELP = "The product whose telemetry to manage (its name, e.g. democli)."


def _directory(context: click.Context) -> Path:
    product = context.obj.get("product")
    if not product:
        raise click.UsageError(
            "name the product: phonehome --product NAME ... (or PHONEHOME_PRODUCT)"
        )
    return admin.state_dir(product, context.obj.get("state_dir"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "--product", envvar="PHONEHOME_PRODUCT", help=PRODUCT_HELP)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The product's state directory, if not the default.",
)
@click.version_option(package_name="phonehome")
@click.pass_context
def main(context: click.Context, product: str | None, state_dir: Path | None) -> None:
    """Manage the telemetry of a product that uses phonehome."""
    context.obj = {"product": product, "state_dir": state_dir}


@main.command()
@click.pass_context
def status(context: click.Context) -> None:
    """Show whether telemetry is on, who decided, the level, destinations and state."""
    directory = _directory(context)
    rows = admin.status(context.obj["product"], directory)
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        click.echo(f"{key.ljust(width)}  {value}")


@main.command()
@click.pass_context
def enable(context: click.Context) -> None:
    """Opt in: store "yes" for this product."""
    admin.set_consent(context.obj["product"], _directory(context), True)
    click.echo(f"telemetry for {context.obj['product']} is on (stored choice)")


@main.command()
@click.pass_context
def disable(context: click.Context) -> None:
    """Opt out: store "no", purge what is waiting, forget the install id."""
    admin.set_consent(context.obj["product"], _directory(context), False)
    click.echo(
        f"telemetry for {context.obj['product']} is off (stored choice); "
        "nothing waiting will be sent"
    )


@main.command("reset-id")
@click.pass_context
def reset_id(context: click.Context) -> None:
    """Forget the random install id: the next run is a new install."""
    admin.reset_id(_directory(context))
    click.echo("install id forgotten; a new one is made on the next run with consent")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.pass_context
def preview(context: click.Context, as_json: bool) -> None:
    """Show what is waiting to be sent, and the ledger of what was sent."""
    shown = admin.preview(_directory(context))
    if as_json:
        click.echo(json.dumps(shown, indent=1, default=str))
        return
    click.echo(f"waiting to be sent: {len(shown['waiting'])} record(s)")
    for item in shown["waiting"]:
        click.echo("  " + _line(item))
    click.echo(f"sent (newest last, at most 100 exports kept): {len(shown['sent'])} export(s)")
    for entry in shown["sent"]:
        counts = entry.get("counts", {})
        click.echo(
            f"  {entry.get('at')} to {entry.get('destination')}: "
            f"{counts.get('spans', 0)} span(s), {counts.get('logs', 0)} log record(s), "
            f"metrics {', '.join(entry.get('metrics', [])) or '-'}"
        )


def _line(item: dict[str, Any]) -> str:
    kind = next(k for k in ("span", "log", "metric") if k in item)
    attributes = ", ".join(f"{k}={v}" for k, v in item.get("attributes", {}).items())
    return f"{kind} {item[kind]}" + (f" ({attributes})" if attributes else "")


@main.command()
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to spend at most.")
@click.pass_context
def flush(context: click.Context, timeout: float) -> None:
    """Send what is waiting now, in this process."""
    click.echo(admin.flush(_directory(context), timeout))


@main.group()
def schema() -> None:
    """Work with a telemetry schema (TOML)."""


@schema.command("doc")
@click.argument("schema_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--product", "doc_product", help="The product's name for the page's title.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the page here instead of printing it.",
)
@click.pass_context
def schema_doc(
    context: click.Context, schema_file: Path, doc_product: str | None, output: Path | None
) -> None:
    """Write the end users' "what we collect" page from SCHEMA_FILE."""
    from phonehome._core.errors import SchemaError
    from phonehome._policy.schema import Schema

    try:
        page = Schema.from_toml(schema_file).doc(
            doc_product or context.obj.get("product") or schema_file.stem
        )
    except SchemaError as error:
        raise click.ClickException(f"{schema_file}: {error}") from None
    if output is None:
        click.echo(page, nl=False)
    else:
        output.write_text(page, encoding="utf-8")
        click.echo(f"wrote {output}")


@schema.command("check", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def schema_check(command: tuple[str, ...]) -> None:
    """Run COMMAND (e.g. your test suite) and fail if it records an undeclared field.

    Nothing is written or sent while it runs.
    """
    with tempfile.TemporaryDirectory(prefix="phonehome-check-") as directory:
        report = Path(directory) / "undeclared.txt"
        environ = {**os.environ, "PHONEHOME_SCHEMA_CHECK": str(report)}
        try:
            code = subprocess.run(list(command), env=environ, check=False).returncode
        except OSError as error:
            raise click.ClickException(f"cannot run {command[0]}: {error.strerror}") from None
        found = sorted(set(report.read_text().splitlines())) if report.exists() else []
    for line in found:
        click.echo(f"undeclared: {line}", err=True)
    if found:
        click.echo(
            f"{len(found)} undeclared field(s): declare them in the schema or stop recording them",
            err=True,
        )
        sys.exit(1)
    if code != 0:
        click.echo(f"no undeclared fields, but the command exited with {code}", err=True)
        sys.exit(code)
    click.echo("no undeclared fields")


@main.command()
@click.option(
    "--forward-to",
    metavar="URL",
    help="The OTLP/HTTP destination to forward to "
    "(default: discard what arrives, for a quick local look).",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Rotel .env file from collector-config/rotel/ instead of --forward-to.",
)
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value for a ${NAME} placeholder of --config (repeatable).",
)
@click.option("--http-port", default=4318, show_default=True, help="OTLP/HTTP port on 127.0.0.1.")
@click.option("--grpc-port", default=4317, show_default=True, help="OTLP/gRPC port on 127.0.0.1.")
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Land everything in the embedded store at this file (phonehome[insights]).",
)
def collector(
    forward_to: str | None,
    config: Path | None,
    values: tuple[str, ...],
    http_port: int,
    grpc_port: int,
    store: Path | None,
) -> None:
    """Run Rotel on loopback: the embedded collector for local development.

    Point a product at it with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 (or
    vendor=...). Stops on Ctrl-C.
    """
    if store is not None:  # issue 15: the store writer behind Rotel
        if forward_to is not None or config is not None:
            raise click.UsageError(
                "--store lands everything in the store: drop --forward-to/--config"
            )
        from phonehome._tools.insights.command import run_collector

        sys.exit(run_collector(store, http_port, grpc_port))
    import signal
    import threading

    from phonehome._tools.collector import Rotel

    pairs = dict(v.split("=", 1) for v in values if "=" in v)
    if forward_to is not None:
        pairs.setdefault("FORWARD_TO", forward_to)
    try:
        rotel = Rotel(
            forward_to if config is None else None,
            config=config,
            values=pairs,
            http_port=http_port,
            grpc_port=grpc_port,
        )
        rotel.start()
    except (RuntimeError, ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    target = forward_to or (
        "the destinations in " + str(config) if config else "nowhere (discarded)"
    )
    click.echo(
        f"collector listening on {rotel.http_endpoint} (HTTP) and {rotel.grpc_endpoint} "
        f"(gRPC), forwarding to {target}; Ctrl-C stops it"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5) and rotel.alive():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        rotel.stop()
    click.echo("collector stopped")


@main.command(
    "insights",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def insights(arguments: tuple[str, ...]) -> None:
    """Answer the product questions from the store (phonehome insights --help)."""
    from phonehome._tools.insights import command

    sys.exit(command.main(list(arguments)))
