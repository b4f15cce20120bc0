#!/usr/bin/env python3
"""A typer CLI instrumented with one call.

typerapp build --target wheel
typerapp telemetry disable
"""

from __future__ import annotations

import os

import typer

from phonehome import Schema, field
from phonehome.integrations import instrument_typer

app = typer.Typer(help="A small build tool.")
SCHEMA = Schema(
    commands={
        "build": {
            "target": field("string", "What to build", policy="enum", values=["wheel", "sdist"])
        }
    }
)


@app.command()
def build(target: str = "wheel", verbose: bool = False) -> None:
    """Build the project."""
    typer.echo(f"built a {target}")


@app.command()
def clean() -> None:
    """Remove build output."""
    typer.echo("cleaned")


instrument_typer(
    app, "typerapp", version="0.3.0", vendor=os.environ.get("TYPERAPP_VENDOR"), schema=SCHEMA
)

if __name__ == "__main__":
    app()
