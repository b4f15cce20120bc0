"""Destination faults, per destination kind and signal (a reliability suite).

Each case runs a real host in CI mode (it delivers before it exits, within its budget) against
a destination with one fault, checks the host is unaffected, then heals the destination and
delivers what is left. Every record is counted on the wire: delivered, duplicated, dropped
(with the reason the destination is told), or still spooled. Everything is on loopback: the
name that does not resolve is looked up in a network namespace of its own, which has no
route to any resolver, so no query leaves the machine.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import grpc
import pytest
import trustme

from phonehome._sender import deliver as _sender
from phonehome._spool.records import LogRecord, SpanRecord
from phonehome._spool.segments import Spool
from phonehome.testing import AzureIngestion, OTLPReceiver, free_port
from phonehome.testing import LogRecord as ReceivedLog
from phonehome.testing import Span as ReceivedSpan
from tests import figures
from tests.conftest import ROOT, clean_environ, silent_server
from tests.test_delivery import wait_no_sender

COMMANDS = 20
"""Commands per host run: 20 spans, 20 events (log records) and one metric batch."""
BUDGET = 1.0
TIMEOUT = 0.5
KEY = "00000000-0000-4000-8000-000000000006"

HOST = """
import sys, phonehome
kind, where, ca, state, name, commands = sys.argv[1:7]
if kind == "azure":
    vendor = phonehome.azure(where, timeout=TIMEOUT)
else:
    vendor = phonehome.otlp(where, protocol="grpc" if kind == "otlp-grpc" else "http/protobuf",
                            timeout=TIMEOUT, certificate_file=ca or None)
schema = phonehome.Schema(events={"fault": {"i": phonehome.field("int"), "run": phonehome.field()}})
with phonehome.instrument("democli", version="1.0", vendor=vendor, state_dir=state,
                          schema=schema, mode="ci", ci_budget=BUDGET) as t:
    for i in range(int(commands)):
        with t.command(name, params={"i": i}, collect={"i"}):
            t.event("fault", {"i": i, "run": name})
print("done")
""".replace("TIMEOUT", str(TIMEOUT)).replace("BUDGET", str(BUDGET))

KINDS = ("otlp-http", "otlp-grpc", "azure")
FAULTS = (
    "server error",  # HTTP 500 / gRPC INTERNAL
    "unavailable",  # HTTP 503 / gRPC UNAVAILABLE
    "throttled",  # HTTP 429 + Retry-After / gRPC RESOURCE_EXHAUSTED + RetryInfo
    "refused data",  # HTTP 400 / gRPC INVALID_ARGUMENT
    "connection refused",
    "reset mid-request",
    "stalls past the timeout",
    "accepts, never answers",
    "TLS handshake fails",
    "name does not resolve",
    "partial acceptance",  # OTLP partial_success, Azure 206
)
CASES = [
    pytest.param(kind, fault, id=f"{kind}-{fault.replace(' ', '-')}")
    for k, kind in enumerate(KINDS)
    for f, fault in enumerate(FAULTS)
    if figures.FULL or (k + f) % 3 == 0 or fault == "partial acceptance"
]


# -- the fault servers --------------------------------------------------------------------------
@dataclass
class Authority:
    """Two certificate authorities: the one the client trusts, and one it does not."""

    trusted: Any
    untrusted: Any
    ca_file: Path


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    trusted, untrusted = trustme.CA(), trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    trusted.cert_pem.write_to_path(str(ca_file))
    return Authority(trusted, untrusted, ca_file)


def _ssl_context(ca: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _grpc_tls(ca: Any) -> tuple[bytes, bytes]:
    cert = ca.issue_cert("127.0.0.1")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return cert.private_key_pem.bytes(), chain


def server(kind: str, port: int, tls: Any = None) -> Any:
    """The destination of ``kind`` on ``port``, over TLS signed by ``tls`` if given."""
    if kind == "otlp-grpc":
        from phonehome.testing import OTLPGrpcReceiver

        return OTLPGrpcReceiver(port, tls=_grpc_tls(tls) if tls else None)
    context = _ssl_context(tls) if tls else None
    if kind == "azure":
        return AzureIngestion(KEY, port=port, ssl_context=context)
    return OTLPReceiver(port, ssl_context=context)


def fail_with(kind: str, destination: Any, fault: str) -> None:
    if kind == "otlp-grpc":
        codes = {
            "server error": grpc.StatusCode.INTERNAL,
            "unavailable": grpc.StatusCode.UNAVAILABLE,
            "throttled": grpc.StatusCode.RESOURCE_EXHAUSTED,
            "refused data": grpc.StatusCode.INVALID_ARGUMENT,
        }
        destination.status = codes[fault]
        destination.retry_delay = 1.0 if fault == "throttled" else None
        return
    destination.status = {
        "server error": 500,
        "unavailable": 503,
        "throttled": 429,
        "refused data": 400,
    }[fault]
    destination.retry_after = "1" if fault == "throttled" else None


def heal(kind: str, destination: Any) -> None:
    destination.status = None if kind == "otlp-grpc" else 200
    destination.delay = 0.0


@contextmanager
def resetting_server(port: int) -> Iterator[None]:
    """Accepts, reads the start of the request, and resets the connection."""
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with connection:
                connection.settimeout(1.0)
                with suppress(OSError):
                    connection.recv(64)
                connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# -- a host run and what arrived ---------------------------------------------------------------
def endpoint(kind: str, scheme: str, host: str, port: int) -> str:
    url = f"{scheme}://{host}:{port}"
    if kind == "azure":
        return f"InstrumentationKey={KEY};IngestionEndpoint={url}/"
    return url


def run_host(
    kind: str, where: str, ca: str, state: Path, name: str, *, netns: bool = False, **env: str
) -> tuple[int, str, str, float]:
    command = [sys.executable, "-c", HOST, kind, where, ca, str(state), name, str(COMMANDS)]
    if netns:  # no interface but a down loopback: nothing to resolve a name with
        command = ["unshare", "--net", *command]
    started = time.monotonic()
    done = subprocess.run(
        command,
        env=clean_environ(**env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


@dataclass
class Arrived:
    spans: Counter[int]
    logs: Counter[int]
    executions: float
    dropped: Counter[str]


def arrived(kind: str, destination: Any, name: str) -> Arrived:
    """What the destination holds of the run called ``name``, and the drops reported to it."""
    dropped: Counter[str] = Counter()
    if kind == "azure":
        spans = Counter(
            int(d["properties"]["command.param.i"])
            for d in destination.of_type("RemoteDependencyData")
            if d.get("name") == name
        )
        logs = Counter(
            int(d["properties"]["i"])
            for d in destination.of_type("MessageData")
            if d.get("properties", {}).get("run") == name
        )
        executions = 0.0
        for data in destination.of_type("MetricData"):
            for metric in data["metrics"]:
                properties = data.get("properties", {})
                if metric["name"] == "democli.command.executions":
                    if properties.get("command.name") == name:
                        executions += metric["value"]
                elif metric["name"] == "phonehome.spool.dropped":
                    dropped[properties["reason"]] += int(metric["value"])
        return Arrived(spans, logs, executions, dropped)
    spans = Counter(
        int(s.attributes["command.param.i"]) for s in destination.spans if s.name == name
    )
    logs = Counter(
        int(r.attributes["i"]) for r in destination.logs if r.attributes.get("run") == name
    )
    executions = sum(
        p.value
        for p in destination.points("democli.command.executions")
        if p.attributes.get("command.name") == name
    )
    for p in destination.points("phonehome.spool.dropped"):
        dropped[str(p.attributes["reason"])] += int(p.value)
    return Arrived(spans, logs, executions, dropped)


def spooled(state: Path, name: str | None = None) -> int:
    """Records waiting in the spool (only the run ``name``'s spans and events, if given)."""
    spool = Spool(state / "spool")
    records = [r for n in spool.names() if (s := spool.read(n)) is not None for r in s.records]
    if name is None:
        return len(records)
    return sum(
        (isinstance(r, SpanRecord) and r.name == name)
        or (isinstance(r, LogRecord) and r.attributes.get("run") == name)
        for r in records
    )


def deliver_until(state: Path, done: Any, timeout: float = 15.0) -> None:
    """Run senders (as later runs would) until ``done()`` or the deadline."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        budget = min(3.0, max(0.1, deadline - time.monotonic()))
        _sender.deliver(state, budget=budget, retry_now=True)  # as if its backoff were over


# -- the suite ----------------------------------------------------------------------------------
def refuse_some(item: dict[str, Any], first_time: set[tuple[str, int]]) -> int | None:
    """Azure's partial acceptance: every fifth item refused for good, the next one once."""
    properties = item["data"]["baseData"].get("properties", {})
    i = properties.get("command.param.i", properties.get("i"))
    if i is None:
        return None
    if int(i) % 5 == 0:
        return 400
    key = (item["data"]["baseType"], int(i))
    if int(i) % 5 == 1 and key not in first_time:
        first_time.add(key)
        return 503
    return None


def refuse_every_fifth(item: Any) -> bool:
    """OTLP's partial success: every fifth span and event refused (metrics all taken)."""
    if isinstance(item, ReceivedSpan):
        return int(item.attributes["command.param.i"]) % 5 == 0
    if isinstance(item, ReceivedLog) and "i" in item.attributes:
        return int(item.attributes["i"]) % 5 == 0
    return False


def provoke(
    kind: str, fault: str, state: Path, ca: str, authority: Authority, env: dict[str, str]
) -> tuple[tuple[int, str, str, float], Any, str, int]:
    """Run the host against the fault: its result, the destination left running (or
    ``None``), the destination's address and port."""
    port = free_port()
    scheme = "https" if fault == "TLS handshake fails" else "http"
    where = endpoint(kind, scheme, "127.0.0.1", port)
    destination = None
    if fault in ("server error", "unavailable", "throttled", "refused data"):
        destination = server(kind, port).__enter__()
        fail_with(kind, destination, fault)
    elif fault == "partial acceptance" and kind == "azure":
        destination = server(kind, port).__enter__()
        first_time: set[tuple[str, int]] = set()
        destination.refuse = lambda item: refuse_some(item, first_time)
    elif fault == "partial acceptance":
        destination = server(kind, port).__enter__()
        destination.refuse = refuse_every_fifth
    elif fault == "stalls past the timeout":
        destination = server(kind, port).__enter__()
        destination.delay = TIMEOUT + 0.5
    if destination is not None or fault == "connection refused":
        return run_host(kind, where, ca, state, "run", **env), destination, where, port
    if fault == "TLS handshake fails":
        with server(kind, port, tls=authority.untrusted):
            return run_host(kind, where, ca, state, "run", **env), None, where, port
    if fault == "reset mid-request":
        with resetting_server(port):
            return run_host(kind, where, ca, state, "run", **env), None, where, port
    if fault == "accepts, never answers":
        listener, port = silent_server()
        where = endpoint(kind, scheme, "127.0.0.1", port)
        try:
            return run_host(kind, where, ca, state, "run", **env), None, where, port
        finally:
            listener.close()
    where = endpoint(kind, "https", "telemetry.invalid", 4318)  # the name does not resolve
    return run_host(kind, where, ca, state, "run", netns=True, **env), None, where, port


def expected_rejected(kind: str, fault: str, produced: int) -> int:
    """The records the destination refuses for good, and is told were dropped."""
    if fault == "refused data" and kind != "otlp-grpc":  # gRPC statuses are all retried
        return produced  # the whole group
    if fault == "partial acceptance":
        return 2 * (COMMANDS // 5)  # every fifth span and event (Azure: refused for good)
    return 0


@pytest.mark.parametrize(("kind", "fault"), CASES)
def test_a_destination_fault_leaves_the_host_alone_and_loses_nothing(
    kind: str, fault: str, tmp_path: Path, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fault == "name does not resolve" and not shutil.which("unshare"):
        pytest.skip("needs unshare(1) for a network namespace")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "lifecycle.json").write_text('{"version": "1.0"}')  # installed before: no event
    ca = "" if kind == "azure" else str(authority.ca_file)
    # Azure trusts the CA the way requests does; the OTLP kinds are given it as their
    # certificate file, which must win over a CA bundle named in the user's environment.
    bundle = str(authority.ca_file) if kind == "azure" else certifi.where()
    env = {"REQUESTS_CA_BUNDLE": bundle}
    for key, value in env.items():  # the later senders here run in this process
        monkeypatch.setenv(key, value)
    row = figures.row("faults")
    produced = 2 * COMMANDS + 1

    # 1. the faulty destination, while the host runs
    (code, out, err, elapsed), destination, where, port = provoke(
        kind, fault, state, ca, authority, env
    )
    wait_no_sender(state)
    row.cases += 1
    row.produced += produced
    host_ok = (code, out, err) == (0, "done\n", "") and elapsed < BUDGET + 4.0
    row.host_failures += not host_ok
    assert host_ok, (code, out, err, elapsed)

    # 2. the destination heals (the name never resolves: its records wait in the spool)
    if fault == "name does not resolve":
        kept = spooled(state, "run")
        row.dropped["still spooled, retried by later runs"] += kept + 1  # + the metric batch
        assert kept == produced - 1
        return
    if destination is None:
        tls = authority.trusted if fault == "TLS handshake fails" else None
        destination = server(kind, port, tls=tls).__enter__()
    try:
        if fault == "throttled" and kind != "otlp-grpc":
            before = len(destination.requests)
            report = _sender.deliver(state, budget=0.2)
            assert report is not None and report.held  # Retry-After: 1 s, across runs
            assert len(destination.requests) == before
        heal(kind, destination)
        deliver_until(state, lambda: spooled(state) == 0)
        # one more run delivers the report of anything dropped
        assert run_host(kind, where, ca, state, "after", **env)[:2] == (0, "done\n")
        deliver_until(state, lambda: spooled(state) == 0)
        got = arrived(kind, destination, "run")
    finally:
        destination.__exit__(None, None, None)

    rejected = expected_rejected(kind, fault, produced)
    delivered = len(got.spans) + len(got.logs) + (got.executions >= COMMANDS)
    duplicated = sum(n - 1 for n in (*got.spans.values(), *got.logs.values())) + max(
        0, round(got.executions / COMMANDS) - 1
    )
    row.delivered += delivered
    row.duplicated += duplicated
    row.dropped.update(got.dropped)
    assert got.dropped == (Counter({"rejected": rejected}) if rejected else Counter())
    assert delivered + min(rejected, produced) == produced
    assert spooled(state) == 0
    if fault != "stalls past the timeout":  # a destination that took it late has it twice
        assert duplicated == 0


# -- one signal down ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["otlp-http", "otlp-grpc"])
def test_a_logs_outage_sends_no_accepted_span_again(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logs request fails, the traces and metrics requests succeed: what was accepted is
    written down per signal, and only the logs are sent again, however long the outage."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "lifecycle.json").write_text('{"version": "1.0"}')
    port = free_port()
    where = endpoint(kind, "http", "127.0.0.1", port)
    runs = figures.scale(3, 6)
    with server(kind, port) as destination:
        fail_with(kind, destination, "unavailable")
        destination.failing = {"logs"}
        results = []
        for run in range(runs):  # each run, and a later sender after it, during the outage
            results.append(run_host(kind, where, "", state, f"r{run}"))
            _sender.deliver(state, budget=BUDGET, retry_now=True)
        assert spooled(state) > 0  # the logs wait
        heal(kind, destination)
        destination.failing = None
        deliver_until(state, lambda: spooled(state) == 0)
        got = [arrived(kind, destination, f"r{run}") for run in range(runs)]
    row = figures.row("faults")
    row.cases += 1
    row.produced += runs * (2 * COMMANDS + 1)
    row.delivered += sum(len(a.spans) + len(a.logs) + (a.executions >= COMMANDS) for a in got)
    row.duplicated += sum(
        sum(n - 1 for n in (*a.spans.values(), *a.logs.values())) for a in got
    ) + sum(max(0, round(a.executions / COMMANDS) - 1) for a in got)
    row.host_failures += sum((code, out, err) != (0, "done\n", "") for code, out, err, _ in results)
    assert [(code, out, err) for code, out, err, _ in results] == [(0, "done\n", "")] * runs
    for a in got:
        assert a.spans == Counter(range(COMMANDS))  # each span once
        assert a.logs == Counter(range(COMMANDS))
        assert a.executions == COMMANDS  # the metrics once
    assert spooled(state) == 0


def test_the_grpc_exporters_answer_is_read_through_the_stub_the_sdk_keeps() -> None:
    """The OTel gRPC exporter drops the export response; phonehome wraps the stub it calls
    (``_client``, made by ``_stub``) to read ``partial_success``. Breaks if the SDK renames
    them, rather than silently counting nothing refused."""
    import phonehome
    from phonehome._core import diagnostics
    from phonehome._sender import exporters

    destination = phonehome.otlp("http://127.0.0.1:9", protocol="grpc")
    for signal in ("traces", "logs", "metrics"):
        exporter = exporters.build(destination, signal)
        assert isinstance(exporter._client, exporters._Reading), signal
        assert exporters.outcome(exporter) is exporter._phonehome_outcome
        exporter._initialize_channel_and_stub()  # a reconnection makes a new stub: read too
        assert isinstance(exporter._client, exporters._Reading), signal
        exporter.shutdown()
    assert diagnostics.errors["grpc partial_success unreadable"] == 0
