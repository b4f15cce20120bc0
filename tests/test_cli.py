"""The phonehome command, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, clean_environ

DEMOCLI = ROOT / "examples" / "democli.py"


def phonehome(*argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phonehome", *argv],
        env=clean_environ(**environ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def democli(state: Path, *argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMOCLI), *argv],
        env=clean_environ(DEMOCLI_TELEMETRY_DIR=str(state), **environ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_help_reads_well() -> None:
    result = phonehome("--help")
    assert result.returncode == 0
    for command in ("status", "enable", "disable", "reset-id", "preview", "flush", "schema"):
        assert f"  {command} " in result.stdout
    assert "Manage the telemetry of a product" in result.stdout
    assert phonehome("schema", "--help").stdout.count("  check ") == 1


def test_a_missing_product_is_a_usage_error() -> None:
    result = phonehome("status")
    assert result.returncode == 2
    assert "name the product" in result.stderr and "Traceback" not in result.stderr


def test_status_names_the_decision_the_destinations_and_the_state(tmp_path: Path) -> None:
    with OTLPReceiver() as vendor:
        democli(
            tmp_path,
            "version",
            DEMOCLI_VENDOR=vendor.url,
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
            OTEL_EXPORTER_OTLP_HEADERS="api-key=USER-SECRET-123",
        )
        result = phonehome(
            "-p", "democli", "--state-dir", str(tmp_path), "status", DEMOCLI_TELEMETRY_LEVEL="error"
        )
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        key, value = line.split("  ", 1)
        rows[key.strip()] = value.strip()
    assert rows["telemetry"] == "on, decided by the product's default (opt-out)"
    assert rows["level"] == "error"
    assert rows["vendor destination"] == f"otlp http/protobuf {vendor.url}"
    assert rows["user destination"] == "otlp from OTEL_EXPORTER_OTLP_* variables"
    assert "USER-SECRET-123" not in result.stdout
    assert rows["state"].startswith(str(tmp_path))


def test_disable_then_enable_from_the_command_line(tmp_path: Path) -> None:
    off = phonehome("-p", "democli", "--state-dir", str(tmp_path), "disable")
    assert off.returncode == 0 and "off" in off.stdout
    status = phonehome("-p", "democli", "--state-dir", str(tmp_path), "status")
    assert "off, decided by the user's stored choice" in status.stdout
    with OTLPReceiver() as vendor:
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url)
        assert vendor.requests == []
        phonehome("-p", "democli", "--state-dir", str(tmp_path), "enable")
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url)
        assert vendor.wait_until(lambda: vendor.spans, timeout=20)


def test_preview_shows_what_waits_and_the_ledger_what_was_sent(tmp_path: Path) -> None:
    democli(
        tmp_path,
        "generate",
        "--language",
        "go",
        "--openapi",
        "/home/alice/a.yaml",
        DEMOCLI_VENDOR="http://127.0.0.1:9",
        DEMOCLI_TELEMETRY_MODE="ci",
    )
    waiting = phonehome("-p", "democli", "--state-dir", str(tmp_path), "preview")
    # exactly what the vendor will get: the span, the install event, the command's metrics
    assert "waiting to be sent: 4 record(s)" in waiting.stdout
    assert "log install (version=1.4.0, channel=unknown, event.name=install)" in waiting.stdout
    assert "span generate (command.name=generate" in waiting.stdout
    assert "metric democli.command.executions (command.name=generate" in waiting.stdout
    assert "alice" not in waiting.stdout
    with OTLPReceiver() as vendor:
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_MODE="ci")
        assert vendor.spans
    sent = phonehome("-p", "democli", "--state-dir", str(tmp_path), "preview")
    assert "sent (newest last" in sent.stdout and "1 span(s)" in sent.stdout


def test_flush_sends_what_waits(tmp_path: Path) -> None:
    with OTLPReceiver() as vendor:
        vendor.status = 503
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_MODE="ci")
        vendor.status = 200
        result = phonehome("-p", "democli", "--state-dir", str(tmp_path), "flush")
        # the span, and the toolkit's install event of this first run
        assert result.stdout.startswith("sent 2 record(s)"), result.stdout + result.stderr
        assert [s.name for s in vendor.spans] == ["version"]


def test_reset_id(tmp_path: Path) -> None:
    democli(tmp_path, "version", DEMOCLI_VENDOR="http://127.0.0.1:9", DEMOCLI_TELEMETRY_MODE="ci")
    assert (tmp_path / "install-id").exists()
    assert phonehome("-p", "democli", "--state-dir", str(tmp_path), "reset-id").returncode == 0
    assert not (tmp_path / "install-id").exists()


def test_schema_doc_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "collect.md"
    result = phonehome(
        "schema",
        "doc",
        str(ROOT / "examples" / "democli.toml"),
        "--product",
        "democli",
        "-o",
        str(out),
    )
    assert result.returncode == 0
    page = out.read_text()
    assert page.startswith("# What democli collects")
    assert "| command `generate` | `openapi` | string | whether given |" in page
    bad = tmp_path / "bad.toml"
    bad.write_text("[attributes.x]\npolicy = 'maybe'\n")
    failed = phonehome("schema", "doc", str(bad))
    assert failed.returncode == 1
    problem = "attributes.x: policy 'maybe' is not one of raw, enum, hash, presence, drop"
    assert failed.stderr.strip() == f"Error: {bad}: {problem}"


def test_schema_check_passes_clean_code_and_fails_undeclared(tmp_path: Path) -> None:
    ok = phonehome(
        "schema",
        "check",
        "--",
        sys.executable,
        str(DEMOCLI),
        "generate",
        "--language",
        "go",
        "--openapi",
        "a.yaml",
        DEMOCLI_VENDOR="http://127.0.0.1:9",
        DEMOCLI_TELEMETRY_DIR=str(tmp_path),
    )
    assert ok.returncode == 0 and "no undeclared fields" in ok.stdout
    assert not list(tmp_path.glob("spool/*.seg"))  # nothing written while checking
    leaky = tmp_path / "leaky.py"
    leaky.write_text(
        "import phonehome\n"
        "with phonehome.instrument('leaky', vendor='http://127.0.0.1:9') as t:\n"
        "    t.event('signup', {'email': 'a@b.example'})\n"
    )
    bad = phonehome(
        "schema",
        "check",
        "--",
        sys.executable,
        str(leaky),
        LEAKY_TELEMETRY_DIR=str(tmp_path / "leaky"),
    )
    assert bad.returncode == 1
    assert "undeclared: event 'signup': attribute 'email'" in bad.stderr


def test_the_privacy_doc_carries_the_current_generated_page() -> None:
    from phonehome import Schema

    page = Schema.from_toml(ROOT / "examples" / "democli.toml").doc("democli")
    doc = (ROOT / "docs" / "privacy.md").read_text()
    assert page.replace("# What", "### What", 1).strip() in doc
