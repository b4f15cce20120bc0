"""Destinations: the AKS Engine table row by row, credentials kept apart, bad settings skipped."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phonehome
from phonehome._core.destinations import loopback, parse
from phonehome.testing import AzureIngestion, OTLPReceiver
from tests import figures
from tests.conftest import TEST_SCHEMA, app_logs, clean_environ

KEY = "11111111-2222-3333-4444-555555555555"


def one_run(vendor: str | phonehome.Destination | None, state_dir: Path, **kwargs: object) -> None:
    with phonehome.instrument(  # type: ignore[arg-type]
        "democli", vendor=vendor, state_dir=state_dir, schema=TEST_SCHEMA, **kwargs
    ) as telemetry:
        with telemetry.command("generate", params={"language": "go"}, collect={"language"}):
            pass
        telemetry.event("purchase_completed", {"amount": 1})


def summary(receiver: OTLPReceiver) -> tuple[list[str], list[str], list[str]]:
    return (
        sorted(s.name for s in receiver.spans),
        sorted(str(r.event_name) for r in app_logs(receiver)),
        sorted({m.name for m in receiver.metrics}),
    )


@pytest.mark.parametrize("consent_on", [True, False])
@pytest.mark.parametrize("user_set", [True, False])
def test_the_aks_engine_table(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, consent_on: bool, user_set: bool
) -> None:
    with OTLPReceiver() as vendor, OTLPReceiver() as user:
        if user_set:
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", user.url)
        one_run(vendor.url, state_dir, enabled=consent_on)
        if consent_on:
            assert vendor.wait_until(lambda: vendor.spans and vendor.logs and vendor.metrics)
            expected = (
                ["generate"],
                ["purchase_completed"],
                ["democli.command.duration", "democli.command.executions"],
            )
            assert summary(vendor) == expected
            if user_set:
                assert user.wait_until(lambda: user.spans and user.logs and user.metrics)
                assert summary(user) == expected
                assert user.spans[0].attributes == vendor.spans[0].attributes
                assert user.spans[0].span_id == vendor.spans[0].span_id
        if not consent_on or not user_set:
            assert user.requests == []
        if not consent_on:
            assert vendor.requests == []


def test_without_vendor_the_otel_variables_alone_say_where_data_goes(
    monkeypatch: pytest.MonkeyPatch, otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", otlp_receiver.url + "/v1/traces")
    one_run(None, state_dir)
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans)
    assert {path for path, _ in otlp_receiver.requests} == {"/v1/traces"}  # only traces set


def test_the_users_key_never_reaches_the_vendor_nor_the_vendors_the_user(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    with OTLPReceiver() as vendor, OTLPReceiver() as user:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", user.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=USER-SECRET")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        one_run(phonehome.otlp(vendor.url, headers={"x-vendor-key": "VENDOR-SECRET"}), state_dir)
        assert vendor.wait_until(lambda: len(vendor.requests) >= 3)
        assert user.wait_until(lambda: len(user.requests) >= 3)
        for _, headers in vendor.requests:
            assert headers.get("x-vendor-key") == "VENDOR-SECRET"
            assert "USER-SECRET" not in json.dumps(headers)
            assert "content-encoding" not in headers  # the user's compression is theirs too
        for _, headers in user.requests:
            assert headers.get("api-key") == "USER-SECRET"
            assert "VENDOR-SECRET" not in json.dumps(headers)
        assert b"USER-SECRET" not in b"".join(vendor.bodies)  # nor in what was sent
        assert b"VENDOR-SECRET" not in b"".join(user.bodies)
    figures.row("security").cases += 2  # each key, at the other's endpoint


def test_vendor_on_otlp_with_the_users_copy_in_azure_monitor(
    monkeypatch: pytest.MonkeyPatch,
    otlp_receiver: OTLPReceiver,
    azure_ingestion: AzureIngestion,
    state_dir: Path,
) -> None:
    monkeypatch.setenv("APPLICATIONINSIGHTS_CONNECTION_STRING", azure_ingestion.connection_string)
    one_run(otlp_receiver.url, state_dir)
    assert azure_ingestion.wait_until(
        lambda: (
            azure_ingestion.of_type("RemoteDependencyData")
            and azure_ingestion.of_type("MetricData")
            and azure_ingestion.of_type("MessageData")
        )
    )
    (dependency,) = azure_ingestion.of_type("RemoteDependencyData")
    assert dependency["name"] == "generate"
    assert dependency["properties"]["command.param.language"] == "go"
    assert {e["iKey"] for e in azure_ingestion.envelopes} == {azure_ingestion.instrumentation_key}
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans)
    assert azure_ingestion.instrumentation_key not in repr(otlp_receiver.requests)


def test_azure_as_the_vendor_sends_nothing_nobody_asked_for(
    azure_ingestion: AzureIngestion, state_dir: Path
) -> None:
    import socket

    one_run(azure_ingestion.connection_string, state_dir, mode="ci")  # exporters in this process
    assert azure_ingestion.wait_until(lambda: azure_ingestion.of_type("RemoteDependencyData"))
    from azure.monitor.opentelemetry.exporter._configuration._state import (
        get_configuration_manager,
    )
    from azure.monitor.opentelemetry.exporter.statsbeat._state import is_statsbeat_enabled

    assert not is_statsbeat_enabled()
    assert get_configuration_manager() is None  # no control-plane calls
    assert {path for path, _ in azure_ingestion.requests} == {"/v2.1/track"}
    tags = [e["tags"] for e in azure_ingestion.envelopes]
    assert socket.gethostname() not in {v for t in tags for v in t.values()}
    assert not (state_dir.parent / "opentelemetry-python").exists()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not a url", "not an http:// or https:// URL"),
        ("ftp://example.com", "not an http:// or https:// URL"),
        ("http://127.0.0.1:99999", "not a valid URL"),
        ("InstrumentationKey=nope", "no valid InstrumentationKey"),
        ("InstrumentationKey=" + KEY + ";IngestionEndpoint=nowhere", "not an http"),
        ("garbage;=", "not Key=Value"),
    ],
)
def test_a_bad_destination_is_one_warning_and_is_skipped(
    otlp_receiver: OTLPReceiver,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    value: str,
    problem: str,
) -> None:
    one_run(otlp_receiver.url, state_dir, user=value)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("phonehome: user=") and problem in lines[0]
    assert KEY not in lines[0]
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans)  # the vendor still gets data


def test_a_bad_otel_endpoint_variable_names_itself(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318")
    one_run(None, state_dir)
    (line,) = capsys.readouterr().err.splitlines()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT='localhost:4318'" in line


def test_strings_parse_into_destinations_and_describe_masks_credentials() -> None:
    otlp = parse("https://telemetry.example.com:4318/")
    assert (otlp.kind, otlp.endpoint, otlp.signal_endpoint("logs")) == (
        "otlp",
        "https://telemetry.example.com:4318",
        "https://telemetry.example.com:4318/v1/logs",
    )
    azure = parse(f"InstrumentationKey={KEY};IngestionEndpoint=https://westeurope-5.in.ai/")
    assert azure.kind == "azure" and azure.endpoint == "https://westeurope-5.in.ai"
    assert KEY not in azure.describe() and KEY not in repr(azure)
    secret = phonehome.otlp("https://x.example", headers={"authorization": "Bearer abcdefghijkl"})
    assert "abcdefghijkl" not in secret.describe()


def test_a_destination_whose_exporter_is_missing_names_the_extra(tmp_path: Path) -> None:
    code = """
import sys
class HideAzure:  # an environment where the azure extra was not installed
    def find_spec(self, name, path=None, target=None):
        if name.startswith("azure"):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, HideAzure())
import phonehome
with phonehome.instrument("democli", user=sys.argv[1], state_dir=sys.argv[2]) as t:
    print(t.destinations)
"""
    result = subprocess.run(
        [sys.executable, "-c", code, f"InstrumentationKey={KEY}", str(tmp_path)],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "()"
    assert result.stderr.strip().endswith(
        "pip install 'phonehome[azure]'; that destination is skipped"
    )


def test_a_plain_http_vendor_that_is_not_loopback_is_refused_unless_allowed(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with phonehome.instrument(
        "democli", vendor="http://telemetry.example.com:4318", state_dir=state_dir, mode="ci"
    ) as t:
        assert t.destinations == ()
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("phonehome: vendor= 'http://telemetry.example.com:4318': plain http")
    allowed = phonehome.otlp("http://telemetry.example.com:4318", allow_insecure=True)
    from phonehome._core.destinations import resolve  # checked without running: no network here

    assert resolve(allowed, None, {}) == [("vendor", allowed)]
    for local in ("http://127.0.0.1:9", "http://localhost:9", "http://[::1]:9"):
        with phonehome.instrument(
            "democli", vendor=local, state_dir=state_dir, mode="ci", ci_budget=0.1
        ) as t:
            assert len(t.destinations) == 1, local
    assert capsys.readouterr().err == ""


_ADDRESS_TEXT = st.text(alphabet="0123456789abcdefABCDEF:.%x ", max_size=45)


@settings(max_examples=1500, deadline=None)
@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=6).map(lambda a: a.exploded),
        st.ip_addresses(network="127.0.0.0/8").map(str),
        st.sampled_from(["::1", "0::1", "0:0::0:1", "0000:0000:0000:0000:0000:0000:0000:0001"]),
        _ADDRESS_TEXT,
    )
)
def test_the_loopback_check_agrees_with_ipaddress(address: str) -> None:
    """The check a plain-http vendor goes through, without importing ipaddress: never
    loopback where ipaddress says otherwise, and the same answer for every address
    ipaddress writes itself."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        assert not loopback(address)
        return
    if "%" in address:  # a scope id: refused here (an http vendor needs allow_insecure)
        assert not loopback(address)
    elif isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        assert not loopback(address)  # loopback to ipaddress from 3.13 on: refused here
    else:
        assert loopback(address) == parsed.is_loopback


@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_a_vendor_url_ending_in_a_signal_path_is_refused_with_the_base_url(
    otlp_receiver: OTLPReceiver, state_dir: Path, capsys: pytest.CaptureFixture[str], signal: str
) -> None:
    """Never posted to /v1/traces/v1/traces: the line names the base URL to give instead."""
    one_run(f"{otlp_receiver.url}/v1/{signal}/", state_dir, mode="ci")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("phonehome: vendor=")
    assert f"ends in the signal path /v1/{signal}: give the base URL '{otlp_receiver.url}'" in line
    assert otlp_receiver.requests == []
    with pytest.raises(phonehome.DestinationError, match="give the base URL"):
        phonehome.otlp(f"{otlp_receiver.url}/v1/{signal}")
    assert phonehome.otlp(otlp_receiver.url, protocol="grpc").endpoint == otlp_receiver.url
