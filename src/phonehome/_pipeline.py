"""The live OpenTelemetry pipeline: providers, consent gates, fan-out to the destinations.

Built only when consent is on; this is the one module (with ``_exporters``, ``_gates`` and
``_fanout``) that imports the OpenTelemetry SDK. Providers are private to phonehome: the
host's global OpenTelemetry providers are never replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from phonehome import _exporters
from phonehome._destinations import Destination, Role
from phonehome._diagnostics import errors, warn
from phonehome._fanout import FanOutLogExporter, FanOutMetricExporter, FanOutSpanExporter
from phonehome._gates import Consent, ConsentLogProcessor, ConsentMetricExporter, ConsentSampler

_QUIET_LOGGERS = ("opentelemetry", "azure.monitor.opentelemetry.exporter", "azure.core.pipeline")
"""Loggers of the exporters we run: their warnings and tracebacks must not reach the user's
terminal (a dead collector is not the user's problem). They are counted instead."""

_OWN_LOGGERS = (*_QUIET_LOGGERS, "phonehome", "urllib3", "requests", "grpc")


class _Counting(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            errors[f"{record.name}: {record.levelname.lower()}"] += 1


class _NotOurOwn(logging.Filter):
    """Keeps the exporters' own log records out of the telemetry (no feedback loop)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_OWN_LOGGERS)


@dataclass
class Pipeline:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    fanouts: tuple[FanOutSpanExporter, FanOutLogExporter, FanOutMetricExporter]
    destinations: tuple[str, ...]
    handler: LoggingHandler | None = None
    command_meters: tuple[Any, Any] | None = None
    _saved_loggers: list[tuple[logging.Logger, bool, logging.Handler]] = field(default_factory=list)

    def capture_logging(self, level: int = logging.WARNING) -> None:
        """Send the host's ``logging`` records at ``level`` and above as OTel log records."""
        handler = LoggingHandler(level=level, logger_provider=self.logger_provider)
        handler.addFilter(_NotOurOwn())
        logging.getLogger().addHandler(handler)
        self.handler = handler

    def shutdown(self, timeout: float) -> None:
        """Flush everything and stop, all within ``timeout`` seconds in total."""
        deadline = time.monotonic() + timeout
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler = None

        def remaining_ms() -> int:
            return max(0, int((deadline - time.monotonic()) * 1000))

        self.tracer_provider.force_flush(remaining_ms())
        self.logger_provider.force_flush(remaining_ms())
        self.meter_provider.force_flush(remaining_ms())
        for fanout in self.fanouts:
            fanout.force_flush(remaining_ms())
            fanout._timeout = 0.0  # already drained as far as the deadline allows
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown(timeout_millis=max(1, remaining_ms()))
        self.restore_loggers()

    def quiet_loggers(self) -> None:
        handler = _Counting()
        for name in _QUIET_LOGGERS:
            logger = logging.getLogger(name)
            self._saved_loggers.append((logger, logger.propagate, handler))
            logger.addHandler(handler)
            logger.propagate = False

    def restore_loggers(self) -> None:
        for logger, propagate, handler in self._saved_loggers:
            logger.removeHandler(handler)
            logger.propagate = propagate
        self._saved_loggers.clear()


def build(
    resource_attributes: dict[str, str],
    destinations: Sequence[tuple[Role, Destination]],
    consent: Consent,
    shutdown_timeout: float,
) -> Pipeline:
    """Providers wired through the consent gates to a fan-out over ``destinations``."""
    resource = (
        Resource.create({})
        .merge(Resource(resource_attributes))
        .merge(OTELResourceDetector().detect())
    )
    per_signal: dict[str, list[tuple[str, Any]]] = {"traces": [], "metrics": [], "logs": []}
    names: list[str] = []
    for role, destination in destinations:
        try:
            built = {s: _exporters.build(destination, s) for s in ("traces", "metrics", "logs")}
        except _exporters.MissingExtra as error:
            warn(f"{role} destination {destination.describe()}: {error}; it is skipped")
            continue
        except Exception as error:
            warn(
                f"{role} destination {destination.describe()} cannot be used ({error}); "
                "it is skipped"
            )
            continue
        name = f"{role}-{len(names) + 1}"
        names.append(f"{role}: {destination.describe()}")
        for signal, exporter in built.items():
            if exporter is not None:
                per_signal[signal].append((name, exporter))

    def fan_args(signal: str) -> dict[str, Any]:
        pairs = per_signal[signal]
        return {
            "exporters": [e for _, e in pairs],
            "names": [n for n, _ in pairs],
            "shutdown_timeout": shutdown_timeout,
        }

    spans = FanOutSpanExporter(**fan_args("traces"))
    logs = FanOutLogExporter(**fan_args("logs"))
    metrics = FanOutMetricExporter(**fan_args("metrics"))
    tracer_provider = TracerProvider(
        resource=resource, sampler=ConsentSampler(consent), shutdown_on_exit=False
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    logger_provider.add_log_record_processor(
        ConsentLogProcessor(consent, BatchLogRecordProcessor(logs))
    )
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(ConsentMetricExporter(consent, metrics))],
        shutdown_on_exit=False,
    )
    pipeline = Pipeline(
        tracer_provider, meter_provider, logger_provider, (spans, logs, metrics), tuple(names)
    )
    pipeline.quiet_loggers()
    return pipeline
