"""At scale: real runs through Rotel's own ClickHouse exporter (collector-config's gateway
file) into ClickHouse (the engine in-process behind its HTTP interface, on loopback), the
tables made by collector-config/clickhouse/tables.sql, then `phonehome insights
--clickhouse URL` on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, clean_environ, poll
from insights_data import ChDB, ClickHouseServer

from phonehome._tools.collector import Rotel
from phonehome._tools.insights import layout

CONFIG = ROOT / "collector-config"
RUNS = [["generate", "--language", "go", "--openapi", "a.yaml"], ["version"], ["fail"]]


def test_the_tables_file_is_the_layout_with_its_retention() -> None:
    assert (CONFIG / "clickhouse" / "tables.sql").read_text() == layout.clickhouse_script()


def test_runs_through_rotels_clickhouse_exporter_are_answered_by_insights(
    tmp_path: Path,
) -> None:
    from chdb import session

    chdb_session = session.Session()
    engine = ChDB(chdb_session, "otel", create=False)
    for statement in (CONFIG / "clickhouse" / "tables.sql").read_text().split(";"):
        if "CREATE" in statement:
            chdb_session.query(statement)
    try:
        with (
            ClickHouseServer(engine) as clickhouse,
            Rotel(
                None,
                config=CONFIG / "rotel" / "gateway-clickhouse.env",
                values={
                    "CLICKHOUSE_ENDPOINT": clickhouse.url,
                    "CLICKHOUSE_USER": "default",
                    "CLICKHOUSE_PASSWORD": "",
                },
                # the stand-in server reads uncompressed RowBinary (a server reads both)
                extra=["--clickhouse-exporter-compression", "none"],
            ) as gateway,
        ):
            for argv in RUNS:
                result = subprocess.run(
                    [sys.executable, str(ROOT / "examples" / "democli.py"), *argv],
                    env=clean_environ(
                        DEMOCLI_VENDOR=gateway.http_endpoint,
                        DEMOCLI_TELEMETRY_DIR=str(tmp_path / "state"),
                    ),
                    capture_output=True,
                    timeout=120,
                )
                assert result.returncode == (1 if argv == ["fail"] else 0)

            def spans() -> int:
                text = engine.query("SELECT count() FROM otel_traces FORMAT JSONCompact")
                return int(json.loads(text)["data"][0][0])

            assert poll(lambda: spans() >= len(RUNS), timeout=60), gateway.log[-2000:]
            answer = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "phonehome",
                    "insights",
                    "--clickhouse",
                    clickhouse.url,
                    "--product",
                    "democli",
                    "--since",
                    "1d",
                    "--json",
                ],
                env=clean_environ(),
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        chdb_session.close()
    assert answer.returncode == 0, answer.stderr
    report = json.loads(answer.stdout)
    assert report["engine"] == "clickhouse"
    assert {c["name"]: (c["runs"], c["failures"]) for c in report["commands"]} == {
        "generate": (1, 0),
        "version": (1, 0),
        "fail": (1, 1),
    }
    assert report["installs"]["total"] == 1
    assert [v["version"] for v in report["versions"]] == ["1.4.0"]
