"""The integrator's handle: what ``phonehome.instrument()`` returns, and what it returns.

``Telemetry`` and the typed objects its methods return (``Span``, ``Counter``, ``Histogram``,
``Gauge``). With consent off it holds no recording, and every method is a no-op on shared
objects (the base classes here record nothing): no file, thread, socket or OpenTelemetry
import. With consent on it delegates to a ``Recording`` (``phonehome._host.recording``),
whose recording spans and instruments subclass these; this module never imports it.
"""

from __future__ import annotations

from phonehome._core.consent import Decision
from phonehome._core.diagnostics import record_error, warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from types import TracebackType
    from typing import Any, Protocol, TypeVar

    from phonehome._core.consent import LiveConsent, Resolver

    class Recording(Protocol):
        """What the handle needs of a block's recording (``phonehome._host.recording``,
        which this module does not import: the handle is on the consent-off path)."""

        consent: LiveConsent

        @property
        def describe(self) -> tuple[str, ...]: ...
        @property
        def mode(self) -> str: ...
        def command(
            self, name: str, params: Mapping[str, Any] | None, collect: Collection[str]
        ) -> Span: ...
        def span(self, name: str, attributes: Mapping[str, Any] | None) -> Span: ...
        def event(self, name: str, attributes: Mapping[str, Any] | None) -> None: ...
        def counter(self, name: str, unit: str, description: str) -> Counter: ...
        def histogram(self, name: str, unit: str, description: str) -> Histogram: ...
        def gauge(self, name: str, unit: str, description: str) -> Gauge: ...
        def traceparent(self) -> str | None: ...
        def register(self, name: str, function: F, every: float) -> None: ...
        def flush(self, timeout: float) -> bool: ...
        def crash(self, exc: BaseException) -> None: ...
        def revoke(self, decision: Decision) -> None: ...
        def close(self) -> None: ...

    F = TypeVar("F", bound=Callable[[], Mapping[str, Any]])


class Span:
    """A command or a span: a context manager that makes it current for its body."""

    __slots__ = ()

    @property
    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of this span (``None`` while telemetry is off)."""
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        """Add an attribute (sent only if the schema declares it)."""

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """A point-in-time event inside the span (an OpenTelemetry span event)."""

    def set_exit_code(self, code: int, *, usage_error: bool = False) -> None:
        """End the command with exit code ``code``, without raising: 0 is ``success``,
        another code ``failure`` (``usage_error`` with ``usage_error=True``: the arguments
        were wrong, the command did not run). An exception leaving the block decides
        instead."""

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return None


class Counter:
    """A custom counter."""

    __slots__ = ()

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Add ``amount`` (attributes as the schema declares them)."""


class Histogram:
    """A custom histogram."""

    __slots__ = ()

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Record one value."""


class Gauge:
    """A custom gauge."""

    __slots__ = ()

    def set(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Set the current value."""


NOOP_SPAN = Span()
NOOP_COUNTER = Counter()
NOOP_HISTOGRAM = Histogram()
NOOP_GAUGE = Gauge()


class Telemetry:
    """Returned by :func:`phonehome.instrument`; a context manager that ends the telemetry.

    While telemetry is off every method is a cheap no-op, so calling code never branches.
    """

    __slots__ = ("_decision", "_ended", "_recorded", "_recording", "_resolver")

    def __init__(
        self,
        resolver: Resolver | None,
        decision: Decision,
        recording: Recording | None = None,
    ) -> None:
        self._resolver = resolver
        self._decision = decision
        self._recording = recording
        """The recording while the block runs; ``None`` while off or once ended."""
        self._recorded = recording
        """The recording, also after the end (its decision, destinations and mode)."""
        self._ended = False

    # -- consent ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether data is being recorded right now."""
        recording = self._recording
        return recording is not None and recording.consent()

    @property
    def decision(self) -> Decision:
        """The consent decision and the source that made it."""
        recording = self._recorded
        return recording.consent.decision if recording is not None else self._decision

    @property
    def destinations(self) -> tuple[str, ...]:
        """The destinations data goes to, credentials masked."""
        recording = self._recorded
        return recording.describe if recording is not None else ()

    @property
    def mode(self) -> str:
        """How records are handed over: ``cli``, ``ci``, ``service``, ``debug``, ``check``,
        or ``off``."""
        recording = self._recorded
        return recording.mode if recording is not None else "off"

    def enable(self) -> None:
        """Store the user's "yes"; it takes effect from the next run."""
        self._store(True)

    def disable(self) -> None:
        """Store the user's "no": stop recording at once and purge what is held."""
        recording, self._recording = self._recording, None
        if recording is not None:
            try:
                recording.revoke(Decision(False, "stored", "the user's stored choice"))
            except Exception as error:
                record_error("disable", error)
        self._store(False)

    def reset_id(self) -> None:
        """Forget the install id (and the hashing salt): the next run is a new install."""
        if self._resolver is None:
            return
        try:
            from phonehome._host.identity import forget

            forget(self._resolver.state_path)
        except Exception as error:
            record_error("reset_id", error)

    def _store(self, enabled: bool) -> None:
        if self._resolver is None:
            warn("consent cannot be stored: instrument() was not given a valid product")
            return
        try:
            from phonehome._host.choice import store

            store(self._resolver, enabled)
        except OSError as error:
            warn(
                f"cannot store the consent choice in {self._resolver.state_path} ({error.strerror})"
            )
        except Exception as error:
            record_error("store consent", error)

    # -- recording -------------------------------------------------------------------------
    def command(
        self, name: str, params: Mapping[str, Any] | None = None, collect: Collection[str] = ()
    ) -> Span:
        """A context manager around one command of the program.

        Records a span named ``name`` (duration, ``command.result``, ``process.exit.code``,
        ``error.type``) and the ``<product>.command.executions`` and
        ``<product>.command.duration`` metrics. Parameter names are always recorded; values
        only for names in ``collect``. The result follows ``docs/integrations.md``: an exit
        raised in the body (``SystemExit``, click's) is ``success`` or ``failure`` with its
        code, an interrupt ``cancelled``, any other exception a ``crash`` (reported once,
        with its stack trace); exceptions propagate unchanged. ``span.set_exit_code(n)``
        ends it with a code without raising.
        """
        recording = self._recording
        if recording is None:
            return NOOP_SPAN
        return recording.command(name, params, collect)

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Span:
        """A nested span, for traces inside a command."""
        recording = self._recording
        if recording is None:
            return NOOP_SPAN
        return recording.span(name, attributes)

    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """A business or lifecycle event: an OTel log record carrying ``event.name``."""
        recording = self._recording
        if recording is None:
            return
        try:
            recording.event(name, attributes)
        except Exception as error:
            record_error("event", error)

    def counter(self, name: str, unit: str = "", description: str = "") -> Counter:
        """A custom counter: ``.add(amount, attributes)``."""
        recording = self._recording
        if recording is None:
            return NOOP_COUNTER
        try:
            return recording.counter(name, unit, description)
        except Exception as error:
            record_error("counter", error)
            return NOOP_COUNTER

    def histogram(self, name: str, unit: str = "", description: str = "") -> Histogram:
        """A custom histogram: ``.record(value, attributes)``."""
        recording = self._recording
        if recording is None:
            return NOOP_HISTOGRAM
        try:
            return recording.histogram(name, unit, description)
        except Exception as error:
            record_error("histogram", error)
            return NOOP_HISTOGRAM

    def gauge(self, name: str, unit: str = "", description: str = "") -> Gauge:
        """A custom gauge: ``.set(value, attributes)``."""
        recording = self._recording
        if recording is None:
            return NOOP_GAUGE
        try:
            return recording.gauge(name, unit, description)
        except Exception as error:
            record_error("gauge", error)
            return NOOP_GAUGE

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the current span, to pass to a downstream service."""
        recording = self._recording
        if recording is None:
            return None
        try:
            return recording.traceparent()
        except Exception as error:
            record_error("traceparent", error)
            return None

    def collector(self, name: str, every: str | float = "24h") -> Callable[[F], F]:
        """Register a usage collector: a function returning a snapshot (a mapping).

        It runs at most once per ``every`` per install (``"24h"``, ``"30m"``, seconds),
        across runs; its result is the event ``name``, checked against the schema. A
        collector that raises is reported (``phonehome.collector.failed``), never fatal.
        """

        def register(function: F) -> F:
            recording = self._recording
            if recording is not None:
                from phonehome._core.settings import interval

                try:
                    recording.register(str(name), function, interval(every))
                except ValueError as error:
                    warn(f"collector {name!r}: every={every!r}: {error}; it is not run")
            return function

        return register

    # -- lifetime --------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver what is recorded so far, in this process, waiting at most ``timeout``."""
        recording = self._recording
        if recording is None:
            return True
        try:
            return recording.flush(timeout)
        except Exception as error:
            record_error("flush", error)
            return False

    def shutdown(self) -> None:
        """End the telemetry: spool what is held and hand it to a sender. Safe to call twice."""
        if self._ended:
            return
        self._ended = True
        recording, self._recording = self._recording, None
        if recording is not None:
            try:
                recording.close()
            except Exception as error:
                record_error("shutdown", error)

    def __enter__(self) -> Telemetry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        recording = self._recording
        if exc is not None and recording is not None:
            try:
                recording.crash(exc)
            except Exception as error:
                record_error("crash", error)
        self.shutdown()
