"""pytest fixtures for telemetry tests, registered through the ``pytest11`` entry point.

- ``phonehome_env``: this test's telemetry kept apart from the machine's (see below);
- ``otlp_receiver``, ``azure_ingestion``: capture endpoints on 127.0.0.1;
- for every test: recording a field the telemetry schema does not declare raises
  ``phonehome.UndeclaredError`` at the call that records it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonehome.testing import AzureIngestion, OTLPReceiver

_CLEARED = ("DO_NOT_TRACK", "OTEL_", "APPLICATIONINSIGHTS_", "PHONEHOME_")
"""Variables of the developer's own shell that would change what a test's program sends
(besides every ``*_TELEMETRY_*`` variable, and CI and AI agent detection)."""


class PhonehomeEnv:
    """What ``phonehome_env`` set up: ``root`` holds every product's state and the
    user-wide file of this test; ``state_dir(product)`` is one product's."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def state_dir(self, product: str) -> Path:
        from phonehome._core.settings import platform_state_dir

        return Path(platform_state_dir(product))


@pytest.fixture
def phonehome_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PhonehomeEnv]:
    """This test's telemetry, kept apart from the machine's, and sent on the first run.

    Every product's state (stored choices, install ids, the spool) lives under a temporary
    directory; the user's choice for every product and the machine policy are not read; the
    developer's own telemetry variables (``DO_NOT_TRACK``, ``OTEL_EXPORTER_OTLP_*``, ...) and
    CI and AI agent detection are cleared; and the first-run notice counts as seen in this
    process, so that what the first run records is sent (a program run in a subprocess
    needs ``<PREFIX>_TELEMETRY_NOLOGO=1`` in its environment for that).
    """
    from phonehome._core import diagnostics
    from phonehome._core import environment as env

    detection = {name for name, _ in (*env.CI_VARIABLES, *env.AGENT_VARIABLES)}
    for name in list(os.environ):
        if name.startswith(_CLEARED) or "_TELEMETRY_" in name or name in detection:
            monkeypatch.delenv(name)
    root = tmp_path / "phonehome-env"
    monkeypatch.setenv("XDG_STATE_HOME", str(root / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))
    if sys.platform in ("darwin", "win32"):  # their user directories are under the home
        monkeypatch.setenv("HOME", str(root / "home"))
        monkeypatch.setenv("USERPROFILE", str(root / "home"))
        monkeypatch.setenv("LOCALAPPDATA", str(root / "state"))
        monkeypatch.setenv("APPDATA", str(root / "config"))
    monkeypatch.setenv(env.POLICY_FILE, str(root / "no-machine-policy.toml"))
    diagnostics.reset()
    diagnostics.set_notice_seen(True)
    yield PhonehomeEnv(root)
    diagnostics.set_notice_seen(False)


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A capture OTLP/HTTP receiver on 127.0.0.1, stopped after the test."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def azure_ingestion() -> Iterator[AzureIngestion]:
    """An Azure Monitor ingestion stub on 127.0.0.1, stopped after the test."""
    with AzureIngestion() as ingestion:
        yield ingestion


@pytest.fixture(autouse=True)
def _phonehome_undeclared_is_an_error() -> Iterator[None]:
    """In tests, recording a field the telemetry schema does not declare raises
    ``phonehome.UndeclaredError`` where it is recorded (in production it is dropped and
    counted, and the program never notices)."""
    from phonehome._core import diagnostics

    diagnostics.set_strict_schema(True)
    yield
    diagnostics.set_strict_schema(False)
