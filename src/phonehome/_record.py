"""Recording in the host: commands, spans, events, measurements and log lines, in memory.

Nothing here imports OpenTelemetry, opens a file or starts a thread. Records are plain
tuples (small, and cheap to make); ``_spool`` writes them, ``_sender`` turns them into
OpenTelemetry spans, metrics and log records. Ids are W3C-sized and random per process.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Collection, Mapping
from contextvars import ContextVar
from time import time_ns
from types import TracebackType
from typing import Any, Final, Literal

from phonehome._diagnostics import record_error

# Record layouts (also the spool's line layout, see docs/spool.md).
SPAN: Final = "s"  # (SPAN, trace_id, span_id, parent_id, name, start_ns, end_ns, attributes,
#                    error_type | None, exception | None, is_command, events)
LOG: Final = "l"  # (LOG, time_ns, severity_number, severity_text, body, attributes,
#                   event_name, trace_id, span_id, exception | None)
MEASURE: Final = "m"  # (MEASURE, kind, name, unit, description, value, attributes)

Exception3 = tuple[str, str, str]
"""An exception as (type, message, stack trace)."""

_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
_current: ContextVar[tuple[int, int] | None] = ContextVar("phonehome_span", default=None)

_SEVERITY = (
    (logging.CRITICAL, 21),
    (logging.ERROR, 17),
    (logging.WARNING, 13),
    (logging.INFO, 9),
    (0, 5),
)


class Ids:
    """Random-looking W3C ids from one ``os.urandom`` call per process."""

    __slots__ = ("_next", "_seed")

    def __init__(self) -> None:
        self._seed = int.from_bytes(os.urandom(16), "big") | 1
        self._next = 0

    def span_id(self) -> int:
        self._next += 1
        return ((self._seed * (self._next * 0x9E3779B97F4A7C15 + 1)) >> 32) & _MASK64 or 1

    def trace_id(self) -> int:
        self._next += 1
        value = self._seed * (self._next * 0x9E3779B97F4A7C15 + 7)
        return (value ^ (value >> 61)) & _MASK128 or 1


class Recorder:
    """The in-memory buffer of one ``instrument()`` block.

    ``flush`` is called with the buffered records when ``max_buffered`` is reached (so a
    chatty program holds little), and once more at the end.
    """

    __slots__ = ("_flush", "ids", "max_buffered", "records")

    def __init__(self, flush: Callable[[list[tuple[Any, ...]]], None], max_buffered: int) -> None:
        self.records: list[tuple[Any, ...]] = []
        self.ids = Ids()
        self._flush = flush
        self.max_buffered = max_buffered

    def add(self, record: tuple[Any, ...]) -> None:
        records = self.records
        records.append(record)
        if len(records) >= self.max_buffered:
            self.drain()

    def drain(self) -> None:
        """Hand the buffered records to ``flush``."""
        if self.records:
            records, self.records = self.records, []
            try:
                self._flush(records)
            except Exception as error:
                record_error("spool", error)

    def current(self) -> tuple[int, int] | None:
        return _current.get()

    def log(
        self,
        severity: int,
        level: str,
        body: str,
        attributes: dict[str, Any],
        event_name: str = "",
        exception: Exception3 | None = None,
    ) -> None:
        here = _current.get()
        trace_id, span_id = here if here is not None else (0, 0)
        self.add(
            (
                LOG,
                time.time_ns(),
                severity,
                level,
                body,
                attributes,
                event_name,
                trace_id,
                span_id,
                exception,
            )
        )


class Span:
    """A span being recorded; a context manager that makes it current for its body."""

    __slots__ = (
        "_attributes",
        "_command",
        "_events",
        "_id",
        "_name",
        "_parent",
        "_recorder",
        "_start",
        "_token",
        "_trace",
    )

    def __init__(
        self, recorder: Recorder, name: str, attributes: dict[str, Any], command: bool
    ) -> None:
        self._recorder = recorder
        self._name = name
        self._attributes = attributes
        self._command = command
        self._token: Any = None
        self._events: list[tuple[str, int, dict[str, Any]]] | None = None

    def __enter__(self) -> Span:
        ids = self._recorder.ids
        parent = _current.get()
        if parent is None:
            self._trace = trace = ids.trace_id()
            self._parent = 0
        else:
            self._trace, self._parent = trace, _ = parent
        self._id = span_id = ids.span_id()
        self._token = _current.set((trace, span_id))
        self._start = time_ns()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        end = time_ns()
        token = self._token
        if token is None:  # exited twice, or entered never
            return False
        self._token = None
        try:
            _current.reset(token)
        except ValueError:  # exited in another context than it was entered in
            _current.set(None if self._parent == 0 else (self._trace, self._parent))
        attributes = self._attributes
        if exc is None:
            error_type = exception = None
            if self._command:
                attributes["command.result"] = "success"
        else:
            error_type, exception = self._failure(exc, attributes)
        recorder = self._recorder
        records = recorder.records
        records.append(
            (
                SPAN,
                self._trace,
                self._id,
                self._parent,
                self._name,
                self._start,
                end,
                attributes,
                error_type,
                exception,
                self._command,
                self._events,
            )
        )
        if len(records) >= recorder.max_buffered:
            recorder.drain()
        return False

    def _failure(
        self, exc: BaseException, attributes: dict[str, Any]
    ) -> tuple[str | None, Exception3 | None]:
        try:
            error_type, exception = _describe(exc)
        except Exception as error:
            record_error("describe exception", error)
            error_type, exception = "unknown", None
        if self._command:
            attributes["command.result"] = _result(exc, error_type)
            if error_type is not None:
                attributes["error.type"] = error_type
        return error_type, exception

    def set_attribute(self, key: str, value: Any) -> None:
        """Add an attribute to the span."""
        try:
            self._attributes[text(key)] = attribute(value)
        except Exception as error:
            record_error("set_attribute", error)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """A point-in-time event inside the span (an OpenTelemetry span event)."""
        try:
            event = (text(name), time.time_ns(), clean(attributes))
        except Exception as error:
            record_error("add_event", error)
            return
        if self._events is None:
            self._events = []
        self._events.append(event)

    @property
    def traceparent(self) -> str:
        return f"00-{self._trace:032x}-{self._id:016x}-01"


_PRIMITIVE = frozenset((str, int, float, bool))


def command_attributes(
    name: str,
    params: Mapping[str, Any] | None,
    collect: Collection[str],
    declared: Collection[str] = (),
) -> dict[str, Any]:
    """A command span's attributes: the name, every parameter's name, and the values of
    the parameters in ``collect`` or ``declared`` (the schema's, whose policy applies later).
    """
    if not params:
        return {"command.name": name}
    try:
        names = sorted(params)
    except TypeError:  # keys of mixed types
        names = sorted(map(str, params))
    attributes: dict[str, Any] = {"command.name": name, "command.params": names}
    for keys in (collect, declared):
        for key in keys:
            if key in params:
                value = params[key]
                attributes["command.param." + key] = (
                    value if type(value) in _PRIMITIVE else attribute(value)
                )
    return attributes


def _result(exc: BaseException | None, error_type: str | None) -> str:
    if error_type is None:
        return "success"
    return "cancelled" if isinstance(exc, KeyboardInterrupt) else "failure"


def _describe(exc: BaseException) -> tuple[str | None, Exception3 | None]:
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
    from phonehome._scrub import relative_stack

    stack = relative_stack(
        "".join(traceback.format_exception(cls, exc, exc.__traceback__)), sys.path
    )
    return name, (name, message, stack)


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


def clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
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


_OWN_LOGGERS = ("opentelemetry", "azure", "phonehome", "urllib3", "requests", "grpc")


class LogBridge:
    """The host's ``logging`` warnings and errors as log records in the current span.

    It wraps the log record factory instead of adding a handler: a handler on the root logger
    would turn the host's later ``logging.basicConfig()`` into a no-op and silence Python's
    last-resort output of warnings to stderr. The host's logging behaves as without us.
    The source file's path is not recorded: it names the user's directories.
    """

    def __init__(self, recorder: Recorder, level: int) -> None:
        self._recorder = recorder
        self._level = level
        self._previous = logging.getLogRecordFactory()
        self._factory = self._make
        self._active = True
        logging.setLogRecordFactory(self._factory)

    def close(self) -> None:
        """Stop recording; unwrap the factory unless someone wrapped it after us."""
        self._active = False
        if logging.getLogRecordFactory() is self._factory:
            logging.setLogRecordFactory(self._previous)

    def _make(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._previous(*args, **kwargs)
        if self._active and record.levelno >= self._level:
            self.emit(record)
        return record

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_OWN_LOGGERS):
            return
        try:
            severity = next(s for level, s in _SEVERITY if record.levelno >= level)
            exception = None
            if record.exc_info and record.exc_info[1] is not None:
                exception = _describe(record.exc_info[1])[1]
            self._recorder.log(
                severity,
                record.levelname,
                record.getMessage(),
                {
                    "logger.name": record.name,
                    "code.function.name": record.funcName or "",
                    "code.line.number": record.lineno,
                },
                exception=exception,
            )
        except Exception as error:
            record_error("logging bridge", error)
