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

from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
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


_SEVERITIES = (
    (logging.CRITICAL, SeverityNumber.FATAL),
    (logging.ERROR, SeverityNumber.ERROR),
    (logging.WARNING, SeverityNumber.WARN),
    (logging.INFO, SeverityNumber.INFO),
    (0, SeverityNumber.DEBUG),
)


class _LogBridge(logging.Handler):
    """The host's ``logging`` records as OTel log records, correlated with the current span.

    Records of the exporters themselves are skipped (no feedback loop). The source file's
    path is not sent: it names the user's directories.
    """

    def __init__(self, provider: LoggerProvider, level: int) -> None:
        super().__init__(level)
        self._logger = provider.get_logger("phonehome.logging")

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_OWN_LOGGERS):
            return
        try:
            severity = next(s for level, s in _SEVERITIES if record.levelno >= level)
            exception = record.exc_info[1] if record.exc_info else None
            self._logger.emit(
                timestamp=int(record.created * 1e9),
                severity_number=severity,
                severity_text=record.levelname,
                body=record.getMessage(),
                attributes={
                    "logger.name": record.name,
                    "code.function.name": record.funcName or "",
                    "code.line.number": record.lineno,
                },
                exception=exception,
            )
        except Exception as error:
            errors[f"logging bridge: {type(error).__name__}"] += 1


@dataclass
class Pipeline:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    fanouts: tuple[FanOutSpanExporter, FanOutLogExporter, FanOutMetricExporter]
    destinations: tuple[str, ...]
    handler: logging.Handler | None = None
    command_meters: tuple[Any, Any] | None = None
    _saved_loggers: list[tuple[logging.Logger, bool, logging.Handler]] = field(default_factory=list)

    def capture_logging(self, level: int = logging.WARNING) -> None:
        """Send the host's ``logging`` records at ``level`` and above as OTel log records."""
        handler = _LogBridge(self.logger_provider, level)
        logging.getLogger().addHandler(handler)
        self.handler = handler

    def flush(self, timeout: float) -> bool:
        """Export everything buffered, waiting at most ``timeout`` seconds in total."""
        deadline = time.monotonic() + timeout

        def remaining_ms() -> int:
            return max(0, int((deadline - time.monotonic()) * 1000))

        done = [
            self.tracer_provider.force_flush(remaining_ms()),
            self.logger_provider.force_flush(remaining_ms()),
            self.meter_provider.force_flush(remaining_ms()),
        ]
        done += [fanout.force_flush(remaining_ms()) for fanout in self.fanouts]
        return all(done)

    def shutdown(self, timeout: float) -> None:
        """Flush within ``timeout`` seconds, then stop without waiting any longer."""
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler = None
        drained = self.flush(timeout)
        for fanout in self.fanouts:
            fanout._timeout = 0.0  # already drained as far as the deadline allowed
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown(timeout_millis=1)
        if drained:  # otherwise abandoned exports may still log; keep them off the terminal
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
