"""The integrator's handle: ``instrument()`` and the ``Telemetry`` it returns.

With consent off, every method is a no-op on shared objects: no file, thread, socket or
OpenTelemetry import. With consent on, records are kept in memory (``_record``), made
durable in the spool and delivered by a sender (``_delivery``); OpenTelemetry is imported
only by the sender.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from phonehome import _environment as env
from phonehome._consent import Decision, LiveConsent, Resolver
from phonehome._diagnostics import contained, record_error, warn

if TYPE_CHECKING:
    from phonehome._delivery import PROMOTE_AFTER, Delivery
    from phonehome._instrument import _Settings
    from phonehome._record import (
        MEASURE,
        LogBridge,
        Recorder,
        Span,
        clean,
        command_attributes,
        text,
    )
    from phonehome._usage import Usage

# Everything below the consent decision (recording, spooling, delivery) is imported only
# when consent is on: an opted-out run pays for this module and ``_consent`` alone.

MAX_BUFFERED = 2000
"""Records held in memory before they are written to the spool as one segment."""


class _NoopInstrument:
    """A counter, histogram or gauge that records nothing."""

    __slots__ = ()

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        pass

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        pass

    def set(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        pass


class _NoopSpan:
    """What ``command()`` and ``span()`` return while telemetry is off."""

    __slots__ = ()
    traceparent = None

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        pass

    def __enter__(self) -> _NoopSpan:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


_NOOP_SPAN = _NoopSpan()
_NOOP_INSTRUMENT = _NoopInstrument()


class _Instrument:
    """A custom counter, histogram or gauge, recorded in memory."""

    __slots__ = ("_description", "_kind", "_name", "_recorder", "_unit")

    def __init__(self, recorder: Recorder, kind: str, name: str, unit: str, description: str):
        self._recorder = recorder
        self._kind = kind
        self._name = name
        self._unit = unit
        self._description = description

    @contained(None)
    def _measure(self, amount: float, attributes: Mapping[str, Any] | None) -> None:
        if not isinstance(amount, int | float) or isinstance(amount, bool):
            raise TypeError(f"{self._name}: a measurement must be a number, got {amount!r}")
        self._recorder.add(
            (
                MEASURE,
                self._kind,
                self._name,
                self._unit,
                self._description,
                amount,
                clean(attributes),
            )
        )

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._measure(amount, attributes)

    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._measure(amount, attributes)

    def set(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._measure(amount, attributes)


class Telemetry:
    """Returned by :func:`instrument`; a context manager that ends the telemetry on exit.

    While telemetry is off every method is a cheap no-op, so calling code never branches.
    """

    __slots__ = (
        "_consent",
        "_decision",
        "_declared_params",
        "_delivery",
        "_ended",
        "_handler",
        "_promote_at",
        "_recorder",
        "_resolver",
        "_settings",
        "_system",
        "_usage",
    )

    def __init__(
        self,
        settings: _Settings,
        resolver: Resolver | None,
        decision: Decision,
        consent: LiveConsent | None = None,
        delivery: Delivery | None = None,
    ) -> None:
        self._settings = settings
        self._resolver = resolver
        self._decision = decision
        self._consent = consent
        self._delivery = delivery
        self._ended = False
        self._handler: LogBridge | None = None
        self._recorder: Recorder | None = None
        self._promote_at = float("inf")
        self._declared_params: dict[str, frozenset[str]] = {}
        self._usage: Usage | None = None
        self._system: Any = settings.system_metrics if delivery is not None else False
        if delivery is not None:
            from phonehome._usage import Usage

            self._usage = Usage(None if settings.ephemeral else delivery.state_dir)
            if settings.heartbeat is not None:
                self._usage.heartbeat = settings.heartbeat
            schema = delivery.enforcer.schema
            self._declared_params = {c: schema.collectable(c, ()) for c in schema.commands}
            self._recorder = Recorder(self._write, MAX_BUFFERED)
            if delivery.mode != "service" and settings.mode == "auto":
                self._promote_at = time.monotonic() + PROMOTE_AFTER
            elif delivery.mode == "service":
                delivery.promote(self._tick)
            if settings.capture_logging:
                import logging

                self._handler = LogBridge(self._recorder, logging.WARNING)

    # -- consent ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether data is being recorded right now."""
        return self._recorder is not None and self._consent is not None and self._consent()

    @property
    def decision(self) -> Decision:
        """The consent decision and the source that made it."""
        return self._consent.decision if self._consent is not None else self._decision

    @property
    def destinations(self) -> tuple[str, ...]:
        """The destinations data goes to, credentials masked."""
        return self._delivery.describe if self._delivery is not None else ()

    @property
    def mode(self) -> str:
        """How records are delivered: ``cli``, ``ci``, ``service``, or ``off``."""
        return self._delivery.mode if self._delivery is not None else "off"

    def enable(self) -> None:
        """Store the user's "yes"; it takes effect from the next run."""
        self._store(True)

    @contained(None)
    def reset_id(self) -> None:
        """Forget the install id (and the hashing salt): the next run is a new install."""
        if self._resolver is not None:
            from phonehome._identity import forget

            forget(self._resolver.state_dir)

    def disable(self) -> None:
        """Store the user's "no": stop recording at once and purge what is held."""
        self._store(False)
        if self._consent is not None:
            self._consent.revoke(Decision(False, "stored", "the user's stored choice"))
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.records.clear()
        self._unhook_logging()
        if self._delivery is not None:
            try:
                self._delivery.spool.purge()
            except OSError as error:
                record_error("purge", error)

    @contained(None)
    def _store(self, enabled: bool) -> None:
        if self._resolver is None:
            warn("consent cannot be stored: instrument() was not given a valid product")
            return
        try:
            self._resolver.store_choice(enabled)
        except OSError as error:
            warn(
                f"cannot store the consent choice in {self._resolver.state_dir} ({error.strerror})"
            )

    # -- recording -------------------------------------------------------------------------
    def command(
        self, name: str, params: Mapping[str, Any] | None = None, collect: Collection[str] = ()
    ) -> Any:
        """A context manager around one command of the program.

        Records a span named ``name`` (duration, status, ``error.type`` and an exception
        event when the body raises; the exception propagates unchanged) and the
        ``<product>.command.executions`` and ``<product>.command.duration`` metrics.
        Parameter names are always recorded; values only for names in ``collect``.
        """
        recorder = self._recorder
        if recorder is None:
            return _NOOP_SPAN
        try:
            if time.monotonic() > self._promote_at:
                self._promote()
            if type(name) is not str:
                name = text(name)
            declared = self._declared_params.get(name, ())
            return Span(recorder, name, command_attributes(name, params, collect, declared), True)
        except Exception as error:
            record_error("command", error)
            return _NOOP_SPAN

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
        """A nested span, for traces inside a command."""
        recorder = self._recorder
        if recorder is None:
            return _NOOP_SPAN
        try:
            return Span(recorder, text(name), clean(attributes), False)
        except Exception as error:
            record_error("span", error)
            return _NOOP_SPAN

    @contained(None)
    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """A business or lifecycle event: an OTel log record carrying ``event.name``."""
        recorder = self._recorder
        if recorder is None:
            return
        values = clean(attributes)
        values["event.name"] = name = text(name)
        recorder.log(9, "INFO", name, values, name)

    def counter(self, name: str, unit: str = "", description: str = "") -> Any:
        """A custom counter: ``.add(amount, attributes)``."""
        return self._instrument("counter", name, unit, description)

    def histogram(self, name: str, unit: str = "", description: str = "") -> Any:
        """A custom histogram: ``.record(value, attributes)``."""
        return self._instrument("histogram", name, unit, description)

    def gauge(self, name: str, unit: str = "", description: str = "") -> Any:
        """A custom gauge: ``.set(value, attributes)``."""
        return self._instrument("gauge", name, unit, description)

    @contained(_NOOP_INSTRUMENT)
    def _instrument(self, kind: str, name: str, unit: str, description: str) -> Any:
        if self._recorder is None:
            return _NOOP_INSTRUMENT
        return _Instrument(
            self._recorder, kind, env.instrument_name(text(name)), text(unit), text(description)
        )

    @contained(None)
    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the current span, to pass to a downstream service."""
        if self._recorder is None:
            return None
        current = self._recorder.current()
        if current is None:
            return None
        return f"00-{current[0]:032x}-{current[1]:016x}-01"

    # -- lifetime --------------------------------------------------------------------------
    @contained(False)
    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver what is recorded so far, in this process, waiting at most ``timeout``."""
        if self._recorder is None or self._delivery is None:
            return True
        self._recorder.drain()
        return self._delivery.deliver_now(timeout)

    def shutdown(self) -> None:
        """End the telemetry: spool what is held and hand it to a sender. Safe to call twice."""
        if self._ended:
            return
        self._ended = True
        self._unhook_logging()
        self._run_usage()
        if self._system not in (True, False, None):
            try:
                self._system.close()
            except Exception as error:
                record_error("system metrics", error)
        recorder, self._recorder = self._recorder, None
        if recorder is None or self._delivery is None:
            return
        try:
            recorder.drain()
            self._delivery.finish()
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
        if exc is not None and self._recorder is not None:
            self._crash(exc)
        self.shutdown()

    @contained(None)
    def _crash(self, exc: BaseException) -> None:
        """An exception left the instrumented block: the program is crashing."""
        from phonehome._record import _describe
        from phonehome._schema import CRASH_EVENT

        error_type, exception = _describe(exc)
        if error_type is None or isinstance(exc, KeyboardInterrupt) or self._recorder is None:
            return
        self._recorder.log(21, "FATAL", f"unhandled {error_type}", {}, CRASH_EVENT, exception)

    def _write(self, records: list[Any]) -> None:
        """Spool records, unless consent was revoked meanwhile: then nothing is kept."""
        assert self._delivery is not None
        if self._consent is not None and not self._consent():
            self._delivery.spool.purge()
            return
        self._delivery.write(records)

    def _unhook_logging(self) -> None:
        if self._handler is not None:
            self._handler.close()
            self._handler = None

    def _promote(self) -> None:
        self._promote_at = float("inf")
        if self._delivery is not None and self._recorder is not None:
            self._delivery.promote(self._tick)

    def _tick(self) -> None:
        """A service's periodic work: due collectors, heartbeat, system metrics, then spool."""
        self._run_usage()
        self._sample_system()
        if self._recorder is not None:
            self._recorder.drain()

    @contained(None)
    def _sample_system(self) -> None:
        if self._system is True:  # first tick: start the instrumentation in this thread
            from phonehome._system import SystemMetrics

            try:
                self._system = SystemMetrics()
            except ImportError:
                self._system = False
                warn("system_metrics=True needs its extra: pip install 'phonehome[system]'")
                return
        if self._system and self._recorder is not None:
            for record in self._system.sample():
                self._recorder.add(record)

    @contained(None)
    def _run_usage(self) -> None:
        if self._usage is not None and self._recorder is not None:
            self._usage.run(self._emit)

    def _emit(self, name: str, attributes: dict[str, Any]) -> None:
        if self._recorder is not None:
            values = clean(attributes)
            values["event.name"] = name
            self._recorder.log(9, "INFO", name, values, name)

    def collector(self, name: str, every: str | float = "24h") -> Any:
        """Register a usage collector: a function returning a snapshot (a mapping).

        It runs at most once per ``every`` per install (``"24h"``, ``"30m"``, seconds),
        across runs; its result is the event ``name``, checked against the schema. A
        collector that raises is reported (``phonehome.collector.failed``), never fatal.
        """

        def register(function: Any) -> Any:
            if self._usage is not None:
                try:
                    from phonehome._usage import interval

                    self._usage.collectors[str(name)] = (function, interval(every))
                except ValueError as error:
                    warn(f"collector {name!r}: every={every!r}: {error}; it is not run")
            return function

        return register


def _load_recording() -> None:
    """Bind the recording names used on the hot path, once, when consent is on.

    They are module globals (not imports inside each method) so that ``command()`` pays a
    global lookup, and an opted-out run never imports ``_record`` or ``_delivery`` at all.
    """
    if "Span" in globals():
        return
    from phonehome import _delivery, _record

    globals().update(
        Span=_record.Span,
        Recorder=_record.Recorder,
        LogBridge=_record.LogBridge,
        MEASURE=_record.MEASURE,
        clean=_record.clean,
        command_attributes=_record.command_attributes,
        text=_record.text,
        PROMOTE_AFTER=_delivery.PROMOTE_AFTER,
    )
