"""Recording in the host: commands, spans, events, measurements and log lines, in memory.

Nothing here imports OpenTelemetry, opens a file or starts a thread. Records are the named
tuples of ``phonehome._spool.records`` (small, and cheap to make); the hand-off writes them
to the spool, the sender turns them into OpenTelemetry data. Ids are W3C-sized and random
per process.

Threads may record at once: the buffer is a ``deque``, whose appends and pops are atomic, and
spooling pops what it takes instead of swapping the buffer for a new one (a thread that had
just read the old one would append to it unseen), so no record is lost or spooled twice,
without a lock on the hot path. After ``os.fork()`` the child's recorder starts empty, with
ids of its own (:meth:`Recorder.forked`); a span the child inherited open is the parent's to
record.
"""

from __future__ import annotations

import os
from _contextvars import ContextVar  # contextvars is only its re-export
from collections import deque
from time import monotonic, time_ns
from types import TracebackType

from phonehome._core.diagnostics import record_error
from phonehome._core.instruments import Counter, Gauge, Histogram, Span
from phonehome._host import outcome
from phonehome._host.attributes import attribute, clean, text
from phonehome._policy.enforce import CRASH_EVENT
from phonehome._spool.records import (
    LOG,
    SPAN,
    Attributes,
    ExceptionInfo,
    LogRecord,
    Record,
    SpanEvent,
    SpanRecord,
    measure,
    new,
    span_event,
    span_without_error,
    span_without_exception,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Literal

    from phonehome._host.exceptions import Exceptions

_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
_current: ContextVar[tuple[int, int] | None] = ContextVar("phonehome_span", default=None)

_OK = outcome.OK
INFO = 9
"""OpenTelemetry's severity number of INFO, which events carry."""
FATAL = 21
"""OpenTelemetry's severity number of FATAL, which a crash report carries."""


class Ids:
    """Random-looking W3C ids from one ``os.urandom`` call per process."""

    __slots__ = ("_next", "_seed")

    def __init__(self, seed: int | None = None) -> None:
        self._seed = (int.from_bytes(os.urandom(16), "big") if seed is None else seed) | 1
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
    chatty program holds little), and once more at the end. ``ids`` and ``clock`` (in
    nanoseconds) can be given, for tests that compare exported data whole.
    """

    __slots__ = (
        "_exceptions",
        "_flush",
        "clock",
        "crashed",
        "due",
        "exception_messages",
        "failed",
        "generation",
        "ids",
        "max_buffered",
        "records",
    )

    def __init__(
        self,
        flush: Callable[[list[Record]], None],
        max_buffered: int,
        ids: Ids | None = None,
        clock: Callable[[], int] = time_ns,
        exception_messages: bool = False,
    ) -> None:
        self.records: deque[Record] = deque()
        self.ids = ids if ids is not None else Ids()
        self.clock = clock
        self.exception_messages = exception_messages
        """A recorded exception carries its message (the schema opts in)."""
        self._exceptions: Exceptions | None = None
        self._flush = flush
        self.max_buffered = max_buffered
        self.crashed: BaseException | None = None
        """The exception of the last crash report, so that it is reported once."""
        self.failed: tuple[BaseException | None, SpanRecord] | None = None
        """The last command that an exception ended, and that exception."""
        self.generation = 0
        """Which process of a line of forks this is: a span entered in another is not ours."""
        self.due: tuple[float, Callable[[], None]] | None = None
        """A monotonic time, and what to call at the first record after it."""

    @property
    def exceptions(self) -> Exceptions:
        """What a recorded exception carries; loaded at the first one (most runs have none)."""
        if self._exceptions is None:
            from phonehome._host.exceptions import Exceptions

            self._exceptions = Exceptions(self.exception_messages)
        return self._exceptions

    def add(self, record: Record) -> None:
        records = self.records
        records.append(record)
        due = self.due
        if due is not None and monotonic() >= due[0]:
            self.due = None
            try:
                due[1]()
            except Exception as error:
                record_error("due", error)
        if len(records) >= self.max_buffered:
            self.drain()

    def drain(self) -> None:
        """Hand the buffered records to ``flush``."""
        records = self.take()
        if records:
            try:
                self._flush(records)
            except Exception as error:
                record_error("spool", error)

    def take(self) -> list[Record]:
        """What is buffered now, oldest first: each record taken once, however many threads
        add or take meanwhile."""
        records = self.records
        taken: list[Record] = []
        pop, keep = records.popleft, taken.append
        try:
            for _ in range(len(records)):
                keep(pop())
        except IndexError:  # another thread took the rest
            pass
        return taken

    def forked(self) -> None:
        """In the child of a fork: nothing held (the parent spools what it recorded), and
        new ids (parent and child never share one)."""
        self.records = deque()
        self.ids = Ids()
        self.failed = None
        self.generation += 1

    def current(self) -> tuple[int, int] | None:
        return _current.get()

    def log(
        self,
        severity: int,
        level: str,
        body: str,
        attributes: Attributes,
        event_name: str = "",
        exception: ExceptionInfo | None = None,
    ) -> None:
        here = _current.get()
        trace_id, span_id = here if here is not None else (0, 0)
        self.add(
            new(
                LogRecord,
                (
                    LOG,
                    self.clock(),
                    severity,
                    level,
                    body,
                    attributes,
                    event_name,
                    trace_id,
                    span_id,
                    exception,
                ),
            )
        )

    def crash(self, exc: BaseException, trace_id: int = 0, span_id: int = 0) -> None:
        """The crash report of ``exc``, once: in the command it ended, or whose exception
        it was raised from, if one did (that command's span, still held, becomes a
        ``crash`` without its own copy of the stack trace), else in the span given."""
        if exc is self.crashed:
            return
        self.crashed = exc
        failed, self.failed = self.failed, None
        if failed is not None and failed[0] is not None and outcome.raised_from(exc, failed[0]):
            span = failed[1]
            trace_id, span_id = span.trace_id, span.span_id
            records = self.records
            for i in range(len(records) - 1, -1, -1):
                if records[i] is span:
                    span.attributes["command.result"] = outcome.CRASH
                    records[i] = span_without_exception(span)
                    break
        try:
            error_type, exception = self.exceptions.describe(exc)
        except Exception as error:
            record_error("describe exception", error)
            error_type, exception = outcome.type_name(type(exc)), None
        record = new(
            LogRecord,
            (
                LOG,
                self.clock(),
                FATAL,
                "FATAL",
                f"unhandled {error_type}",
                {},
                CRASH_EVENT,
                trace_id,
                span_id,
                exception,
            ),
        )
        self.add(record)

    def exited(self, exc: BaseException, code: int) -> None:
        """The program handled ``exc`` and exits with ``code`` (its own ``sys.excepthook``
        reports the error and exits): the command ``exc`` ended, still held, takes that code,
        and is a success if it is 0."""
        failed, self.failed = self.failed, None
        if failed is None or failed[0] is None or not outcome.raised_from(exc, failed[0]):
            return
        span, ended = failed[1], outcome.of_exit(code)
        records = self.records
        for i in range(len(records) - 1, -1, -1):
            if records[i] is span:
                attributes = span.attributes
                attributes["command.result"] = ended.result
                attributes[outcome.EXIT_CODE] = ended.exit_code
                if ended is outcome.OK:
                    attributes.pop("error.type", None)
                    records[i] = span_without_error(span)
                break

    def event(self, name: str, attributes: Mapping[str, Any] | None) -> None:
        """A business or lifecycle event: a log record carrying ``event.name``."""
        values = clean(attributes)
        values["event.name"] = name
        self.log(INFO, "INFO", name, values, name)


def _names_a_type(value: object) -> bool:
    """Whether ``value`` names a class of error as an exception's type does (dotted
    identifiers, short): ``error.type`` is always sent, so it carries no free text."""
    return (
        isinstance(value, str)
        and len(value) <= 128
        and all(part.isidentifier() for part in value.split("."))
    )


class RecordingSpan(Span):
    """A span being recorded; a context manager that makes it current for its body."""

    __slots__ = (
        "_attributes",
        "_command",
        "_events",
        "_exit",
        "_generation",
        "_id",
        "_name",
        "_parent",
        "_recorder",
        "_start",
        "_token",
        "_trace",
    )

    def __init__(
        self, recorder: Recorder, name: str, attributes: Attributes, command: bool
    ) -> None:
        self._recorder = recorder
        self._name = name
        self._attributes = attributes
        self._command = command
        self._token: Any = None
        self._events: list[SpanEvent] | None = None
        self._exit: outcome.Outcome = outcome.OK

    def __enter__(self) -> RecordingSpan:
        ids = self._recorder.ids
        parent = _current.get()
        if parent is None:
            self._trace = trace = ids.trace_id()
            self._parent = 0
        else:
            self._trace, self._parent = trace, _ = parent
        self._id = span_id = ids.span_id()
        self._token = _current.set((trace, span_id))
        self._generation = self._recorder.generation
        self._start = self._recorder.clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        recorder = self._recorder
        end = recorder.clock()
        token = self._token
        if token is None:  # exited twice, or entered never
            return False
        self._token = None
        try:
            _current.reset(token)
        except ValueError:  # exited in another context than it was entered in
            _current.set(None if self._parent == 0 else (self._trace, self._parent))
        if self._generation != recorder.generation:  # entered before a fork: the parent's
            return False
        attributes = self._attributes
        error_type = exception = None
        ended = self._exit if exc is None else self._outcome(exc)
        if ended is _OK:  # the common end, decided without a look at the outcome
            if self._command:
                attributes["command.result"] = outcome.SUCCESS
                attributes[outcome.EXIT_CODE] = 0
        else:
            error_type, exception = self._ended(ended, exc, attributes)
        record = new(
            SpanRecord,
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
            ),
        )
        if ended is not _OK and ended.crash and self._command:
            recorder.failed = (exc, record)
        recorder.add(record)
        return False

    def _ended(
        self, ended: outcome.Outcome, exc: BaseException | None, attributes: Attributes
    ) -> tuple[str | None, ExceptionInfo | None]:
        """The span's error type and exception for an end other than success, and the
        command's result, exit code and ``error.type`` attributes."""
        error_type = ended.error_type
        exception = None
        if error_type is not None:
            if ended.crash and exc is not None:
                exception = self._exception(exc)
            if self._command:
                attributes["error.type"] = error_type
        if self._command:
            # an exception is a failure of the command, and a crash only if it leaves the
            # instrumented block unhandled: Recorder.crash then makes this span say so
            attributes["command.result"] = outcome.FAILURE if ended.crash else ended.result
            if ended.exit_code is not None:
                attributes[outcome.EXIT_CODE] = ended.exit_code
        return error_type, exception

    @staticmethod
    def _outcome(exc: BaseException) -> outcome.Outcome:
        try:
            return outcome.of_exception(exc)
        except Exception as error:
            record_error("classify exception", error)
            return outcome.Outcome(outcome.CRASH, None, "unknown")

    def _exception(self, exc: BaseException) -> ExceptionInfo | None:
        try:
            return self._recorder.exceptions.describe(exc)[1]
        except Exception as error:
            record_error("describe exception", error)
            return None

    def set_exit_code(
        self,
        code: int,
        *,
        usage_error: bool = False,
        cancelled: bool = False,
        error_type: str | None = None,
    ) -> None:
        try:
            named = error_type if _names_a_type(error_type) else None
            self._exit = outcome.of_exit(int(code), usage_error, cancelled, named)
        except Exception as error:
            record_error("set_exit_code", error)
            return
        if error_type is not None and named is None:  # the code stands in for it
            refused = ValueError("error_type must name a class of error (dotted identifiers)")
            record_error("set_exit_code", refused)

    def set_attribute(self, key: str, value: Any) -> None:
        try:
            self._attributes[text(key)] = attribute(value)
        except Exception as error:
            record_error("set_attribute", error)

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        try:
            event = span_event(text(name), self._recorder.clock(), clean(attributes))
        except Exception as error:
            record_error("add_event", error)
            return
        if self._events is None:
            self._events = []
        self._events.append(event)

    @property
    def traceparent(self) -> str:
        return f"00-{self._trace:032x}-{self._id:016x}-01"


class Instrument:
    """A custom counter, histogram or gauge's recording: one measurement record per call."""

    __slots__ = ("description", "kind", "name", "recorder", "unit")

    def __init__(self, recorder: Recorder, kind: str, name: str, unit: str, description: str):
        self.recorder = recorder
        self.kind = kind
        self.name = name
        self.unit = unit
        self.description = description

    def measure(self, amount: float, attributes: Mapping[str, Any] | None) -> None:
        try:
            if not isinstance(amount, int | float) or isinstance(amount, bool):
                raise TypeError(f"{self.name}: a measurement must be a number, got {amount!r}")
            self.recorder.add(
                measure(
                    self.kind, self.name, self.unit, self.description, amount, clean(attributes)
                )
            )
        except Exception as error:
            record_error(f"{self.kind} {self.name}", error)


class RecordingCounter(Counter):
    __slots__ = ("_instrument",)

    def __init__(self, instrument: Instrument) -> None:
        self._instrument = instrument

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._instrument.measure(amount, attributes)


class RecordingHistogram(Histogram):
    __slots__ = ("_instrument",)

    def __init__(self, instrument: Instrument) -> None:
        self._instrument = instrument

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._instrument.measure(amount, attributes)


class RecordingGauge(Gauge):
    __slots__ = ("_instrument",)

    def __init__(self, instrument: Instrument) -> None:
        self._instrument = instrument

    def set(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._instrument.measure(amount, attributes)
