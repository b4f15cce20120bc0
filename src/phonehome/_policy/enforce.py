"""Schema enforcement: applied to every record in the host, before it is spooled.

An undeclared attribute never leaves the process: it is dropped and counted (and raises
:class:`UndeclaredError` in tests). Values are reduced to what the field's policy allows.
The toolkit's own events, metrics and log keys are declared here, beside the rules.
"""

from __future__ import annotations

from phonehome._policy.schema import OTHER, PARAM_PREFIX, VALUE_POLICIES, Field, Schema
from phonehome._spool.records import (
    Attributes,
    LogRecord,
    MeasureRecord,
    Record,
    SpanRecord,
    log_with,
    measure_with,
    span_event,
    span_with,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

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
_UNUSABLE = object()
_MAX_PLANS = 1024
"""Commands whose plan is kept (names come from the program, but a program could make many)."""
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
        self.unusable = 0
        """Values that could not be reduced to what their policy allows: dropped."""
        self._plans: dict[str, tuple[dict[str, Field], frozenset[str]]] = {}

    def enforce(self, records: list[Record]) -> list[Record]:
        """The level's filter and the schema, over a batch: what may be spooled.

        A command the schema says nothing of, holding only its built-in fields and its
        ``collect=`` values, passes as it is: the common case, checked inline, because this
        runs for every record a program makes.
        """
        kept: list[Record] = []
        append = kept.append
        every = self.level == "all"
        plans = self._plans
        for record in records:
            if not every and not self.keep(record):
                continue
            if type(record) is SpanRecord and record.is_command and not record.events:
                plan = plans.get(record.name)
                if plan is not None and not plan[0]:
                    for key in record.attributes:
                        if key not in _COMMAND_KEYS and not key.startswith(PARAM_PREFIX):
                            break
                    else:  # only built-in fields and collect= values: nothing to take out
                        append(record)
                        continue
            append(self.apply(record))
        return kept

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
        if record.is_command:
            attributes = self._command(name, record.attributes)
        else:
            attributes = self._declared(record.attributes, None, f"span {name!r}")
        events = record.events
        if attributes is record.attributes and not events:
            return record  # nothing to take out: the common command of a CLI
        if events:
            events = [
                span_event(
                    event.name,
                    event.time_ns,
                    self._declared(event.attributes, None, f"span event {event.name!r}"),
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
        """A command span's attributes: the built-in ones; each parameter's value as its
        policy says (a value recorded without a declaration was asked for with ``collect=``);
        anything else only if declared among the schema's ``attributes``. Declared command or
        not, every key goes through here."""
        declared, dropped = self._plan(command)
        if not declared and _builtin_only(attributes):
            return attributes  # nothing declared, nothing but built-ins and collect= values
        kept: Attributes = {}
        other: Attributes = {}
        for key, value in attributes.items():
            if key in _COMMAND_KEYS:
                kept[key] = value
            elif key.startswith(PARAM_PREFIX):
                reduced = self._param(declared.get(key), value, key)
                if reduced is not _UNUSABLE:
                    kept[key] = reduced
            else:
                other[key] = value
        if other:
            kept.update(self._declared(other, None, f"command {command!r}"))
        if dropped and "command.params" in kept:
            kept["command.params"] = [n for n in kept["command.params"] if n not in dropped]
        return kept

    def _param(self, declared: Field | None, value: Any, key: str) -> Any:
        """A recorded parameter value as its declaration says (``_UNUSABLE``: it does not
        leave); recorded without a declaration, it was asked for with ``collect=``."""
        if declared is None:
            return value
        if declared.policy in VALUE_POLICIES:
            return self._value(declared, value, key)
        return _UNUSABLE

    def _plan(self, command: str) -> tuple[dict[str, Field], frozenset[str]]:
        """A command's declared parameters by attribute key, and those declared ``drop``:
        worked out once per command name (the per-command path stays a dict lookup)."""
        plan = self._plans.get(command)
        if plan is None:
            params = self.schema.commands.get(command, {})
            plan = (
                {PARAM_PREFIX + name: f for name, f in params.items()},
                frozenset(name for name, f in params.items() if f.policy == "drop"),
            )
            if len(self._plans) < _MAX_PLANS:
                self._plans[command] = plan
        return plan

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
                    from phonehome._core.errors import UndeclaredError  # loaded only to raise it

                    raise UndeclaredError(
                        f"{where}: attribute {key!r} is not declared in the telemetry schema"
                    )
                continue
            if f.policy == "presence":
                kept[key] = True
            elif f.policy != "drop":
                reduced = self._value(f, value, key)
                if reduced is not _UNUSABLE:
                    kept[key] = reduced
        return kept

    def _value(self, f: Field, value: Any, key: str) -> Any:
        """The value as the field's policy lets it leave; ``_UNUSABLE`` (dropped, counted)
        if it cannot be made so: fail closed, never sent as it is."""
        try:
            if f.policy == "enum":
                return value if str(value) in (f.values or ()) else OTHER
            if f.policy == "hash":
                import hashlib

                return hashlib.sha256(self._salt() + str(value).encode()).hexdigest()
            return value
        except Exception:
            self.unusable += 1
            return _UNUSABLE


def _builtin_only(attributes: Attributes) -> bool:
    """Whether a command's attributes are only its built-in fields and parameter values."""
    for key in attributes:
        if key not in _COMMAND_KEYS and not key.startswith(PARAM_PREFIX):
            return False
    return True
