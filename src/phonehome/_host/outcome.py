"""What a command's end means, defined once for the core API and every integration.

Exit code 0 is ``success``, whatever raised it (``SystemExit(0)``, ``sys.exit()``,
``typer.Exit()``, ``ctx.exit(0)``). A usage error (click's ``UsageError``, argparse's exit 2
from ``error()``) is ``usage_error`` with its exit code; any other non-zero exit is
``failure`` with its exit code (click's ``ClickException`` included); an interrupt (Ctrl-C,
click's ``Abort``, an exit 130 made of one) is ``cancelled``. Only an exception that nothing
handled is a ``crash``: the one kind whose stack trace is recorded, once, as the crash
report.

click is recognised by the shape of its exceptions (class names in ``click.exceptions``,
``typer.exceptions`` and the copy of click that typer vendors), so this module imports
nothing.
"""

from __future__ import annotations

import sys

SUCCESS = "success"
FAILURE = "failure"
USAGE_ERROR = "usage_error"
CANCELLED = "cancelled"
CRASH = "crash"

INTERRUPTED = 130
"""128 + SIGINT: the exit of a program that stopped for Ctrl-C (typer's, httpie's, a shell's)."""

EXIT_CODE = "process.exit.code"
"""The command's exit code (OpenTelemetry's name, from its CLI conventions)."""


class Outcome:
    """A command's result, its exit code (``None`` when unknown) and its ``error.type``."""

    __slots__ = ("crash", "error_type", "exit_code", "result")

    def __init__(self, result: str, exit_code: int | None, error_type: str | None) -> None:
        self.result = result
        self.exit_code = exit_code
        self.error_type = error_type
        self.crash = result == CRASH

    def __repr__(self) -> str:
        return f"Outcome({self.result!r}, {self.exit_code!r}, {self.error_type!r})"


OK = Outcome(SUCCESS, 0, None)
_WINDOWS = sys.platform == "win32"


def of_exit(
    code: int, usage_error: bool = False, cancelled: bool = False, error_type: str | None = None
) -> Outcome:
    """The outcome of a command that ended with ``code``, as the process exits with it: a
    ``usage_error`` or ``cancelled`` one if told so, and success whenever it is 0. The error
    type is ``error_type``, else the code."""
    code = process_code(code)
    if code == 0:
        return OK
    if cancelled or (code == INTERRUPTED and not usage_error):
        result = CANCELLED
    else:
        result = USAGE_ERROR if usage_error else FAILURE
    return Outcome(result, code, error_type or str(code))


def exit_code(value: object) -> int:
    """The process exit code ``SystemExit(value)`` gives: ``None`` is 0, a message is 1."""
    if value is None:
        return 0
    if isinstance(value, int):
        return process_code(value)
    return 1


def process_code(code: int) -> int:
    """The code the process exits with when asked for ``code``: its low 8 bits on POSIX
    (``sys.exit(256)`` exits 0, ``sys.exit(-1)`` 255), 32 bits on Windows."""
    return int(code) & (0xFFFFFFFF if _WINDOWS else 0xFF)


def of_exception(exc: BaseException) -> Outcome:
    """The outcome of a command whose body raised ``exc``."""
    if isinstance(exc, SystemExit):
        return of_exit(exit_code(exc.code))
    if isinstance(exc, KeyboardInterrupt):
        return Outcome(CANCELLED, None, "KeyboardInterrupt")
    shape = _click_shape(type(exc))
    if shape is None or any(exc is e for e in _UNHANDLED):
        return Outcome(CRASH, None, type_name(type(exc)))
    code = getattr(exc, "exit_code", 1)
    code = process_code(code) if isinstance(code, int) else 1
    if shape == "Exit":
        return of_exit(code)
    if shape == "Abort":
        return Outcome(CANCELLED, 1, type_name(type(exc)))
    if code == 0:  # a ClickException whose exit_code a subclass set to 0
        return OK
    result = USAGE_ERROR if shape == "UsageError" else FAILURE
    return Outcome(result, code, type_name(type(exc)))


_UNHANDLED: list[BaseException] = []
"""Exceptions of click's kinds that left a click ``main`` which handles its own (standalone):
another copy of click's (typer 0.29 runs its own), which that ``main`` does not know.
The last few only."""


def unhandled(exc: BaseException) -> None:
    """``exc`` left a click ``main`` that handles every exception of its own click: a crash
    (if the program does not catch it), whatever its name says."""
    _UNHANDLED.append(exc)
    del _UNHANDLED[:-4]


_SHAPES = {
    "Exit": "Exit",
    "Abort": "Abort",
    "UsageError": "UsageError",
    "ClickException": "ClickException",
    "TyperException": "ClickException",
}
_CLICK_MODULES = ("click.exceptions", "typer.exceptions")


def _click_shape(cls: type) -> str | None:
    """The click exception ``cls`` is (or derives from), by name: ``None`` if none. typer
    has its own ``Exit``, ``Abort`` and ``TyperException`` (the base of its copy of click's)."""
    for base in cls.__mro__:
        module = base.__module__
        if base.__name__ in _SHAPES and (
            module in _CLICK_MODULES or module.endswith("._click.exceptions")
        ):
            return _SHAPES[base.__name__]
    return None


def raised_from(exc: BaseException, cause: BaseException) -> bool:
    """Whether ``exc`` is ``cause`` or was raised from it (``raise ... from``, or in its
    ``except``): a few links of its chain, which a program could make endless."""
    link: BaseException | None = exc
    for _ in range(8):
        if link is None:
            return False
        if link is cause:
            return True
        link = link.__cause__ or link.__context__
    return False


def type_name(cls: type) -> str:
    """``error.type`` of an exception class: builtins by name, others module-qualified."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
