"""The examples run as a user would run them, and what they send is checked on the wire."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from phonehome.testing import AzureIngestion, OTLPReceiver, Rotel
from tests.conftest import ROOT, clean_environ

DEMOCLI = ROOT / "examples" / "democli.py"


def example(name: str, *argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """Run an example as its users would."""
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *argv],
        env=clean_environ(**environ),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def democli(*argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return example(DEMOCLI.name, *argv, **environ)


def test_democli_reports_its_commands_to_the_vendor(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    environ = {"DEMOCLI_VENDOR": otlp_receiver.url, "DEMOCLI_TELEMETRY_DIR": str(tmp_path)}
    ok = democli(
        "generate", "--language", "python", "--openapi", "/home/alice/spec.yaml", **environ
    )
    failed = democli("fail", **environ)
    assert (ok.returncode, failed.returncode) == (0, 1)
    assert ok.stdout == "generated a python client from /home/alice/spec.yaml\n"
    assert failed.stderr == "democli: error: the spec could not be read\n"
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2)
    by_name = {s.name: s for s in otlp_receiver.spans}
    assert by_name["generate"].attributes["command.param.language"] == "python"
    assert by_name["generate"].attributes["command.params"] == ["language", "openapi"]
    assert "alice" not in repr(otlp_receiver.spans)
    assert by_name["fail"].attributes["error.type"] == "__main__.DemoError"


def test_democli_opted_out_sends_nothing(otlp_receiver: OTLPReceiver, tmp_path: Path) -> None:
    result = democli(
        "version",
        DEMOCLI_VENDOR=otlp_receiver.url,
        DEMOCLI_TELEMETRY_DIR=str(tmp_path / "s"),
        DEMOCLI_TELEMETRY_OPTOUT="1",
    )
    assert result.stdout == "democli 1.4.0\n" and result.stderr == ""
    assert otlp_receiver.requests == []
    assert not (tmp_path / "s").exists()


def test_the_demo_prints_what_each_destination_received() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "user's own destination: 5 spans" in out
    assert out.count("generate/success=3") == 1 and out.count("fail/failure=1") == 1
    assert out.count("language=go") == 1
    assert "petstore" not in out.split("user's own destination")[1]
    # the vendor's answers, from the store behind its collector, after Ctrl-C
    answers = out.split("phonehome insights --store", 1)[1]
    assert re.search(r"\n  generate +3 +1 +0 \(0\.0%\)", answers)
    assert re.search(r"\n  fail +1 +1 +1 \(100\.0%\)", answers)
    assert "total 1, new 1" in answers and "__main__.DemoError" in answers


def test_the_service_delivers_while_running_with_heartbeat_and_collector(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = example(
        "service.py",
        "--seconds",
        "2",
        SERVICE_VENDOR=otlp_receiver.url,
        SERVICE_TELEMETRY_DIR=str(tmp_path),
        SERVICE_TELEMETRY_NOLOGO="1",
        OTEL_BSP_SCHEDULE_DELAY="300",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0 and result.stdout == "service stopped\n", result.stderr
    assert elapsed < 2 + 3 + 5  # its run, the shutdown bound, interpreter start-up
    events = {r.event_name for r in otlp_receiver.logs}
    assert {"heartbeat", "summary", "install"} <= events
    assert len([s for s in otlp_receiver.spans if s.name == "process"]) >= 10
    assert sum(p.value for p in otlp_receiver.points("jobs.processed")) >= 10
    # delivered while it ran, not only at the end: several exports arrived
    assert len([p for p, _ in otlp_receiver.requests if p == "/v1/traces"]) >= 2
    assert otlp_receiver.points("system.cpu.utilization")
    assert otlp_receiver.points("process.memory.usage")


def test_the_service_users_can_refuse_infrastructure_metrics_alone(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    result = example(
        "service.py",
        "--seconds",
        "1",
        SERVICE_VENDOR=otlp_receiver.url,
        SERVICE_TELEMETRY_DIR=str(tmp_path),
        SERVICE_TELEMETRY_NOLOGO="1",
        OTEL_BSP_SCHEDULE_DELAY="300",
        SERVICE_TELEMETRY_SYSTEM_METRICS="0",
    )
    assert result.returncode == 0, result.stderr
    assert [s for s in otlp_receiver.spans if s.name == "process"]
    assert not [m for m in otlp_receiver.metrics if m.name.startswith(("system.", "process."))]


def test_the_vendor_on_azure_and_the_users_copy_on_otlp(
    otlp_receiver: OTLPReceiver, azure_ingestion: AzureIngestion, tmp_path: Path
) -> None:
    result = example(
        "azure_vendor.py",
        AZURE_VENDOR=azure_ingestion.connection_string,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp_receiver.url,
        OTEL_EXPORTER_OTLP_HEADERS="x-user-key=USERKEY",
        AZDEMO_TELEMETRY_DIR=str(tmp_path),
        AZDEMO_TELEMETRY_NOLOGO="1",
    )
    assert result.stdout == "deployed\n", result.stderr
    (dependency,) = azure_ingestion.of_type("RemoteDependencyData")
    assert dependency["name"] == "deploy"
    assert dependency["properties"]["command.param.region"] == "westeurope"
    assert [s.name for s in otlp_receiver.spans] == ["deploy"]
    assert "USERKEY" not in str(azure_ingestion.requests) + str(azure_ingestion.bodies)
    assert azure_ingestion.instrumentation_key.encode() not in b"".join(otlp_receiver.bodies)


def test_everything_only_to_my_own_collector(otlp_receiver: OTLPReceiver, tmp_path: Path) -> None:
    with Rotel(otlp_receiver.url) as rotel:
        result = example(
            "own_collector.py",
            OTEL_EXPORTER_OTLP_ENDPOINT=rotel.http_endpoint,
            MYTOOL_TELEMETRY_DIR=str(tmp_path),
            MYTOOL_TELEMETRY_NOLOGO="1",
        )
        assert result.stdout == "synced\n", result.stderr
        assert otlp_receiver.wait_until(lambda: otlp_receiver.spans, timeout=20)
    assert [s.name for s in otlp_receiver.spans] == ["sync"]
