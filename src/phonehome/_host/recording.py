"""A block with consent on: how it starts, and what it holds while it runs.

:func:`start` assembles it in order: schema, destinations, identity and resource, the
notice, the hand-off, then the :class:`Recording`, which holds the recorder, the hand-off,
live consent, the logging bridge, usage collectors, system metrics and, once it is one, the
service thread. ``Telemetry`` (the integrator's handle) delegates here; while consent is off
it has no ``Recording`` and this module is never imported.
"""

from __future__ import annotations

import _thread  # threading.Lock is _thread.allocate_lock: no need to import threading
import os
import sys
import time
from time import monotonic

from phonehome._core import destinations as destinations_
from phonehome._core import state as statefiles
from phonehome._core.consent import Decision, LiveConsent, Resolver, level
from phonehome._core.diagnostics import notice_seen, record_error, strict_schema, warn
from phonehome._core.instruments import NOOP_SPAN, Counter, Gauge, Histogram, Span
from phonehome._core.settings import PROMOTE_AFTER, Settings
from phonehome._host import forks, identity, notice, outcome
from phonehome._host.attributes import clean, command_attributes, text
from phonehome._host.handoff import Handoff
from phonehome._host.onimport import OnImport
from phonehome._host.recorder import (
    INFO,
    Instrument,
    Recorder,
    RecordingCounter,
    RecordingGauge,
    RecordingHistogram,
    RecordingSpan,
)
from phonehome._policy.enforce import Enforcer
from phonehome._policy.schema import Schema
from phonehome._spool.records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from typing import Any

    from phonehome._core.consentfiles import MachinePolicy
    from phonehome._core.destinations import Role
    from phonehome._host.handoff import Courier
    from phonehome._host.strict import Strict
    from phonehome._host.usage import Collector, Usage

MAX_BUFFERED = 2000
"""Records held in memory before they are written to the spool as one segment."""


def _strict(schema: Schema) -> Strict:
    """Strict schema mode, for tests: a CLI never imports ``phonehome._host.strict``."""
    from phonehome._host.strict import Strict

    return Strict(schema)


class Recording:
    """One block's recording, from ``instrument()`` to the end of the block."""

    def __init__(
        self,
        settings: Settings,
        consent: LiveConsent,
        handoff: Handoff,
        collected: notice.Collected | None = None,
    ) -> None:
        self.settings = settings
        self.consent = consent
        self.handoff = handoff
        schema = handoff.enforcer.schema
        self._declared_params = {c: schema.collectable(c, ()) for c in schema.commands}
        self._strict = _strict(schema) if strict_schema() else None
        """In tests: an undeclared attribute raises where the code records it."""
        self.recorder = Recorder(
            self._write,
            MAX_BUFFERED,
            exception_messages=handoff.enforcer.schema.exception_messages,
        )
        self.usage: Usage | None = None
        """Collectors and the heartbeat, once there are any (most CLI runs have none)."""
        self.collected = collected
        """The values the notices named (``None`` when no notice applies: debug mode, a
        schema check, nowhere to send)."""
        if settings.heartbeat is not None:
            self._usage()
        self._system: Any = settings.system_metrics
        """``True`` until the first service tick starts the instrumentation; then it."""
        self._service: Any = None
        self._closed = False
        self._forked = False
        """This is the child of a fork (``forks``): its end only spools and hands over."""
        self._lock = _thread.allocate_lock()
        """Becoming a service and ending, one at a time (any thread may record)."""
        self._promote_at = float("inf")
        if handoff.mode == "service":
            self.promote()
        elif settings.mode == "auto" and handoff.mode in ("cli", "ci"):
            self._promote_at = time.monotonic() + PROMOTE_AFTER
            self.recorder.due = (self._promote_at, self.promote)
        forks.track(self)
        self._bridge: Any = None
        if settings.capture_logging:
            if "logging" in sys.modules:
                self.hook_logging()
            else:  # a CLI that never logs never loads logging: bridge it once it does
                self._bridge = OnImport("logging", self.hook_logging)
                sys.meta_path.insert(0, self._bridge)

    @property
    def describe(self) -> tuple[str, ...]:
        """The destinations, one line each, credentials masked."""
        return self.handoff.describe

    @property
    def mode(self) -> str:
        return self.handoff.mode

    # -- recording -------------------------------------------------------------------------
    def command(
        self, name: str, params: Mapping[str, Any] | None, collect: Collection[str]
    ) -> Span:
        try:
            if monotonic() > self._promote_at:
                self.promote()
            if type(name) is not str:
                name = text(name)
            declared = self._declared_params.get(name, ())
            attributes = command_attributes(name, params, collect, declared)
            if collect and params and self.collected is not None:
                named = self.collected.named  # checked inline: this runs for every command
                for key in collect:
                    if key not in named and key in params:
                        self._collecting(self.collected, collect, params)
                        break
            if self._strict is not None:
                from phonehome._host.strict import CheckedSpan

                return CheckedSpan(self._strict, self.recorder, name, attributes, True)
            return RecordingSpan(self.recorder, name, attributes, True)
        except Exception as error:
            record_error("command", error)
            return NOOP_SPAN

    def _collecting(
        self, collected: notice.Collected, collect: Collection[str], params: Mapping[str, Any]
    ) -> None:
        """A command collects values: one no notice named shows the notice again first, and
        this run holds what it records until the next (``notice``)."""
        try:
            new = collected.new(collect, params)
            if not new or not collected.announce(new, self.settings.product):
                return
        except Exception as error:  # not shown: the values may not go either
            record_error("notice", error)
        self.handoff.hold_for_notice()

    def span(self, name: str, attributes: Mapping[str, Any] | None) -> Span:
        try:
            name, values = text(name), clean(attributes)
            if self._strict is not None:
                self._strict.check(values, f"span {name!r}")
                from phonehome._host.strict import CheckedSpan

                return CheckedSpan(self._strict, self.recorder, name, values, False)
            return RecordingSpan(self.recorder, name, values, False)
        except Exception as error:
            record_error("span", error)
            return NOOP_SPAN

    def event(self, name: str, attributes: Mapping[str, Any] | None) -> None:
        name = text(name)
        if self._strict is not None:
            self._strict.check(clean(attributes), f"event {name!r}", name)
        self.recorder.event(name, attributes)

    def instrument(self, kind: str, name: str, unit: str, description: str) -> Instrument:
        # the name as given: the sender scrubs it before making it a valid instrument name
        name, unit, description = text(name), text(unit), text(description)
        if self._strict is not None:
            from phonehome._host.strict import CheckedInstrument

            return CheckedInstrument(self._strict, self.recorder, kind, name, unit, description)
        return Instrument(self.recorder, kind, name, unit, description)

    def counter(self, name: str, unit: str, description: str) -> Counter:
        return RecordingCounter(self.instrument("counter", name, unit, description))

    def histogram(self, name: str, unit: str, description: str) -> Histogram:
        return RecordingHistogram(self.instrument("histogram", name, unit, description))

    def gauge(self, name: str, unit: str, description: str) -> Gauge:
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

    def exited(self, exc: BaseException, code: int) -> None:
        """The program handled ``exc`` and exits with ``code``: ``Recorder.exited``."""
        self.recorder.exited(exc, code)

    def register(self, name: str, function: Collector, every: float) -> None:
        self._usage().register(name, function, every)

    def _usage(self) -> Usage:
        if self.usage is None:
            from phonehome._host.usage import Usage

            settings = self.settings
            state_dir = None if settings.ephemeral else self.handoff.state_dir
            self.usage = Usage(state_dir, settings.heartbeat)
        return self.usage

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
        """Become a service: tick and deliver from a background thread from now on.

        A block that runs longer than ``PROMOTE_AFTER`` does so at its next record (or
        command), so that a kill (``SIGTERM``, ``SIGHUP``) loses at most the records of
        the last ``service_interval`` from then on (docs/delivery.md).
        """
        self._promote_at = float("inf")
        self.recorder.due = None
        handoff = self.handoff
        with self._lock:
            if self._service is not None or self._closed or not handoff.has_destinations:
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
        if self.usage is None:
            return
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
    def close(self, detached: bool = False) -> None:
        """The block ended: due usage, spool what is held and hand it over (``detached``: to
        a detached sender, whatever the mode)."""
        if self._forked:
            self.end_child()
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
        forks.forget(self)
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
            self.handoff.finish(detached=detached)
        except Exception as error:
            record_error("shutdown", error)

    # -- across a fork (``forks``) ---------------------------------------------------------
    def forked(self) -> None:
        """In the child of a fork: record on its own, from an empty buffer."""
        self._forked = True
        self._lock = _thread.allocate_lock()
        self.recorder.forked()
        self.handoff.forked()
        if self._service is not None:  # its thread is the parent's: become one again
            self._service = None
            self._promote_at = 0.0
            self.recorder.due = (0.0, self.promote)

    def end_child(self) -> None:
        """The child of a fork exits normally: spool what it recorded and hand it over."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            service = self._service
        forks.forget(self)
        try:
            if service is not None:
                service.stop(0)
            self.recorder.drain()
            self.handoff.finish(child=True)
        except Exception as error:
            record_error("fork exit", error)

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


# -- starting ---------------------------------------------------------------------------------
def start(
    settings: Settings, resolver: Resolver, decision: Decision, courier: Courier
) -> Recording | Decision:
    """The recording of a block with consent on, or the decision that turns it off after
    all (an unusable schema)."""
    try:
        schema = load_schema(settings.schema)
    except (OSError, ValueError) as error:
        warn(f"instrument(schema=...): {error}; telemetry is off")
        return Decision(False, "invalid", f"bad schema: {error}")
    for problem in settings.problems:
        warn(problem)
    state_dir = _usable(resolver.state_path)  # before the id, the notice, the spool
    destinations = _destinations(settings, resolver.policy)
    session = identity.session_id()
    enforcer = Enforcer(  # never strict: in tests the recording raises at the call instead
        schema,
        _salt(settings, state_dir),
        level=level(os.environ, settings.prefix),
        report_fields=bool(settings.schema_check),
    )
    hold = False
    collected: notice.Collected | None = None
    if not settings.schema_check and not settings.debug and destinations:

        def text(values: list[str]) -> str:
            summary = schema.summary(values)
            return notice.text(settings.product, settings.prefix, summary, settings.notice_url)

        seen = notice.read(state_dir)
        named = notice.collected(seen)
        nologo = settings.nologo or notice_seen()  # notice_seen: under phonehome_env
        hold = notice.check(state_dir, nologo, schema.fingerprint(), text(named), session, seen)
        collected = notice.Collected(
            state_dir, session, {*schema.value_names(), *named}, nologo, text
        )
    handoff = Handoff(
        settings=settings,
        state_dir=state_dir,
        destinations=destinations,
        resource=_resource(settings, state_dir, session),
        user_resource=identity.user_resource(os.environ),
        enforcer=enforcer,
        courier=courier,
        hold=hold,
    )
    recording = Recording(settings, LiveConsent(resolver, decision), handoff, collected)
    if not settings.ephemeral and handoff.has_destinations:
        event = identity.lifecycle(state_dir, settings.product, settings.version)
        if event is not None:
            recording.event(*event)
    return recording


def _destinations(
    settings: Settings, policy: MachinePolicy | None
) -> list[tuple[Role, destinations_.Destination]]:
    """Where this run's data goes: the vendor's (unless the user or the machine policy
    turned it off), the user's own, and the organisation's endpoint the policy names."""
    found = destinations_.resolve(settings.vendor, settings.user)
    if settings.vendor_optout or (policy is not None and policy.vendor_off):
        found = [(role, d) for role, d in found if role != "vendor"]
    if policy is not None and policy.endpoint:  # checked when the policy was read
        found.append(("organisation", destinations_.otlp(policy.endpoint, allow_insecure=True)))
    return found


def _usable(state_dir: str) -> str:
    """The state directory, or the private fallback when it cannot be written; then an
    install whose directory became read-only keeps its id, salt and seen notice, read from
    where they were."""
    usable = statefiles.usable(state_dir)
    if usable != state_dir:
        for name in (identity.INSTALL_ID_FILE, identity.SALT_FILE, notice.NOTICE_FILE):
            try:
                kept = os.path.join(usable, name)
                if not os.path.exists(kept) and (
                    found := statefiles.read_text(os.path.join(state_dir, name))
                ):
                    statefiles.write_text(kept, found)
            except OSError:
                continue
    return usable


def _resource(settings: Settings, state_dir: str, session: str) -> dict[str, str]:
    """The run's resource: who and where, anonymously (the vendor's whole resource)."""
    who = settings.detected
    if settings.ephemeral:  # CI, an agent, or `phonehome schema check`: no id is kept
        install = identity.install_id(state_dir, who or "check", settings.automation)
    else:
        install = identity.install_id(state_dir)
    attributes = identity.resource(settings.product, settings.version, install, session)
    if who is not None and settings.automation == "tag":
        attributes["phonehome.automation"] = who
    return attributes


def _salt(settings: Settings, state_dir: str) -> Callable[[], bytes]:
    """The salt of hashed fields, read on first use; in an ephemeral environment nothing is
    kept, so hashes do not join across runs."""
    if settings.ephemeral:
        ephemeral = os.urandom(16)
        return lambda: ephemeral
    return lambda: identity.salt(state_dir)


def load_schema(value: object) -> Schema:
    if value is None:
        return Schema()
    if isinstance(value, Schema):
        return value
    if isinstance(value, str | os.PathLike):
        return Schema.from_file(value)
    from phonehome._core.errors import SchemaError  # loaded only to raise it

    raise SchemaError(f"expected a Schema or the path of a TOML file, got {type(value).__name__}")
