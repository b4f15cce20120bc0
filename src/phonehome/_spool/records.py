"""Every record kind that crosses from the host to the sender, with named fields.

The host makes them (recording, usage, system metrics), the policy rewrites them (schema
enforcement), the spool writes them as plain tuples and reads them back, and the sender
replays them through the OpenTelemetry SDK. The first field names the kind; the field order
is the spool's line layout (``docs/spool.md``), so fields are only ever added at the end.

Each kind is a tuple with a read-only property per field, declared once with its type.
(Not ``typing.NamedTuple``: building its classes costs a CLI 0.17 ms each at start-up,
against 0.01 ms for these, and reading a field is the same C-level ``itemgetter``.) On the
hot path a record is made with ``new(SpanRecord, (...))``, a plain tuple's cost.
"""

from __future__ import annotations

from operator import itemgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final, TypeAlias

    Attributes: TypeAlias = dict[str, Any]
    _Tuple: TypeAlias = tuple[Any, ...]
else:  # the same at run time, without importing typing (milliseconds for a CLI)
    Attributes = dict
    _Tuple = tuple

SPAN: Final = "s"
LOG: Final = "l"
MEASURE: Final = "m"

new = tuple.__new__
"""``new(SpanRecord, (...))``: a record made from its fields, in order."""


class Fields(_Tuple):
    """A tuple whose annotated fields read its items in order (see the module's docstring)."""

    __slots__ = ()
    fields: tuple[str, ...] = ()

    def __init_subclass__(cls) -> None:
        # not inspect.get_annotations: importing inspect would cost every CLI milliseconds
        cls.fields = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
        for index, name in enumerate(cls.fields):
            setattr(cls, name, property(itemgetter(index), doc=f"field {index}: {name}"))

    @classmethod
    def of(cls, values: tuple[Any, ...] | list[Any]) -> Any:
        """The record of ``values``; ``ValueError`` unless there is one per field."""
        if not isinstance(values, tuple | list) or len(values) != len(cls.fields):
            raise ValueError(f"not the {len(cls.fields)} fields of a {cls.__name__}")
        return new(cls, values)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{n}={v!r}" for n, v in zip(self.fields, self, strict=True))
        return f"{type(self).__name__}({pairs})"


class ExceptionInfo(Fields):
    """An exception as it is recorded: its type's name, message and stack trace."""

    type: str
    message: str
    stacktrace: str


class SpanEvent(Fields):
    """A point-in-time event inside a span (an OpenTelemetry span event)."""

    name: str
    time_ns: int
    attributes: Attributes


class SpanRecord(Fields):
    """A finished span; ``is_command`` marks the span of a ``telemetry.command``."""

    kind: str
    trace_id: int
    span_id: int
    parent_id: int
    name: str
    start_ns: int
    end_ns: int
    attributes: Attributes
    error_type: str | None
    exception: ExceptionInfo | None
    is_command: bool
    events: list[SpanEvent] | None


class LogRecord(Fields):
    """A log record: an event (``event_name`` set), a host log line or a crash report."""

    kind: str
    time_ns: int
    severity_number: int
    severity_text: str
    body: str
    attributes: Attributes
    event_name: str
    trace_id: int
    span_id: int
    exception: ExceptionInfo | None


class MeasureRecord(Fields):
    """One measurement of a counter, histogram or gauge."""

    kind: str
    instrument: str
    name: str
    unit: str
    description: str
    value: float
    attributes: Attributes


Record = SpanRecord | LogRecord | MeasureRecord
INSTRUMENTS: Final = ("counter", "histogram", "gauge")


def exception_info(kind: str, message: str, stacktrace: str) -> ExceptionInfo:
    return new(ExceptionInfo, (kind, message, stacktrace))


def span_event(name: str, time_ns: int, attributes: Attributes) -> SpanEvent:
    return new(SpanEvent, (name, time_ns, attributes))


def measure(
    instrument: str, name: str, unit: str, description: str, value: float, attributes: Attributes
) -> MeasureRecord:
    return new(MeasureRecord, (MEASURE, instrument, name, unit, description, value, attributes))


def span_with(
    record: SpanRecord, attributes: Attributes, events: list[SpanEvent] | None
) -> SpanRecord:
    """``record`` with other attributes and events."""
    return new(SpanRecord, (*record[:7], attributes, *record[8:11], events))


def span_without_exception(record: SpanRecord) -> SpanRecord:
    """``record`` without its exception (the crash report that follows carries it)."""
    return new(SpanRecord, (*record[:9], None, *record[10:]))


def span_without_error(record: SpanRecord) -> SpanRecord:
    """``record`` without its error type and exception: a command that ended well after all."""
    return new(SpanRecord, (*record[:8], None, None, *record[10:]))


def log_with(record: LogRecord, attributes: Attributes) -> LogRecord:
    """``record`` with other attributes."""
    return new(LogRecord, (*record[:5], attributes, *record[6:]))


def measure_with(record: MeasureRecord, attributes: Attributes) -> MeasureRecord:
    """``record`` with other attributes."""
    return new(MeasureRecord, (*record[:6], attributes))


def to_wire(record: Record) -> tuple[Any, ...]:
    """The record as plain tuples, which ``marshal`` writes (it refuses tuple subclasses)."""
    if type(record) is SpanRecord:
        exception, events = record[9], record[11]  # the fast path of every command
        if exception is None and not events:
            return record[:]
        return (
            *record[:9],
            None if exception is None else exception[:],
            record.is_command,
            None if events is None else [event[:] for event in events],
        )
    if type(record) is LogRecord and record.exception is not None:
        return (*record[:9], record.exception[:])
    return record[:]


def to_wires(records: list[Record]) -> list[tuple[Any, ...]]:
    """``to_wire`` over a batch, with the common span (no exception, no events) inline: the
    spool writes every record a program makes through here."""
    wires: list[tuple[Any, ...]] = []
    append = wires.append
    for record in records:
        if type(record) is SpanRecord and record[9] is None and not record[11]:
            append(record[:])
        else:
            append(to_wire(record))
    return wires


def from_wire(raw: Any) -> Record:
    """A record read back from the spool; ``ValueError`` if it is not one of ours."""
    if not isinstance(raw, tuple | list) or not raw:
        raise ValueError("not a record")
    kind = raw[0]
    record: Record
    if kind == SPAN:
        span: SpanRecord = SpanRecord.of(raw)
        if span.exception is not None or span.events is not None:
            span = new(
                SpanRecord,
                (
                    *raw[:9],
                    None if span.exception is None else ExceptionInfo.of(span.exception),
                    raw[10],
                    None if span.events is None else [SpanEvent.of(e) for e in span.events],
                ),
            )
        record = span
    elif kind == LOG:
        log: LogRecord = LogRecord.of(raw)
        if log.exception is not None:
            log = new(LogRecord, (*raw[:9], ExceptionInfo.of(log.exception)))
        record = log
    elif kind == MEASURE:
        record = MeasureRecord.of(raw)
    else:
        raise ValueError(f"unknown record kind {kind!r}")
    if not isinstance(record.attributes, dict):
        raise ValueError(f"a {kind!r} record whose attributes are not a mapping")
    return record
