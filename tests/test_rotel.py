"""End to end through a real collector: Rotel on loopback, forwarding to the capture receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

import phonehome
from phonehome.testing import OTLPReceiver, Rotel
from tests.conftest import TEST_SCHEMA, app_logs


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_metrics_and_logs_arrive_through_rotel(
    otlp_receiver: OTLPReceiver, state_dir: Path, protocol: str
) -> None:
    with Rotel(otlp_receiver.url) as rotel:
        endpoint = rotel.grpc_endpoint if protocol == "grpc" else rotel.http_endpoint
        vendor = phonehome.otlp(endpoint, protocol=protocol)  # type: ignore[arg-type]
        with phonehome.instrument(
            "democli", version="1.4.0", vendor=vendor, state_dir=state_dir, schema=TEST_SCHEMA
        ) as telemetry:
            with telemetry.command(
                "generate", params={"language": "go", "openapi": "a.yaml"}, collect={"language"}
            ):
                pass
            telemetry.event("purchase_completed", {"amount": 149.99})
        assert otlp_receiver.wait_until(
            lambda: (
                otlp_receiver.spans
                and app_logs(otlp_receiver)
                and otlp_receiver.points("democli.command.executions")
            ),
            timeout=15,
        )
    (span,) = otlp_receiver.spans
    assert span.name == "generate"
    assert span.attributes["command.param.language"] == "go"
    assert span.resource["service.name"] == "democli"
    (event,) = app_logs(otlp_receiver)
    assert event.attributes["event.name"] == "purchase_completed"
    (point,) = otlp_receiver.points("democli.command.executions")
    assert point.attributes == {"command.name": "generate", "command.result": "success"}
    assert point.value == 1


def test_the_user_environment_may_ask_for_grpc(
    monkeypatch: pytest.MonkeyPatch, otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    with Rotel(otlp_receiver.url) as rotel:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rotel.grpc_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
        with phonehome.instrument("democli", state_dir=state_dir) as telemetry:
            with telemetry.command("generate"):
                pass
        assert otlp_receiver.wait_until(lambda: otlp_receiver.spans, timeout=15)
    assert otlp_receiver.spans[0].name == "generate"
