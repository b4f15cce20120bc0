"""Datasets for the insights tests: a model of runs and events, its OTLP requests (the wire
form Rotel forwards), ClickHouse in-process (chDB) as the second engine, and ground truths
computed from the model alone."""

from __future__ import annotations

import datetime
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_DELTA

from phonehome._tools.insights import layout
from phonehome._tools.insights.engines import ClickHouseRows

DAY = 86_400 * 10**9
AGENTS = {"claude-code", "cursor"}


@dataclass(frozen=True)
class Run:
    install: str
    session: str
    version: str
    os: str
    arch: str
    python: str
    automation: str
    command: str
    result: str
    error: str
    start: int
    duration: int
    span_id: bytes
    trace_id: bytes


@dataclass(frozen=True)
class Event:
    install: str
    session: str
    version: str
    automation: str
    name: str
    time: int


@dataclass(frozen=True)
class Dropped:
    install: str
    session: str
    reason: str
    count: int
    time: int


@dataclass
class Dataset:
    product: str
    runs: list[Run] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, list):
        any_value = AnyValue()
        any_value.array_value.values.extend(AnyValue(string_value=str(v)) for v in value)
        return KeyValue(key=key, value=any_value)
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _resource(
    product: str,
    install: str,
    session: str,
    version: str = "",
    os: str = "",
    arch: str = "",
    python: str = "",
    automation: str = "",
) -> list[KeyValue]:
    values = {
        "service.name": product,
        "service.version": version,
        "os.type": os,
        "host.arch": arch,
        "process.runtime.version": python,
        "device.id": install,
        "service.instance.id": session,
        "session.id": session,
    }
    if automation:
        values["phonehome.automation"] = automation
    return [_kv(k, v) for k, v in values.items() if v]


def traces_body(product: str, runs: list[Run]) -> bytes:
    request = ExportTraceServiceRequest()
    for run in runs:
        spans = request.resource_spans.add()
        spans.resource.attributes.extend(
            _resource(
                product,
                run.install,
                run.session,
                run.version,
                run.os,
                run.arch,
                run.python,
                run.automation,
            )
        )
        span = spans.scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = run.trace_id, run.span_id, run.command
        span.start_time_unix_nano, span.end_time_unix_nano = run.start, run.start + run.duration
        attributes = {
            "command.name": run.command,
            "command.result": run.result,
            "command.params": ["language"],
        }
        if run.error:
            attributes["error.type"] = run.error
            span.status.code = 2
        span.attributes.extend(_kv(k, v) for k, v in attributes.items())
    return request.SerializeToString()


def logs_body(product: str, events: list[Event]) -> bytes:
    request = ExportLogsServiceRequest()
    for event in events:
        logs = request.resource_logs.add()
        logs.resource.attributes.extend(
            _resource(
                product, event.install, event.session, event.version, automation=event.automation
            )
        )
        record = logs.scope_logs.add().log_records.add()
        record.time_unix_nano = record.observed_time_unix_nano = event.time
        record.severity_number, record.severity_text = 9, "INFO"
        record.event_name = event.name
        record.attributes.append(_kv("event.name", event.name))
    return request.SerializeToString()


def metrics_body(product: str, reports: list[Dropped], sent_at: int) -> bytes:
    """``phonehome.spool.dropped`` as the sender makes it; ``sent_at`` differs on a resend."""
    request = ExportMetricsServiceRequest()
    for report in reports:
        metrics = request.resource_metrics.add()
        metrics.resource.attributes.extend(_resource(product, report.install, report.session))
        metric = metrics.scope_metrics.add().metrics.add()
        metric.name, metric.unit = "phonehome.spool.dropped", "{record}"
        metric.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_DELTA
        metric.sum.is_monotonic = True
        point = metric.sum.data_points.add()
        point.as_int = report.count
        point.start_time_unix_nano = report.time
        point.time_unix_nano = report.time + sent_at
        point.attributes.append(_kv("reason", report.reason))
    return request.SerializeToString()


# -- ClickHouse in-process ------------------------------------------------------------------


def _time(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f".{rest:09d}"


def _json_value(kind: str, value: Any) -> Any:
    if kind == "DateTime64(9)":
        return _time(value)
    if kind == "Array(DateTime64(9))":
        return [_time(v) for v in value]
    return value


class ChDB(ClickHouseRows):
    """ClickHouse itself, in this process: the exporter's tables in a database of their own."""

    def __init__(self, session: Any, database: str, create: bool = True) -> None:
        super().__init__()
        self.session = session
        self.database = database
        session.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        for table in layout.TABLES if create else ():
            session.query(layout.clickhouse_ddl(table, database=database, ttl_days=3650))

    def insert(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        for name, found in rows.items():
            if not found:
                continue
            columns = layout.BY_NAME[name].columns
            lines = "\n".join(
                json.dumps(
                    {
                        c.name: _json_value(c.clickhouse, v)
                        for c, v in zip(columns, row, strict=True)
                    }
                )
                for row in found
            )
            self.session.query(
                f"INSERT INTO {self.database}.{name} SETTINGS "
                f"date_time_input_format='best_effort' FORMAT JSONEachRow\n{lines}"
            )

    def query(self, sql: str, database: str | None = None) -> str:
        result = self.session.query(f"USE {database or self.database}; {sql}")
        return str(result.bytes().decode())

    def drop(self) -> None:
        self.session.query(f"DROP DATABASE IF EXISTS {self.database}")


# -- ground truth -------------------------------------------------------------------------


def _human(install: str, automation: str) -> bool:
    return not automation and not install.startswith("automation-")


def _failure(result: str) -> bool:
    return result not in ("success", "usage_error", "cancelled")


def nearest_rank(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def truth(data: Dataset, since: int, until: int, funnel: tuple[str, ...] = ()) -> dict[str, Any]:
    """The figures, from the model alone (no SQL, no store)."""
    start = min(since, until - 28 * DAY)
    runs = [r for r in data.runs if start <= r.start < until]
    events = [e for e in data.events if start <= e.time < until]
    seen = [(r.install, r.start, r.automation) for r in runs] + [
        (e.install, e.time, e.automation) for e in events
    ]
    human = [(i, t) for i, t, a in seen if _human(i, a)]
    firsts: dict[str, int] = {}
    everything = [(r.install, r.start, r.automation) for r in data.runs] + [
        (e.install, e.time, e.automation) for e in data.events
    ]
    for install, moment, automation in everything:
        if moment < until and _human(install, automation):
            firsts[install] = min(moment, firsts.get(install, moment))
    installs = {
        "total": len({i for i, t in human if t >= since}),
        "new": sum(1 for t in firsts.values() if t >= since),
        **{f"active_{d}d": len({i for i, t in human if t >= until - d * DAY}) for d in (1, 7, 28)},
    }
    in_range = [r for r in runs if r.start >= since]
    commands = _commands(in_range)
    versions: dict[str, set[str]] = defaultdict(set)
    for r in in_range:
        if _human(r.install, r.automation):
            versions[r.version].add(r.install)
    for e in events:
        if e.time >= since and _human(e.install, e.automation):
            versions[e.version].add(e.install)
    errors = Counter(r.error for r in in_range if r.error)
    runners: dict[str, int] = defaultdict(int)
    for r in in_range:
        kind = (
            "human"
            if _human(r.install, r.automation)
            else ("agent" if r.automation in AGENTS or r.install[11:] in AGENTS else "ci")
        )
        runners[kind] += 1
    named: dict[str, int] = defaultdict(int)
    for e in events:
        if e.time >= since:
            named[e.name] += 1
    reports = {
        (d.install, d.session, d.reason, d.count) for d in data.dropped if since <= d.time < until
    }
    dropped: dict[str, int] = defaultdict(int)
    for _, _, reason, count in reports:
        dropped[reason] += count
    found = {
        "installs": installs,
        "commands": commands,
        "versions": {v: len(i) for v, i in versions.items()},
        "errors": dict(errors),  # at most 10 types: all of them
        "runners": dict(runners),
        "events": dict(named),
        "dropped": dict(dropped),
        "delivered": len(in_range) + sum(1 for e in events if e.time >= since),
    }
    if funnel:
        found["funnel"] = _funnel(data, since, until, funnel)
    return found


def _commands(in_range: list[Run]) -> dict[str, dict[str, Any]]:
    commands = {}
    for name in {r.command for r in in_range}:
        mine = [r for r in in_range if r.command == name]
        commands[name] = {
            "runs": len(mine),
            "failures": sum(_failure(r.result) for r in mine),
            "usage_errors": sum(r.result == "usage_error" for r in mine),
            "installs": len({r.install for r in mine if _human(r.install, r.automation)}),
            "p50_ms": round(nearest_rank([r.duration for r in mine], 0.5) / 1e6, 3),
            "p95_ms": round(nearest_rank([r.duration for r in mine], 0.95) / 1e6, 3),
        }
    return commands


def _funnel(data: Dataset, since: int, until: int, steps: tuple[str, ...]) -> list[int]:
    """Installs that did step 1, then step 2 at or after it, and so on (earliest first)."""
    reached = [0] * len(steps)
    installs = {e.install for e in data.events}
    for install in installs:
        mine = sorted(
            (e.time, e.name)
            for e in data.events
            if e.install == install and since <= e.time < until and _human(e.install, e.automation)
        )
        moment = -1
        for index, step in enumerate(steps):
            later = [t for t, name in mine if name == step and t >= moment]
            if not later:
                break
            moment = later[0]
            reached[index] += 1
    return reached


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report's figures in ``truth``'s shape."""
    found = {
        "installs": report["installs"],
        "commands": {
            c["name"]: {
                k: c[k]
                for k in ("runs", "failures", "usage_errors", "installs", "p50_ms", "p95_ms")
            }
            for c in report["commands"]
        },
        "versions": {v["version"]: v["installs"] for v in report["versions"]},
        "errors": {e["type"]: e["count"] for e in report["errors"]},
        "runners": {r["runner"]: r["runs"] for r in report["runners"]},
        "events": {e["name"]: e["count"] for e in report["events"]},
        "dropped": report["data_loss"]["dropped"],
        "delivered": report["data_loss"]["delivered"],
    }
    if "funnel" in report:
        found["funnel"] = [s["installs"] for s in report["funnel"]]
    return found


# -- ClickHouse's HTTP interface, served by ClickHouse in-process ----------------------------

_INSERT = re.compile(
    r"^\s*INSERT INTO\s+([\w.`\"]+)\s*\(([^)]*)\)\s*FORMAT\s+(\w+)\s*$", re.I | re.S
)


class ClickHouseServer:
    """ClickHouse's HTTP interface on 127.0.0.1, answered by chDB: a query in the body, or in
    ``?query=`` with the data in the body (how Rotel's ClickHouse exporter inserts, RowBinary
    uncompressed). ``with ClickHouseServer(engine) as s``: ``s.url``."""

    def __init__(self, engine: ChDB) -> None:
        from http.server import BaseHTTPRequestHandler, HTTPServer

        owner = self
        self.engine = engine
        self.inserted = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    self._answer(self._chunked())
                else:
                    self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def _chunked(self) -> bytes:
                parts = []
                for _ in range(1_000_000):
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if not size:
                        self.rfile.readline()
                        break
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(parts)

            def do_GET(self) -> None:
                self._answer(b"")

            def _answer(self, body: bytes) -> None:
                from urllib.parse import parse_qs, urlsplit

                params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                try:
                    text = owner.handle(params, body)
                    status = 200
                except Exception as error:
                    text, status = f"Code: 62. DB::Exception: {error}", 500
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def handle(self, params: dict[str, str], body: bytes) -> str:
        database = params.get("database", self.engine.database)
        query = params.get("query")
        if query is None:
            return self.engine.query(body.decode(), database)
        found = _INSERT.match(query)
        if not found or not body:
            return self.engine.query(query, database)
        table, columns, form = found.group(1).replace("`", ""), found.group(2), found.group(3)
        names = [c.strip().strip('`"') for c in columns.split(",")]
        schema, _, name = table.rpartition(".")
        types = dict(
            json.loads(line)
            for line in self.engine.query(
                f"SELECT name, type FROM system.columns WHERE database = '{schema or database}'"
                f" AND table = '{name}' FORMAT JSONCompactEachRow",
                database,
            ).splitlines()
        )
        structure = ", ".join(f"`{n}` {types[n]}" for n in names)
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".bin") as data:
            data.write(body)
            data.flush()
            quoted = ", ".join(f"`{n}`" for n in names)
            self.engine.query(
                f"INSERT INTO {schema or database}.{name} ({quoted}) SELECT * FROM "
                f"file('{data.name}', '{form}', '{structure}')",
                database,
            )
        self.inserted += 1
        return ""

    def __enter__(self) -> ClickHouseServer:
        import threading

        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
