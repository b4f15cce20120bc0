"""The phonehome command, run as a user runs it: every message one line, no traceback."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonehome._spool.lock import try_lock, unlock
from phonehome._tools import cli
from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, clean_environ, poll

DEMOCLI = ROOT / "examples" / "democli.py"


PHONEHOME = (sys.executable, "-m", "phonehome")


def phonehome(*argv: str, cwd: Path = ROOT, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PHONEHOME, *argv],
        env=clean_environ(**environ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
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


def one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The one line a refused command prints: its exit code, no traceback, the words."""
    assert result.returncode == code, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr.strip()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rows(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        key, value = line.split("  ", 1)
        found[key.strip()] = value.strip()
    return found


# -- the command line itself ---------------------------------------------------------------------
def test_help_lists_every_subcommand_with_its_line() -> None:
    result = phonehome("--help")
    assert result.returncode == 0
    for command in cli.SUBCOMMANDS:
        assert f"    {command.name} " in result.stdout, command.name
    assert "Manage the telemetry of products built on phonehome" in result.stdout
    assert "  check " in phonehome("schema", "--help").stdout


def test_the_command_imports_no_cli_framework() -> None:
    """`phonehome` must not make click (or anything else) a dependency of every host CLI."""
    code = (
        "import sys; from phonehome._tools import cli; cli.parser();"
        "print(sorted(m for m in ('click', 'typer', 'rotel') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_options_go_before_or_after_the_subcommand(tmp_path: Path) -> None:
    democli(tmp_path, "version", DEMOCLI_VENDOR="http://127.0.0.1:9", DEMOCLI_TELEMETRY_MODE="ci")
    before = phonehome("-p", "democli", "--state-dir", str(tmp_path), "status")
    after = phonehome("status", "-p", "democli", "--state-dir", str(tmp_path))
    mixed = phonehome("--state-dir", str(tmp_path), "status", "--product", "democli")
    assert before.returncode == after.returncode == mixed.returncode == 0, after.stderr
    assert rows(before.stdout)["telemetry"] == rows(after.stdout)["telemetry"]
    assert rows(mixed.stdout)["state"].startswith(str(tmp_path))


def test_a_missing_product_is_a_usage_error_naming_the_known_ones(tmp_path: Path) -> None:
    state_home = tmp_path / "xdg"
    (state_home / "phonehome" / "democli").mkdir(parents=True)
    line = one_line(phonehome("status", XDG_STATE_HOME=str(state_home)), 2, "-p NAME")
    assert "known on this machine: democli" in line


def test_an_unknown_product_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    state_home = tmp_path / "xdg"
    (state_home / "phonehome" / "democli").mkdir(parents=True)
    for command in ("status", "disable", "enable", "preview", "flush", "reset-id"):
        result = phonehome(command, "-p", "democlj", XDG_STATE_HOME=str(state_home))
        one_line(result, 2, "no product 'democlj'", "known on this machine: democli")
    assert sorted(p.name for p in (state_home / "phonehome").iterdir()) == ["democli"]


def test_list_shows_the_products_with_state_here(tmp_path: Path) -> None:
    state_home = tmp_path / "xdg"
    for product in ("democli", "other-tool"):
        (state_home / "phonehome" / product).mkdir(parents=True)
    (state_home / "phonehome" / "other-tool" / "consent.json").write_text('{"enabled": false}')
    result = phonehome("list", XDG_STATE_HOME=str(state_home))
    assert result.returncode == 0, result.stderr
    listed = rows(result.stdout)
    assert listed["democli"].startswith("on (the product's default (opt-out))")
    assert listed["other-tool"].startswith("off (the user's stored choice")
    empty = phonehome("list", XDG_STATE_HOME=str(tmp_path / "none"))
    assert "no product built on phonehome has telemetry state here" in empty.stdout


# -- status, enable, disable, preview, reset-id ---------------------------------------------------
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
            "status", "-p", "democli", "--state-dir", str(tmp_path), DEMOCLI_TELEMETRY_LEVEL="error"
        )
    assert result.returncode == 0, result.stderr
    found = rows(result.stdout)
    assert found["telemetry"] == "on, decided by the product's default (opt-out)"
    assert found["level"] == "error"
    assert found["vendor destination"] == f"otlp http/protobuf {vendor.url}"
    assert found["user destination"] == "otlp from OTEL_EXPORTER_OTLP_* variables"
    assert "USER-SECRET-123" not in result.stdout
    assert found["state"].startswith(str(tmp_path))


def test_disable_then_enable_from_the_command_line(tmp_path: Path) -> None:
    off = phonehome("disable", "-p", "democli", "--state-dir", str(tmp_path))
    assert off.returncode == 0 and "off" in off.stdout
    status = phonehome("status", "-p", "democli", "--state-dir", str(tmp_path))
    assert "off, decided by the user's stored choice" in status.stdout
    with OTLPReceiver() as vendor:
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url)
        assert vendor.requests == []
        phonehome("enable", "-p", "democli", "--state-dir", str(tmp_path))
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url)
        assert vendor.wait_until(lambda: vendor.spans, timeout=20)


class _Gated(OTLPReceiver):  # type: ignore[misc]
    """A collector that holds its first request until the test lets it answer."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Event()
        self.gate = threading.Event()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        if not self.arrived.is_set():
            self.arrived.set()
            self.gate.wait(30)
        return super().handle(path, headers, body)


def test_nothing_leaves_after_disable_returns_even_from_a_sender_already_sending(
    tmp_path: Path,
) -> None:
    """The sender decides consent again right before each export: a run's traces are on
    their way when the user says no; its logs and metrics, not yet sent, stay home."""
    with _Gated() as vendor:
        try:
            ran = democli(
                tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_NOLOGO="1"
            )
            assert ran.returncode == 0, ran.stderr
            assert vendor.arrived.wait(30), "the sender never exported"
            off = phonehome("disable", "-p", "democli", "--state-dir", str(tmp_path))
            assert off.returncode == 0 and "nothing waiting will be sent" in off.stdout
        finally:
            vendor.gate.set()
        assert poll(lambda: _sender_gone(tmp_path), timeout=30), "the sender never ended"
        assert [path for path, _ in vendor.requests] == ["/v1/traces"]
        assert not list((tmp_path / "spool").glob("*.seg"))


def _sender_gone(state: Path) -> bool:
    """Whether the sender lock is free: the sender has ended (it holds it all its life)."""
    fd = try_lock(state)
    if fd is None:
        return False
    unlock(fd)
    return True


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
    waiting = phonehome("preview", "-p", "democli", "--state-dir", str(tmp_path))
    # exactly what the vendor will get: the span, the install event, the command's metrics
    assert "waiting to be sent: 4 record(s)" in waiting.stdout
    assert "log install (version=1.4.0, channel=unknown, event.name=install)" in waiting.stdout
    assert "span generate (command.name=generate" in waiting.stdout
    assert "metric democli.command.executions (command.name=generate" in waiting.stdout
    assert "alice" not in waiting.stdout
    with OTLPReceiver() as vendor:
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_MODE="ci")
        assert vendor.spans
    sent = phonehome("preview", "-p", "democli", "--state-dir", str(tmp_path))
    assert "sent (newest last" in sent.stdout and "1 span(s)" in sent.stdout


def test_reset_id(tmp_path: Path) -> None:
    democli(tmp_path, "version", DEMOCLI_VENDOR="http://127.0.0.1:9", DEMOCLI_TELEMETRY_MODE="ci")
    assert (tmp_path / "install-id").exists()
    result = phonehome("reset-id", "-p", "democli", "--state-dir", str(tmp_path))
    assert result.returncode == 0
    assert not (tmp_path / "install-id").exists()


# -- flush ---------------------------------------------------------------------------------------
def test_flush_sends_what_waits(tmp_path: Path) -> None:
    with OTLPReceiver() as vendor:
        vendor.status = 503
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_MODE="ci")
        vendor.status = 200
        result = phonehome("flush", "-p", "democli", "--state-dir", str(tmp_path))
        # the span, and the toolkit's install event of this first run
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("sent 2 record(s)"), result.stdout + result.stderr
        assert [s.name for s in vendor.spans] == ["version"]


def test_flush_fails_naming_the_destination_and_the_reason(tmp_path: Path) -> None:
    port = closed_port()
    vendor = f"http://127.0.0.1:{port}"
    democli(tmp_path, "version", DEMOCLI_VENDOR=vendor, DEMOCLI_TELEMETRY_MODE="ci")
    result = phonehome("flush", "-p", "democli", "--state-dir", str(tmp_path), "--timeout", "3")
    line = one_line(result, 1, f"vendor destination otlp http/protobuf {vendor}")
    assert line.endswith(f"connection refused by {vendor}/v1/traces"), line
    assert "segment(s) still waiting" in result.stdout
    with OTLPReceiver() as refusing:
        refusing.status = 503
        democli(tmp_path, "version", DEMOCLI_VENDOR=refusing.url, DEMOCLI_TELEMETRY_MODE="ci")
        again = phonehome("flush", "-p", "democli", "--state-dir", str(tmp_path), "--timeout", "3")
    # the exporter retries a 503 until the deadline, or gives up just before it
    assert again.returncode == 1
    assert f"{refusing.url}: " in again.stderr and "(HTTP 503)" in again.stderr, again.stderr


def test_flush_says_when_a_destination_asked_to_wait(tmp_path: Path) -> None:
    with OTLPReceiver() as vendor:
        vendor.status, vendor.retry_after = 429, "600"
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_MODE="ci")
        asked = len(vendor.requests)
        result = phonehome("flush", "-p", "democli", "--state-dir", str(tmp_path))
        one_line(result, 1, "a destination asked to wait (Retry-After)")
        assert len(vendor.requests) == asked  # not contacted before the time it named


def test_flush_says_when_data_is_held_for_the_notice(tmp_path: Path) -> None:
    with OTLPReceiver() as vendor:
        first = democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_NOLOGO="")
        assert "democli collects anonymous usage data" in first.stderr
        result = phonehome("flush", "-p", "democli", "--state-dir", str(tmp_path))
        assert result.returncode == 0, result.stderr
        assert "held, nothing sent: the notice was shown in the last run" in result.stdout
        status = rows(phonehome("status", "-p", "democli", "--state-dir", str(tmp_path)).stdout)
        assert status["notice"].startswith("shown in the last run of democli")
        assert vendor.requests == []


HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""
"""Holds the sender lock of a state directory, as a running sender does, until told."""


def hold_lock(state: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(state / "sender.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def start_flush(state: Path, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PHONEHOME, "flush", "-p", "democli", "--state-dir", str(state), *argv],
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_flush_waits_for_a_running_sender_then_sends(tmp_path: Path) -> None:
    with OTLPReceiver() as vendor:
        vendor.status = 503
        democli(tmp_path, "version", DEMOCLI_VENDOR=vendor.url, DEMOCLI_TELEMETRY_MODE="ci")
        vendor.status = 200
        holder = hold_lock(tmp_path)
        asked = len(vendor.requests)
        flush = start_flush(tmp_path, "--timeout", "30")
        try:
            assert flush.stdout is not None
            waiting = flush.stdout.readline()  # it found the lock taken, and says it waits
            assert waiting == "a sender is delivering for democli: waiting for it to finish\n"
            assert len(vendor.requests) == asked  # nothing sent while the sender runs
        finally:
            holder.communicate("go\n", timeout=30)  # the sender ends
            out, err = flush.communicate(timeout=60)
        assert flush.returncode == 0, err
        assert out.startswith("sent 2 record(s)"), out + err
        assert [s.name for s in vendor.spans] == ["version"]


def test_flush_fails_when_the_running_sender_outlasts_its_timeout(tmp_path: Path) -> None:
    democli(tmp_path, "version", DEMOCLI_VENDOR="http://127.0.0.1:9", DEMOCLI_TELEMETRY_MODE="ci")
    holder = hold_lock(tmp_path)
    try:
        result = phonehome("flush", "-p", "democli", "--state-dir", str(tmp_path), "--timeout", "1")
    finally:
        holder.communicate("go\n", timeout=30)
    one_line(result, 1, "a sender was still delivering for democli after 1 s (--timeout)")
    assert "segment(s) waiting" in result.stdout
    assert list((tmp_path / "spool").glob("*.seg"))  # kept for it


def test_flush_takes_a_number_of_seconds(tmp_path: Path) -> None:
    result = phonehome("flush", "-p", "democli", "--state-dir", str(tmp_path), "--timeout", "x")
    one_line(result, 2, "--timeout", "'x' is not a number of seconds")


# -- schema --------------------------------------------------------------------------------------
def test_schema_doc_writes_the_page_and_its_directory(tmp_path: Path) -> None:
    source = ROOT / "examples" / "democli.toml"
    result = phonehome(
        "schema",
        "doc",
        str(source),
        "--product",
        "democli",
        "-o",
        "docs/telemetry.md",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "docs" / "telemetry.md").read_text()
    assert page.startswith("# What democli collects")
    assert "| command `generate` | `openapi` | string | whether given |" in page
    bad = tmp_path / "bad.toml"
    bad.write_text("[attributes.x]\npolicy = 'maybe'\n")
    line = one_line(phonehome("schema", "doc", str(bad)), 1)
    problem = "attributes.x: policy 'maybe' is not one of raw, enum, hash, presence, drop"
    assert line == f"phonehome schema doc: {bad}: {problem}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'decription = "x"\n',
            "unknown top-level key 'decription' "
            "(valid: attributes, commands, events, exception_messages)",
        ),
        (
            "[command.x]\n",
            "unknown top-level key 'command' "
            "(valid: attributes, commands, events, exception_messages)",
        ),
        (
            '[commands.x]\ndecription = "x"\n',
            "commands.x: unknown key 'decription' (valid: description, params)",
        ),
        (
            '[events.x.amount]\ntype = "float"\n',
            "events.x: unknown key 'amount' (valid: attributes, description); "
            "a field goes in [events.x.attributes.amount]",
        ),
        (
            '[attributes.a]\ntyp = "int"\n',
            "attributes.a: unknown key 'typ' (valid: description, policy, reason, scrub, type, "
            "values)",
        ),
        ("[attributes.a]\nscrub = 'no'\n", "attributes.a.scrub must be true or false"),
        ("[events.x]\ndescription = 3\n", "events.x.description must be a string"),
        ("[attributes\n", "not valid TOML"),
    ],
)
def test_schema_check_refuses_a_file_in_one_line(tmp_path: Path, text: str, expected: str) -> None:
    schema = tmp_path / "telemetry.toml"
    schema.write_text(text)
    line = one_line(phonehome("schema", "check", str(schema)), 1)
    assert line.startswith(f"phonehome schema check: {schema}: ")
    assert expected in line


def test_schema_check_passes_a_valid_file_without_running_anything(tmp_path: Path) -> None:
    result = phonehome("schema", "check", str(ROOT / "examples" / "democli.toml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid (3 command(s), 0 event(s)" in result.stdout
    assert list(tmp_path.iterdir()) == []
    missing = phonehome("schema", "check", str(tmp_path / "nowhere.toml"))
    one_line(missing, 2, "nowhere.toml does not exist")
    one_line(phonehome("schema", "check"), 2, "name a schema file, or a command after --")


def test_schema_check_runs_a_command_and_fails_on_undeclared(tmp_path: Path) -> None:
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
    assert ok.returncode == 0 and "no undeclared fields" in ok.stdout, ok.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written while checking, not even an id
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


# -- collector: refused before anything starts ---------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--forward-to", "http://127.0.0.1:4318/"], "is the collector's own address"),
        (
            ["--forward-to", "http://localhost:5000", "--http-port", "5000", "--grpc-port", "5001"],
            "is the collector's own address",
        ),
        (["--forward-to", "http://[::1]:4317"], "is the collector's own address"),
        (
            ["--forward-to", "http://127.0.0.1:9/v1/traces"],
            "ends in the signal path /v1/traces: give the base URL 'http://127.0.0.1:9'",
        ),
        (["--forward-to", "ftp://x"], "not an http:// or https:// URL"),
        (["--forward-to", "http://127.0.0.1:9", "--config", __file__], "either --forward-to"),
        (["--set", "A=b"], "--set fills the placeholders of a --config file"),
        (["--http-port", "5000", "--grpc-port", "5000"], "are both 5000"),
        (["--http-port", "99999999999999999999"], "is not a port (use 1 to 65535)"),
        (["--config", "/nowhere.env"], "/nowhere.env does not exist"),
    ],
)
def test_collector_refuses_bad_options_in_one_line(argv: list[str], expected: str) -> None:
    one_line(phonehome("collector", *argv), 2, expected)


def test_collector_refuses_a_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = phonehome("collector", "--http-port", str(port), "--grpc-port", str(closed_port()))
    one_line(result, 1, f"--http-port {port}: 127.0.0.1:{port} is in use")


def run_in_process(*argv: str) -> tuple[int, str]:
    """``phonehome ARGV`` in this process: the exit code and what it printed on stderr."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, errors.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    value=st.one_of(st.text(max_size=30), st.integers().map(str)),
    option=st.sampled_from(["--http-port", "--grpc-port", "--forward-to", "--set"]),
)
def test_any_collector_option_value_is_one_line_or_accepted(value: str, option: str) -> None:
    """Whatever the value, a line naming the problem and exit 2: never a traceback. (The
    `--set` without `--config` conflict stops every accepted value before Rotel starts.)"""
    if value.startswith("-"):
        value = " " + value  # a value, not an option
    code, stderr = run_in_process("collector", option, value, "--set", "A=b")
    assert code == 2, stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
