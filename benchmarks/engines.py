#!/usr/bin/env python3
"""DuckDB against chDB for the embedded store: the figures of docs/insights.md, "Why DuckDB".

    .venv/bin/python benchmarks/engines.py          # both are in the dev extra

For each engine, in fresh processes: the import time; 1,000,000 spans in the exporter's
layout (generated in SQL), the time to insert them, a few core questions over them and the
store's size; and 200 single-row commits followed by kill -9, then what a new process finds.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

SPANS = 1_000_000
BUILD = {
    "duckdb": f"""
import duckdb, time, sys
c = duckdb.connect(sys.argv[1])
c.execute('SET enable_progress_bar = false')
c.execute('''CREATE TABLE otel_traces(Timestamp TIMESTAMP_NS, TraceId VARCHAR, SpanId VARCHAR,
  ServiceName VARCHAR, SpanName VARCHAR, ResourceAttributes MAP(VARCHAR, VARCHAR),
  SpanAttributes MAP(VARCHAR, VARCHAR), Duration UBIGINT)''')
t = time.time()
c.execute('''INSERT INTO otel_traces SELECT TIMESTAMP '2026-01-01' + to_microseconds(i * 2000)::INTERVAL,
  md5(i::VARCHAR), substr(md5((i * 7)::VARCHAR), 1, 16), 'demo', 'cmd' || (i % 20),
  map(['device.id', 'service.version', 'os.type', 'host.arch'], ['dev' || (i % 5000), '1.' || (i % 7), 'linux', 'amd64']),
  map(['command.name', 'command.result'], ['cmd' || (i % 20), CASE WHEN i % 13 = 0 THEN 'failure' ELSE 'success' END]),
  (i % 1000) * 1000000 FROM range({SPANS}) t(i)''')
print('insert', round(time.time() - t, 2))
t = time.time()
c.execute('''CREATE TEMP TABLE r AS SELECT DISTINCT TraceId, SpanId, Duration d, ResourceAttributes['device.id'] inst,
  ResourceAttributes['service.version'] v, SpanAttributes['command.name'] cmd, SpanAttributes['command.result'] res
  FROM otel_traces WHERE ServiceName = 'demo' ''')
c.execute("SELECT cmd, count(*), count(DISTINCT inst), sum(CASE WHEN res = 'failure' THEN 1 ELSE 0 END), quantile_disc(d, 0.5), quantile_disc(d, 0.95) FROM r GROUP BY cmd").fetchall()
c.execute('SELECT v, count(DISTINCT inst) FROM r GROUP BY v').fetchall()
c.execute('SELECT count(DISTINCT inst) FROM r').fetchall()
print('questions', round(time.time() - t, 2))
""",
    "chdb": f"""
import time, sys
from chdb import session
s = session.Session(sys.argv[1])
s.query('''CREATE TABLE otel_traces(Timestamp DateTime64(9), TraceId String, SpanId String,
  ServiceName LowCardinality(String), SpanName LowCardinality(String),
  ResourceAttributes Map(LowCardinality(String), String), SpanAttributes Map(LowCardinality(String), String),
  Duration UInt64) ENGINE = MergeTree ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))''')
t = time.time()
s.query('''INSERT INTO otel_traces SELECT toDateTime64('2026-01-01 00:00:00', 9) + toIntervalMillisecond(number * 2),
  hex(MD5(toString(number))), substr(hex(MD5(toString(number * 7))), 1, 16), 'demo', concat('cmd', toString(number % 20)),
  map('device.id', concat('dev', toString(number % 5000)), 'service.version', concat('1.', toString(number % 7)), 'os.type', 'linux', 'host.arch', 'amd64'),
  map('command.name', concat('cmd', toString(number % 20)), 'command.result', if(number % 13 = 0, 'failure', 'success')),
  (number % 1000) * 1000000 FROM numbers({SPANS})''')
print('insert', round(time.time() - t, 2))
base = '''(SELECT DISTINCT TraceId, SpanId, Duration d, ResourceAttributes['device.id'] inst, ResourceAttributes['service.version'] v,
  SpanAttributes['command.name'] cmd, SpanAttributes['command.result'] res FROM otel_traces WHERE ServiceName = 'demo')'''
t = time.time()
s.query(f"SELECT cmd, count(), count(DISTINCT inst), sum(if(res = 'failure', 1, 0)), quantileExactLow(0.5)(d), quantileExactLow(0.95)(d) FROM {{base}} GROUP BY cmd", 'CSV')
s.query(f'SELECT v, count(DISTINCT inst) FROM {{base}} GROUP BY v', 'CSV')
s.query(f'SELECT count(DISTINCT inst) FROM {{base}}', 'CSV')
print('questions', round(time.time() - t, 2))
""",
}
KILL = {
    "duckdb": """
import duckdb, os, signal, sys
c = duckdb.connect(sys.argv[1]); c.execute('CREATE TABLE t(i INT)')
for i in range(200):
    c.execute('BEGIN'); c.execute('INSERT INTO t VALUES (?)', [i]); c.execute('COMMIT')
os.kill(os.getpid(), signal.SIGKILL)
""",
    "chdb": """
import os, signal, sys
from chdb import session
s = session.Session(sys.argv[1]); s.query('CREATE TABLE t(i Int32) ENGINE = MergeTree ORDER BY i')
for i in range(200):
    s.query(f'INSERT INTO t VALUES ({i})')
os.kill(os.getpid(), signal.SIGKILL)
""",
}
COUNT = {
    "duckdb": "import duckdb, sys; print(duckdb.connect(sys.argv[1]).execute('SELECT count(*) FROM t').fetchall()[0][0])",
    "chdb": "import sys; from chdb import session; print(str(session.Session(sys.argv[1]).query('SELECT count() FROM t', 'CSV')).strip())",
}


def python(code: str, *argv: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True
    ).stdout


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    for engine in ("duckdb", "chdb"):
        timed = (
            f"import time; t = time.perf_counter(); import {engine}; print(time.perf_counter() - t)"
        )
        imports = [float(python(timed)) for _ in range(3)]
        with tempfile.TemporaryDirectory() as name:
            store = Path(name) / "store"
            built = python(BUILD[engine], str(store)).split()
            killed = Path(name) / "killed"
            python(KILL[engine], str(killed))
            kept = python(COUNT[engine], str(killed)).strip()
            print(
                f"{engine}: import {min(imports):.2f} s; {' '.join(built)} s over "
                f"{SPANS} spans; store {size(store) / 1e6:.0f} MB; after kill -9, {kept} of 200 "
                "committed rows"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
