"""From spooled records to OpenTelemetry spans, log records and metrics, through the SDK.

Each segment is replayed through a real ``TracerProvider`` (with ``ConsentSampler``), a real
``LoggerProvider`` (with ``ConsentLogProcessor``) and a real ``MeterProvider``, so sampling,
limits and processors apply exactly as in any SDK set-up; the ids and timestamps recorded in
the host are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from phonehome._core.diagnostics import errors
from phonehome._core.environment import instrument_name
from phonehome._policy.exemptions import Exemptions
from phonehome._policy.scrub import Scrubber
from phonehome._spool.records import (
    ExceptionInfo,
    LogRecord,
    MeasureRecord,
    SpanRecord,
)
from phonehome._spool.segments import Segment
from phonehome.otel import DELTA, Consent, ConsentLogProcessor, ConsentSampler

_SDK_ATTRIBUTES = {
    k: v for k, v in Resource.create({}).attributes.items() if k.startswith("telemetry.sdk.")
}


@dataclass(slots=True)
class Mapped:
    """One segment as OpenTelemetry data, ready for any exporter."""

    spans: list[ReadableSpan] = field(default_factory=list)
    logs: list[ReadableLogRecord] = field(default_factory=list)
    metrics: MetricsData | None = None

    @property
    def count(self) -> int:
        """Spans and log records (metrics are aggregated: they count as one)."""
        return len(self.spans) + len(self.logs) + (self.metrics is not None)


class _PresetIds(IdGenerator):
    """Hands the SDK the ids the host recorded."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id


class _Collect(SpanExporter, LogRecordExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.logs: list[ReadableLogRecord] = []

    def export(self, batch: Sequence[Any]) -> Any:
        if batch and isinstance(batch[0], ReadableSpan):
            self.spans.extend(batch)
            return SpanExportResult.SUCCESS
        self.logs.extend(batch)
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_LABELS = ("command.name", "command.result", "error.type")


class _NoScrub:
    def __call__(self, text: str) -> str:
        return text

    def value(self, value: Any) -> Any:
        return value

    def attributes(self, attributes: dict[str, Any], exempt: Any = ()) -> dict[str, Any]:
        return attributes


_identity_scrub: Any = _NoScrub()
_ROOT = otel_context.Context()


def _context(trace_id: int, span_id: int) -> otel_context.Context:
    if not trace_id or not span_id:
        return _ROOT
    parent = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())


def _exception_attributes(exception: ExceptionInfo | None, scrub: Scrubber) -> dict[str, str]:
    if not exception:
        return {}
    found = {
        "exception.type": scrub(exception.type),
        "exception.stacktrace": scrub(exception.stacktrace),
    }
    if exception.message:  # sent only when the schema opts in to messages
        found["exception.message"] = scrub(exception.message)
    return found


IDENTITY = frozenset(("device.id", "service.instance.id", "session.id"))
"""Resource attributes that identify the install and the run: the user's resource variables
never replace them."""


def resource_for(header: dict[str, Any], role: str) -> dict[str, Any]:
    """A segment's resource as ``role`` receives it: the vendor gets phonehome's fixed list
    only; the user's own destinations also get the user's resource variables
    (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), which never override identity."""
    fixed = header.get("resource", {})
    fixed = fixed if isinstance(fixed, dict) else {}
    extra = header.get("user_resource", {}) if role == "user" else {}
    extra = extra if isinstance(extra, dict) else {}
    return {**fixed, **{k: v for k, v in extra.items() if k not in IDENTITY}}


def map_segment(
    segment: Segment,
    consent: Consent,
    scrubber: Scrubber | None = None,
    exemptions: Exemptions | None = None,
    role: str = "vendor",
) -> Mapped:
    """Replay one segment's records through the SDK for a destination of ``role``, scrubbed
    (see ``phonehome._policy.scrub``) but for the schema's ``exemptions``. A record that
    cannot be replayed is dropped and counted, never sent half-scrubbed."""
    replay = _Replay(
        resource_for(segment.header, role),
        str(segment.header.get("metric_prefix", "phonehome")),
        consent,
        scrubber or _identity_scrub,
        exemptions or Exemptions(),
    )
    for record in segment.records:
        try:
            if type(record) is SpanRecord:
                replay.span(record)
            elif type(record) is LogRecord:
                replay.log(record)
            elif type(record) is MeasureRecord:
                replay.measure(record)
        except Exception as error:
            errors[f"replay: {type(error).__name__}"] += 1
    return replay.finish()


class _Replay:
    """One segment's providers (its resource is its run's) and what they collected."""

    def __init__(
        self,
        resource_attributes: dict[str, Any],
        product: str,
        consent: Consent,
        scrub: Scrubber,
        exemptions: Exemptions,
    ) -> None:
        self.scrub = scrub
        self.exemptions = exemptions
        resource = Resource({**_SDK_ATTRIBUTES, **resource_attributes})
        self.consent = consent
        self.ids = _PresetIds()
        self.collect = _Collect()
        self.tracer_provider = TracerProvider(
            resource=resource,
            sampler=ConsentSampler(consent),
            id_generator=self.ids,
            shutdown_on_exit=False,
        )
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.collect))
        self.logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self.logger_provider.add_log_record_processor(
            ConsentLogProcessor(consent, SimpleLogRecordProcessor(self.collect))
        )
        self.reader = InMemoryMetricReader(preferred_temporality=dict(DELTA))
        self.meter_provider = MeterProvider(
            resource=resource, metric_readers=[self.reader], shutdown_on_exit=False
        )
        self.tracer = self.tracer_provider.get_tracer("phonehome")
        self.logger = self.logger_provider.get_logger("phonehome")
        self.meter = self.meter_provider.get_meter("phonehome")
        self.instruments: dict[tuple[str, str], Any] = {}
        self.executions: dict[tuple[Any, Any, Any], int] = {}
        self.durations = self.instrument(
            "histogram",
            f"{product}.command.duration",
            "s",
            "Command duration, by command and result",
        )
        self.executions_name = f"{product}.command.executions"
        self.measured = False

    def instrument(self, kind: str, name: str, unit: str = "", description: str = "") -> Any:
        """The SDK instrument, created once; name, unit and description scrubbed (and kept
        valid for the SDK: a scrubbed name's markers become underscores)."""
        scrub = self.scrub
        name = instrument_name(scrub(name))
        unit = "".join(c if c.isascii() and c.isprintable() else "_" for c in scrub(unit))[:63]
        description = scrub(description)
        found = self.instruments.get((kind, name))
        if found is None:
            make: Any = {
                "counter": self.meter.create_counter,
                "histogram": self.meter.create_histogram,
                "gauge": self.meter.create_gauge,
            }[kind]
            found = self.instruments[(kind, name)] = make(name, unit=unit, description=description)
        return found

    def span(self, record: SpanRecord) -> None:
        start, end = record.start_ns, record.end_ns
        self.ids.trace_id, self.ids.span_id = record.trace_id, record.span_id
        scrub = self.scrub
        exempt = (
            self.exemptions.for_command(record.attributes.get("command.name"))
            if record.is_command
            else self.exemptions.attributes
        )
        attributes = scrub.attributes(record.attributes, exempt)
        span = self.tracer.start_span(
            scrub(record.name),
            context=_context(record.trace_id, record.parent_id),
            attributes=attributes,
            start_time=start,
        )
        for event in record.events or ():
            span.add_event(
                scrub(event.name),
                scrub.attributes(event.attributes, self.exemptions.attributes),
                timestamp=event.time_ns,
            )
        if record.exception:
            span.add_event(
                "exception", _exception_attributes(record.exception, scrub), timestamp=end
            )
        if record.error_type:
            span.set_status(Status(StatusCode.ERROR, scrub(record.error_type)))
        span.end(end_time=end)
        if record.is_command:
            key = (
                attributes.get("command.name"),
                attributes.get("command.result"),
                attributes.get("error.type"),
            )
            self.executions[key] = self.executions.get(key, 0) + 1
            self.durations.record((end - start) / 1e9, _labels(key))
            self.measured = True

    def log(self, record: LogRecord) -> None:
        scrub = self.scrub
        event = record.event_name
        attributes = scrub.attributes(record.attributes, self.exemptions.for_event(event))
        self.logger.emit(
            timestamp=record.time_ns,
            observed_timestamp=record.time_ns,
            context=_context(record.trace_id, record.span_id),
            severity_number=SeverityNumber(record.severity_number),
            severity_text=scrub(record.severity_text),
            body=scrub.value(record.body),
            attributes={**attributes, **_exception_attributes(record.exception, scrub)},
            event_name=scrub(event) if event else None,
        )

    def measure(self, record: MeasureRecord) -> None:
        attributes = self.scrub.attributes(record.attributes, self.exemptions.attributes)
        method = {"counter": "add", "histogram": "record", "gauge": "set"}[record.instrument]
        instrument = self.instrument(
            record.instrument, record.name, record.unit, record.description
        )
        getattr(instrument, method)(record.value, attributes)
        self.measured = True

    def finish(self) -> Mapped:
        # The counter is added once per label set: the same delta sum as one add per command.
        for key, count in self.executions.items():
            self.instrument(
                "counter",
                self.executions_name,
                "{execution}",
                "Commands run, by command and result",
            ).add(count, _labels(key))
        mapped = Mapped(self.collect.spans, self.collect.logs)
        if self.measured and self.consent():
            mapped.metrics = self.reader.get_metrics_data()
        for provider in (self.tracer_provider, self.logger_provider, self.meter_provider):
            provider.shutdown()
        return mapped


def _labels(key: tuple[Any, Any, Any]) -> dict[str, Any]:
    return {k: v for k, v in zip(_LABELS, key, strict=True) if v is not None}


def dropped_report(resource: dict[str, Any], dropped: dict[str, int]) -> Mapped:
    """The ``phonehome.spool.dropped`` counter: records dropped unsent, by ``reason``."""
    reader = InMemoryMetricReader(preferred_temporality=dict(DELTA))
    provider = MeterProvider(
        resource=Resource({**_SDK_ATTRIBUTES, **resource}),
        metric_readers=[reader],
        shutdown_on_exit=False,
    )
    counter = provider.get_meter("phonehome").create_counter(
        "phonehome.spool.dropped",
        unit="{record}",
        description="Records dropped unsent: by the spool's size or age cap, or refused",
    )
    for reason, count in sorted(dropped.items()):
        counter.add(count, {"reason": reason})
    mapped = Mapped(metrics=reader.get_metrics_data())
    provider.shutdown()
    return mapped
