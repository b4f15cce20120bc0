"""A capture OTLP/HTTP receiver: protobuf and JSON, traces, metrics and logs."""

from __future__ import annotations

import json
import ssl
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phonehome.testing._server import LoopbackServer


@dataclass(frozen=True)
class Span:
    name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: str
    events: list[tuple[str, dict[str, Any]]]
    trace_id: str
    span_id: str
    parent_span_id: str
    duration: float
    """Seconds."""
    start: float
    """Seconds since the epoch."""


@dataclass(frozen=True)
class Point:
    attributes: dict[str, Any]
    value: float
    """The sum for counters, the recorded value for gauges, the sum for histograms."""
    count: int = 1
    """The number of measurements for histograms."""


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    resource: dict[str, Any]
    points: list[Point] = field(default_factory=list)


@dataclass(frozen=True)
class LogRecord:
    body: Any
    attributes: dict[str, Any]
    resource: dict[str, Any]
    event_name: str
    severity: str
    trace_id: str


class OTLPReceiver(LoopbackServer):
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps what it receives.

    ``url`` is the base endpoint (give it to an exporter as ``OTEL_EXPORTER_OTLP_ENDPOINT``);
    ``spans``, ``metrics`` and ``logs`` hold what arrived, ``requests`` each request's path and
    headers. Set ``status`` to answer with an error, and ``refuse`` to answer with a partial
    success: called with each span, log record and metric decoded, it says whether to refuse
    it; refused items are not kept, and the reply's ``partial_success`` counts them (a
    metric's data points, for metrics).
    """

    def __init__(self, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(port, ssl_context)
        self.spans: list[Span] = []
        self.metrics: list[Metric] = []
        self.logs: list[LogRecord] = []
        self.refuse: Callable[[Any], bool] | None = None
        self.failing: set[str] | None = None
        """The signals (``traces``, ``logs``, ``metrics``) that ``status`` applies to
        (``None``: all of them): one signal down while the others work."""

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        kind = path.rstrip("/").rsplit("/", 1)[-1]
        if self.status != 200 and (self.failing is None or kind in self.failing):
            return self.status, {}, b""
        if kind not in DECODERS:
            return 404, {}, b""
        request = _parse(kind, headers.get("content-type", ""), body)
        kept, rejected = sift(DECODERS[kind](request), self.refuse)
        with self._cond:
            getattr(self, SIGNAL_LISTS[kind]).extend(kept)
        reply = response(kind, rejected)
        if "json" in headers.get("content-type", ""):
            from google.protobuf import json_format

            return (
                200,
                {"Content-Type": "application/json"},
                json_format.MessageToJson(reply).encode(),
            )
        return 200, {"Content-Type": "application/x-protobuf"}, reply.SerializeToString()

    def points(self, metric_name: str) -> list[Point]:
        """Every data point received for one metric."""
        return [p for m in self.metrics if m.name == metric_name for p in m.points]


def _parse(kind: str, content_type: str, body: bytes) -> Any:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    classes: dict[str, Any] = {
        "traces": ExportTraceServiceRequest,
        "metrics": ExportMetricsServiceRequest,
        "logs": ExportLogsServiceRequest,
    }
    message = classes.get(kind, ExportTraceServiceRequest)()
    if "json" in content_type:
        from google.protobuf import json_format

        json_format.ParseDict(
            _hex_ids_to_base64(json.loads(body)), message, ignore_unknown_fields=True
        )
    else:
        message.ParseFromString(body)
    return message


def _hex_ids_to_base64(value: Any) -> Any:
    """OTLP/JSON writes ids as hex; protobuf's JSON parser expects base64."""
    if isinstance(value, dict):
        return {
            k: (
                b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else _hex_ids_to_base64(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids_to_base64(v) for v in value]
    return value


def any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    raw = getattr(value, kind)
    if kind == "array_value":
        return [any_value(v) for v in raw.values]
    if kind == "kvlist_value":
        return attributes(raw.values)
    return raw


def attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: any_value(pair.value) for pair in pairs}


def decode_spans(request: Any) -> list[Span]:
    found = []
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                found.append(
                    Span(
                        s.name,
                        attributes(s.attributes),
                        resource,
                        {0: "unset", 1: "ok", 2: "error"}.get(s.status.code, "unset"),
                        [(e.name, attributes(e.attributes)) for e in s.events],
                        s.trace_id.hex(),
                        s.span_id.hex(),
                        s.parent_span_id.hex(),
                        (s.end_time_unix_nano - s.start_time_unix_nano) / 1e9,
                        s.start_time_unix_nano / 1e9,
                    )
                )
    return found


def decode_metrics(request: Any) -> list[Metric]:
    found = []
    for rm in request.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                metric = Metric(m.name, m.unit, resource)
                kind = m.WhichOneof("data")
                data = getattr(m, kind) if kind else None
                for p in getattr(data, "data_points", ()):
                    if kind == "histogram":
                        metric.points.append(Point(attributes(p.attributes), p.sum, p.count))
                    else:
                        value = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                        metric.points.append(Point(attributes(p.attributes), value))
                found.append(metric)
    return found


def decode_logs(request: Any) -> list[LogRecord]:
    found = []
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                found.append(
                    LogRecord(
                        any_value(r.body),
                        attributes(r.attributes),
                        resource,
                        getattr(r, "event_name", ""),
                        r.severity_text,
                        r.trace_id.hex(),
                    )
                )
    return found


DECODERS: dict[str, Callable[[Any], list[Any]]] = {
    "traces": decode_spans,
    "metrics": decode_metrics,
    "logs": decode_logs,
}
SIGNAL_LISTS = {"traces": "spans", "metrics": "metrics", "logs": "logs"}


def sift(items: list[Any], refuse: Callable[[Any], bool] | None) -> tuple[list[Any], int]:
    """The items kept, and how many were refused (a metric counts its data points)."""
    if refuse is None:
        return items, 0
    kept, rejected = [], 0
    for item in items:
        if refuse(item):
            rejected += len(item.points) if isinstance(item, Metric) else 1
        else:
            kept.append(item)
    return kept, rejected


def response(kind: str, rejected: int) -> Any:
    """The export response for ``kind``, with a ``partial_success`` if items were refused."""
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace

    if kind == "traces":
        reply: Any = trace.ExportTraceServiceResponse()
        if rejected:
            reply.partial_success.rejected_spans = rejected
    elif kind == "logs":
        reply = logs.ExportLogsServiceResponse()
        if rejected:
            reply.partial_success.rejected_log_records = rejected
    else:
        reply = metrics.ExportMetricsServiceResponse()
        if rejected:
            reply.partial_success.rejected_data_points = rejected
    if rejected:
        reply.partial_success.error_message = f"{rejected} refused by the test"
    return reply
