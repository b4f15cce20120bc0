"""Testing support: capture receivers on 127.0.0.1 for your own telemetry tests.

    from phonehome.testing import OTLPReceiver

    with OTLPReceiver() as receiver:
        run_my_cli(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        assert receiver.wait_until(lambda: receiver.spans)

With pytest, the fixtures ``otlp_receiver`` and ``azure_ingestion`` do the same, and
``phonehome_env`` keeps a test's telemetry apart from the machine's (``docs/testing.md``).
``OTLPGrpcReceiver`` is the OTLP/gRPC counterpart; it needs grpcio (``phonehome[grpc]``)
and is imported on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from phonehome._tools.collector import Rotel, free_port
from phonehome.testing._azure import AzureIngestion
from phonehome.testing._receiver import LogRecord, Metric, OTLPReceiver, Point, Span

if TYPE_CHECKING:
    from phonehome.testing._grpc import OTLPGrpcReceiver

__all__ = [
    "AzureIngestion",
    "LogRecord",
    "Metric",
    "OTLPGrpcReceiver",
    "OTLPReceiver",
    "Point",
    "Rotel",
    "Span",
    "free_port",
]


def __getattr__(name: str) -> Any:
    if name != "OTLPGrpcReceiver":
        raise AttributeError(f"module 'phonehome.testing' has no attribute {name!r}")
    from phonehome.testing._grpc import OTLPGrpcReceiver

    globals()[name] = OTLPGrpcReceiver
    return OTLPGrpcReceiver
