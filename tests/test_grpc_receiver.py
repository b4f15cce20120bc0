"""phonehome.testing.OTLPGrpcReceiver: the real OTel gRPC exporters deliver to it."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import grpc
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from phonehome.testing import OTLPGrpcReceiver

RESOURCE = Resource.create({"service.name": "grpc-test"})


def finished_span(name: str) -> Sequence[ReadableSpan]:
    """One finished SDK span, to hand to an exporter directly and see its result."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span(name, attributes={"n": 1}).end()
    provider.shutdown()
    return memory.get_finished_spans()


def test_the_otel_grpc_exporters_deliver_spans_logs_and_metrics() -> None:
    with OTLPGrpcReceiver() as receiver:
        span_exporter = OTLPSpanExporter(endpoint=receiver.url, insecure=True, timeout=5)
        tracer_provider = TracerProvider(resource=RESOURCE)
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        with tracer_provider.get_tracer("t").start_as_current_span("work", attributes={"n": 3}):
            pass
        tracer_provider.shutdown()

        logger_provider = LoggerProvider(resource=RESOURCE)
        log_exporter = OTLPLogExporter(endpoint=receiver.url, insecure=True, timeout=5)
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
        logger_provider.get_logger("t").emit(
            body="hello", attributes={"k": "v"}, event_name="greeted", severity_text="INFO"
        )
        logger_provider.shutdown()

        metric_exporter = OTLPMetricExporter(endpoint=receiver.url, insecure=True, timeout=5)
        reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=math.inf)
        meter_provider = MeterProvider(
            resource=RESOURCE, metric_readers=[reader], shutdown_on_exit=False
        )
        meter_provider.get_meter("t").create_counter("files", unit="1").add(2, {"lang": "py"})
        meter_provider.force_flush()  # an infinite interval exports only when asked
        meter_provider.shutdown()

        (span,) = receiver.spans
        assert (span.name, span.attributes) == ("work", {"n": 3})
        assert span.resource["service.name"] == "grpc-test"
        (log,) = receiver.logs
        assert (log.body, log.attributes, log.event_name) == ("hello", {"k": "v"}, "greeted")
        assert [(p.attributes, p.value) for p in receiver.points("files")] == [({"lang": "py"}, 2)]
        methods = {method for method, _ in receiver.requests}
        assert methods == {
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
        assert all("user-agent" in metadata for _, metadata in receiver.requests)


def test_an_error_status_is_a_failed_export_and_records_no_data() -> None:
    spans = finished_span("refused")
    with OTLPGrpcReceiver() as receiver:
        receiver.status = grpc.StatusCode.UNAVAILABLE
        exporter = OTLPSpanExporter(endpoint=receiver.url, insecure=True, timeout=1)
        try:
            assert exporter.export(spans) is SpanExportResult.FAILURE
            assert receiver.requests and receiver.spans == []

            receiver.status = None
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
        assert [s.name for s in receiver.spans] == ["refused"]


def test_the_exporter_waits_the_advised_retry_delay_then_succeeds() -> None:
    spans = finished_span("retried")
    with OTLPGrpcReceiver() as receiver:
        receiver.status = grpc.StatusCode.RESOURCE_EXHAUSTED
        receiver.retry_delay = 0.2

        def clear_after_first_call() -> None:
            if receiver.wait_until(lambda: len(receiver.requests) >= 1):
                receiver.status = None

        clearer = threading.Thread(target=clear_after_first_call)
        clearer.start()
        exporter = OTLPSpanExporter(endpoint=receiver.url, insecure=True, timeout=5)
        try:
            result = exporter.export(spans)
        finally:
            exporter.shutdown()
            clearer.join()

        assert result is SpanExportResult.SUCCESS
        assert len(receiver.requests) == 2
        assert receiver.times[1] - receiver.times[0] >= 0.15
        assert [s.name for s in receiver.spans] == ["retried"]


def test_stopping_twice_is_harmless() -> None:
    receiver = OTLPGrpcReceiver()
    with receiver:
        assert receiver.url == f"http://127.0.0.1:{receiver.port}"
    receiver.stop()
