"""click and typer: every command run is a ``telemetry.command``; a hidden ``telemetry`` group.

The integration works on click's objects by their shape (typer builds click commands, from
click or from the copy of click it vendors), through instance attributes of the host's own
command objects: ``main`` runs the program, ``make_context`` and ``invoke`` see each command
as click reaches it, and a group's ``get_command`` hands over the subcommands it resolves
(so lazily loaded and default-command groups are covered). click itself still does all the
parsing, printing and exiting: what the user sees is unchanged. Telemetry starts when the
first command is recorded, so ``<cli> telemetry ...`` never starts it.

Each run of the program records one command: the leaf command that ran, a group that ran
without a subcommand, or, when click stopped before running anything (a usage error,
``--help``, ``--version``), the deepest command it reached. Results follow
``phonehome._host.outcome``.

On the consent-off path of every CLI that uses it: no ``from __future__ import annotations``
(importing ``__future__`` would cost the run more than this module), so names that exist only
for type checking are quoted.
"""

import sys
from _thread import _local  # threading.local, without importing threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from phonehome._core.instruments import Span
    from phonehome._instrument import Telemetry

_WRAPPED = "_phonehome_instrumented"
_ADMIN_READY = "_phonehome_admin_ready"
_OWN_GET_COMMAND = "_phonehome_own_get_command"
"""The group's own ``get_command``, before ours finds the ``telemetry`` group."""
_this_thread = _local()
"""The run in progress on this thread, as ``run`` (a thread-local, not a context variable:
``_contextvars`` would be one more import on every run)."""


def _current() -> "_Run | None":
    run: _Run | None = getattr(_this_thread, "run", None)
    return run


def instrument_click(command: "Any", product: str, **instrument_kwargs: "Any") -> "Any":
    """Instrument a click command or group in place and return it.

    Running it runs it inside ``phonehome.instrument(product, **instrument_kwargs)``; each
    command is recorded under its path (``remote add``) with the parameters the user gave;
    a group gets a hidden ``telemetry`` group (``status``, ``enable``, ``disable``).
    """
    _instrument_root(command, product, instrument_kwargs)
    return command


def instrument_typer(app: "Any", product: str, **instrument_kwargs: "Any") -> "Any":
    """Instrument a typer app in place and return it: run ``app()`` as before.

    The click command typer builds on each run (``app()``, a ``Typer`` subclass's own
    ``__call__``, ``typer.testing.CliRunner``, ``typer.main.get_command(app)``) is
    instrumented as it starts, through the click class typer builds it from.
    """
    import typer.core

    _hook_class(_callback_or_info(app), typer.core.TyperGroup, product, instrument_kwargs)
    if len(app.registered_commands) == 1:  # typer runs a lone command without a group
        _hook_class(app.registered_commands[0], typer.core.TyperCommand, product, instrument_kwargs)
    return app


def _callback_or_info(app: "Any") -> "Any":
    """Where typer reads the root group's class from: the callback's, if it set one."""
    callback = app.registered_callback
    if callback is not None and _explicit(getattr(callback, "cls", None)) is not None:
        return callback
    return app.info


def _explicit(value: "Any") -> "Any":
    """A typer setting's value, ``None`` for typer's "not set" placeholder."""
    if type(value).__name__ == "DefaultPlaceholder":
        return value.value
    return value


def _hook_class(holder: "Any", default: type, product: str, kwargs: "dict[str, Any]") -> None:
    base = _explicit(holder.cls) or default
    if getattr(base, _WRAPPED, False):
        return

    def main(self: "Any", *args: "Any", **kw: "Any") -> "Any":
        try:
            return _run(self, super(hooked, self).main, product, kwargs, args, kw)
        except BaseException as exc:
            _hide_frames(exc)
            raise

    hooked: Any = type(
        base.__name__,
        (base,),
        {"main": main, _WRAPPED: True, "__module__": base.__module__, "__doc__": base.__doc__},
    )
    holder.cls = hooked


# -- one run of the program --------------------------------------------------------------------
class _Run:
    """One run of the program: its telemetry (started on first use) and what it recorded."""

    __slots__ = ("admin", "kwargs", "last", "pending", "product", "reached", "telemetry")

    def __init__(self, product: str, kwargs: "dict[str, Any]") -> None:
        self.product = product
        self.kwargs = kwargs
        self.telemetry: Telemetry | None = None
        self.last: BaseException | None = None
        """The exception the last recorded command ended with (recorded once)."""
        self.reached: Any = None
        """The deepest context click made (``None`` until the first)."""
        self.admin = False
        """Whether this run is ``<cli> telemetry ...`` (never recorded)."""
        self.pending: tuple[Span, BaseException] | None = None
        """The command an exception ended, open until click's ``main`` says what it made of
        the exception: the exit it turned it into, or none (it leaves ``main``)."""

    def command(self, ctx: "Any") -> "Span | None":
        """The command's span; ``None`` while telemetry is off (nothing to record)."""
        telemetry = self.telemetry
        if telemetry is None:
            from phonehome._instrument import instrument_with

            telemetry = self.telemetry = instrument_with(self.product, self.kwargs)
        if not telemetry.enabled:
            return None
        return telemetry.command(_path(ctx, self.product), params=_given(ctx))

    def observe(self, exc: BaseException, ctx: "Any") -> None:
        """Click stopped before a command ran: record the deepest command it reached."""
        if exc is self.last:
            return
        self.last = exc
        ctx = getattr(exc, "ctx", None) or ctx
        if ctx is None or self.admin:
            return
        try:
            span = self.command(ctx)
            if span is None:
                return
            span.__enter__()
            self.hold(span, exc)
        except Exception as error:  # the host's exception goes on unchanged
            from phonehome._core.diagnostics import record_error

            record_error("click command", error)

    def hold(self, span: "Span", exc: BaseException) -> None:
        """Keep the command ``exc`` ended open, for ``main`` to decide (``settle``)."""
        self.settle(None)
        self.pending = (span, exc)

    def settle(self, final: BaseException | None) -> None:
        """End the held command, now that click's ``main`` ended with ``final``. An exit
        made of the command's exception is that exit, with the exception's kind: click's
        ``Aborted!`` (exit 1, also for ``EOFError``) and typer's exit 130 for Ctrl-C are
        ``cancelled``, a closed pipe's exit 1 a ``failure``, a usage error's exit 2 a
        ``usage_error``. Otherwise the exception leaving ``main`` (or, if ``main``
        returned, the command's own) ends it."""
        pending, self.pending = self.pending, None
        if pending is None:
            return
        span, exc = pending
        try:
            if isinstance(final, SystemExit) and final is not exc:
                from phonehome._host import outcome

                ended = outcome.of_exception(exc)
                span.set_exit_code(
                    outcome.exit_code(final.code),
                    usage_error=ended.result == outcome.USAGE_ERROR,
                    cancelled=ended.result == outcome.CANCELLED or isinstance(exc, EOFError),
                    error_type=ended.error_type,
                )
                span.__exit__(None, None, None)
            else:
                exc = exc if final is None else final
                span.__exit__(type(exc), exc, exc.__traceback__)
        except Exception as error:  # the host's exception goes on unchanged
            from phonehome._core.diagnostics import record_error

            record_error("click command", error)

    def end(self, exc: BaseException | None) -> None:
        self.settle(exc)
        telemetry = self.telemetry
        if telemetry is None and exc is not None and not self.admin:
            from phonehome._host.outcome import of_exception

            if of_exception(exc).crash:  # a crash before any command: its report
                from phonehome._instrument import instrument_with

                telemetry = self.telemetry = instrument_with(self.product, self.kwargs)
        if telemetry is None:
            return
        if exc is None or isinstance(exc, SystemExit):  # how click programs end
            telemetry.__exit__(None if exc is None else type(exc), exc, None)
        else:
            from phonehome.integrations import _common

            _common.end(telemetry, exc)


def _instrument_root(command: "Any", product: str, kwargs: "dict[str, Any]") -> None:
    if "main" in vars(command):
        return
    original = command.main

    def main(*args: "Any", **kw: "Any") -> "Any":
        try:
            return _run(command, original, product, kwargs, args, kw)
        except BaseException as exc:
            _hide_frames(exc)
            raise

    command.main = main


def _run(
    command: "Any",
    main: "Callable[..., Any]",
    product: str,
    kwargs: "dict[str, Any]",
    args: "tuple[Any, ...]",
    kw: "dict[str, Any]",
) -> "Any":
    """Run the program (click's ``main``), watching its commands."""
    if not _prepare(command, product, kwargs):  # an unusual command: run it as it is
        return main(*args, **kw)
    admin = _admin_first(command, product, kwargs, args, kw)
    if admin is not None:
        return admin()
    _settle_held()
    run, outer = _Run(product, kwargs), _current()
    _this_thread.run = run
    try:
        result = main(*args, **kw)
    except BaseException as exc:
        _hide_frames(exc)  # the host's traceback, and crash report, as they were
        if _standalone(args, kw) and not isinstance(exc, SystemExit | KeyboardInterrupt):
            # click's own exceptions never leave a standalone main: another click's did
            from phonehome._host.outcome import unhandled

            unhandled(exc)
        run.end(exc)
        raise
    finally:
        _this_thread.run = outer
    run.end(None)
    return result


def _settle_held() -> None:
    """A run starts: one held since an exception left it was caught (``_common.end``)."""
    common = sys.modules.get("phonehome.integrations._common")
    if common is not None:
        common.settle(None)


def _hide_frames(exc: BaseException) -> None:
    """This module's frames out of ``exc``'s traceback (``_common``). Not for ``SystemExit``,
    how every click program ends: the interpreter never prints its traceback and it is
    never a crash report, so a run that ends normally does not load ``_common``."""
    if not isinstance(exc, SystemExit):
        from phonehome.integrations import _common

        _common.hide_frames(exc, __file__)


def _prepare(command: "Any", product: str, kwargs: "dict[str, Any]") -> bool:
    try:
        _attach_admin(command, product, kwargs)
        _wrap(command)
    except Exception as error:
        from phonehome._core.diagnostics import record_error

        record_error("instrument click", error)
        return False
    return True


def _wrap(command: "Any") -> None:
    """Watch one command (once): its contexts, its run, and the subcommands it resolves."""
    if vars(command).get(_WRAPPED):
        return
    command._phonehome_instrumented = True
    if getattr(command, "_phonehome_admin", False):  # ``telemetry ...``: never recorded
        command.make_context = _admin_make_context(command.make_context)
        return
    command.make_context = _watch_make_context(command, command.make_context)
    if callable(getattr(command, "get_command", None)):
        command.get_command = _wrap_resolved(command.get_command)
        command.invoke = _group_invoke(command.invoke)
    else:
        command.invoke = _command_invoke(command.invoke)


def _watch_make_context(command: "Any", original: "Callable[..., Any]") -> "Callable[..., Any]":
    def make_context(info_name: "Any", args: "Any", parent: "Any" = None, **extra: "Any") -> "Any":
        run = _current()
        if run is None:
            return original(info_name, args, parent, **extra)
        try:
            ctx = original(info_name, args, parent, **extra)
        except BaseException as exc:  # --help, --version, a usage error: nothing ran
            run.observe(exc, _Reached(command, info_name, parent))
            raise
        run.reached = ctx
        return ctx

    return make_context


def _admin_make_context(original: "Callable[..., Any]") -> "Callable[..., Any]":
    def make_context(*args: "Any", **kw: "Any") -> "Any":
        run = _current()
        if run is not None:
            run.admin = True
        return original(*args, **kw)

    return make_context


def _wrap_resolved(original: "Callable[..., Any]") -> "Callable[..., Any]":
    def get_command(ctx: "Any", name: str) -> "Any":
        found = original(ctx, name)
        if found is not None and _current() is not None:
            try:
                _wrap(found)
            except Exception as error:  # an unusual command: it runs unwatched
                from phonehome._core.diagnostics import record_error

                record_error("instrument click", error)
        return found

    return get_command


def _command_invoke(original: "Callable[..., Any]") -> "Callable[..., Any]":
    def invoke(ctx: "Any") -> "Any":
        run = _current()
        if run is None:
            return original(ctx)
        return _recorded(run, ctx, original)

    return invoke


def _group_invoke(original: "Callable[..., Any]") -> "Callable[..., Any]":
    def invoke(ctx: "Any") -> "Any":
        run = _current()
        if run is None:
            return original(ctx)
        if not _pending(ctx):  # the group itself is the command (or the error)
            return _recorded(run, ctx, original)
        try:
            return original(ctx)
        except BaseException as exc:  # before the subcommand ran, or after it was recorded
            run.observe(exc, run.reached or ctx)
            raise

    return invoke


def _recorded(run: _Run, ctx: "Any", original: "Callable[[Any], Any]") -> "Any":
    try:
        span = run.command(ctx)
    except Exception:  # telemetry never stops the command
        span = None
    if span is None:  # telemetry off (or failed): the command runs as it would without it
        return original(ctx)
    span.__enter__()
    unhook = _hook_hard_exit(run, span)
    try:
        result = original(ctx)
    except BaseException as exc:  # what it means is click's main's to say: held till then
        run.last = exc
        run.hold(span, exc)
        raise
    finally:
        if unhook is not None:
            unhook()
    span.__exit__(None, None, None)
    return result


def _hook_hard_exit(run: _Run, span: "Span") -> "Callable[[], None] | None":
    """A command may leave through ``os._exit`` (no interpreter shutdown): then it ends
    with that code, and the run hands over what it recorded, as its end would."""

    def hard_exit(code: int) -> None:
        span.set_exit_code(code)
        span.__exit__(None, None, None)
        run.end(None)

    try:
        from phonehome._host.forks import on_hard_exit

        return on_hard_exit(hard_exit)
    except Exception as error:  # the command runs all the same
        from phonehome._core.diagnostics import record_error

        record_error("click hard exit", error)
        return None


def _pending(ctx: "Any") -> bool:
    """Whether a group's context holds a subcommand to run (click 8.2 renamed the field)."""
    pending = getattr(ctx, "_protected_args", None)
    if pending is None:
        pending = getattr(ctx, "protected_args", ())
    return bool(pending)


class _Reached:
    """A context click was making when it stopped: enough of one for its path."""

    __slots__ = ("command", "info_name", "parent")

    def __init__(self, command: "Any", info_name: "Any", parent: "Any") -> None:
        self.command = command
        self.info_name = info_name
        self.parent = parent


def _path(ctx: "Any", product: str) -> str:
    """The command path below the program itself (``remote add``); the program itself is
    recorded under the product's name."""
    names = []
    here = ctx
    while here.parent is not None:
        names.append(str(here.info_name or getattr(here.command, "name", "") or ""))
        here = here.parent
    return " ".join(reversed(names)) or product


def _given(ctx: "Any") -> "dict[str, Any]":
    """The parameters the user gave (not left at their default), by Python name."""
    params: dict[str, Any] = {}
    source_of = getattr(ctx, "get_parameter_source", None)
    for name, value in getattr(ctx, "params", {}).items():
        source = source_of(name) if source_of is not None else None
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            params[name] = value
    return params


# -- the telemetry group -----------------------------------------------------------------------
def _attach_admin(command: "Any", product: str, kwargs: "dict[str, Any]") -> None:
    """A hidden ``telemetry`` group on a group that has no command of that name, built the
    first time click asks for it: building it (typer's above all) would cost every run."""
    commands = getattr(command, "commands", None)
    if not callable(getattr(command, "add_command", None)) or not isinstance(commands, dict):
        return
    if vars(command).get(_ADMIN_READY):
        return
    setattr(command, _ADMIN_READY, True)
    original = command.get_command
    setattr(command, _OWN_GET_COMMAND, original)

    def get_command(ctx: "Any", name: str) -> "Any":
        found = original(ctx, name)
        if name == "telemetry" and getattr(found, "name", None) != "telemetry":
            # none of its own: not found, or a default command standing in for any name (a
            # click-default-group's, which also notes the name to hand on to it: not here)
            if getattr(ctx, "arg0", None) == "telemetry":
                del ctx.arg0
            found = _admin_group(command, product, kwargs)
            command.add_command(found, "telemetry")  # built once per process
        return found

    command.get_command = get_command


def _admin_first(
    command: "Any",
    product: str,
    kwargs: "dict[str, Any]",
    args: "tuple[Any, ...]",
    kw: "dict[str, Any]",
) -> "Callable[[], Any] | None":
    """``<cli> telemetry ...``: the ``telemetry`` group runs by itself, before click parses
    the program's own group, so that none of the program's code runs (a group's ``invoke``
    that signs in over the network, as safety's, or its callback), and a group that takes an
    argument of its own (typer's ``typer PATH``) does not take ``telemetry`` for it.
    ``None`` for any other run, and for a group with a ``telemetry`` command of its own."""
    own = vars(command).get(_OWN_GET_COMMAND)
    if own is None:  # not a group
        return None
    argv = args[0] if args else kw.get("args")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] != ["telemetry"]:
        return None
    try:
        found = own(command.context_class(command), "telemetry")
    except Exception:  # a lazy group that needs its callback first: click finds ours
        return None
    if getattr(found, "name", None) == "telemetry" and not getattr(found, "_phonehome_admin", 0):
        return None
    group = _admin_group(command, product, kwargs)
    _wrap(group)
    name = kw.get("prog_name") or (args[1] if len(args) > 1 else None)
    if not name:
        import os

        name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else product
    standalone = _standalone(args, kw)
    return lambda: group.main(argv[1:], f"{name} telemetry", standalone_mode=standalone)


def _standalone(args: "tuple[Any, ...]", kw: "dict[str, Any]") -> "Any":
    """click ``main``'s ``standalone_mode``, as the program passed it (fourth, or by name)."""
    return kw.get("standalone_mode", args[3] if len(args) > 3 else True)


def _admin_group(command: "Any", product: str, kwargs: "dict[str, Any]") -> "Any":
    if any(cls.__name__ == "TyperGroup" for cls in type(command).__mro__):
        group = _typer_admin(product, kwargs)
    else:
        group = _click_admin(command, product, kwargs)
    group._phonehome_admin = True
    group.hidden = True
    return group


def _click_admin(command: "Any", product: str, kwargs: "dict[str, Any]") -> "Any":
    import sys

    module = next(
        c.__module__ for c in type(command).__mro__ if c.__module__.endswith("click.core")
    )
    click = sys.modules[module.rsplit(".", 1)[0]]
    group = click.Group("telemetry", help=_HELP)
    from phonehome.integrations import _common

    for name, text, run in _common.ACTIONS:
        group.add_command(
            click.Command(name, callback=_action(click.echo, run, product, kwargs), help=text)
        )
    return group


def _typer_admin(product: str, kwargs: "dict[str, Any]") -> "Any":
    """Built by typer, as typer's own groups are (its copy of click has no ``Group``)."""
    import typer
    import typer.main

    from phonehome.integrations import _common

    app = typer.Typer(name="telemetry", help=_HELP, add_completion=False)
    for name, text, run in _common.ACTIONS:
        app.command(name, help=text)(_action(typer.echo, run, product, kwargs))
    group = typer.main.get_command(app)
    group.name = "telemetry"
    return group


_HELP = "Show or change whether this tool sends usage telemetry."


def _action(
    echo: "Any", run: "Any", product: str, kwargs: "dict[str, Any]"
) -> "Callable[[], None]":
    """A command without parameters (typer would make options of a default argument)."""

    def action() -> None:
        echo(run(product, kwargs))

    return action
