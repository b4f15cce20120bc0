"""The embedded store behind the real collector: real democli runs through the spool, the
sender and Rotel into the store, then ``phonehome insights`` on it and on ClickHouse's HTTP
interface; the writer killed mid-stream; bad input as one line each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, clean_environ, poll
from insights_data import ChDB

from phonehome._tools.admin import preview
from phonehome._tools.collector import free_port
from phonehome._tools.insights import otlp
from phonehome._tools.insights.collect import StoreCollector

PHONEHOME = [sys.executable, "-m", "phonehome"]
DEMOCLI = [sys.executable, str(ROOT / "examples" / "democli.py")]
RUNS = [
    ["generate", "--language", "go", "--openapi", "a.yaml"],
    ["version"],
    ["fail"],
    ["generate", "--language", "python", "--openapi", "b.yaml"],
]


def _run(argv: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=clean_environ(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _one_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    """``phonehome collector --store`` as a user runs it, stopped with Ctrl-C (SIGINT)."""
    store, port = tmp_path / "telemetry.duckdb", free_port()
    process = subprocess.Popen(
        [
            *PHONEHOME,
            "collector",
            "--store",
            str(store),
            "--http-port",
            str(port),
            "--grpc-port",
            str(free_port()),
        ],
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a failed test stops Rotel and the writer with it
    )
    assert process.stdout is not None
    assert "storing into" in process.stdout.readline()
    yield process, store, port
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def test_real_runs_land_in_the_store_and_every_answer_counts_them(
    collector: tuple[subprocess.Popen[str], Path, int], tmp_path: Path
) -> None:
    process, store, port = collector
    states = [tmp_path / "alice", tmp_path / "bob"]
    for state in states:
        for argv in RUNS:
            _run(
                [*DEMOCLI, *argv],
                DEMOCLI_VENDOR=f"http://127.0.0.1:{port}",
                DEMOCLI_TELEMETRY_DIR=str(state),
            )
    # the store is busy while the collector runs: one line says so
    _one_line(
        _run([*PHONEHOME, "insights", "--store", str(store), "--product", "democli"]),
        "in use by a running collector",
    )
    assert poll(lambda: all(not preview(s)["waiting"] for s in states), timeout=60)
    process.send_signal(signal.SIGINT)  # Ctrl-C: what Rotel acknowledged must be stored
    assert process.wait(timeout=30) == 0
    result = _run(
        [
            *PHONEHOME,
            "insights",
            "--store",
            str(store),
            "--product",
            "democli",
            "--json",
            "--since",
            "1d",
        ]
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    expected: dict[str, dict[str, int]] = {}
    for argv in RUNS * len(states):
        item = expected.setdefault(argv[0], {"runs": 0, "failures": 0})
        item["runs"] += 1
        item["failures"] += argv[0] == "fail"
    assert {
        c["name"]: {"runs": c["runs"], "failures": c["failures"]} for c in report["commands"]
    } == expected
    assert report["installs"]["total"] == report["installs"]["new"] == len(states)
    assert report["installs"]["active_1d"] == len(states)
    assert [(v["version"], v["installs"]) for v in report["versions"]] == [("1.4.0", 2)]
    assert {e["type"] for e in report["errors"]} == {"__main__.DemoError"}
    assert report["data_loss"]["dropped_total"] == 0
    html = tmp_path / "report.html"
    shown = _run(
        [*PHONEHOME, "insights", "--store", str(store), "--product", "democli", "--html", str(html)]
    )
    page = html.read_text()
    assert shown.returncode == 0 and "<svg" in page
    generate = next(c for c in report["commands"] if c["name"] == "generate")
    assert f"<td>{generate['p95_ms']:.1f}</td>" in page  # milliseconds, not a percentage
    text = _run([*PHONEHOME, "insights", "--store", str(store), "--product", "democli"])
    assert "generate" in text.stdout and "Weekly retention" in text.stdout


def _spans(count: int, first: int) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    def send(endpoint: str) -> None:
        provider = TracerProvider(
            resource=Resource({"service.name": "p", "device.id": "d"}), shutdown_on_exit=False
        )
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=10))
        )
        tracer = provider.get_tracer("t")
        for n in range(first, first + count):
            with tracer.start_as_current_span("c", attributes={"command.name": f"c{n}"}):
                pass
        provider.shutdown()

    return send


def _committed(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(url + "/status", timeout=5) as response:
        return int(response.read())


def test_a_killed_writer_keeps_what_it_committed_and_rotel_holds_the_rest(
    tmp_path: Path,
) -> None:
    """kill -9 of the writer between requests: its commits survive, Rotel retries what it
    cannot deliver, the restarted writer takes it. (A request in flight at the kill is
    dropped by this Rotel: docs/insights.md, "What a crash can lose".)"""
    import duckdb

    store = tmp_path / "store.duckdb"
    with StoreCollector(store) as collector:
        _spans(40, 0)(collector.http_endpoint)
        assert poll(lambda: _committed(collector.writer.url) == 40, timeout=30)
        pid = collector.writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        # between requests: gone before Rotel sends more (a batch in flight at the kill would
        # be lost, as documented; sending at once let Rotel's next batch meet a dying writer)
        assert poll(lambda: not collector.writer.alive(), timeout=30)
        _spans(40, 40)(collector.http_endpoint)  # Rotel holds these until a writer answers
        assert poll(lambda: (collector.watch(), collector.writer.alive())[1], timeout=30)
        assert collector.writer.restarts == 1
        _spans(20, 80)(collector.http_endpoint)
    connection = duckdb.connect(str(store), read_only=True)
    names = connection.execute(
        "SELECT SpanAttributes['command.name'], count(*) FROM otel_traces GROUP BY 1"
    ).fetchall()
    connection.close()
    missing = set(range(100)) - {int(n[1:]) for n, _ in names}
    assert not missing, sorted(missing)


class _ClickHouseHTTP(BaseHTTPRequestHandler):
    """ClickHouse's HTTP interface (POST a query, get its answer), served by chDB."""

    engine: ChDB

    def do_POST(self) -> None:
        from urllib.parse import parse_qs, urlsplit

        sql = self.rfile.read(int(self.headers["Content-Length"])).decode()
        database = parse_qs(urlsplit(self.path).query).get("database", ["default"])[0]
        try:
            body, status = self.engine.query(sql, database).encode(), 200
        except Exception as error:
            body, status = f"Code: 62. DB::Exception: {error}".encode(), 500
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_clickhouse_url_gives_the_stores_answers_and_bad_input_is_one_line(
    tmp_path: Path,
) -> None:
    from chdb import session
    from insights_data import Run, traces_body

    from phonehome._tools.insights.store import Store

    runs = [
        Run(
            f"i{n % 3}",
            "s",
            "1.0",
            "linux",
            "amd64",
            "3.12.1",
            "",
            "generate",
            "failure" if n % 4 == 0 else "success",
            "E" if n % 4 == 0 else "",
            1_790_000_000 * 10**9 + n * 10**9,
            n * 10**6,
            n.to_bytes(8, "big"),
            bytes(16),
        )
        for n in range(1, 30)
    ]
    body = traces_body("demo", runs)
    path = tmp_path / "store.duckdb"
    store = Store(path)
    store.insert(otlp.traces(body))
    store.close()
    chdb_session = session.Session()
    handler = type("H", (_ClickHouseHTTP,), {"engine": ChDB(chdb_session, "otel")})
    handler.engine.insert(otlp.traces(body))
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        window = ["--product", "demo", "--since", "2026-09-01", "--until", "2026-10-01", "--json"]
        on_store = _run([*PHONEHOME, "insights", "--store", str(path), *window])
        on_server = _run([*PHONEHOME, "insights", "--clickhouse", url, *window])
        assert on_store.returncode == on_server.returncode == 0, on_server.stderr
        assert json.loads(on_store.stdout)["commands"][0]["runs"] == len(runs)
        assert {**json.loads(on_server.stdout), "engine": "duckdb"} == json.loads(on_store.stdout)
        _one_line(
            _run([*PHONEHOME, "insights", "--clickhouse", url + "?database=nope", *window]),
            "--clickhouse",
            "HTTP 500",
        )
    finally:
        server.shutdown()
        server.server_close()
        chdb_session.close()
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("hello")
    cases = [
        (["--store", str(not_a_store), "--product", "demo"], "not a phonehome store"),
        (["--store", str(tmp_path / "missing.duckdb"), "--product", "demo"], "no such file"),
        (
            ["--clickhouse", f"http://127.0.0.1:{free_port()}/", "--product", "demo"],
            "does not answer",
        ),
        (["--store", str(path), "--product", "nope"], "--product nope: no telemetry"),
        (
            [
                "--store",
                str(path),
                "--product",
                "demo",
                "--since",
                "2020-01-01",
                "--until",
                "2020-02-01",
            ],
            "nothing between",
        ),
        (
            [
                "--store",
                str(path),
                "--product",
                "demo",
                "--since",
                "2026-10-01",
                "--until",
                "2026-09-01",
            ],
            "is not before --until",
        ),
        (["--store", str(path), "--product", "demo", "--since", "last tuesday"], "--since"),
        (["--store", str(path), "--product", "demo", "--funnel", ","], "--funnel"),
    ]
    for arguments, fragment in cases:
        _one_line(_run([*PHONEHOME, "insights", *arguments]), fragment)
    other = tmp_path / "other.duckdb"
    import duckdb

    duckdb.connect(str(other)).execute("CREATE TABLE orders (id INTEGER)").close()
    for store, fragment in (
        (not_a_store, "not a phonehome store"),
        (other, "not a phonehome store"),
        (tmp_path / "missing" / "x.duckdb", "No such file"),
    ):
        _one_line(
            _run(
                [
                    *PHONEHOME,
                    "collector",
                    "--store",
                    str(store),
                    "--http-port",
                    str(free_port()),
                    "--grpc-port",
                    str(free_port()),
                ]
            ),
            fragment,
        )
    both = _run(
        [*PHONEHOME, "collector", "--store", str(path), "--forward-to", "http://127.0.0.1:9/"]
    )
    assert both.returncode == 2 and "drop --forward-to" in both.stderr
