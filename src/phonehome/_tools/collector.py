"""Rotel, the collector from the ``rotel`` package on PyPI, as a loopback process.

Used by ``phonehome collector`` (the embedded collector for local development), the demo and
the end-to-end tests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def agent_path() -> Path:
    """The collector binary shipped inside the ``rotel`` wheel."""
    try:
        import rotel
    except ImportError:
        raise RuntimeError("Rotel is not installed: pip install 'phonehome[collector]'") from None
    return Path(rotel.__file__).parent / "rotel-agent"


class Rotel:
    """A Rotel collector on 127.0.0.1 forwarding everything to ``forward_to`` over OTLP.

    ``http_endpoint`` and ``grpc_endpoint`` are the receiving URLs. ``with Rotel(url) as r``
    starts it and waits until both ports accept; leaving the block stops it. With
    ``forward_to=None`` it discards what it receives (its blackhole exporter).
    """

    def __init__(
        self,
        forward_to: str | None,
        *,
        protocol: str = "http",
        extra: list[str] | None = None,
        config: Path | None = None,
        values: dict[str, str] | None = None,
        http_port: int | None = None,
        grpc_port: int | None = None,
    ):
        self.forward_to = forward_to
        self.http_port = http_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self._config = config
        self._values = values or {}
        self._protocol = protocol
        self._extra = extra or []
        self._process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="phonehome-rotel-")

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def log(self) -> str:
        path = Path(self._dir.name) / "rotel.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 15.0) -> None:
        log = open(Path(self._dir.name) / "rotel.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self._process = subprocess.Popen(
            [
                str(agent_path()),
                "start",
                "--otlp-http-endpoint",
                f"127.0.0.1:{self.http_port}",
                "--otlp-grpc-endpoint",
                f"127.0.0.1:{self.grpc_port}",
                *self._exporter_flags(),
                "--batch-timeout",
                "50ms",
                "--pid-file",
                str(Path(self._dir.name) / "rotel.pid"),
                "--log-file",
                str(Path(self._dir.name) / "rotel-agent.log"),
                *self._extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._environment(),
        )
        deadline = time.monotonic() + timeout
        for port in (self.http_port, self.grpc_port):
            while not _accepts(port):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"Rotel did not start: {self.log[-2000:]}")
                time.sleep(0.02)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _environment(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ROTEL_"))}
        if self._config is not None:
            values = {
                "LISTEN_HTTP": f"127.0.0.1:{self.http_port}",
                "LISTEN_GRPC": f"127.0.0.1:{self.grpc_port}",
                **self._values,
            }
            environ.update(read_config(self._config, values))
        return environ

    def _exporter_flags(self) -> list[str]:
        if self._config is not None:
            return []  # the configuration file says where to export
        if self.forward_to is None:
            return ["--exporter", "blackhole"]
        return [
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self.forward_to,
            "--otlp-exporter-protocol",
            self._protocol,
        ]

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> Rotel:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._dir.cleanup()


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def read_config(path: Path, values: dict[str, str]) -> dict[str, str]:
    """A Rotel ``.env`` file (KEY=VALUE lines, ``#`` comments), ``${NAME}`` substituted.

    Raises ``ValueError`` naming a placeholder that has no value.
    """
    import re

    found: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: not KEY=VALUE")

        def substitute(match: re.Match[str], number: int = number) -> str:
            name = match.group(1)
            if name not in values:
                raise ValueError(f"{path}:{number}: ${{{name}}} has no value (--set {name}=...)")
            return values[name]

        found[key.strip()] = re.sub(r"\$\{([A-Z_][A-Z0-9_]*)\}", substitute, value.strip())
    return found
