"""Attribute values as records carry them: made safe, never raising.

A value that is not a primitive becomes its text; a name that cannot be printed is marked.
(Exceptions: ``phonehome._host.exceptions``.)
"""

from __future__ import annotations

from phonehome._spool.records import Attributes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Mapping
    from typing import Any

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
