"""Concrete OpenTelemetry exporters for a destination, one per signal.

A destination's credentials go to that destination only. The OTLP exporters merge the
``OTEL_EXPORTER_OTLP_*`` variables (headers, certificates, credential providers) into every
exporter they build, so exporters for any destination other than the user's environment one
are built with those variables hidden.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from phonehome._core import environment as env
from phonehome._core.destinations import Destination, signal_settings
from phonehome._core.diagnostics import errors
from phonehome._core.errors import MissingExtra

Signal = Literal["traces", "metrics", "logs"]

ENVIRON_LOCK = threading.Lock()


@contextmanager
def _user_settings(snapshot: tuple[tuple[str, str], ...] = ()) -> Iterator[None]:
    """While an exporter is built: the user's destination variables are exactly ``snapshot``.

    Empty for every destination other than the user's environment one, so that the
    OTLP exporters cannot merge the user's headers or certificates into it.
    """
    with ENVIRON_LOCK:
        saved = {k: v for k, v in os.environ.items() if k.startswith(env.USER_DESTINATION_PREFIXES)}
        for key in saved:
            del os.environ[key]
        os.environ.update(snapshot)
        try:
            yield
        finally:
            for key, _ in snapshot:
                os.environ.pop(key, None)
            os.environ.update(saved)


def build(destination: Destination, signal: Signal, role: str = "vendor") -> Any | None:
    """The exporter for one signal, or ``None`` when the destination does not take it.

    A vendor's exporter carries the vendor's own credential and nothing else: it is built
    with the user's destination variables hidden, with no Entra ID credential (an Azure
    exporter would otherwise fetch the user's token for ``APPLICATIONINSIGHTS_AUTHENTICATION
    _STRING``), and its HTTP session never reads ``~/.netrc``. The user's own destinations
    may use the user's ambient credentials.
    """
    vendor = role != "user"
    if destination.protocol == "grpc":
        _quiet_grpc()
    if destination.kind == "azure":
        os.environ.update(env.AZURE_QUIET)
        ambient = () if vendor else _present(env.AZURE_AUTHENTICATION)
        with _user_settings(ambient):
            return _azure(destination, signal, vendor)
    if destination.from_environment:
        snapshot = dict(destination.environment)
        configured, protocol = signal_settings(snapshot, signal)
        if not configured:
            return None
        with _user_settings(destination.environment):
            return _otlp(signal, protocol, {}, vendor=False)
    with _user_settings():
        kwargs: dict[str, Any] = {
            "endpoint": destination.signal_endpoint(signal),
            "headers": dict(destination.headers),
            "timeout": destination.timeout,
        }
        if destination.protocol == "grpc":
            kwargs["insecure"] = destination.endpoint.startswith("http://")
        if destination.compression is not None:
            kwargs["compression"] = _compression(destination.compression, destination.protocol)
        if destination.certificate_file is not None:
            if destination.protocol == "grpc":
                kwargs["credentials"] = _grpc_credentials(destination.certificate_file)
            else:
                kwargs["certificate_file"] = destination.certificate_file
        return _otlp(signal, destination.protocol, kwargs, vendor)


def _present(*names: str) -> tuple[tuple[str, str], ...]:
    """The variables among ``names`` that are set, with their values."""
    return tuple((name, os.environ[name]) for name in names if name in os.environ)


class Outcome:
    """What a destination said to an exporter's last request."""

    __slots__ = ("rejected", "retry_after", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        """The HTTP status of the last response; ``None`` if none came (or gRPC)."""
        self.retry_after: float | None = None
        """Seconds the destination asked us to wait (``Retry-After``)."""
        self.rejected = 0
        """Items the destination refused for good inside an accepted request: OTLP's
        ``partial_success`` (spans, log records, data points), Azure's 206."""

    def clear(self) -> None:
        self.status, self.retry_after, self.rejected = None, None, 0

    @property
    def refused(self) -> bool:
        """The destination refused the data itself: sending it again cannot succeed.

        Any 4xx but 401/403 (credentials a later version may fix), 408 and 429 (come back
        later). The OTLP specification also lists 500 as not retryable; a spool that already
        waits for the next run retries it like any server-side failure.
        """
        status = self.status
        return status is not None and 400 <= status < 500 and status not in (401, 403, 408, 429)


def outcome(exporter: Any) -> Outcome:
    """The outcome of the exporter's last export (an empty one for exporters we cannot see)."""
    found = getattr(exporter, "_phonehome_outcome", None)
    return found if isinstance(found, Outcome) else Outcome()


def _session(vendor: bool) -> Any:
    """A requests session for one destination.

    A destination's own CA file wins over ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE``, which
    requests otherwise lets replace the session's ``verify``. A vendor's session never takes
    credentials from ``~/.netrc`` (requests adds them to any request without its own
    ``Authorization``, also after a redirect); proxies from the environment still apply.
    """
    import requests

    class Session(requests.Session):
        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            if verify is None and self.verify is not True:
                verify = self.verify
            return super().merge_environment_settings(url, proxies, stream, verify, cert)

    class VendorSession(Session):
        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            # requests' own adds ~/.netrc credentials for the new host after a redirect
            headers = prepared_request.headers
            if "Authorization" in headers and self.should_strip_auth(
                response.request.url, prepared_request.url
            ):
                del headers["Authorization"]

    if not vendor:
        return Session()
    session = VendorSession()
    session.auth = _no_ambient_auth()
    return session


def _no_ambient_auth() -> Any:
    """An auth for a requests session that adds nothing: with it set, requests never looks
    in ``~/.netrc`` for credentials."""
    from requests.auth import AuthBase

    class NoAmbientAuth(AuthBase):
        def __call__(self, request: Any) -> Any:
            return request

    return NoAmbientAuth()


def _session_remembering_outcome(vendor: bool, signal: Signal) -> tuple[Any, Outcome]:
    seen = Outcome()
    session = _session(vendor)

    def remember(response: Any, *args: Any, **kwargs: Any) -> None:
        seen.status = response.status_code
        seen.retry_after = _retry_after(response.headers.get("Retry-After"))
        seen.rejected = 0
        if response.status_code == 200 and response.content:
            seen.rejected = _partial_success(
                signal, response.headers.get("Content-Type", ""), response.content
            )

    session.hooks["response"].append(remember)
    return session, seen


_REJECTED = {
    "traces": "rejected_spans",
    "logs": "rejected_log_records",
    "metrics": "rejected_data_points",
}
"""Each signal's count of refused items in an OTLP export response's ``partial_success``."""


def _partial_success(signal: Signal, content_type: str, body: bytes) -> int:
    """The items an OTLP/HTTP response says were refused (``ExportTraceServiceResponse``
    and its siblings, protobuf or JSON); 0 if it says nothing readable."""
    try:
        if "json" in content_type:
            import json

            found = json.loads(body).get("partialSuccess", {})
            camel = "".join(w.title() for w in _REJECTED[signal].split("_"))
            return max(0, int(found.get(camel[0].lower() + camel[1:], 0)))
        message = _response_message(signal)
        message.ParseFromString(body)
        return _rejected(signal, message)
    except Exception:  # an answer we cannot read refuses nothing we know of
        return 0


def _response_message(signal: Signal) -> Any:
    if signal == "traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        return ExportTraceServiceResponse()
    if signal == "logs":
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceResponse,
        )

        return ExportLogsServiceResponse()
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceResponse,
    )

    return ExportMetricsServiceResponse()


def _rejected(signal: Signal, response: Any) -> int:
    """The refused items of a decoded OTLP export response (gRPC or HTTP)."""
    partial = getattr(response, "partial_success", None)
    return max(0, int(getattr(partial, _REJECTED[signal], 0) or 0))


class _Reading:
    """A gRPC exporter's stub whose ``Export`` remembers the response's ``partial_success``
    (the SDK's exporter drops the response)."""

    def __init__(self, client: Any, signal: Signal, seen: Outcome) -> None:
        self._client = client
        self._signal = signal
        self._seen = seen

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # the stub's own name
        self._seen.clear()
        response = self._client.Export(*args, **kwargs)
        self._seen.rejected = _rejected(self._signal, response)
        return response


def read_grpc_responses(exporter: Any, signal: Signal) -> bool:
    """Let a gRPC exporter's outcome count what the destination refused in a success.

    The SDK's exporter calls ``self._client.Export(...)`` and makes ``_client`` with
    ``self._stub(channel)`` (again after a reconnection): both are wrapped. ``False`` if
    the SDK no longer has them (``tests/test_faults.py`` breaks then).
    """
    stub, client = getattr(exporter, "_stub", None), getattr(exporter, "_client", None)
    if stub is None or client is None or not hasattr(client, "Export"):
        return False
    seen = Outcome()
    exporter._stub = lambda channel: _Reading(stub(channel), signal, seen)
    exporter._client = _Reading(client, signal, seen)
    exporter._phonehome_outcome = seen
    return True


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            import time

            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _quiet_grpc() -> None:
    """gRPC's C core logs a failed handshake or connection to stderr: in CI and service
    modes, the host's terminal. Unless the host imported gRPC or chose a level itself."""
    if "grpc" not in sys.modules:
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def _otlp(signal: Signal, protocol: str, kwargs: dict[str, Any], vendor: bool = True) -> Any:
    if protocol == "grpc":
        _quiet_grpc()
        exporter = _otlp_grpc(signal, kwargs)
        if not read_grpc_responses(exporter, signal):
            errors["grpc partial_success unreadable"] += 1
        return exporter
    session, seen = _session_remembering_outcome(vendor, signal)
    kwargs["session"] = session
    exporter = _otlp_http(signal, kwargs)
    exporter._phonehome_outcome = seen
    return exporter


def _otlp_grpc(signal: Signal, kwargs: dict[str, Any]) -> Any:
    try:
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(**kwargs)
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            return OTLPMetricExporter(**kwargs)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**kwargs)
    except ImportError:
        raise MissingExtra(
            "the OTLP gRPC exporter is not installed: pip install 'phonehome[grpc]'"
        ) from None


def _otlp_http(signal: Signal, kwargs: dict[str, Any]) -> Any:
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Span

        return Span(**kwargs)
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
            OTLPMetricExporter as Metric,
        )

        return Metric(**kwargs)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as Log

    return Log(**kwargs)


def _azure(destination: Destination, signal: Signal, vendor: bool = True) -> Any:
    try:
        from azure.monitor.opentelemetry.exporter import (
            AzureMonitorLogExporter,
            AzureMonitorMetricExporter,
            AzureMonitorTraceExporter,
        )
    except ImportError:
        raise MissingExtra(
            "the Azure Monitor exporter is not installed: pip install 'phonehome[azure]'"
        ) from None
    kinds = {
        "traces": AzureMonitorTraceExporter,
        "metrics": AzureMonitorMetricExporter,
        "logs": AzureMonitorLogExporter,
    }
    ambient: dict[str, Any] = {}
    if vendor:  # the vendor's key only: no Entra ID token, no ~/.netrc
        from azure.core.pipeline.transport import RequestsTransport

        # the transport azure-core would make, with a session that never reads ~/.netrc
        transport = RequestsTransport(connection_timeout=destination.timeout)
        transport.open()
        transport.session.auth = _no_ambient_auth()
        ambient["credential"] = None
        ambient["transport"] = transport
    exporter = kinds[signal](
        connection_string=destination.connection_string,
        disable_offline_storage=True,
        timeout=destination.timeout,
        retry_total=0,  # the sender retries, within its own deadline
        **ambient,
    )
    _resend_partial(exporter)
    return exporter


_AZURE_RETRYABLE = frozenset((401, 403, 408, 429, 500, 502, 503, 504))
_PARTIAL_ATTEMPTS = 3


def _resend_partial(exporter: Any) -> None:
    """Make Azure's partial acceptance (206) exact instead of all-or-nothing.

    With its offline storage off, the exporter drops the items ingestion asked to be sent
    again and reports the whole batch as failed, so the sender would send the accepted items
    again too. Here the exporter's ``client.track`` sends those items again itself (up to
    three times); items refused for good are counted in the outcome. Only when retryable
    items stay unaccepted does the batch fail, and the sender retries it whole.
    """
    import time

    from azure.core.exceptions import HttpResponseError

    client = exporter.client
    track = client.track
    seen = Outcome()

    def tracked(body: list[Any], **kwargs: Any) -> Any:
        seen.clear()
        pending, attempt = body, 0
        while True:
            try:
                result = track(pending, **kwargs)
            except HttpResponseError as error:
                seen.status = error.status_code
                headers = getattr(error.response, "headers", None) or {}
                seen.retry_after = _retry_after(headers.get("Retry-After"))
                raise
            response = result[0] if isinstance(result, tuple) else result
            seen.status = 206 if response.errors else 200
            if not response.errors:
                return result
            again = [e for e in response.errors if e.status_code in _AZURE_RETRYABLE]
            seen.rejected += len(response.errors) - len(again)
            attempt += 1
            if not again:
                response.errors = []
                return result
            if attempt >= _PARTIAL_ATTEMPTS:
                return result  # the exporter reports failure: the sender retries the batch
            pending = [pending[e.index] for e in again if e.index is not None]
            time.sleep(0.1 * attempt)

    client.track = tracked
    exporter._phonehome_outcome = seen


def _compression(name: str, protocol: str) -> Any:
    if protocol == "grpc":
        import grpc

        return grpc.Compression.Gzip if name == "gzip" else grpc.Compression.NoCompression
    from opentelemetry.exporter.otlp.proto.http import Compression

    return Compression.Gzip if name == "gzip" else Compression.NoCompression


def _grpc_credentials(certificate_file: str) -> Any:
    import grpc

    with open(certificate_file, "rb") as handle:
        return grpc.ssl_channel_credentials(handle.read())
