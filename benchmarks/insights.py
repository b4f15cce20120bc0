#!/usr/bin/env python3
"""The store and `phonehome insights` at scale; the figures of docs/insights.md.

    make bench-insights                       # 1,000,000 spans, 1,000 sequential runs
    .venv/bin/python benchmarks/insights.py --spans 200000 --runs 100   # quicker

Measures, all on 127.0.0.1 (every process started here is stopped at the end):
1. the store writer's intake: realistic command spans posted as OTLP/HTTP batches;
2. `phonehome insights` over those spans (the report built in-process, and the command end
   to end), median of three;
3. stored bytes per span: the DuckDB file, and the ClickHouse exporter's own table layout
   (MergeTree, ZSTD) in ClickHouse itself (chDB), from the same rows;
4. Rotel's intake as a gateway (OTLP/HTTP in, its blackhole exporter out);
5. keeping up with the sender: democli run N times in sequence against
   `phonehome collector --store`, the writer's committed rows sampled as the runs go.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from insights_data import DAY, ChDB, Run, traces_body  # noqa: E402

from phonehome._tools.collector import Rotel  # noqa: E402
from phonehome._tools.insights import otlp, report  # noqa: E402
from phonehome._tools.insights.collect import StoreWriter  # noqa: E402
from phonehome._tools.insights.engines import Embedded  # noqa: E402
from phonehome._tools.insights.questions import Range  # noqa: E402

NOW = time.time_ns()
BATCH = 2_000
COMMANDS = ["generate", "validate", "init", "login", "version", "search", "publish", "doctor"]


def spans(count: int, seed: int = 1) -> list[bytes]:
    """``count`` command spans over 28 days from 5,000 installs, as OTLP request bodies."""
    rng = random.Random(seed)
    bodies, batch = [], []
    for n in range(count):
        result = rng.choices(["success", "failure", "usage_error", "cancelled"], [90, 6, 3, 1])[0]
        install = rng.randrange(5000)
        batch.append(
            Run(
                install=f"{install:032x}",
                session=f"{rng.getrandbits(64):016x}",
                version=rng.choice(["1.2.0", "1.3.0", "1.4.0", "2.0.0"]),
                os=rng.choice(["linux", "darwin", "windows"]),
                arch=rng.choice(["amd64", "arm64"]),
                python=rng.choice(["3.10.14", "3.11.9", "3.12.4", "3.13.0"]),
                automation=rng.choices(["", "github-actions", "claude-code"], [85, 10, 5])[0],
                command=rng.choice(COMMANDS),
                result=result,
                error=""
                if result == "success"
                else rng.choice(["ValueError", "OSError", "HTTPError"]),
                start=NOW - rng.randrange(28 * DAY),
                duration=int(rng.lognormvariate(18, 1.2)),
                span_id=n.to_bytes(8, "big"),
                trace_id=rng.getrandbits(128).to_bytes(16, "big"),
            )
        )
        if len(batch) == BATCH:
            bodies.append(traces_body("bench", batch))
            batch = []
    if batch:
        bodies.append(traces_body("bench", batch))
    return bodies


def post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-protobuf"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()


def intake(store: Path, bodies: list[bytes]) -> float:
    """Spans per second committed by the store writer."""
    writer = StoreWriter(store)
    writer.start()
    try:
        started = time.perf_counter()
        for body in bodies:
            post(writer.url + "/v1/traces", body)
        return (
            sum(len(otlp.traces(b)["otel_traces"]) for b in bodies[:1])
            * len(bodies)
            / (time.perf_counter() - started)
        )
    finally:
        writer.stop()


def insights_time(store: Path) -> tuple[float, float, float]:
    """Median seconds: the report built in-process (wall, and CPU over all its threads: the
    figure that other load on the machine does not inflate); the command end to end."""
    built, cpu, command = [], [], []
    r = Range("bench", NOW - 28 * DAY, NOW + DAY)
    for _ in range(3):
        started, used = time.perf_counter(), time.process_time()
        engine = Embedded(store)
        report.build(engine, r, ("a", "b"))
        engine.close()
        built.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "phonehome",
                "insights",
                "--store",
                str(store),
                "--product",
                "bench",
                "--json",
                "--since",
                "28d",
            ],
            check=True,
            capture_output=True,
        )
        command.append(time.perf_counter() - started)
    return statistics.median(built), statistics.median(cpu), statistics.median(command)


def clickhouse_bytes(store: Path, directory: Path) -> float:
    """Bytes per span in the exporter's MergeTree table (ZSTD), in ClickHouse itself."""
    import duckdb
    from chdb import session

    parquet = directory / "spans.parquet"
    connection = duckdb.connect(str(store), read_only=True)
    connection.execute(f"COPY otel_traces TO '{parquet}' (FORMAT parquet)")
    rows = connection.execute("SELECT count(*) FROM otel_traces").fetchall()[0][0]
    connection.close()
    ch = session.Session(str(directory / "chdb"))
    ChDB(ch, "otel")
    ch.query(f"INSERT INTO otel.otel_traces SELECT * FROM file('{parquet}', Parquet)")
    ch.query("OPTIMIZE TABLE otel.otel_traces FINAL")
    size = float(
        str(
            ch.query(
                "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'otel' "
                "AND table = 'otel_traces' AND active",
                "CSV",
            )
            .bytes()
            .decode()
        ).strip()
    )
    ch.close()
    return size / rows


def gateway_intake(bodies: list[bytes], seconds: float = 5.0) -> float:
    """Spans per second Rotel takes in (OTLP/HTTP, 2,000-span batches, 4 client threads)."""
    from concurrent.futures import ThreadPoolExecutor

    with Rotel(None) as rotel:
        url = rotel.http_endpoint + "/v1/traces"
        deadline = time.perf_counter() + seconds

        def client(index: int) -> int:
            sent = 0
            while time.perf_counter() < deadline:
                post(url, bodies[(index + sent) % len(bodies)])
                sent += 1
            return sent

        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            total = sum(pool.map(client, range(4)))
        return total * BATCH / (time.perf_counter() - started)


def keep_up(runs: int, directory: Path) -> list[tuple[int, int, float]]:
    """(runs done, rows committed, seconds) every tenth of the runs, then once drained."""
    from phonehome._tools.insights.collect import StoreCollector

    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "DO_NOT_TRACK", "DEMOCLI_", "CI"))
    }
    samples = []
    with StoreCollector(directory / "runs.duckdb") as collector:
        environ.update(
            DEMOCLI_VENDOR=collector.http_endpoint,
            DEMOCLI_TELEMETRY_NOLOGO="1",
            DEMOCLI_TELEMETRY_DIR=str(directory / "state"),
        )
        started = time.perf_counter()
        for n in range(1, runs + 1):
            subprocess.run(
                [sys.executable, str(ROOT / "examples" / "democli.py"), "version"],
                env=environ,
                capture_output=True,
                check=True,
            )
            if n % max(1, runs // 10) == 0:
                samples.append((n, committed(collector.writer.url), time.perf_counter() - started))
        deadline = time.monotonic() + 60
        last = -1
        while time.monotonic() < deadline:
            now = committed(collector.writer.url)
            if now == last:
                break
            last = now
            time.sleep(2)
        samples.append((runs, last, time.perf_counter() - started))
    return samples


def committed(url: str) -> int:
    with urllib.request.urlopen(url + "/status", timeout=5) as response:
        return int(response.read())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1_000)
    args = parser.parse_args()
    figures: dict[str, object] = {"spans": args.spans}
    with tempfile.TemporaryDirectory(prefix="phonehome-bench-") as name:
        directory = Path(name)
        store = directory / "bench.duckdb"
        started = time.perf_counter()
        bodies = spans(args.spans)
        print(f"generated {args.spans} spans in {time.perf_counter() - started:.0f} s", flush=True)
        figures["writer_spans_per_s"] = round(intake(store, bodies))
        print(f"store writer intake: {figures['writer_spans_per_s']} spans/s", flush=True)
        built, cpu, command = insights_time(store)
        figures["insights_build_s"], figures["insights_command_s"] = (
            round(built, 2),
            round(command, 2),
        )
        figures["insights_build_cpu_s"] = round(cpu, 2)
        print(
            f"insights over {args.spans} spans: report {built:.2f} s ({cpu:.2f} CPU s), "
            f"command {command:.2f} s; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        figures["duckdb_bytes_per_span"] = round(store.stat().st_size / args.spans, 1)
        figures["clickhouse_bytes_per_span"] = round(clickhouse_bytes(store, directory), 1)
        print(
            f"stored bytes per span: DuckDB {figures['duckdb_bytes_per_span']}, ClickHouse "
            f"{figures['clickhouse_bytes_per_span']}",
            flush=True,
        )
        figures["rotel_spans_per_s"] = round(gateway_intake(bodies[:50]))
        print(f"Rotel intake: {figures['rotel_spans_per_s']} spans/s", flush=True)
        if args.runs:
            samples = keep_up(args.runs, directory)
            figures["keep_up"] = samples
            for runs, rows, seconds in samples:
                print(f"  after {runs:>5} runs ({seconds:6.1f} s): {rows} rows committed")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
