"""The consent gates as ordinary SDK components, in a plain OpenTelemetry set-up."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from phonehome import ConsentLogProcessor, ConsentMetricExporter, ConsentSampler


class Switch:
    def __init__(self) -> None:
        self.on = True

    def __call__(self) -> bool:
        return self.on


def test_the_sampler_drops_spans_from_the_moment_consent_is_revoked() -> None:
    consent, exporter = Switch(), InMemorySpanExporter()
    provider = TracerProvider(sampler=ConsentSampler(consent))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    tracer.start_span("before").end()
    consent.on = False
    tracer.start_span("while-off").end()
    consent.on = True
    tracer.start_span("after").end()
    assert [s.name for s in exporter.get_finished_spans()] == ["before", "after"]


def test_the_sampler_follows_its_delegate_while_consent_is_on() -> None:
    sampler = ConsentSampler(Switch(), ALWAYS_OFF)
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("x").end()
    assert exporter.get_finished_spans() == ()
    assert sampler.get_description() == "ConsentSampler{AlwaysOffSampler}"


def test_the_sampler_reads_otel_traces_sampler_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    assert ConsentSampler(Switch()).get_description() == "ConsentSampler{TraceIdRatioBased{0.25}}"


def test_the_log_processor_drops_records_while_consent_is_off() -> None:
    consent, exporter = Switch(), InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(
        ConsentLogProcessor(consent, SimpleLogRecordProcessor(exporter))
    )
    logger = provider.get_logger("t")
    logger.emit(body="kept")
    consent.on = False
    logger.emit(body="dropped")
    assert [r.log_record.body for r in exporter.get_finished_logs()] == ["kept"]


class Recording(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        pass


def test_the_metric_exporter_drops_exports_while_consent_is_off() -> None:
    consent, inner = Switch(), Recording()
    reader = PeriodicExportingMetricReader(
        ConsentMetricExporter(consent, inner), export_interval_millis=3_600_000
    )
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("t").create_counter("c")
    counter.add(1)
    consent.on = False
    provider.force_flush()
    assert inner.exported == []
    consent.on = True
    counter.add(1)
    provider.force_flush()
    assert len(inner.exported) == 1
    provider.shutdown()
