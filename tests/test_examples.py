"""The examples run as a user would run them, and what they send is checked on the wire."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, clean_environ

DEMOCLI = ROOT / "examples" / "democli.py"


def democli(*argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMOCLI), *argv],
        env=clean_environ(**environ),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


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
    assert "vendor (through Rotel): 5 spans" in out
    assert "user's own destination: 5 spans" in out
    assert out.count("generate/success=3") == 2 and out.count("fail/failure=1") == 2
    assert out.count("language=go") == 2
    assert "petstore" not in out.split("vendor (through Rotel)")[1]
