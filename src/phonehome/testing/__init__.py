"""Testing support: capture receivers on 127.0.0.1 for your own telemetry tests.

    from phonehome.testing import OTLPReceiver

    with OTLPReceiver() as receiver:
        run_my_cli(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        assert receiver.wait_until(lambda: receiver.spans)

With pytest, the fixtures ``otlp_receiver`` and ``azure_ingestion`` do the same.
"""

from phonehome._collector import Rotel, free_port
from phonehome.testing._azure import AzureIngestion
from phonehome.testing._receiver import LogRecord, Metric, OTLPReceiver, Point, Span

__all__ = [
    "AzureIngestion",
    "LogRecord",
    "Metric",
    "OTLPReceiver",
    "Point",
    "Rotel",
    "Span",
    "free_port",
]
