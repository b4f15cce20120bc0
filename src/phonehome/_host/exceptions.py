"""What an exception carries when it is recorded: its type and where the program's code it
went through, its message only when the schema opts in.

A message can hold what the user typed (``no such table: <their input>``), and so can the
exceptions chained to it, so by default neither leaves: the stack trace lists the frames of
the program's own code and the libraries it calls (file relative to its import root, line,
function; no source text), with the standard library's, phonehome's and the command-line
frameworks' frames folded into a count, and each chained exception shown by its type. An exit
(``SystemExit``) carries no chained context at all. With ``Schema(exception_messages=True)``
the messages are kept too (scrubbed in the sender, like every text).
"""

from __future__ import annotations

import sys
from types import TracebackType

from phonehome._spool.records import ExceptionInfo, exception_info

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_CHAIN = 5
"""Chained exceptions shown at most (causes and contexts)."""
MAX_FRAMES = 50
"""Frames shown at most per exception, the innermost kept."""
_FRAMEWORKS = frozenset(("phonehome", "click", "typer", "argparse", "runpy", "_pytest", "pluggy"))


class Exceptions:
    """How this block records exceptions (``messages``: the schema's opt-in)."""

    __slots__ = ("messages",)

    def __init__(self, messages: bool = False) -> None:
        self.messages = messages

    def describe(self, exc: BaseException) -> tuple[str | None, ExceptionInfo | None]:
        """``error.type`` and the exception to record; a clean ``sys.exit(0)`` is no error
        and an interrupt carries only its type."""
        if isinstance(exc, SystemExit) and exc.code in (None, 0):
            return None, None
        name = type_name(exc)
        if isinstance(exc, KeyboardInterrupt):
            return name, None
        message = _message(exc) if self.messages else ""
        return name, exception_info(name, message, self.stack(exc))

    def stack(self, exc: BaseException) -> str:
        """The stack trace as it is recorded (see the module's docstring)."""
        chain: list[BaseException] = []
        here: BaseException | None = exc
        while here is not None and here not in chain and len(chain) <= MAX_CHAIN:
            chain.append(here)
            if isinstance(here, SystemExit):
                break
            here = here.__cause__ or (None if here.__suppress_context__ else here.__context__)
        parts: list[str] = []
        for inner, outer in zip(reversed(chain), [*reversed(chain[:-1]), None], strict=True):
            parts.append(self._one(inner))
            if outer is not None:
                parts.append(
                    "\nThe above exception was the direct cause of the following exception:\n\n"
                    if outer.__cause__ is inner
                    else "\nDuring handling of the above exception, another exception occurred:\n\n"
                )
        return "".join(parts)

    def _one(self, exc: BaseException) -> str:
        lines = ["Traceback (most recent call last):\n"]
        hidden = 0
        frames = list(_frames(exc.__traceback__))[-MAX_FRAMES:]
        for filename, lineno, function, module in frames:
            if _is_other(module, filename):
                hidden += 1
                continue
            if hidden:
                lines.append(f"  [{hidden} frame(s) of Python or the framework]\n")
                hidden = 0
            lines.append(f'  File "{filename}", line {lineno}, in {function}\n')
        if hidden:
            lines.append(f"  [{hidden} frame(s) of Python or the framework]\n")
        message = _message(exc) if self.messages else ""
        lines.append(f"{type_name(exc)}: {message}\n" if message else f"{type_name(exc)}\n")
        return "".join(lines)


def type_name(exc: BaseException) -> str:
    """The exception's type as ``error.type`` carries it (``module.Class``, or ``Class`` for
    built-in exceptions)."""
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


def _frames(tb: TracebackType | None) -> Iterable[tuple[str, int, str, str]]:
    """Each frame: file relative to its import root, line, function, module name."""
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        module = frame.f_globals.get("__name__", "")
        yield relative_path(code.co_filename), tb.tb_lineno, code.co_name, str(module)
        tb = tb.tb_next


def _is_other(module: str, filename: str) -> bool:
    """A frame of the standard library, of phonehome, or of a command-line framework."""
    top = module.partition(".")[0]
    return top in _FRAMEWORKS or filename.startswith("<frozen") or _in_stdlib(filename)


def _in_stdlib(relative: str) -> bool:
    """Whether a path (relative to its import root) names a standard-library module."""
    if relative.startswith(("<", "/", "\\")):
        return False
    top = relative.replace("\\", "/").split("/", 1)[0].removesuffix(".py")
    return top in sys.stdlib_module_names


def relative_path(filename: str) -> str:
    """A file's path relative to the import root it lives under (``sys.path``): the user's
    directories stay out of it."""
    best = ""
    for entry in sys.path:
        root = entry.rstrip("/\\")
        if len(root) > max(len(best), 1) and filename.startswith((root + "/", root + "\\")):
            best = root
    return filename[len(best) + 1 :] if best else filename
