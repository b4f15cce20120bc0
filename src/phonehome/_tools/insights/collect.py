"""``phonehome collector --store PATH``: Rotel on loopback in front of the store writer.

Rotel receives OTLP (HTTP and gRPC) and forwards it over OTLP/HTTP to the store writer, a
process of its own on another loopback port, restarted if it dies; Rotel sends again what the
writer did not acknowledge. Stopping drains Rotel first, then the writer, so that Ctrl-C loses
nothing Rotel had accepted.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from phonehome._tools.collector import Rotel, free_port
from phonehome._tools.insights.store import StoreError, duckdb

RETRY = [
    "--otlp-exporter-retry-initial-backoff",
    "100ms",
    "--otlp-exporter-retry-max-backoff",
    "1s",
]
"""Rotel's resend schedule towards the writer (its defaults wait 5 s before the first)."""


class StoreWriter:
    """The store writer process on 127.0.0.1 (``url``); ``ensure()`` restarts it if it died."""

    def __init__(self, store: Path, port: int | None = None) -> None:
        self.store = store
        self.port = port or free_port()
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 20.0) -> None:
        duckdb()  # the one-line message when the extra is missing, before any process
        import tempfile

        # a file, not a pipe: nobody reads it while the writer runs, and a full pipe would
        # stop the writer mid-request
        if self._errors is not None:
            self._errors.close()
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phonehome._tools.insights.writer",
                *("--store", str(self.store), "--port", str(self.port)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._errors,
        )
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                message = self._failure()
                self.stop()
                raise StoreError(message)
            time.sleep(0.02)

    def _failure(self) -> str:
        process = self._process
        if process is None or process.poll() is None:
            return f"the store writer did not start within the time allowed ({self.store})"
        if self._errors is None:
            return "the store writer exited"
        self._errors.seek(0)
        error = self._errors.read()[-4096:].decode(errors="replace")
        lines = [line for line in error.strip().splitlines() if line.strip()]
        return lines[-1].removeprefix("store writer: ") if lines else "the store writer exited"

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ensure(self) -> None:
        """Start the writer again if it died (Rotel resends what it had not acknowledged)."""
        if self._process is not None and not self.alive():
            self.restarts += 1
            self.start()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._errors is not None:
            self._errors.close()
            self._errors = None


def _accepts(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class StoreCollector:
    """Rotel on ``http_port``/``grpc_port`` forwarding into the store at ``store``.

    ``with StoreCollector(path) as c`` starts both; ``c.watch()`` restarts a dead writer;
    leaving stops Rotel (draining it) and then the writer.
    """

    def __init__(
        self, store: Path, *, http_port: int | None = None, grpc_port: int | None = None
    ) -> None:
        self.writer = StoreWriter(store)
        self.rotel = Rotel(self.writer.url, extra=RETRY, http_port=http_port, grpc_port=grpc_port)

    @property
    def http_endpoint(self) -> str:
        return self.rotel.http_endpoint

    @property
    def grpc_endpoint(self) -> str:
        return self.rotel.grpc_endpoint

    def start(self) -> None:
        self.writer.start()
        try:
            self.rotel.start()
        except BaseException:
            self.writer.stop()
            raise

    def alive(self) -> bool:
        return self.rotel.alive()

    def watch(self) -> None:
        self.writer.ensure()

    def stop(self) -> None:
        try:
            self.rotel.stop()
        finally:
            self.writer.stop()

    def __enter__(self) -> StoreCollector:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.rotel.__exit__(exc_type, exc, tb)
