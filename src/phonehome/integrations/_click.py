"""click and typer: every command becomes a ``telemetry.command``; ``telemetry`` is added."""

from __future__ import annotations

import functools
from typing import Any

from phonehome.integrations import _common


def instrument_click(group: Any, product: str, **instrument_kwargs: Any) -> Any:
    """Instrument a click group in place and return it.

    Running the group runs it inside ``phonehome.instrument(product, **instrument_kwargs)``;
    each leaf command is recorded under its path (``remote add``) with the parameters the
    user gave; a ``telemetry`` group (``status``, ``enable``, ``disable``) is added.
    """
    import click

    group.add_command(_telemetry_group(product, instrument_kwargs, click))
    return _instrument(group, product, instrument_kwargs)


def instrument_typer(app: Any, product: str, **instrument_kwargs: Any) -> Any:
    """Instrument a typer app: returns the command to run instead of ``app()``."""
    import typer
    import typer.main

    telemetry = typer.Typer(help="Show or change whether this tool sends usage telemetry.")
    for name, text, run in _common.ACTIONS:

        def action(run: Any = run) -> None:
            typer.echo(run(product, instrument_kwargs))

        telemetry.command(name, help=text)(action)
    app.add_typer(telemetry, name="telemetry")
    return _instrument(typer.main.get_command(app), product, instrument_kwargs)


def _instrument(command: Any, product: str, instrument_kwargs: dict[str, Any]) -> Any:
    import phonehome

    holder: dict[str, Any] = {}
    original_main = command.main

    @functools.wraps(original_main)
    def main(*args: Any, **kwargs: Any) -> Any:
        with phonehome.instrument(product, **instrument_kwargs) as telemetry:
            holder["telemetry"] = telemetry
            return original_main(*args, **kwargs)

    command.main = main
    _wrap(command, holder)
    return command


def _wrap(command: Any, holder: dict[str, Any]) -> None:
    """Wrap every leaf command's ``invoke`` (click's, or typer's own copy of click)."""
    children = getattr(command, "commands", None)
    if isinstance(children, dict):
        for name, child in children.items():
            if name != "telemetry":
                _wrap(child, holder)
        return
    original = command.invoke

    @functools.wraps(original)
    def invoke(ctx: Any) -> Any:
        telemetry = holder.get("telemetry")
        if telemetry is None:
            return original(ctx)
        names = []
        here = ctx
        while here.parent is not None:  # the path below the program itself
            names.append(here.info_name or here.command.name or "")
            here = here.parent
        path = " ".join(reversed(names)) or here.command.name or "main"
        params = {}
        for name, value in ctx.params.items():
            source = ctx.get_parameter_source(name)
            if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
                params[name] = value
        with telemetry.command(path, params=params):
            return original(ctx)

    command.invoke = invoke


def _telemetry_group(product: str, instrument_kwargs: dict[str, Any], click: Any) -> Any:
    @click.group("telemetry")
    def telemetry() -> None:
        """Show or change whether this tool sends usage telemetry."""

    for name, text, run in _common.ACTIONS:

        def action(run: Any = run) -> None:
            click.echo(run(product, instrument_kwargs))

        telemetry.command(name, help=text)(action)
    return telemetry
