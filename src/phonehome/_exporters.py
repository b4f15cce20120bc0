"""Concrete OpenTelemetry exporters for a destination, one per signal.

A destination's credentials go to that destination only. The OTLP exporters merge the
``OTEL_EXPORTER_OTLP_*`` variables (headers, certificates, credential providers) into every
exporter they build, so exporters for any destination other than the user's environment one
are built with those variables hidden.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from phonehome import _environment as env
from phonehome._destinations import Destination, signal_settings

Signal = Literal["traces", "metrics", "logs"]

_environ_lock = threading.Lock()


class MissingExtra(RuntimeError):
    """An optional dependency for a destination kind is not installed."""


@contextmanager
def _user_settings(snapshot: tuple[tuple[str, str], ...] = ()) -> Iterator[None]:
    """While an exporter is built: the user's destination variables are exactly ``snapshot``.

    Empty for every destination other than the user's environment one, so that the
    OTLP exporters cannot merge the user's headers or certificates into it.
    """
    with _environ_lock:
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


def build(destination: Destination, signal: Signal) -> Any | None:
    """The exporter for one signal, or ``None`` when the destination does not take it."""
    if destination.kind == "azure":
        os.environ.update(env.AZURE_QUIET)
        with _user_settings():
            return _azure(destination, signal)
    if destination.from_environment:
        snapshot = dict(destination.environment)
        configured, protocol = signal_settings(snapshot, signal)
        if not configured:
            return None
        with _user_settings(destination.environment):
            return _otlp(signal, protocol, {})
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
        return _otlp(signal, destination.protocol, kwargs)


def last_retry_after(exporter: Any) -> float | None:
    """The ``Retry-After`` (seconds) of the exporter's last response, if it gave one."""
    box = getattr(exporter, "_phonehome_retry_after", None)
    return box.get("seconds") if isinstance(box, dict) else None


def _session_remembering_retry_after() -> tuple[Any, dict[str, float | None]]:
    import requests

    box: dict[str, float | None] = {}
    session = requests.Session()

    def remember(response: Any, *args: Any, **kwargs: Any) -> None:
        box["seconds"] = _retry_after(response.headers.get("Retry-After"))

    session.hooks["response"].append(remember)
    return session, box


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


def _otlp(signal: Signal, protocol: str, kwargs: dict[str, Any]) -> Any:
    if protocol == "grpc":
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
    session, box = _session_remembering_retry_after()
    kwargs["session"] = session
    exporter = _otlp_http(signal, kwargs)
    exporter._phonehome_retry_after = box
    return exporter


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


def _azure(destination: Destination, signal: Signal) -> Any:
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
    return kinds[signal](
        connection_string=destination.connection_string,
        disable_offline_storage=True,
        timeout=destination.timeout,
    )


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
