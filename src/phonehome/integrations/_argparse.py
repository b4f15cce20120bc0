"""argparse: the parsed command runs inside ``telemetry.command``; ``telemetry`` is handled.

argparse parses but does not dispatch, so there are two forms. ``run_argparse`` parses and
dispatches the common pattern (subcommands with ``set_defaults(func=...)``).
``instrument_argparse`` is for programs with their own dispatch or their own ``parse_args``
call: a context manager (or a decorator of ``main``) around the program's own code, which
watches the parser as the program uses it.

Either way the host's parser is watched, never changed: its ``parse_known_args`` (and each
subparser's) is wrapped on the instance, so that help, version, usage errors and the
namespace are exactly argparse's. The command path is the chain of chosen subcommands; the
parameters are the namespace's names whose values are not the defaults. ``<prog> telemetry
status|enable|disable`` (as the first arguments) is answered before argparse sees it, so the
parser's help and errors do not mention it.

On the consent-off path of every CLI that uses it: no ``from __future__ import annotations``
(importing ``__future__`` would cost the run more than this module), so names that exist only
for type checking are quoted.
"""

import sys
from _thread import _local  # threading.local, without importing threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from types import TracebackType
    from typing import Any

    from phonehome._core.instruments import Span
    from phonehome._instrument import Telemetry

_WATCHED = "_phonehome_watched"
_this_thread = _local()
"""The run in progress on this thread, as ``run`` (a thread-local, not a context variable:
``_contextvars`` would be one more import on every run)."""


def _current() -> "ArgparseCommand | None":
    run: ArgparseCommand | None = getattr(_this_thread, "run", None)
    return run


def run_argparse(
    parser: "argparse.ArgumentParser",
    product: str,
    argv: "Sequence[str] | None" = None,
    *,
    no_command: "Callable[[argparse.Namespace], Any] | None" = None,
    **instrument_kwargs: "Any",
) -> "Any":
    """Parse ``argv``, run the chosen subcommand's ``func(args)``, return what it returned
    (``None`` as 0): give it to ``sys.exit``. It replaces::

        args = parser.parse_args(argv)
        if not hasattr(args, "func"):   # no subcommand given
            parser.print_help()         # or no_command(args)
            return 1
        return args.func(args)
    """
    try:
        with instrument_argparse(parser, product, **instrument_kwargs) as command:
            args = parser.parse_args(argv)
            func = getattr(args, "func", None)
            if func is not None:
                result = func(args)
            elif no_command is not None:
                result = no_command(args)
            else:
                parser.print_help()
                result = 1
            result = 0 if result is None else result
            command.returned(result)
    except BaseException as exc:
        _shared().hide_frames(exc, __file__)
        raise
    return result


def instrument_argparse(
    parser: "argparse.ArgumentParser | None", product: str, **instrument_kwargs: "Any"
) -> "ArgparseCommand":
    """Instrument a program's own use of ``parser``: a context manager, or a decorator.

    With ``parser=None`` the first parser the program parses with inside the block is the
    one (for a ``main`` that builds its parser itself): ``ArgumentParser.parse_known_args``
    is watched while the block runs, and restored at its end.

    ::

        with instrument_argparse(parser, "tool", vendor=URL) as command:
            args = parser.parse_args()        # the program's own call
            code = dispatch(args)             # the program's own dispatch
            command.set_exit_code(code)       # optional: 0 unless told, or an exit raised
        sys.exit(code)

        @instrument_argparse(parser, "tool", vendor=URL)
        def main(argv=None) -> int:           # its return value is the exit code
            ...

    The command starts when ``parse_args`` returns and ends with the block; an exit raised
    in it (``SystemExit``, ``parser.error``) ends it with that code.
    """
    return ArgparseCommand(parser, product, instrument_kwargs)


class ArgparseCommand:
    """One run of an argparse program: what ``instrument_argparse`` returns."""

    def __init__(
        self, parser: "argparse.ArgumentParser | None", product: str, kwargs: "dict[str, Any]"
    ) -> None:
        self.parser = parser
        self.product = product
        self.kwargs = kwargs
        self.telemetry: Telemetry | None = None
        self.span: Span | None = None
        self.path: tuple[str, ...] = ()
        self.exit: object = None
        self.admin = False
        self.usage_error = False
        """``parser.error()`` was called: an exit 2 is a usage error."""
        self._outer: ArgparseCommand | None = None
        """The run this one is nested in, restored at its end."""
        self._entered = False
        self._unpatch: Callable[[], None] | None = None
        self._unhook: Callable[[], None] | None = None
        """Unregisters ``_hard_exit`` (``os._exit``), while a command is open."""

    # -- the program's side ----------------------------------------------------------------
    def set_exit_code(self, code: int) -> None:
        """The command's exit code, when the program returns it rather than raising it."""
        self.exit = code

    def returned(self, value: object) -> None:
        """What ``main`` returned, as ``sys.exit`` takes it (``None`` is 0, a message 1):
        turned into an exit code at the end, with consent on only."""
        self.exit = value

    def __enter__(self) -> "ArgparseCommand":
        try:
            if self.parser is None:
                self._unpatch = _first_parser()
            else:
                _watch(self.parser, (), root=True)
        except Exception as error:  # an unusual parser: the program runs uninstrumented
            from phonehome._core.diagnostics import record_error

            record_error("instrument argparse", error)
        common = sys.modules.get("phonehome.integrations._common")
        if common is not None:  # a run held since an exception left it was caught
            common.settle(None)
        self._outer, self._entered = _current(), True
        _this_thread.run = self
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: "TracebackType | None",
    ) -> None:
        if not self._entered:
            return
        self._entered = False
        _this_thread.run, self._outer = self._outer, None
        for undo in (self._unpatch, self._unhook):
            if undo is not None:
                undo()
        self._unpatch = self._unhook = None
        if exc is not None:  # the crash report's stack trace is the program's own
            _shared().hide_frames(exc, __file__)
        span, self.span = self.span, None
        if span is None and self.telemetry is None and not self.admin:
            # the program ended before its parser returned (it never parsed, or caught what
            # parsing raised, or crashed first): the run is the product's command
            span = self.unparsed()
        if span is not None:
            code = self._exit_code(exc)
            if code is not None:  # an exit: a usage error if a parser said so (error())
                usage_error = self.usage_error or _raised_by_error(exc)
                span.set_exit_code(code, usage_error=usage_error)
                span.__exit__(None, None, None)
            else:
                span.__exit__(exc_type, exc, tb)
        if self.telemetry is None:
            return
        if exc is None or isinstance(exc, SystemExit):
            self.telemetry.__exit__(exc_type, exc, tb)
        else:
            _shared().end(self.telemetry, exc)

    def __call__(self, main: "Callable[..., Any]") -> "Callable[..., Any]":
        """Decorate ``main``: its return value is the exit code (``None`` is 0)."""
        import functools

        @functools.wraps(main)
        def instrumented(*args: "Any", **kwargs: "Any") -> "Any":
            try:
                with self:
                    result = main(*args, **kwargs)
                    self.returned(result)
            except BaseException as exc:
                _shared().hide_frames(exc, __file__)
                raise
            return result

        return instrumented

    # -- the parser's side -----------------------------------------------------------------
    def start(self) -> "Telemetry":
        if self.telemetry is None:
            from phonehome._instrument import instrument_with

            self.telemetry = instrument_with(self.product, self.kwargs)
        return self.telemetry

    def parsed(self, namespace: "Any") -> None:
        """``parse_args`` returned: the command starts (once per run)."""
        if self.span is not None or self.admin:
            return
        telemetry = self.start()
        if not telemetry.enabled:  # with consent off nothing is recorded: no span, no look
            return
        defaults = _defaults(self.parser) if self.parser else {}
        params = {
            k: v
            for k, v in vars(namespace).items()
            if k != "func" and (k not in defaults or v != defaults[k])  # given, not defaults
        }
        span = telemetry.command(self.name(), params=params)
        span.__enter__()
        self.span = span
        self._hook_hard_exit()

    def stopped(self, code: int) -> None:
        """argparse exited while parsing: help or version (0), a usage error (2). The
        command ends with the block, with the exit the program ends with: it may catch
        this one and exit otherwise."""
        if self.span is not None or self.admin:
            return
        self.usage_error = self.usage_error or code == 2
        telemetry = self.start()
        if not telemetry.enabled:
            return
        span = telemetry.command(self.name())
        span.__enter__()
        self.span = span
        self._hook_hard_exit()

    def _hook_hard_exit(self) -> None:
        """A program may leave through ``os._exit`` (mypy does, skipping the interpreter's
        shutdown): then the command ends with that code, and what was recorded is handed
        over, as the block's end would."""
        try:
            from phonehome._host.forks import on_hard_exit

            self._unhook = on_hard_exit(self._hard_exit)
        except Exception as error:
            from phonehome._core.diagnostics import record_error

            record_error("argparse hard exit", error)

    def _hard_exit(self, code: int) -> None:
        self.__exit__(SystemExit, SystemExit(code), None)

    def unparsed(self) -> "Span | None":
        """The product's command, for a run that ended without a parsed command line."""
        try:
            telemetry = self.start()
            if not telemetry.enabled:
                return None
            span = telemetry.command(self.name())
            span.__enter__()
        except Exception as error:  # telemetry never changes what the program does
            from phonehome._core.diagnostics import record_error

            record_error("argparse command", error)
            return None
        return span

    def _exit_code(self, exc: BaseException | None) -> "int | None":
        """The exit code the block ended with, if it was an exit: the one raised, or the
        one ``main`` returned or the program set."""
        if isinstance(exc, SystemExit):
            return int(_outcome().exit_code(exc.code))
        if exc is None and self.exit is not None:
            return int(_outcome().exit_code(self.exit))
        return None

    def name(self) -> str:
        return " ".join(self.path) or self.product


def _raised_by_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` came out of an ``ArgumentParser.error()``: any parser's, also one the
    program made besides the one watched (a usage error), and also when the program caught
    that exit and exits again while handling it (virtualenv's ``sys.exit(e.code)``)."""
    argparse = sys.modules.get("argparse")
    if argparse is None or not isinstance(exc, SystemExit):
        return False
    seen: BaseException | None = exc
    for _ in range(8):  # the exits it was raised while handling, a few deep
        if not isinstance(seen, SystemExit):
            return False
        tb = seen.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_name == "error" and isinstance(
                frame.f_locals.get("self"), argparse.ArgumentParser
            ):
                return True
            tb = tb.tb_next
        seen = seen.__context__
    return False


def _shared() -> "Any":
    """What the integrations share (``_common``), loaded when an exception passes or
    ``telemetry ...`` is asked."""
    from phonehome.integrations import _common

    return _common


def _outcome() -> "Any":
    """``phonehome._host.outcome``, loaded when an exit code or an exception is recorded
    (not by a run with consent off that ends normally)."""
    from phonehome._host import outcome

    return outcome


# -- watching the parser ------------------------------------------------------------------------
def _first_parser() -> "Callable[[], None]":
    """Watch the first parser that parses while the block runs; return the undo."""
    import argparse

    cls = argparse.ArgumentParser
    original = cls.parse_known_args

    def parse_known_args(self: "argparse.ArgumentParser", *args: "Any", **kwargs: "Any") -> "Any":
        run = _current()
        if run is not None and run.parser is None:
            run.parser = self
            cls.parse_known_args = original  # type: ignore[method-assign]
            try:
                _watch(self, (), root=True)
            except Exception as error:  # an unusual parser: it parses unwatched
                from phonehome._core.diagnostics import record_error

                record_error("instrument argparse", error)
            try:
                return self.parse_known_args(*args, **kwargs)
            except BaseException as exc:
                _shared().hide_frames(exc, __file__)
                raise
        return original(self, *args, **kwargs)

    cls.parse_known_args = parse_known_args  # type: ignore[method-assign]

    def undo() -> None:
        if cls.parse_known_args is parse_known_args:
            cls.parse_known_args = original  # type: ignore[method-assign]

    return undo


def _watch(parser: "argparse.ArgumentParser", path: tuple[str, ...], root: bool) -> None:
    """Wrap ``parse_known_args`` of the parser and its subparsers, once."""
    if vars(parser).get(_WATCHED):
        return
    parser._phonehome_watched = True  # type: ignore[attr-defined]
    parser.error = _usage_error(parser.error)  # type: ignore[method-assign,assignment]
    if root:
        parser.parse_known_args = _root_parse(parser, parser.parse_known_args)  # type: ignore[method-assign]
    else:
        for method in ("parse_known_args", "_parse_known_args2"):
            if hasattr(parser, method):
                setattr(parser, method, _chosen(path, getattr(parser, method)))
    subparsers = _subparsers(parser)
    if subparsers is not None:
        for name, child in subparsers.choices.items():
            _watch(child, (*path, name), root=False)


def _root_parse(parser: "argparse.ArgumentParser", original: "Callable[..., Any]") -> "Any":
    def parse_known_args(args: "Sequence[str] | None" = None, namespace: "Any" = None) -> "Any":
        run = _current()
        if run is None:
            return original(args, namespace)
        try:
            _admin(run, parser, args)
            result = original(args, namespace)
        except SystemExit as exc:
            if not run.admin:
                _contained(run.stopped, _outcome().exit_code(exc.code))
            _shared().hide_frames(exc, __file__)
            raise
        except BaseException as exc:
            _shared().hide_frames(exc, __file__)
            raise
        _contained(run.parsed, result[0])
        return result

    return parse_known_args


def _chosen(path: tuple[str, ...], original: "Callable[..., Any]") -> "Callable[..., Any]":
    def parse(*args: "Any", **kwargs: "Any") -> "Any":
        run = _current()
        if run is not None and len(path) > len(run.path):
            run.path = path
        return original(*args, **kwargs)

    return parse


def _usage_error(original: "Callable[[str], Any]") -> "Callable[[str], Any]":
    def error(message: str) -> "Any":
        run = _current()
        if run is not None:
            run.usage_error = True
        return original(message)

    return error


def _contained(step: "Callable[[Any], None]", value: "Any") -> None:
    try:
        step(value)
    except Exception as error:  # telemetry never changes what the program does
        from phonehome._core.diagnostics import record_error

        record_error("argparse command", error)


def _subparsers(parser: "argparse.ArgumentParser") -> "Any":
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _defaults(parser: "argparse.ArgumentParser") -> "dict[str, Any]":
    import argparse

    found = {a.dest: a.default for a in parser._actions if a.dest != argparse.SUPPRESS}
    found.update(parser._defaults)
    subparsers = _subparsers(parser)
    if subparsers is not None:
        for child in subparsers.choices.values():
            for key, value in _defaults(child).items():
                found.setdefault(key, value)
    return found


# -- ``<prog> telemetry ...`` ------------------------------------------------------------------
def _admin(run: ArgparseCommand, parser: "argparse.ArgumentParser", args: "Any") -> None:
    """Answer ``telemetry status|enable|disable`` (exit 0), before argparse sees it."""
    argv = list(sys.argv[1:] if args is None else args)
    if not argv or argv[0] != "telemetry" or not _takes_commands_first(parser):
        return
    run.admin = True
    actions = {name: action for name, _, action in _shared().ACTIONS}
    action = argv[1] if len(argv) == 2 else None
    if action in actions:
        print(actions[action](run.product, run.kwargs))
        raise SystemExit(0)
    usage = f"usage: {parser.prog} telemetry {{{','.join(actions)}}}\n"
    if argv[1:] in (["-h"], ["--help"]):
        lines = [f"  {name:<8} {text}" for name, text, _ in _shared().ACTIONS]
        print(usage + "\nShow or change whether this tool sends usage telemetry.\n")
        print("\n".join(lines))
        raise SystemExit(0)
    sys.stderr.write(usage)
    raise SystemExit(2)


def _takes_commands_first(parser: "argparse.ArgumentParser") -> bool:
    """The first positional is the subcommand, and none is called ``telemetry``."""
    positionals = parser._get_positional_actions()
    subparsers = _subparsers(parser)
    if not positionals or positionals[0] is not subparsers:
        return False
    choices: Any = subparsers.choices
    return "telemetry" not in choices
