"""Schema enforcement: applied to every record in the host, before it is spooled.

An undeclared attribute never leaves the process: it is dropped and counted (and raises
:class:`UndeclaredError` in tests). Values are reduced to what the field's policy allows.
The toolkit's own events, metrics and log keys are declared here, beside the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from phonehome._core.errors import UndeclaredError
from phonehome._policy.schema import OTHER, VALUE_POLICIES, Field, Schema
from phonehome._spool.records import (
    Attributes,
    LogRecord,
    MeasureRecord,
    Record,
    SpanRecord,
    log_with,
    measure_with,
    span_with,
)

CRASH_EVENT = "exception.unhandled"
"""The log record of an exception that left the instrumented block."""

BUILTIN_EVENTS: dict[str, frozenset[str]] = {
    "heartbeat": frozenset(),
    "install": frozenset(("version", "channel")),
    "upgrade": frozenset(("from", "to", "channel")),
    "phonehome.collector.failed": frozenset(("collector", "error.type")),
}
"""Events the toolkit sends, with the attributes each may carry (always declared)."""

SYSTEM_METRICS: dict[str, list[str] | None] = {
    "system.cpu.utilization": ["idle", "user", "system", "iowait"],
    "system.memory.utilization": ["used", "free", "cached"],
    "system.disk.io": ["read", "write"],
    "system.network.io": ["transmit", "receive"],
    "process.cpu.utilization": None,
    "process.memory.usage": None,
}
"""The infrastructure metrics the toolkit sends (``system_metrics=True``), with the states
each is sampled for: its own, so their attributes (cpu, state, device, direction) need no
declaration; their values are scrubbed like every text."""

_BUILTIN_LOG = frozenset(
    (
        "logger.name",
        "code.function.name",
        "code.line.number",
        "exception.type",
        "exception.message",
        "exception.stacktrace",
    )
)
_COMMAND_KEYS = frozenset(
    ("command.name", "command.params", "command.result", "process.exit.code", "error.type")
)
PARAM_PREFIX = "command.param."
ERROR_SEVERITY = 17
"""OpenTelemetry's severity number of ERROR: the ``error`` level keeps log records from here."""


class Enforcer:
    """Applies a schema to records before they are spooled (in the host).

    Undeclared attributes are dropped and counted in ``undeclared``; in strict mode (tests)
    they raise :class:`UndeclaredError`. With ``report_fields`` (``phonehome schema check``)
    a description of each is kept in ``undeclared_fields``.
    """

    def __init__(
        self,
        schema: Schema,
        salt: Callable[[], bytes],
        strict: bool = False,
        level: str = "all",
        report_fields: bool = False,
    ) -> None:
        self.schema = schema
        self.level = level
        self._salt = salt  # the install's salt, read on first use
        self.strict = strict
        self.report_fields = report_fields
        self.undeclared = 0
        self.undeclared_fields: list[str] = []

    def exempt(self) -> set[str]:
        """Attribute keys declared ``scrub=False``: sent as given, with the schema's reason."""
        s = self.schema
        keys = {
            PARAM_PREFIX + n for ps in s.commands.values() for n, f in ps.items() if not f.scrub
        }
        keys |= {
            n
            for attrs in [*s.events.values(), s.attributes]
            for n, f in attrs.items()
            if not f.scrub
        }
        return keys

    def keep(self, record: Record) -> bool:
        """The level's filter: ``crash`` keeps unhandled exceptions, ``error`` adds failed
        spans and error logs, ``all`` keeps everything."""
        if self.level == "all":
            return True
        if type(record) is LogRecord:
            crash = record.event_name == CRASH_EVENT
            return crash or (self.level == "error" and record.severity_number >= ERROR_SEVERITY)
        return (
            self.level == "error" and type(record) is SpanRecord and record.error_type is not None
        )

    def apply(self, record: Record) -> Record:
        if type(record) is SpanRecord:
            return self._span(record)
        if type(record) is LogRecord:
            return log_with(record, self._log_attributes(record))
        if type(record) is MeasureRecord:
            if record.name in SYSTEM_METRICS:  # the toolkit's own infrastructure metrics
                return record
            return measure_with(
                record, self._declared(record.attributes, None, f"metric {record.name!r}")
            )
        return record

    def _span(self, record: SpanRecord) -> SpanRecord:
        name = record.name
        if record.is_command and not record.events and name not in self.schema.commands:
            return record  # a command the schema says nothing of: names, and collect= values
        if record.is_command:
            attributes = self._command(name, record.attributes)
        else:
            attributes = self._declared(record.attributes, None, f"span {name!r}")
        events = record.events
        if events:
            events = [
                event._replace(
                    attributes=self._declared(event.attributes, None, f"span event {event.name!r}")
                )
                for event in events
            ]
        return span_with(record, attributes, events)

    def _log_attributes(self, record: LogRecord) -> Attributes:
        attributes, event = record.attributes, record.event_name
        if event == CRASH_EVENT:
            return {k: v for k, v in attributes.items() if k in _BUILTIN_LOG}
        if event in BUILTIN_EVENTS:
            allowed = BUILTIN_EVENTS[event]
            kept = {k: v for k, v in attributes.items() if k in allowed}
        elif event:
            kept = self._declared(attributes, event, f"event {event!r}")
        else:
            return {k: v for k, v in attributes.items() if k in _BUILTIN_LOG}
        kept["event.name"] = event
        return kept

    def _command(self, command: str, attributes: Attributes) -> Attributes:
        dropped = self.schema.dropped_params(command)
        kept: Attributes = {}
        for key, value in attributes.items():
            if key in _COMMAND_KEYS:
                kept[key] = value
            elif key.startswith(PARAM_PREFIX):
                name = key[len(PARAM_PREFIX) :]
                f = self.schema.param(command, name, (name,))
                if f.policy in VALUE_POLICIES:
                    kept[key] = self._value(f, value)
        if dropped and "command.params" in kept:
            kept["command.params"] = [n for n in kept["command.params"] if n not in dropped]
        return kept

    def _declared(self, attributes: Attributes, event: str | None, where: str) -> Attributes:
        kept: Attributes = {}
        for key, value in attributes.items():
            if key == "event.name":
                continue
            f = self.schema.event_field(event, key) if event else self.schema.attributes.get(key)
            if f is None:
                self.undeclared += 1
                if self.report_fields:
                    self.undeclared_fields.append(f"{where}: attribute {key!r}")
                if self.strict:
                    raise UndeclaredError(
                        f"{where}: attribute {key!r} is not declared in the telemetry schema"
                    )
                continue
            if f.policy == "presence":
                kept[key] = True
            elif f.policy != "drop":
                kept[key] = self._value(f, value)
        return kept

    def _value(self, f: Field, value: Any) -> Any:
        if f.policy == "enum":
            return value if str(value) in (f.values or ()) else OTHER
        if f.policy == "hash":
            import hashlib

            return hashlib.sha256(self._salt() + str(value).encode()).hexdigest()
        return value
