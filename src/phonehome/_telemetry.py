"""The integrator's handle: ``instrument()`` and the ``Telemetry`` it returns.

With consent off, every method is a no-op on shared objects: no file, thread, socket or
OpenTelemetry import. With consent on, the live pipeline (``_pipeline``) is built and each
command becomes a span plus two metrics.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from phonehome import _environment as env
from phonehome import _state
from phonehome._consent import ConsentDefault, Decision, LiveConsent, Resolver
from phonehome._destinations import Destination
from phonehome._diagnostics import contained, record_error, warn

if TYPE_CHECKING:
    from phonehome._pipeline import Pipeline

AttributeValue = str | bool | int | float
_INSTRUMENT_NAME = re.compile(r"[^A-Za-z0-9_.\-/]")


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
    """What ``command()`` and ``span()`` yield while telemetry is off."""

    __slots__ = ()

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


class Telemetry:
    """Returned by :func:`instrument`; a context manager that ends the telemetry on exit.

    While telemetry is off every method is a cheap no-op, so calling code never branches.
    """

    __slots__ = ("_consent", "_decision", "_ended", "_pipeline", "_resolver", "_settings")

    def __init__(
        self,
        settings: _Settings,
        resolver: Resolver | None,
        decision: Decision,
        consent: LiveConsent | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        self._settings = settings
        self._resolver = resolver
        self._decision = decision
        self._consent = consent
        self._pipeline = pipeline
        self._ended = False

    # -- consent ---------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether data is being recorded right now."""
        if self._consent is not None:
            return self._consent()
        return False

    @property
    def decision(self) -> Decision:
        """The consent decision and the source that made it."""
        return self._consent.decision if self._consent is not None else self._decision

    @property
    def destinations(self) -> tuple[str, ...]:
        """The destinations data goes to, credentials masked."""
        return self._pipeline.destinations if self._pipeline is not None else ()

    def enable(self) -> None:
        """Store the user's "yes"; it takes effect from the next run."""
        self._store(True)

    def disable(self) -> None:
        """Store the user's "no" and stop recording at once."""
        self._store(False)
        if self._consent is not None:
            self._consent.revoke(Decision(False, "stored", "the user's stored choice"))

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
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        collect: Collection[str] = (),
    ) -> Any:
        """A context manager around one command of the program.

        Records a span named ``name`` (duration, status, ``error.type`` and an exception
        event when the body raises; the exception propagates unchanged) and the
        ``<product>.command.executions`` and ``<product>.command.duration`` metrics.
        Parameter names are always recorded; values only for names in ``collect``.
        """
        if self._pipeline is None:
            return _NOOP_SPAN
        return _Command(self, name, params, collect)

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
        """A nested span, for traces inside a command."""
        if self._pipeline is None:
            return _NOOP_SPAN
        return self._span(name, attributes)

    @contextmanager
    def _span(self, name: str, attributes: Mapping[str, Any] | None) -> Iterator[Any]:
        from opentelemetry import trace

        tracer = self._tracer()
        span = _start(tracer, str(name), attributes)
        with trace.use_span(
            span, end_on_exit=True, record_exception=True, set_status_on_exception=True
        ):
            yield span

    @contained(None)
    def event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """A business or lifecycle event: an OTel log record carrying ``event.name``."""
        if self._pipeline is None:
            return
        from opentelemetry._logs import SeverityNumber

        logger = self._pipeline.logger_provider.get_logger("phonehome")
        values = clean_attributes(attributes)
        values["event.name"] = str(name)
        logger.emit(
            event_name=str(name),
            body=str(name),
            attributes=values,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
        )

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
        if self._pipeline is None:
            return _NOOP_INSTRUMENT
        meter = self._pipeline.meter_provider.get_meter("phonehome")
        make: Any = {
            "counter": meter.create_counter,
            "histogram": meter.create_histogram,
            "gauge": meter.create_gauge,
        }[kind]
        return _Instrument(
            make(_INSTRUMENT_NAME.sub("_", str(name)), unit=unit, description=description)
        )

    @contained(None)
    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of the current span, to pass to a downstream service."""
        if self._pipeline is None:
            return None
        from opentelemetry.propagate import inject

        carrier: dict[str, str] = {}
        inject(carrier)
        return carrier.get("traceparent")

    # -- lifetime --------------------------------------------------------------------------
    @contained(False)
    def flush(self, timeout: float = 5.0) -> bool:
        """Export what is buffered now, waiting at most ``timeout`` seconds."""
        if self._pipeline is None:
            return True
        return self._pipeline.flush(timeout)

    def shutdown(self) -> None:
        """End the telemetry: flush within ``shutdown_timeout`` and stop. Safe to call twice."""
        if self._ended:
            return
        self._ended = True
        if self._pipeline is not None:
            try:
                self._pipeline.shutdown(self._settings.shutdown_timeout)
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
        self.shutdown()

    # -- internals -------------------------------------------------------------------------
    def _tracer(self) -> Any:
        assert self._pipeline is not None
        return self._pipeline.tracer_provider.get_tracer("phonehome")


class _Instrument:
    __slots__ = ("_instrument",)

    def __init__(self, instrument: Any) -> None:
        self._instrument = instrument

    @contained(None)
    def add(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._instrument.add(amount, clean_attributes(attributes))

    @contained(None)
    def record(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._instrument.record(amount, clean_attributes(attributes))

    @contained(None)
    def set(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        self._instrument.set(amount, clean_attributes(attributes))


class _Command:
    """One command: a span made current for the body, and the two command metrics."""

    __slots__ = ("_collect", "_name", "_params", "_span", "_start", "_telemetry", "_token")

    def __init__(
        self,
        telemetry: Telemetry,
        name: str,
        params: Mapping[str, Any] | None,
        collect: Collection[str],
    ) -> None:
        self._telemetry = telemetry
        self._name = name
        self._params = params
        self._collect = collect
        self._span: Any = None
        self._token: Any = None
        self._start = 0.0

    def __enter__(self) -> Any:
        try:
            return self._begin()
        except Exception as error:
            record_error("command enter", error)
            return _NOOP_SPAN

    def _begin(self) -> Any:
        from opentelemetry import context, trace

        name = str(self._name)
        attributes: dict[str, Any] = {"command.name": name}
        if self._params:
            attributes["command.params"] = sorted(str(k) for k in self._params)
            for key in self._collect:
                if key in self._params:
                    attributes[f"command.param.{key}"] = _attribute(self._params[key])
        self._span = _start(self._telemetry._tracer(), name, attributes)
        self._token = context.attach(trace.set_span_in_context(self._span))
        self._start = time.perf_counter()
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if self._span is None:
            return False
        span, self._span = self._span, None
        try:
            self._end(span, exc)
        except Exception as error:
            record_error("command exit", error)
        return False

    def _end(self, span: Any, exc: BaseException | None) -> None:
        from opentelemetry import context
        from opentelemetry.trace import Status, StatusCode

        duration = time.perf_counter() - self._start
        result, error_type = _outcome(exc)
        span.set_attribute("command.result", result)
        labels = {"command.name": str(self._name), "command.result": result}
        if error_type is not None:
            assert exc is not None
            span.set_attribute("error.type", error_type)
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, error_type))
            labels["error.type"] = error_type
        context.detach(self._token)
        span.end()
        meters = _command_meters(self._telemetry)
        meters[0].add(1, labels)
        meters[1].record(duration, labels)


def _command_meters(telemetry: Telemetry) -> tuple[Any, Any]:
    pipeline = telemetry._pipeline
    assert pipeline is not None
    cached = pipeline.command_meters
    if cached is None:
        meter = pipeline.meter_provider.get_meter("phonehome")
        product = _INSTRUMENT_NAME.sub("_", telemetry._settings.product)
        cached = (
            meter.create_counter(
                f"{product}.command.executions",
                unit="{execution}",
                description="Commands run, by command and result",
            ),
            meter.create_histogram(
                f"{product}.command.duration",
                unit="s",
                description="Command duration, by command and result",
            ),
        )
        pipeline.command_meters = cached
    return cached


def _outcome(exc: BaseException | None) -> tuple[str, str | None]:
    """The command's result and ``error.type``: a clean ``sys.exit(0)`` is a success."""
    if exc is None:
        return "success", None
    if isinstance(exc, SystemExit) and exc.code in (None, 0):
        return "success", None
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled", "KeyboardInterrupt"
    cls = type(exc)
    module = cls.__module__
    return "failure", cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _start(tracer: Any, name: str, attributes: Mapping[str, Any] | None) -> Any:
    return tracer.start_span(name, attributes=clean_attributes(attributes))


def _attribute(value: Any) -> AttributeValue | list[AttributeValue]:
    """An OpenTelemetry attribute value: primitives as they are, anything else as text."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | bool | int | float) for v in value
    ):
        return [v for v in value]
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def clean_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    return {str(k): _attribute(v) for k, v in attributes.items()}


@dataclass(frozen=True, slots=True)
class _Settings:
    """``instrument()``'s arguments, checked once."""

    product: str
    version: str
    prefix: str
    consent: ConsentDefault
    enabled: bool | None
    vendor: str | Destination | None
    user: str | Destination | None
    state_dir: Path
    shutdown_timeout: float
    capture_logging: bool


def instrument(
    product: str,
    *,
    version: str = "0.0.0",
    vendor: str | Destination | None = None,
    consent: ConsentDefault = "opt-out",
    enabled: bool | None = None,
    user: str | Destination | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    shutdown_timeout: float = 3.0,
    capture_logging: bool = True,
) -> Telemetry:
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
        shutdown_timeout: seconds the end of the ``with`` block may wait for delivery.
        capture_logging: send the host's ``logging`` records at WARNING and above.
    """
    try:
        settings = _settings(
            product,
            version,
            vendor,
            consent,
            enabled,
            user,
            state_dir,
            shutdown_timeout,
            capture_logging,
        )
    except _SettingError as error:
        warn(f"{error}; telemetry is off")
        return Telemetry(_OFF_SETTINGS, None, Decision(False, "invalid", str(error)))
    resolver = Resolver(settings.prefix, settings.consent, settings.enabled, settings.state_dir)
    try:
        decision = resolver.resolve()
    except Exception as error:
        record_error("consent", error)
        return Telemetry(settings, resolver, Decision(False, "error", "consent could not be read"))
    if not decision.enabled:
        return Telemetry(settings, resolver, decision)
    try:
        return _start_pipeline(settings, resolver, decision)
    except Exception as error:
        record_error("start", error)
        return Telemetry(settings, resolver, Decision(False, "error", "telemetry failed to start"))


def _start_pipeline(settings: _Settings, resolver: Resolver, decision: Decision) -> Telemetry:
    from phonehome import _destinations, _identity, _pipeline, _resource

    live = LiveConsent(resolver, decision)
    destinations = _destinations.resolve(settings.vendor, settings.user)
    attributes = _resource.attributes(
        settings.product,
        settings.version,
        _identity.install_id(settings.state_dir),
        _identity.session_id(),
    )
    pipeline = _pipeline.build(attributes, destinations, live, settings.shutdown_timeout)
    if settings.capture_logging:
        pipeline.capture_logging()
    return Telemetry(settings, resolver, decision, live, pipeline)


class _SettingError(ValueError):
    pass


def _settings(
    product: object,
    version: object,
    vendor: object,
    consent: object,
    enabled: object,
    user: object,
    state_dir: object,
    shutdown_timeout: object,
    capture_logging: object,
) -> _Settings:
    if not isinstance(product, str) or not product.strip():
        raise _SettingError(
            f"instrument(product={product!r}): the product name must be a non-empty string"
        )
    if consent not in ("opt-in", "opt-out"):
        raise _SettingError(f"instrument(consent={consent!r}): use 'opt-in' or 'opt-out'")
    if enabled is not None and not isinstance(enabled, bool):
        raise _SettingError(f"instrument(enabled={enabled!r}): use True, False or None")
    for name, value in (("vendor", vendor), ("user", user)):
        if value is not None and not isinstance(value, str | Destination):
            raise _SettingError(
                f"instrument({name}=...): expected a URL, a connection string "
                f"or a Destination, got {type(value).__name__}"
            )
    if not isinstance(shutdown_timeout, int | float) or not 0 <= shutdown_timeout < 3600:
        raise _SettingError(
            f"instrument(shutdown_timeout={shutdown_timeout!r}): "
            "use a number of seconds between 0 and 3600"
        )
    if state_dir is not None and not isinstance(state_dir, str | os.PathLike):
        raise _SettingError(f"instrument(state_dir={state_dir!r}): expected a path")
    return _Settings(
        product=product.strip(),
        version=str(version),
        prefix=env.prefix_for(product.strip()),
        consent=consent,
        enabled=enabled,
        vendor=vendor,  # type: ignore[arg-type]
        user=user,  # type: ignore[arg-type]
        state_dir=_state.state_dir(product.strip(), state_dir),
        shutdown_timeout=float(shutdown_timeout),
        capture_logging=bool(capture_logging),
    )


_OFF_SETTINGS = _Settings(
    "phonehome", "0", "PHONEHOME", "opt-in", False, None, None, Path(), 0.0, False
)
