"""Strict schema mode (the pytest plugin turns it on for every test): recording an attribute
the schema does not declare raises :class:`UndeclaredError` at the call that records it,
before anything is kept. In production the hand-off drops and counts it instead.
"""

from __future__ import annotations

from phonehome._core.errors import UndeclaredError
from phonehome._host.attributes import clean, text
from phonehome._host.recorder import Instrument, Recorder, RecordingSpan
from phonehome._policy.enforce import BUILTIN_EVENTS
from phonehome._policy.schema import Schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


class Strict:
    """The schema's declarations, checked as attributes are recorded."""

    __slots__ = ("schema",)

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def check(self, attributes: Mapping[str, Any], where: str, event: str | None = None) -> None:
        builtin = BUILTIN_EVENTS.get(event) if event is not None else None
        for key in attributes:
            if key == "event.name":
                continue
            if builtin is not None:
                declared = key in builtin
            elif event is not None:
                declared = self.schema.event_field(event, key) is not None
            else:
                declared = key in self.schema.attributes
            if not declared:
                raise UndeclaredError(
                    f"{where}: attribute {key!r} is not declared in the telemetry schema"
                )


class CheckedSpan(RecordingSpan):
    """A span whose later attributes and events are checked as they are recorded."""

    __slots__ = ("_strict", "_where")

    def __init__(
        self, strict: Strict, recorder: Recorder, name: str, attributes: Any, command: bool
    ) -> None:
        super().__init__(recorder, name, attributes, command)
        self._strict = strict
        self._where = f"span {name!r}"

    def set_attribute(self, key: str, value: Any) -> None:
        self._strict.check({text(key): None}, self._where)
        super().set_attribute(key, value)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        self._strict.check(clean(attributes), f"span event {text(name)!r}")
        super().add_event(name, attributes)


class CheckedInstrument(Instrument):
    """A counter, histogram or gauge whose measurements' attributes are checked."""

    __slots__ = ("_strict",)

    def __init__(self, strict: Strict, *args: Any) -> None:
        super().__init__(*args)
        self._strict = strict

    def measure(self, amount: float, attributes: Mapping[str, Any] | None) -> None:
        self._strict.check(clean(attributes), f"metric {self.name!r}")
        super().measure(amount, attributes)
