"""``phonehome.instrument()`` and the ``Telemetry`` handle it returns.

The composition root of the pipeline. It checks the arguments (``phonehome._core.settings``),
lets the consent resolver decide, and returns a no-op handle right there when the answer is
no: nothing below that line is read or imported. When it is yes, it reads the variables once
into the settings, starts the host side (``phonehome._host.start``) and hands it a courier to
the sender for in-process delivery (CI runs, services, ``flush()``) and for the debug display:
the host never imports the sender itself.

``Telemetry`` is the integrator's handle. With consent off it holds no recording and every
method is a no-op on shared objects (``phonehome._core.instruments``): no file, thread, socket
or OpenTelemetry import. With consent on it delegates to a ``Recording``
(``phonehome._host.recording``). ``enable``, ``disable`` and ``reset_id`` reach the host's
choice and identity when they are called.

This module is on the consent-off path of every CLI, so it does without ``from __future__
import annotations`` (importing ``__future__`` costs more than this module's code): names that
exist only for type checking are quoted.
"""

import os

from phonehome._core import settings as settings_
from phonehome._core.consent import Decision, Resolver
from phonehome._core.environment import prefix_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from types import TracebackType
    from typing import Any, Literal, NoReturn, Protocol, TypeVar

    from phonehome._core.consent import LiveConsent
    from phonehome._core.destinations import Destination
    from phonehome._core.instruments import Counter, Gauge, Histogram, Span
    from phonehome._policy.schema import Schema
    from phonehome._spool.manifest import Manifest
    from phonehome._spool.records import Record

    F = TypeVar("F", bound=Callable[[], Mapping[str, Any]])

    class Recording(Protocol):
        """What the handle needs of a block's recording (``phonehome._host.recording``,
        imported only when consent is on)."""

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
        def exited(self, exc: BaseException, code: int) -> None: ...
        def revoke(self, decision: Decision) -> None: ...
        def close(self, detached: bool = False) -> None: ...


_D = settings_


def instrument(
    product: str,
    *positional: "NoReturn",
    version: str = _D.DEFAULT_VERSION,
    vendor: "str | Destination | None" = None,
    consent: 'Literal["opt-in", "opt-out"]' = _D.DEFAULT_CONSENT,
    enabled: bool | None = None,
    user: "str | Destination | None" = None,
    state_dir: str | os.PathLike[str] | None = None,
    shutdown_timeout: float = _D.DEFAULT_SHUTDOWN_TIMEOUT,
    capture_logging: bool = True,
    mode: 'Literal["auto", "cli", "ci", "service"]' = _D.DEFAULT_MODE,
    ci_budget: float = _D.DEFAULT_CI_BUDGET,
    spool_max_bytes: int = _D.DEFAULT_SPOOL_MAX_BYTES,
    spool_max_age: float = _D.DEFAULT_SPOOL_MAX_AGE,
    sender_lifetime: float = _D.DEFAULT_SENDER_LIFETIME,
    schema: "Schema | str | os.PathLike[str] | None" = None,
    automation: 'Literal["tag", "collapse", "drop"]' = _D.DEFAULT_AUTOMATION,
    notice_url: str | None = None,
    heartbeat: str | float | None = None,
    system_metrics: bool = False,
    **unknown: "NoReturn",
) -> "Telemetry":
    """Start telemetry for ``product``; use the result as a context manager.

    Args:
        product: the product's name (``service.name``; also the variable prefix).
        version: the product's version (``service.version``).
        vendor: the vendor's destination: an OTLP endpoint URL, an Azure Monitor connection
            string, or a :class:`Destination`.
        consent: ``"opt-out"`` (on unless refused) or ``"opt-in"`` (off until enabled).
        enabled: the product's own configuration flag; ``False`` turns everything off.
        user: the product's configuration value for the user's own destination.
        state_dir: where stored consent and the install id live (default: the platform's
            user state directory, or ``<PREFIX>_TELEMETRY_DIR``).
        shutdown_timeout: seconds a service's end may spend delivering what is left.
        capture_logging: send the host's ``logging`` records at WARNING and above.
        mode: ``"auto"``, ``"cli"``, ``"ci"`` or ``"service"`` (see ``docs/delivery.md``).
        ci_budget: seconds a CI run may spend delivering synchronously at the end.
        spool_max_bytes: the spool's size cap; the oldest records go first.
        spool_max_age: seconds a record may wait in the spool before it is dropped.
        sender_lifetime: the detached sender's hard lifetime cap, in seconds.
        schema: what may be sent: a :class:`Schema`, or the path of a TOML file. Without
            one, commands send their parameters' names and the values in ``collect``, and
            nothing else that is not built in.
        automation: runs under CI or an AI coding agent are ``"tag"``-ged (default: each
            run its own id, nothing kept), ``"collapse"``-d (one id per provider) or
            ``"drop"``-ped (telemetry off).
        notice_url: where the first-run notice sends people to read more.
        heartbeat: send a ``heartbeat`` event at most once per this interval (``"24h"``).
        system_metrics: in ``service`` mode, also send process and host CPU, memory, disk
            and network metrics (its own consent category; ``phonehome[system]``).

    Every setting, its variable and its precedence: ``docs/configuration.md``. An argument
    it does not take (a typo) is refused as a bad value is, one line and telemetry off,
    never a ``TypeError`` in the host (type checkers still flag it: its type is ``Never``).
    """
    arguments = dict(locals())  # every argument by name: check() looks at them all
    if arguments.pop("positional") or arguments.pop("unknown"):
        _warn(f"{_unknown(positional, unknown)}; telemetry is off")
        return Telemetry(None, Decision(False, "invalid", "an argument instrument() does not take"))
    try:
        product = settings_.check(arguments)
    except ValueError as error:  # a SettingError: it names the argument and the fix
        _warn(f"{error}; telemetry is off")
        return Telemetry(None, Decision(False, "invalid", str(error)))
    prefix = prefix_for(product)
    where = _locate(product, settings_.chosen_state_dir(state_dir, prefix))
    resolver = Resolver(prefix, consent, enabled, where, automation)
    try:
        decision = resolver.resolve()
    except Exception as error:
        _record_error("consent", error)
        return Telemetry(resolver, Decision(False, "error", "consent could not be read"))
    if not decision.enabled:  # nothing more is read, imported or written
        _purge_held(resolver, forget=decision.source != "automation")
        return Telemetry(resolver, decision)
    try:
        settings = settings_.resolve(**arguments)  # the variables, read once consent is on
        from phonehome._host.recording import start

        started = start(settings, resolver, decision, _InProcess())
        if isinstance(started, Decision):  # off after all (an unusable schema)
            return Telemetry(resolver, started)
        return Telemetry(resolver, decision, started)
    except Exception as error:
        _record_error("start", error)
        return Telemetry(resolver, Decision(False, "error", "telemetry failed to start"))


class Telemetry:
    """Returned by :func:`phonehome.instrument`; a context manager that ends the telemetry.

    While telemetry is off every method is a cheap no-op, so calling code never branches.
    """

    __slots__ = ("_decision", "_ended", "_recorded", "_recording", "_resolver")

    def __init__(
        self,
        resolver: "Resolver | None",
        decision: Decision,
        recording: "Recording | None" = None,
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
                _record_error("disable", error)
        self._store(False)

    def reset_id(self) -> None:
        """Forget the install id (and the hashing salt): the next run is a new install."""
        if self._resolver is None:
            return
        try:
            from phonehome._host.identity import forget

            forget(self._resolver.state_path)
        except Exception as error:
            _record_error("reset_id", error)

    def _store(self, enabled: bool) -> None:
        if self._resolver is None:
            _warn("consent cannot be stored: instrument() was not given a valid product")
            return
        try:
            from phonehome._host.choice import store

            store(self._resolver, enabled)
        except OSError as error:
            _warn(
                f"cannot store the consent choice in {self._resolver.state_path} ({error.strerror})"
            )
        except Exception as error:
            _record_error("store consent", error)

    # -- recording -------------------------------------------------------------------------
    def command(
        self, name: str, params: "Mapping[str, Any] | None" = None, collect: "Collection[str]" = ()
    ) -> "Span":
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
            return _NOOP_SPAN or _noop_span()
        return recording.command(name, params, collect)

    def span(self, name: str, attributes: "Mapping[str, Any] | None" = None) -> "Span":
        """A nested span, for traces inside a command."""
        recording = self._recording
        if recording is None:
            return _NOOP_SPAN or _noop_span()
        return recording.span(name, attributes)

    def event(self, name: str, attributes: "Mapping[str, Any] | None" = None) -> None:
        """A business or lifecycle event: an OTel log record carrying ``event.name``."""
        recording = self._recording
        if recording is None:
            return
        try:
            recording.event(name, attributes)
        except Exception as error:
            _record_error("event", error)

    def counter(self, name: str, unit: str = "", description: str = "") -> "Counter":
        """A custom counter: ``.add(amount, attributes)``."""
        recording = self._recording
        if recording is not None:
            try:
                return recording.counter(name, unit, description)
            except Exception as error:
                _record_error("counter", error)
        from phonehome._core.instruments import NOOP_COUNTER

        return NOOP_COUNTER

    def histogram(self, name: str, unit: str = "", description: str = "") -> "Histogram":
        """A custom histogram: ``.record(value, attributes)``."""
        recording = self._recording
        if recording is not None:
            try:
                return recording.histogram(name, unit, description)
            except Exception as error:
                _record_error("histogram", error)
        from phonehome._core.instruments import NOOP_HISTOGRAM

        return NOOP_HISTOGRAM

    def gauge(self, name: str, unit: str = "", description: str = "") -> "Gauge":
        """A custom gauge: ``.set(value, attributes)``."""
        recording = self._recording
        if recording is not None:
            try:
                return recording.gauge(name, unit, description)
            except Exception as error:
                _record_error("gauge", error)
        from phonehome._core.instruments import NOOP_GAUGE

        return NOOP_GAUGE

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the current span, to pass to a downstream service."""
        recording = self._recording
        if recording is None:
            return None
        try:
            return recording.traceparent()
        except Exception as error:
            _record_error("traceparent", error)
            return None

    def collector(self, name: str, every: str | float = "24h") -> "Callable[[F], F]":
        """Register a usage collector: a function returning a snapshot (a mapping).

        It runs at most once per ``every`` per install (``"24h"``, ``"30m"``, seconds),
        across runs; its result is the event ``name``, checked against the schema. A
        collector that raises is reported (``phonehome.collector.failed``), never fatal.
        """

        def register(function: "F") -> "F":
            recording = self._recording
            if recording is not None:
                from phonehome._core.settings import interval

                try:
                    recording.register(str(name), function, interval(every))
                except ValueError as error:
                    _warn(f"collector {name!r}: every={every!r}: {error}; it is not run")
            return function

        return register

    # -- lifetime --------------------------------------------------------------------------
    def flush(self, timeout: float = 5.0) -> bool:
        """Deliver what is recorded so far, in this process, waiting at most ``timeout``.

        ``True`` when every destination took what it was given; ``False`` when one failed,
        waits or ran out of ``timeout`` (what it did not take stays spooled for a later run),
        when another sender is delivering, or when this run may send nothing (debug and
        schema-check modes)."""
        recording = self._recording
        if recording is None:
            return True
        try:
            return recording.flush(timeout)
        except Exception as error:
            _record_error("flush", error)
            return False

    def shutdown(self) -> None:
        """End the telemetry: spool what is held and hand it to a sender. Safe to call twice."""
        self._close(detached=False)

    def _close(self, detached: bool) -> None:
        if self._ended:
            return
        self._ended = True
        recording, self._recording = self._recording, None
        if recording is not None:
            try:
                recording.close(detached)
            except Exception as error:
                _record_error("shutdown", error)

    def __enter__(self) -> "Telemetry":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: "TracebackType | None",
    ) -> None:
        self._end(exc, detached=False)

    def _end(self, exc: BaseException | None, detached: bool, exited: "int | None" = None) -> None:
        """End as the block did: ``exc`` left it unhandled (a crash), or nothing did; or,
        with ``exited``, the program handled ``exc`` and exits with that code."""
        recording = self._recording
        if exc is not None and recording is not None:
            try:
                if exited is None:
                    recording.crash(exc)
                else:
                    recording.exited(exc, exited)
            except Exception as error:
                _record_error("crash", error)
        self._close(detached)


def hand_over(telemetry: "Telemetry", crashed: BaseException | None) -> None:
    """End ``telemetry`` as its block ending with ``crashed`` would (``None``: without a
    crash), handing what is spooled to a detached sender whatever the mode: for an
    integration ending a run while the interpreter reports a Ctrl-C, where delivering in
    this process would load code that costs the host its exit by the signal."""
    telemetry._end(crashed, detached=True)


def _unknown(positional: "tuple[object, ...]", named: "Mapping[str, object]") -> str:
    """What a call with arguments ``instrument`` does not take is told: the first one, and
    the argument it may have meant."""
    if positional:
        return "instrument(): the product's name is its only positional argument (then version=...)"
    import difflib

    code = instrument.__code__
    known = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    name = next(iter(named))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}=?)" if close else ""
    return f"instrument({name}=...): no such argument{hint}"


def instrument_with(product: str, kwargs: "Mapping[str, Any]") -> "Telemetry":
    """``instrument(product, **kwargs)`` for an integration, which is given the arguments
    long before it calls this, at the program's first command (an argument ``instrument``
    does not take is one line on stderr and telemetry off, there as here)."""
    return instrument(product, **kwargs)


class _InProcess:
    """The courier the host is given: the sender and the debug display, in this process."""

    def deliver(self, state_dir: str, budget: float) -> bool:
        from pathlib import Path

        from phonehome._sender.deliver import deliver

        report = deliver(Path(state_dir), budget)
        if report is None or report.failed or report.waiting:
            return False
        # the budget can end while a destination still retries: what it left is not taken
        return report.pending_segments <= report.unsupported

    def show(self, records: "list[Record]", header: "dict[str, Any]", manifest: "Manifest") -> None:
        from phonehome._tools.debug import show

        show(records, header, manifest)


_NOOP_SPAN: "Span | None" = None
"""The shared no-op span once a handle with consent off has returned it: an integration with
consent off asks for none, so its run does not load ``phonehome._core.instruments``."""


def _noop_span() -> "Span":
    global _NOOP_SPAN
    from phonehome._core.instruments import NOOP_SPAN

    _NOOP_SPAN = NOOP_SPAN
    return NOOP_SPAN


def _warn(message: str) -> None:
    from phonehome._core.diagnostics import warn  # loaded when there is something to say

    warn(message)


def _record_error(operation: str, error: BaseException) -> None:
    from phonehome._core.diagnostics import record_error  # loaded when something failed

    record_error(operation, error)


def _locate(product: str, override: str | None) -> "str | Callable[[], str]":
    """The state directory, or a callable that locates the platform's on first use."""
    if override is not None:
        return override
    located: list[str] = []

    def locate() -> str:
        if not located:
            located.append(settings_.platform_state_dir(product))
        return located[0]

    return locate


def _purge_held(resolver: Resolver, forget: bool) -> None:
    """Consent is off: data held from earlier runs must never be sent, and (``forget``: the
    user opted out, not an automation policy) the install id and salt are forgotten, so that
    the periods before and after cannot be joined. A few ``stat`` calls (and a directory
    listing if a spool exists) when there is nothing, so an opted-out run still writes
    nothing and imports nothing more."""
    try:
        state = resolver.state_path
        spool = os.path.join(state, "spool")
        if os.path.isdir(spool) and any(n.endswith(".seg") for n in os.listdir(spool)):
            from phonehome._spool.segments import Spool

            Spool(spool).purge()
        if forget and any(os.path.exists(os.path.join(state, n)) for n in _D.IDENTITY_FILES):
            from phonehome._host.identity import forget as forget_identity

            forget_identity(state)
    except Exception as error:
        _record_error("purge", error)
