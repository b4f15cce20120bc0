"""What a block with consent on holds: the recorder, the hand-off, live consent, the logging
bridge, usage collectors, system metrics and, once it is one, the service thread.

``Telemetry`` (the integrator's handle) delegates here; while consent is off it has no
``Recording`` and this module is never imported.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

from phonehome._core.consent import Decision, LiveConsent
from phonehome._core.diagnostics import record_error, strict_schema, warn
from phonehome._core.environment import instrument_name
from phonehome._core.errors import UndeclaredError
from phonehome._core.settings import PROMOTE_AFTER, Settings
from phonehome._host import handles
from phonehome._host.attributes import clean, command_attributes, describe, text
from phonehome._host.handoff import Handoff
from phonehome._host.recorder import (
    INFO,
    Instrument,
    Recorder,
    RecordingCounter,
    RecordingGauge,
    RecordingHistogram,
    RecordingSpan,
)
from phonehome._host.usage import Collector, Usage
from phonehome._policy.enforce import BUILTIN_EVENTS, CRASH_EVENT
from phonehome._policy.schema import Schema
from phonehome._spool.records import Record

MAX_BUFFERED = 2000
"""Records held in memory before they are written to the spool as one segment."""
FATAL = 21
"""OpenTelemetry's severity number of FATAL, which a crash report carries."""


class Recording:
    """One block's recording, from ``instrument()`` to the end of the block."""

    def __init__(self, settings: Settings, consent: LiveConsent, handoff: Handoff) -> None:
        self.settings = settings
        self.consent = consent
        self.handoff = handoff
        schema = handoff.enforcer.schema
        self._declared_params = {c: schema.collectable(c, ()) for c in schema.commands}
        self._strict = Strict(schema) if strict_schema() else None
        """In tests: an undeclared attribute raises where the code records it."""
        self.recorder = Recorder(self._write, MAX_BUFFERED)
        self.usage = Usage(None if settings.ephemeral else handoff.state_dir, settings.heartbeat)
        self._system: Any = settings.system_metrics
        """``True`` until the first service tick starts the instrumentation; then it."""
        self._service: Any = None
        self._promote_at = float("inf")
        if handoff.mode == "service":
            self.promote()
        elif settings.mode == "auto" and handoff.mode in ("cli", "ci"):
            self._promote_at = time.monotonic() + PROMOTE_AFTER
        self._bridge: Any = None
        if settings.capture_logging:
            import logging

            from phonehome._host.logbridge import LogBridge

            self._bridge = LogBridge(self.recorder, logging.WARNING)

    # -- recording -------------------------------------------------------------------------
    def command(
        self, name: str, params: Mapping[str, Any] | None, collect: Collection[str]
    ) -> handles.Span:
        try:
            if time.monotonic() > self._promote_at:
                self.promote()
            if type(name) is not str:
                name = text(name)
            declared = self._declared_params.get(name, ())
            attributes = command_attributes(name, params, collect, declared)
            if self._strict is not None:
                return CheckedSpan(self._strict, self.recorder, name, attributes, True)
            return RecordingSpan(self.recorder, name, attributes, True)
        except Exception as error:
            record_error("command", error)
            return handles.NOOP_SPAN

    def span(self, name: str, attributes: Mapping[str, Any] | None) -> handles.Span:
        try:
            name, values = text(name), clean(attributes)
            if self._strict is not None:
                self._strict.check(values, f"span {name!r}")
                return CheckedSpan(self._strict, self.recorder, name, values, False)
            return RecordingSpan(self.recorder, name, values, False)
        except Exception as error:
            record_error("span", error)
            return handles.NOOP_SPAN

    def event(self, name: str, attributes: Mapping[str, Any] | None) -> None:
        name = text(name)
        if self._strict is not None:
            self._strict.check(clean(attributes), f"event {name!r}", name)
        self.recorder.event(name, attributes)

    def instrument(self, kind: str, name: str, unit: str, description: str) -> Instrument:
        name, unit, description = instrument_name(text(name)), text(unit), text(description)
        if self._strict is not None:
            return CheckedInstrument(self._strict, self.recorder, kind, name, unit, description)
        return Instrument(self.recorder, kind, name, unit, description)

    def counter(self, name: str, unit: str, description: str) -> handles.Counter:
        return RecordingCounter(self.instrument("counter", name, unit, description))

    def histogram(self, name: str, unit: str, description: str) -> handles.Histogram:
        return RecordingHistogram(self.instrument("histogram", name, unit, description))

    def gauge(self, name: str, unit: str, description: str) -> handles.Gauge:
        return RecordingGauge(self.instrument("gauge", name, unit, description))

    def traceparent(self) -> str | None:
        current = self.recorder.current()
        if current is None:
            return None
        return f"00-{current[0]:032x}-{current[1]:016x}-01"

    def crash(self, exc: BaseException) -> None:
        """An exception left the instrumented block: the program is crashing."""
        error_type, exception = describe(exc)
        if error_type is None or isinstance(exc, KeyboardInterrupt):
            return
        self.recorder.log(FATAL, "FATAL", f"unhandled {error_type}", {}, CRASH_EVENT, exception)

    def register(self, name: str, function: Collector, every: float) -> None:
        self.usage.register(name, function, every)

    # -- delivery ----------------------------------------------------------------------------
    def _write(self, records: list[Record]) -> None:
        """Spool records, unless consent was revoked meanwhile: then nothing is kept."""
        if not self.consent():
            self.handoff.spool.purge()
            return
        self.handoff.write(records)

    def flush(self, timeout: float) -> bool:
        self.recorder.drain()
        return self.handoff.deliver_now(timeout)

    def promote(self) -> None:
        """Become a service: tick and deliver from a background thread from now on."""
        self._promote_at = float("inf")
        handoff = self.handoff
        if self._service is not None or not handoff.has_destinations:
            return
        if handoff.mode in ("debug", "check"):
            return
        from phonehome._host.service import Service

        handoff.mode = "service"
        self._service = Service(self.settings.service_interval, self.tick, handoff.deliver_now)
        self._service.start()

    def tick(self) -> None:
        """A service's periodic work: due collectors, heartbeat, system metrics, then spool."""
        self.run_usage()
        self._sample_system()
        self.recorder.drain()

    def run_usage(self) -> None:
        try:
            self.usage.run(self._emit)
        except Exception as error:
            record_error("usage", error)

    def _emit(self, name: str, attributes: dict[str, Any]) -> None:
        values = clean(attributes)
        if self._strict is not None:
            self._strict.check(values, f"event {name!r}", name)
        values["event.name"] = name
        self.recorder.log(INFO, "INFO", name, values, name)

    def _sample_system(self) -> None:
        try:
            if self._system is True:  # first tick: start the instrumentation in this thread
                from phonehome._host.system import SystemMetrics

                try:
                    self._system = SystemMetrics()
                except ImportError:
                    self._system = False
                    warn("system_metrics=True needs its extra: pip install 'phonehome[system]'")
                    return
            if self._system:
                for record in self._system.sample():
                    self.recorder.add(record)
        except Exception as error:
            record_error("system metrics", error)

    # -- the end -----------------------------------------------------------------------------
    def close(self) -> None:
        """The block ended: due usage, spool what is held and hand it over."""
        self.unhook_logging()
        self.run_usage()
        if self._system not in (True, False, None):
            try:
                self._system.close()
            except Exception as error:
                record_error("system metrics", error)
        if self._service is not None:
            self._service.stop(self.settings.shutdown_timeout)
        try:
            self.recorder.drain()
            self.handoff.finish()
        except Exception as error:
            record_error("shutdown", error)

    def revoke(self, decision: Decision) -> None:
        """Consent was withdrawn while recording: stop now and keep nothing."""
        self.consent.revoke(decision)
        self.recorder.records.clear()
        self.unhook_logging()
        if self._service is not None:
            self._service.stop(0)

    def unhook_logging(self) -> None:
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None


class Strict:
    """Strict schema mode (the pytest plugin's, for every test): recording an attribute the
    schema does not declare raises :class:`UndeclaredError` at the call that records it,
    before anything is kept. In production the hand-off drops and counts it instead."""

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
