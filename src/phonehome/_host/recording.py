"""What a block with consent on holds: the recorder, the hand-off, live consent, the logging
bridge, usage collectors, system metrics and, once it is one, the service thread.

``Telemetry`` (the integrator's handle) delegates here; while consent is off it has no
``Recording`` and this module is never imported.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from phonehome._core.consent import Decision, LiveConsent
from phonehome._core.diagnostics import record_error, warn
from phonehome._core.environment import instrument_name
from phonehome._core.settings import PROMOTE_AFTER, Settings
from phonehome._host import handles, outcome
from phonehome._host.attributes import clean, command_attributes, text
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
from phonehome._spool.records import Record

MAX_BUFFERED = 2000
"""Records held in memory before they are written to the spool as one segment."""


class Recording:
    """One block's recording, from ``instrument()`` to the end of the block."""

    def __init__(self, settings: Settings, consent: LiveConsent, handoff: Handoff) -> None:
        self.settings = settings
        self.consent = consent
        self.handoff = handoff
        schema = handoff.enforcer.schema
        self._declared_params = {c: schema.collectable(c, ()) for c in schema.commands}
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
            if "logging" in sys.modules:
                self.hook_logging()
            else:  # a CLI that never logs never loads logging: bridge it once it does
                self._bridge = OnImport("logging", self.hook_logging)
                sys.meta_path.insert(0, self._bridge)

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
            return RecordingSpan(self.recorder, name, attributes, True)
        except Exception as error:
            record_error("command", error)
            return handles.NOOP_SPAN

    def span(self, name: str, attributes: Mapping[str, Any] | None) -> handles.Span:
        try:
            return RecordingSpan(self.recorder, text(name), clean(attributes), False)
        except Exception as error:
            record_error("span", error)
            return handles.NOOP_SPAN

    def event(self, name: str, attributes: Mapping[str, Any] | None) -> None:
        self.recorder.event(text(name), attributes)

    def instrument(self, kind: str, name: str, unit: str, description: str) -> Instrument:
        return Instrument(
            self.recorder, kind, instrument_name(text(name)), text(unit), text(description)
        )

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
        """An exception left the instrumented block: a crash report, unless it is an exit
        or an interrupt (``phonehome._host.outcome``), or the command it left already made
        one."""
        if outcome.of_exception(exc).crash:
            trace_id, span_id = self.recorder.current() or (0, 0)
            self.recorder.crash(exc, trace_id, span_id)

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

    def hook_logging(self) -> None:
        import logging

        from phonehome._host.logbridge import LogBridge

        self._bridge = LogBridge(self.recorder, logging.WARNING)

    def unhook_logging(self) -> None:
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None


class OnImport:
    """A meta path finder that runs ``then()`` right after the host imports ``name``, and
    steps aside: the first time, or at ``close()``. The module is found and loaded as it
    would be without it."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != self.name:
            return None
        self.close()
        try:
            from importlib.machinery import PathFinder

            spec = PathFinder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Then(spec.loader, self.then)  # type: ignore[assignment]
        except Exception as error:
            record_error("logging bridge", error)
            return None
        return spec

    def close(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


class _Then:
    """A loader that runs ``then()`` after the real loader executed the module."""

    def __init__(self, loader: Any, then: Callable[[], None]) -> None:
        self._loader = loader
        self._then = then

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            self._then()
        except Exception as error:
            record_error("logging bridge", error)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
