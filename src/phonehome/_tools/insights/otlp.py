"""OTLP requests (protobuf, as Rotel forwards them) decoded into the exporter's table rows.

Each row is a tuple in its table's column order (``layout``); times are integers of
nanoseconds since the epoch. Attribute values become strings as the ClickHouse exporter
writes them: strings as they are, booleans ``true``/``false``, numbers in decimal, arrays and
maps as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

Row = tuple[Any, ...]
Rows = dict[str, list[Row]]

_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
_STATUS = ("Unset", "Ok", "Error")


def _value(value: Any) -> Any:
    """An ``AnyValue`` as a plain Python value."""
    which = value.WhichOneof("value")
    if which is None:
        return ""
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, which)


def _text(value: Any) -> str:
    plain = _value(value)
    if isinstance(plain, str):
        return plain
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, int | float):
        return repr(plain)
    return json.dumps(plain, separators=(",", ":"), sort_keys=True)


def attributes(pairs: Iterable[Any]) -> dict[str, str]:
    return {kv.key: _text(kv.value) for kv in pairs}


def _scope(scope: Any) -> tuple[str, str, dict[str, str]]:
    return scope.name, scope.version, attributes(scope.attributes)


def traces(body: bytes) -> Rows:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = ExportTraceServiceRequest.FromString(body)
    rows: list[Row] = []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        service = resource.get("service.name", "")
        for scope_spans in resource_spans.scope_spans:
            scope_name, scope_version, _ = _scope(scope_spans.scope)
            for span in scope_spans.spans:
                rows.append(
                    (
                        span.start_time_unix_nano,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                        span.trace_state,
                        span.name,
                        _KINDS[span.kind] if span.kind < len(_KINDS) else "Unspecified",
                        service,
                        resource,
                        scope_name,
                        scope_version,
                        attributes(span.attributes),
                        max(0, span.end_time_unix_nano - span.start_time_unix_nano),
                        _STATUS[span.status.code] if span.status.code < 3 else "Unset",
                        span.status.message,
                        [e.time_unix_nano for e in span.events],
                        [e.name for e in span.events],
                        [attributes(e.attributes) for e in span.events],
                        [link.trace_id.hex() for link in span.links],
                        [link.span_id.hex() for link in span.links],
                        [link.trace_state for link in span.links],
                        [attributes(link.attributes) for link in span.links],
                    )
                )
    return {"otel_traces": rows}


def logs(body: bytes) -> Rows:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest.FromString(body)
    rows: list[Row] = []
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        service = resource.get("service.name", "")
        for scope_logs in resource_logs.scope_logs:
            scope_name, scope_version, scope_attributes = _scope(scope_logs.scope)
            for record in scope_logs.log_records:
                values = attributes(record.attributes)
                event = getattr(record, "event_name", "")
                if event:
                    values.setdefault("event.name", event)
                rows.append(
                    (
                        record.time_unix_nano or record.observed_time_unix_nano,
                        record.trace_id.hex(),
                        record.span_id.hex(),
                        record.flags & 0xFF,
                        record.severity_text,
                        record.severity_number,
                        service,
                        _text(record.body),
                        resource_logs.schema_url,
                        resource,
                        scope_logs.schema_url,
                        scope_name,
                        scope_version,
                        scope_attributes,
                        values,
                    )
                )
    return {"otel_logs": rows}


def metrics(body: bytes) -> Rows:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    request = ExportMetricsServiceRequest.FromString(body)
    found: Rows = {"otel_metrics_sum": [], "otel_metrics_gauge": [], "otel_metrics_histogram": []}
    for resource_metrics in request.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            head = (
                resource,
                resource_metrics.schema_url,
                *_scope(scope_metrics.scope),
                scope_metrics.scope.dropped_attributes_count,
                scope_metrics.schema_url,
                resource.get("service.name", ""),
            )
            for metric in scope_metrics.metrics:
                _metric(metric, head, found)
    return found


def _exemplars(point: Any) -> tuple[list[Any], ...]:
    exemplars = point.exemplars
    return (
        [attributes(e.filtered_attributes) for e in exemplars],
        [e.time_unix_nano for e in exemplars],
        [
            e.as_double if e.WhichOneof("value") == "as_double" else float(e.as_int)
            for e in exemplars
        ],
        [e.span_id.hex() for e in exemplars],
        [e.trace_id.hex() for e in exemplars],
    )


def _number(point: Any) -> float:
    return float(point.as_double if point.WhichOneof("value") == "as_double" else point.as_int)


def _metric(metric: Any, head: tuple[Any, ...], found: Rows) -> None:
    which = metric.WhichOneof("data")
    described = (*head, metric.name, metric.description, metric.unit)
    if which in ("sum", "gauge"):
        data = getattr(metric, which)
        for point in data.data_points:
            row = (
                *described,
                attributes(point.attributes),
                point.start_time_unix_nano,
                point.time_unix_nano,
                _number(point),
                point.flags,
                *_exemplars(point),
            )
            if which == "sum":
                found["otel_metrics_sum"].append(
                    (*row, data.aggregation_temporality, data.is_monotonic)
                )
            else:
                found["otel_metrics_gauge"].append(row)
    elif which == "histogram":
        for point in metric.histogram.data_points:
            found["otel_metrics_histogram"].append(
                (
                    *described,
                    attributes(point.attributes),
                    point.start_time_unix_nano,
                    point.time_unix_nano,
                    point.count,
                    point.sum,
                    list(point.bucket_counts),
                    list(point.explicit_bounds),
                    *_exemplars(point),
                    point.flags,
                    point.min,
                    point.max,
                    metric.histogram.aggregation_temporality,
                )
            )


DECODERS = {"traces": traces, "logs": logs, "metrics": metrics}
"""The decoder for each OTLP/HTTP path's last part (``/v1/traces``)."""
