"""Shared fixtures: a clean environment, a private state directory, strict containment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phonehome import Schema, field
from phonehome._core import diagnostics as _diagnostics

ROOT = Path(__file__).resolve().parent.parent

TEST_SCHEMA = Schema(
    events={
        "purchase_completed": {"amount": field("float", "Order total")},
        "e": {"bad": field(), "nan": field("float"), "deep": field("list")},
    },
    attributes={"files": field("int", "Files parsed"), "language": field("string", "Language")},
)
"""What the tests' events, spans and metrics may carry."""

_TELEMETRY_VARIABLES = ("DO_NOT_TRACK", "OTEL_", "APPLICATIONINSIGHTS_", "DEMOCLI_", "CI")


def clean_environ(**extra: str) -> dict[str, str]:
    """The current environment without any telemetry setting, plus ``extra``."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_TELEMETRY_VARIABLES) and "_TELEMETRY_" not in k
    }
    environ["DEMOCLI_TELEMETRY_NOLOGO"] = "1"  # the notice has its own tests
    environ.update(extra)
    return environ


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for key in list(os.environ):
        if key.startswith(_TELEMETRY_VARIABLES) or "_TELEMETRY_" in key:
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    # neither this user's choice for every product nor this machine's policy
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("PHONEHOME_POLICY_FILE", str(tmp_path / "no-policy.toml"))
    monkeypatch.setenv("DEMOCLI_TELEMETRY_NOLOGO", "1")  # the notice has its own tests
    _diagnostics.set_strict(True)
    _diagnostics.reset()
    yield
    _diagnostics.set_strict(False)


@pytest.fixture
def lenient() -> None:
    """Contain errors as in production instead of re-raising them."""
    _diagnostics.set_strict(False)
    _diagnostics.set_strict_schema(False)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def poll(condition: Any, timeout: float, interval: float = 0.02) -> bool:
    """Whether ``condition()`` came true before the deadline, checking every ``interval``
    (for what announces nothing: processes, files, a consent re-read)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def backoff_over(state: Path) -> int:
    """Time passes for the destinations that failed: their backoff ends now, as it would for
    a run half an hour later (each ``.backoff`` file's moment moved back by its wait).
    How many there were."""
    from phonehome._spool.clock import Moment, parse

    found = 0
    for path in (state / "spool" / "progress").glob("*.backoff"):
        failures, seconds, rest = path.read_text().split(" ", 2)
        began = parse(rest)
        assert began is not None, path
        back = float(seconds) + 1
        boot = None if began.boot is None else began.boot - back
        moved = Moment(began.wall - back, boot, began.boot_id)
        path.write_text(f"{failures} {seconds} {moved.text()}\n")
        found += 1
    (state / "spool" / "progress" / "all.waiting").unlink(missing_ok=True)
    return found


def silent_server() -> tuple[socket.socket, int]:
    """A loopback port that accepts connections and never answers (close it when done)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    return server, int(server.getsockname()[1])


def app_logs(receiver: Any) -> list[Any]:
    """The log records a test's program sent, without the toolkit's install/upgrade events."""
    return [r for r in receiver.logs if r.event_name not in ("install", "upgrade")]


def run_python(
    code: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter, as a host program would."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the reliability figures where ``make reliability`` asks for them."""
    target = os.environ.get("PHONEHOME_RELIABILITY_REPORT")
    if target:
        from tests import figures

        figures.dump(Path(target))
