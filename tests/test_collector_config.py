"""collector-config/: the contrib YAML files are well formed, the Rotel files run for real."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import phonehome
from phonehome.testing import OTLPReceiver, Rotel, free_port
from tests.conftest import ROOT, clean_environ

CONFIG = ROOT / "collector-config"
CONTRIB = sorted((CONFIG / "otelcol").glob("*.yaml"))
ROTEL = sorted((CONFIG / "rotel").glob("*.env"))
KNOWN = {
    "receivers": {"otlp"},
    "processors": {
        "memory_limiter",
        "batch",
        "redaction",
        "resource",
        "attributes",
        "transform",
        "filter",
    },
    "exporters": {"otlp", "otlphttp", "azuremonitor", "loadbalancing", "debug", "clickhouse"},
    "connectors": {"routing"},
    "extensions": {"health_check", "pprof", "zpages"},
}


@pytest.mark.parametrize("path", CONTRIB, ids=lambda p: p.name)
def test_every_contrib_pipeline_uses_declared_components_of_known_kinds(path: Path) -> None:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    for section, kinds in KNOWN.items():
        for name in config.get(section) or {}:
            assert name.split("/")[0] in kinds, f"{path.name}: unknown {section} {name}"
    connectors = set(config.get("connectors") or {})
    pipelines = config["service"]["pipelines"]
    assert pipelines
    for pipeline, spec in pipelines.items():
        assert pipeline.split("/")[0] in ("traces", "metrics", "logs")
        for role, section in (
            ("receivers", "receivers"),
            ("processors", "processors"),
            ("exporters", "exporters"),
        ):
            for name in spec.get(role, []):
                declared = set(config.get(section) or {}) | (
                    connectors if role != "processors" else set()
                )
                assert name in declared, f"{path.name}: {pipeline} uses undeclared {name}"
        assert spec.get("receivers") and spec.get("exporters")
    for extension in config["service"].get("extensions", []):
        assert extension in (config.get("extensions") or {})


@pytest.mark.parametrize("path", CONTRIB + ROTEL, ids=lambda p: p.name)
def test_every_placeholder_is_documented_in_the_header(path: Path) -> None:
    text = path.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    placeholders = set(re.findall(r"\$\{(?:env:)?([A-Z_][A-Z0-9_]*)\}", body))
    assert placeholders, f"{path.name} has no placeholders to document"
    for name in placeholders:
        assert name in header, f"{path.name}: {name} is not documented in the header"


def test_the_rotel_agent_and_gateway_run_end_to_end(state_dir: Path) -> None:
    with (
        OTLPReceiver() as backend,
        Rotel(
            None, config=CONFIG / "rotel" / "gateway.env", values={"FORWARD_TO": backend.url}
        ) as gateway,
        Rotel(
            None,
            config=CONFIG / "rotel" / "agent.env",
            values={"GATEWAY_GRPC": gateway.grpc_endpoint},
        ) as agent,
    ):
        with (
            phonehome.instrument(
                "democli", vendor=agent.http_endpoint, state_dir=state_dir, mode="ci"
            ) as t,
            t.command("generate"),
        ):
            pass
        assert backend.wait_until(lambda: backend.spans, timeout=20)
    assert backend.spans[0].name == "generate"
    assert backend.spans[0].resource["service.name"] == "democli"


def test_a_missing_value_names_the_placeholder() -> None:
    with pytest.raises(ValueError, match=r"\$\{FORWARD_TO\} has no value"):
        Rotel(None, config=CONFIG / "rotel" / "gateway.env").start()


def test_phonehome_collector_forwards_until_stopped(state_dir: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    with OTLPReceiver() as backend:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phonehome",
                "collector",
                "--forward-to",
                backend.url,
                "--http-port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
            ],
            env=clean_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith(f"collector listening on http://127.0.0.1:{http_port}")
            with (
                phonehome.instrument(
                    "democli",
                    vendor=f"http://127.0.0.1:{http_port}",
                    state_dir=state_dir,
                    mode="ci",
                ) as t,
                t.command("x"),
            ):
                pass
            assert backend.wait_until(lambda: backend.spans, timeout=20)
        finally:
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=20)
        assert process.returncode == 0 and "collector stopped" in out
