"""Attribute values and exceptions as records carry them: made safe, never raising.

A value that is not a primitive becomes its text; a name that cannot be printed is marked;
an exception becomes its type, message and stack trace, with paths made relative to the
import roots (the user's directories stay out of it).
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from phonehome._spool.records import Attributes, ExceptionInfo, exception_info

_PRIMITIVE = frozenset((str, int, float, bool))


def command_attributes(
    name: str,
    params: Mapping[str, Any] | None,
    collect: Collection[str],
    declared: Collection[str] = (),
) -> Attributes:
    """A command span's attributes: the name, every parameter's name, and the values of
    the parameters in ``collect`` or ``declared`` (the schema's, whose policy applies later).
    """
    if not params:
        return {"command.name": name}
    try:
        names = sorted(params)
    except TypeError:  # keys of mixed types
        names = sorted(map(str, params))
    attributes: Attributes = {"command.name": name, "command.params": names}
    for keys in (collect, declared):
        for key in keys:
            if key in params:
                value = params[key]
                attributes["command.param." + key] = (
                    value if type(value) in _PRIMITIVE else attribute(value)
                )
    return attributes


def describe(exc: BaseException) -> tuple[str | None, ExceptionInfo | None]:
    """``error.type`` and the exception to record; a clean ``sys.exit(0)`` is no error."""
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return None, None
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    if isinstance(exc, KeyboardInterrupt):
        return name, None
    import traceback

    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {cls.__name__}>"
    stack = relative_stack(
        "".join(traceback.format_exception(cls, exc, exc.__traceback__)), sys.path
    )
    return name, exception_info(name, message, stack)


def relative_stack(stack: str, roots: Iterable[str]) -> str:
    """Stack trace paths made relative to the import roots they live under."""
    for root in sorted({r for r in roots if r and len(r) > 1}, key=len, reverse=True):
        prefix = root.rstrip("/\\")
        stack = stack.replace(f'"{prefix}/', '"').replace(f'"{prefix}\\', '"')
    return stack


def attribute(value: Any) -> Any:
    """An OpenTelemetry attribute value: primitives as they are, anything else as text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | bool | int | float) for v in value
    ):
        return list(value)
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def clean(attributes: Mapping[str, Any] | None) -> Attributes:
    if not attributes:
        return {}
    return {text(k): attribute(v) for k, v in attributes.items()}


def text(value: Any) -> str:
    """``str(value)``, which never raises: a name or key that cannot be printed is marked."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
