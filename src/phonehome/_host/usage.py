"""Usage collectors, the heartbeat and lifecycle events, emitted by the toolkit itself.

A collector is a function returning a snapshot (counts of what the product holds); it runs
at most once per interval per install, also across many short CLI runs (the last run time is
kept in the state directory), and its output is an event checked against the schema. A
failing collector is reported as an event, never raised. ``install`` and ``upgrade`` events
are sent when a new install or a version change is seen, with the acquisition channel.
"""

from __future__ import annotations

import os
import sys
import time

from phonehome._core import jsontext
from phonehome._core import state as statefiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TypeAlias

    Collector: TypeAlias = Callable[[], Mapping[str, Any]]

USAGE_FILE = "usage.json"


class Usage:
    """The due-times of collectors and the heartbeat, kept in ``usage.json``."""

    def __init__(self, state_dir: str | None, heartbeat: float | None = None) -> None:
        self.state_dir = state_dir  # None: an ephemeral environment, nothing is kept
        self.heartbeat = heartbeat
        self.collectors: dict[str, tuple[Collector, float]] = {}

    def register(self, name: str, function: Collector, every: float) -> None:
        """Run ``function`` at most once per ``every`` seconds; its snapshot is event ``name``."""
        self.collectors[name] = (function, every)

    def due(self, last: dict[str, float], now: float | None = None) -> list[str]:
        """The names (``heartbeat`` included) whose interval has passed since ``last``."""
        now = time.time() if now is None else now
        every = {name: seconds for name, (_, seconds) in self.collectors.items()}
        if self.heartbeat is not None:
            every["heartbeat"] = self.heartbeat
        return [name for name, seconds in every.items() if now - last.get(name, 0.0) >= seconds]

    def run(self, emit: Callable[[str, dict[str, Any]], None]) -> None:
        """Run what is due and remember when; a failing collector becomes an event."""
        if not self.collectors and self.heartbeat is None:
            return  # the usual CLI run: no file to read
        last = self._read()
        names = self.due(last)
        if not names:
            return
        for name in names:
            if name == "heartbeat" and name not in self.collectors:
                emit("heartbeat", {})
                continue
            function, _ = self.collectors[name]
            try:
                snapshot = dict(function())
            except Exception as error:
                emit(
                    "phonehome.collector.failed",
                    {"collector": name, "error.type": type(error).__qualname__},
                )
                continue
            emit(name, snapshot)
        last.update(dict.fromkeys(names, time.time()))
        self._write(last)

    def _read(self) -> dict[str, float]:
        if self.state_dir is None:
            return {}
        try:
            data = jsontext.loads(
                statefiles.read_text(os.path.join(self.state_dir, USAGE_FILE)) or "{}"
            )
        except (OSError, ValueError):
            return {}
        return (
            {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
            if isinstance(data, dict)
            else {}
        )

    def _write(self, data: dict[str, float]) -> None:
        if self.state_dir is None:
            return
        try:  # noqa: SIM105 - contextlib would cost every CLI an import
            statefiles.write_text(
                os.path.join(self.state_dir, USAGE_FILE), jsontext.dumps(data) + "\n"
            )
        except OSError:  # not kept: it runs again next time, the lesser harm
            pass


def channel(product: str) -> str:
    """How the product was installed: pipx, conda, or the installer its metadata names."""
    prefix = sys.prefix.replace("\\", "/")
    if "/pipx/venvs/" in prefix:
        return "pipx"
    if "/uv/tools/" in prefix:
        return "uv-tool"
    if os.path.isdir(os.path.join(sys.prefix, "conda-meta")):
        return "conda"
    return installer(product) or "unknown"


def installer(product: str) -> str | None:
    """The INSTALLER of the product's ``.dist-info``, found by listing ``sys.path``.

    (Not ``importlib.metadata``: it costs a first run several megabytes and milliseconds.)
    """
    wanted = product.lower().replace("-", "_").replace(".", "_") + "-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and name.lower().startswith(wanted):
                try:
                    path = os.path.join(entry, name, "INSTALLER")
                    with open(path, encoding="utf-8", errors="replace") as f:
                        found = f.read(64).strip().lower()
                except OSError:
                    return None
                return found if found in _INSTALLERS else "other" if found else None
    return None


_INSTALLERS = frozenset(
    ("pip", "uv", "pipx", "poetry", "pdm", "conda", "mamba", "pixi", "hatch", "rye", "debian")
)
"""The channels sent as they are; any other INSTALLER text is sent as ``other``."""
