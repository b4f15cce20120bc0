"""A capture OTLP/gRPC receiver: the three OTLP export services on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

try:
    import grpc
except ImportError:
    raise ImportError(
        "OTLPGrpcReceiver needs grpcio, which is not installed: pip install 'phonehome[grpc]'"
    ) from None

from phonehome.testing._receiver import (
    LogRecord,
    Metric,
    Point,
    Span,
    decode_logs,
    decode_metrics,
    decode_spans,
    response,
    sift,
)
from phonehome.testing._server import Capture

_RETRY_INFO = "google.rpc.retryinfo-bin"
"""The trailing metadata key the OTel gRPC exporter reads its backoff from."""


class OTLPGrpcReceiver(Capture):
    """An OTLP/gRPC endpoint on 127.0.0.1 that keeps what it receives.

    ``url`` is the endpoint (give it to a gRPC exporter with ``insecure=True``); ``spans``,
    ``metrics`` and ``logs`` hold what arrived, ``requests`` each call's method and metadata,
    ``times`` its monotonic arrival time. Set ``status`` to answer every call with that
    ``grpc.StatusCode`` (with ``retry_delay``, also a ``google.rpc.RetryInfo``) and ``delay``
    to answer late, ``refuse`` (called with each decoded span, log record and metric) to
    refuse some of them in a partial success. A call answered with an error is recorded in
    ``requests`` only.
    ``tls=(private_key_pem, certificate_chain_pem)`` serves over TLS (``url`` is then https).
    """

    def __init__(self, port: int = 0, tls: tuple[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.status: grpc.StatusCode | None = None
        """The status code to answer every call with (for fault tests); ``None`` is OK."""
        self.retry_delay: float | None = None
        """Seconds to advise in a ``RetryInfo`` with an error status."""
        self.delay = 0.0
        """Seconds to wait before answering (a slow destination)."""
        self.refuse: Callable[[Any], bool] | None = None
        """Which items to refuse in a partial success (``None``: none)."""
        self.failing: set[str] | None = None
        """The signals (``traces``, ``logs``, ``metrics``) that ``status`` applies to
        (``None``: all of them)."""
        self.requests: list[tuple[str, dict[str, str | bytes]]] = []
        self.bodies: list[bytes] = []
        """Every request as it arrived (serialized protobuf): what went over the wire."""
        self.times: list[float] = []
        self.spans: list[Span] = []
        self.metrics: list[Metric] = []
        self.logs: list[LogRecord] = []
        self._stopped = False
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="otlp-grpc")
        self._server = grpc.server(self._executor)
        self._server.add_generic_rpc_handlers(self._handlers())
        address = f"127.0.0.1:{port}"
        self._scheme = "https" if tls else "http"
        if tls:
            credentials = grpc.ssl_server_credentials([tls])
            self._port = int(self._server.add_secure_port(address, credentials))
        else:
            self._port = int(self._server.add_insecure_port(address))

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def points(self, metric_name: str) -> list[Point]:
        """Every data point received for one metric."""
        return [p for m in self.metrics if m.name == metric_name for p in m.points]

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.stop(None).wait(5)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _handlers(self) -> tuple[Any, ...]:
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace

        services: list[tuple[str, Any, Any, str, Callable[[Any], list[Any]], list[Any]]] = [
            (
                "trace.v1.TraceService",
                trace.ExportTraceServiceRequest,
                trace.ExportTraceServiceResponse,
                "traces",
                decode_spans,
                self.spans,
            ),
            (
                "metrics.v1.MetricsService",
                metrics.ExportMetricsServiceRequest,
                metrics.ExportMetricsServiceResponse,
                "metrics",
                decode_metrics,
                self.metrics,
            ),
            (
                "logs.v1.LogsService",
                logs.ExportLogsServiceRequest,
                logs.ExportLogsServiceResponse,
                "logs",
                decode_logs,
                self.logs,
            ),
        ]
        handlers = []
        for service, request, reply, kind, parse, into in services:
            name = f"opentelemetry.proto.collector.{service}"
            export = grpc.unary_unary_rpc_method_handler(
                self._export(f"/{name}/Export", kind, parse, into),
                request_deserializer=request.FromString,
                response_serializer=reply.SerializeToString,
            )
            handlers.append(grpc.method_handlers_generic_handler(name, {"Export": export}))
        return tuple(handlers)

    def _export(
        self, method: str, kind: str, parse: Callable[[Any], list[Any]], into: list[Any]
    ) -> Callable[[Any, Any], Any]:
        def export(request: Any, context: Any) -> Any:
            with self._cond:
                # The fault knobs are read as the call arrives, so a test that changes them
                # once it sees the call changes only the calls after it.
                status, retry_delay, delay = self.status, self.retry_delay, self.delay
                refuse = self.refuse
                if self.failing is not None and kind not in self.failing:
                    status = None
                self.requests.append((method, dict(context.invocation_metadata())))
                self.bodies.append(request.SerializeToString())
                self.times.append(time.monotonic())
                self._cond.notify_all()
            if delay:
                time.sleep(delay)  # a slow destination, on purpose
            if status is not None and status != grpc.StatusCode.OK:
                if retry_delay is not None:
                    context.set_trailing_metadata(((_RETRY_INFO, _retry_info(retry_delay)),))
                context.abort(status, f"status {status.name} set by the test")
            kept, rejected = sift(parse(request), refuse)
            with self._cond:
                into.extend(kept)
                self._cond.notify_all()
            return response(kind, rejected)

        return export


def _retry_info(seconds: float) -> bytes:
    from datetime import timedelta

    from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]

    info = RetryInfo()
    info.retry_delay.FromTimedelta(timedelta(seconds=seconds))
    return bytes(info.SerializeToString())
