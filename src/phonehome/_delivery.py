"""From the host's memory to the spool, and a sender to take it from there.

Modes: ``cli`` spools at the end and starts a detached sender (the host waits for nothing);
``ci`` spools and delivers synchronously within a budget, because a detached process would
be killed with the job; ``service`` delivers from a background thread every few seconds.
``auto`` is ``ci`` where a CI provider is detected and ``cli`` otherwise, turning into
``service`` when the instrumented block has run for longer than ``PROMOTE_AFTER``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from phonehome import _environment as env
from phonehome import _state
from phonehome._destinations import Destination, Role
from phonehome._diagnostics import record_error, warn
from phonehome._schema import Enforcer
from phonehome._spool import Spool

Mode = Literal["auto", "cli", "ci", "service", "debug", "check"]
PROMOTE_AFTER = 30.0
SERVICE_INTERVAL = 5.0


def detect_ci(environ: Mapping[str, str] = os.environ) -> str | None:
    """The CI provider this runs under, if any."""
    return env.detected(environ, env.CI_VARIABLES)


def _resolve_mode(mode: Mode, prefix: str) -> Mode:
    """The code's mode; if ``auto``: ``<PREFIX>_TELEMETRY_MODE``, else CI detection."""
    if mode != "auto":
        return mode
    name = env.TELEMETRY_MODE.format(prefix=prefix)
    forced = os.environ.get(name, "").strip().lower()
    if forced in ("cli", "ci", "service"):
        return forced  # type: ignore[return-value]
    if forced and forced != "auto":
        warn(f"{name}={forced!r} is not one of cli, ci, service, auto; using auto")
    return "ci" if detect_ci() else "cli"


def destination_key(role: Role, destination: Destination) -> str:
    """A stable name for a destination's progress, without its credentials in clear.

    Two CRC-32s (64 bits) of its settings: a name, not a secret, and ``zlib`` is already
    loaded for the spool where ``hashlib`` would cost a CLI ~10 ms of OpenSSL start-up.
    """
    data = json.dumps([role, destination._asdict()], sort_keys=True, default=str).encode()
    return f"{role}-{zlib.crc32(data):08x}{zlib.crc32(data[::-1]):08x}"


class Delivery:
    """The host side of delivery for one ``instrument()`` block."""

    def __init__(
        self,
        *,
        state_dir: Path,
        product: str,
        prefix: str,
        consent: str,
        enabled: bool | None,
        resource: dict[str, Any],
        destinations: Sequence[tuple[Role, Destination]],
        mode: Mode,
        max_bytes: int,
        max_age: float,
        ci_budget: float,
        lifetime: float,
        shutdown_timeout: float,
        enforcer: Enforcer,
        automation: str = "tag",
    ) -> None:
        self.state_dir = state_dir
        self.enforcer = enforcer
        self.hold = False
        """This run showed the notice: what it records is kept, not sent (``_notice``)."""
        self.debug_records: list[tuple[Any, ...]] = []
        self.spool = Spool(state_dir / "spool", max_bytes, max_age)
        self.ci_budget = ci_budget
        self.lifetime = lifetime
        self.shutdown_timeout = shutdown_timeout
        self.mode: Mode = _resolve_mode(mode, prefix)
        keyed = {destination_key(role, d): (role, d) for role, d in destinations}
        metric_prefix = env.instrument_name(product)
        self.header = {
            "destinations": sorted(keyed),
            "resource": resource,
            "metric_prefix": metric_prefix,
        }
        self._config = {
            "product": product,
            "prefix": prefix,
            "consent": consent,
            "enabled": enabled,
            "max_bytes": max_bytes,
            "max_age": max_age,
            "metric_prefix": metric_prefix,
            "resource": resource,
            "destinations": {k: {"role": role, **d._asdict()} for k, (role, d) in keyed.items()},
            "scrub_exempt": sorted(enforcer.exempt()),
            "automation": automation,
        }
        self.describe = tuple(f"{role}: {d.describe()}" for role, d in destinations)
        self._config_written = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def has_destinations(self) -> bool:
        return bool(self.header["destinations"])

    def write(self, records: list[tuple[Any, ...]]) -> None:
        """Make records durable: one segment file.

        If the state directory cannot be written, the spool moves (once, with a warning) to
        a private directory under the system's temporary directory.
        """
        if self.mode == "check":  # `phonehome schema check`: report, never write or send
            self._enforce(records)
            self._report_undeclared()
            return
        if not self.has_destinations:
            return
        records = self._enforce(records)
        if self.mode == "debug":  # shown at the end, never written, never sent
            self.debug_records.extend(records)
            return
        try:
            if not self._config_written:
                self._write_config()
            self.spool.append(self.header, records)
        except OSError as error:
            from phonehome import _state

            _state.cannot_write(self.state_dir, error)
            try:
                fallback = _state.fallback_dir(self.state_dir)
            except OSError as refused:
                warn(
                    f"no private temporary directory either ({refused.strerror or refused}); "
                    "this run's telemetry is dropped"
                )
                return
            if self.state_dir == fallback:
                raise
            self.state_dir = fallback
            self.spool = Spool(fallback / "spool", self.spool.max_bytes, self.spool.max_age)
            self._config_written = False
            self.write(records)

    def _enforce(self, records: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The schema, applied before anything is written: undeclared values stop here."""
        before = self.enforcer.undeclared
        keep, apply = self.enforcer.keep, self.enforcer.apply
        kept = [apply(record) for record in records if keep(record)]
        dropped = self.enforcer.undeclared - before
        if dropped:
            kept.append(
                (
                    "m",
                    "counter",
                    "phonehome.schema.undeclared",
                    "{attribute}",
                    "Attributes dropped because the telemetry schema does not declare them",
                    dropped,
                    {},
                )
            )
        return kept

    def _report_undeclared(self) -> None:
        path = os.environ.get(env.SCHEMA_CHECK, "")
        found, self.enforcer.undeclared_fields = self.enforcer.undeclared_fields, []
        if path and found:
            with open(path, "a", encoding="utf-8") as report:
                report.writelines(f"{line}\n" for line in found)

    def _write_config(self) -> None:
        self._config["notice_confirmed"] = not self.hold
        text = json.dumps(self._config, sort_keys=True, default=str)
        path = self.state_dir / "config.json"
        if _state.read_text(path) != text:
            _state.write_text(path, text)
        self._config_written = True

    # -- after recording ---------------------------------------------------------------------
    def finish(self) -> None:
        """Hand over what was spooled, as the mode says."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(self.shutdown_timeout)
        if self.mode == "check":
            return
        if self.mode == "debug":
            from phonehome._debug import show

            show(self.debug_records, self.header, self._config)
            return
        if self.hold or not self.has_destinations or not self.spool.names():
            return
        if self.mode == "cli":
            spawn_sender(self.state_dir, self.lifetime)
        elif self.mode == "ci":
            self.deliver_now(self.ci_budget)
        else:
            self.deliver_now(self.shutdown_timeout)

    def deliver_now(self, budget: float) -> bool:
        """Deliver in this process within ``budget`` seconds; ``False`` if another sender runs."""
        from phonehome._sender import deliver

        return deliver(self.state_dir, budget) is not None

    def promote(self, drain: Any) -> None:
        """Become a service: deliver from a background thread from now on."""
        if self._thread is not None or not self.has_destinations or self.mode in ("debug", "check"):
            return
        self.mode = "service"

        interval = _service_interval()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    drain()
                    self.deliver_now(max(interval, 1.0))
                except Exception as error:
                    record_error("service delivery", error)

        self._thread = threading.Thread(target=loop, name="phonehome-service", daemon=True)
        self._thread.start()


def _service_interval() -> float:
    """Seconds between a service's deliveries: ``OTEL_BSP_SCHEDULE_DELAY`` (ms), as the SDK's
    batch processor reads it, else ``SERVICE_INTERVAL``."""
    raw = os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "").strip()
    try:
        return max(0.05, float(raw) / 1000) if raw else SERVICE_INTERVAL
    except ValueError:
        warn(
            f"OTEL_BSP_SCHEDULE_DELAY={raw!r} is not a number of milliseconds; "
            f"using {SERVICE_INTERVAL * 1000:.0f}"
        )
        return SERVICE_INTERVAL


_SENDER = (
    "import sys; del sys.path[0]; import runpy; "
    "runpy.run_module('phonehome._sender', run_name='__main__', alter_sys=True)"
)
"""How the sender starts: like ``-m phonehome._sender``, without the working directory on
``sys.path`` (whatever ``.py`` files lie there are not ours to run)."""


def spawn_sender(state_dir: Path, lifetime: float) -> bool:
    """Start a detached sender unless one runs; it holds the lock we take here."""
    from phonehome._lock import try_lock

    fd = try_lock(state_dir)
    if fd is None:
        return False  # a sender is running; it looks for new segments before it exits
    try:
        package_root = str(Path(__file__).resolve().parent.parent)
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, environ.get("PYTHONPATH", "")) if p
        )
        argv = [sys.executable, "-c", _SENDER, str(state_dir), str(lifetime), str(fd)]
        os.set_inheritable(fd, True)
        if hasattr(os, "posix_spawn"):
            devnull = os.devnull
            os.posix_spawn(
                sys.executable,
                argv,
                environ,
                setsid=True,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
                ],
            )
        else:  # pragma: no cover - Windows
            import subprocess

            subprocess.Popen(
                argv,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                creationflags=0x00000008 | 0x00000200,
                close_fds=False,
            )
        return True
    finally:
        os.close(fd)  # the child keeps the lock through its inherited descriptor
