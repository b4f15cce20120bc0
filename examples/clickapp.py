#!/usr/bin/env python3
"""A click CLI instrumented with one call: every command, plus `clickapp telemetry ...`.

clickapp remote add origin https://example.com/repo.git --force
clickapp telemetry status
"""

from __future__ import annotations

import os

import click

from phonehome import Schema, field
from phonehome.integrations import instrument_click

SCHEMA = Schema(
    commands={"remote add": {"force": field("bool", "Overwrite an existing remote", policy="raw")}}
)


@click.group()
def cli() -> None:
    """A small tool with nested commands."""


@cli.group()
def remote() -> None:
    """Manage remotes."""


@remote.command()
@click.argument("name")
@click.argument("url")
@click.option("--force", is_flag=True, help="Overwrite an existing remote.")
def add(name: str, url: str, force: bool) -> None:
    """Add a remote."""
    click.echo(f"added {name}")


@cli.command()
def fail() -> None:
    """Fail on purpose."""
    raise click.ClickException("it went wrong")


instrument_click(
    cli, "clickapp", version="2.0.0", vendor=os.environ.get("CLICKAPP_VENDOR"), schema=SCHEMA
)

if __name__ == "__main__":
    cli()
