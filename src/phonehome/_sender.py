"""The sender: delivers spooled records to every destination, off the host's critical path.

Runs as a detached process after a CLI run (``python -m phonehome._sender STATE_DIR``), in a
service's background thread, or synchronously in CI. At most one per state directory at a
time (an exclusive lock); a hard lifetime cap; never prints. Each destination is delivered
in its own thread with its own progress, retries with backoff, and honours ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonehome._consent import LiveConsent, Resolver
from phonehome._destinations import Destination
from phonehome._diagnostics import errors, record_error
from phonehome._lock import try_lock, unlock
from phonehome._spool import Spool

CONFIG_FILE = "config.json"
REPORT_FILE = "last-delivery.json"
DEFAULT_LIFETIME = 30.0
ROUND_SEGMENTS = 256
CHUNK = 512
MAX_BACKOFF = 30.0


@dataclass(slots=True)
class Report:
    """What one delivery did, per destination key."""

    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    pending_segments: int = 0
    corrupt: int = 0
    purged: int = 0
    held: bool = False
    """A destination asked to wait (``Retry-After``) beyond this delivery."""


# -- configuration written by the host --------------------------------------------------------
def load_config(state_dir: Path) -> dict[str, Any] | None:
    try:
        config = json.loads((state_dir / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def _destination(entry: dict[str, Any]) -> Destination:
    fields = {k: v for k, v in entry.items() if k in Destination._fields}
    fields["headers"] = tuple(tuple(pair) for pair in fields.get("headers", ()))
    return Destination(**fields)


# -- delivery -------------------------------------------------------------------------------
_QUIET_LOGGERS = ("opentelemetry", "azure.monitor.opentelemetry.exporter", "azure.core.pipeline")


class _Counted(logging.Handler):
    """Counts the exporters' warnings and errors instead of letting them reach a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            errors[f"{record.name}: {record.levelname.lower()}"] += 1


def quiet_exporter_logs() -> None:
    """Keep the exporters' own messages (a dead collector, a retry) off the user's terminal.

    For in-process delivery (CI, services). Not undone afterwards: an export abandoned at the
    deadline may still log later.
    """
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _Counted) for h in logger.handlers):
            logger.addHandler(_Counted())
            logger.propagate = False


def deliver(state_dir: Path, budget: float, lock_fd: int | None = None) -> Report | None:
    """Deliver what is spooled within ``budget`` seconds; ``None`` if another sender runs."""
    fd = lock_fd if lock_fd is not None else try_lock(state_dir)
    if fd is None:
        return None
    quiet_exporter_logs()
    try:
        report = _deliver_locked(state_dir, time.monotonic() + budget)
    finally:
        unlock(fd)
    return report


def _ready(state_dir: Path, report: Report) -> tuple[dict[str, Any], Spool, LiveConsent] | None:
    """The configuration, spool and live consent, or ``None`` when nothing may be sent: no
    configuration, consent off (the spool is purged first), or the notice not yet confirmed.
    """
    config = load_config(state_dir)
    if config is None:
        return None
    spool = Spool(
        state_dir / "spool",
        int(config.get("max_bytes", 10 << 20)),
        float(config.get("max_age", 7 * 86400)),
    )
    resolver = Resolver(
        config["prefix"],
        config["consent"],
        config.get("enabled"),
        state_dir,
        str(config.get("automation", "tag")),
    )
    decision = resolver.resolve()
    if not decision.enabled:
        report.purged = spool.purge()
        return None
    if config.get("notice_confirmed") is not True:
        return None  # the notice was shown in the last run: what it recorded waits for the next
    return config, spool, LiveConsent(resolver, decision)


def _deliver_locked(state_dir: Path, deadline: float) -> Report:
    report = Report()
    ready = _ready(state_dir, report)
    if ready is None:
        return report
    config, spool, consent = ready
    destinations = {key: _destination(entry) for key, entry in config["destinations"].items()}
    spool.enforce_caps()
    workers = {key: _Worker(key, d, spool, config) for key, d in destinations.items()}
    from phonehome._scrub import Scrubber

    scrubber = Scrubber()
    while time.monotonic() < deadline:
        names = spool.names()[:ROUND_SEGMENTS]
        segments = {n: s for n in names if (s := spool.read(n)) is not None}
        report.corrupt += sum(s.corrupt for s in segments.values())
        jobs = {
            key: [
                n
                for n in names
                if n in segments and key in segments[n].destinations and n not in worker.done
            ]
            for key, worker in workers.items()
        }
        jobs = {
            key: pending for key, pending in jobs.items() if pending and not workers[key].held()
        }
        if not jobs:
            break
        # Map segments here while the destinations' threads export what is already mapped.
        mapped = _Mapped()
        threads = [
            threading.Thread(
                target=workers[key].run, args=(pending, mapped.get, consent, deadline), daemon=True
            )
            for key, pending in jobs.items()
        ]
        for thread in threads:
            thread.start()
        mapped.scrubber = scrubber
        mapped.exempt = frozenset(config.get("scrub_exempt", ()))
        mapped.fill(
            [n for n in names if any(n in p for p in jobs.values())], segments, consent, deadline
        )
        if not consent():
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            report.purged = spool.purge()
            return report
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            break
        _remove_delivered(spool, segments, workers)
        if all(not w.progressed for w in workers.values() if w.key in jobs):
            break  # every destination with work failed this round: back off until next run
    for worker in workers.values():
        report.delivered[worker.key] = worker.records
        report.held = report.held or worker.held()
        if worker.error:
            report.failed[worker.key] = worker.error
    report.pending_segments = len(spool.names())
    _write_report(state_dir, report)
    return report


class _Mapped:
    """Segments mapped to OpenTelemetry data, handed to the destination threads as they come."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._done = False
        self.scrubber: Any = None
        self.exempt: frozenset[str] = frozenset()
        self._cond = threading.Condition()

    def fill(
        self, names: list[str], segments: dict[str, Any], consent: Any, deadline: float
    ) -> None:
        from phonehome._mapping import map_segment

        try:
            for name in names:
                if time.monotonic() >= deadline or not consent():
                    break
                item = map_segment(segments[name], consent, self.scrubber, self.exempt)
                with self._cond:
                    self._items[name] = item
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def get(self, name: str, deadline: float) -> Any:
        """The mapped segment, waiting for it; ``None`` if it will not come in time."""
        with self._cond:
            while name not in self._items:
                remaining = deadline - time.monotonic()
                if self._done or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._items[name]


def _remove_delivered(spool: Spool, segments: dict[str, Any], workers: dict[str, _Worker]) -> None:
    """Delete the segments every destination named in them has; forget their progress."""
    for name, segment in segments.items():
        wanted = [k for k in segment.destinations if k in workers]
        if all(name in workers[k].done for k in wanted):
            spool.remove(name)
    spool.compact(set(spool.names()))


def _write_report(state_dir: Path, report: Report) -> None:
    try:
        from phonehome import _state

        _state.write_text(
            state_dir / REPORT_FILE,
            json.dumps(
                {
                    "at": time.time(),
                    "delivered": report.delivered,
                    "failed": report.failed,
                    "pending_segments": report.pending_segments,
                    "corrupt": report.corrupt,
                    "purged": report.purged,
                }
            ),
        )
    except OSError:
        pass


class _Worker:
    """Delivers to one destination: its exporters, progress, backoff and ``Retry-After``."""

    def __init__(
        self, key: str, destination: Destination, spool: Spool, config: dict[str, Any]
    ) -> None:
        self.key = key
        self.config = config
        self.destination = destination
        self.spool = spool
        self.done = spool.delivered(key)
        self.records = 0
        self.progressed = False
        self.error = ""
        self._exporters: dict[str, Any] | None = None
        self._hold_file = spool.directory / "progress" / f"{key}.hold"

    def held(self) -> bool:
        """Whether the destination asked us (``Retry-After``) to wait beyond now."""
        try:
            return float(self._hold_file.read_text()) > time.time()
        except (OSError, ValueError):
            return False

    def _hold(self, seconds: float) -> None:
        from phonehome import _state

        _state.write_text(self._hold_file, str(time.time() + seconds))

    def run(self, names: list[str], source: Any, consent: Any, deadline: float) -> None:
        """Export ``names`` in groups of about ``CHUNK`` items, marking each group on success.

        ``source(name, deadline)`` gives a segment's mapped data as soon as it is ready. In a
        thread of the host (CI, services): whatever fails here is counted, never printed.
        """
        try:
            self._run(names, source, consent, deadline)
        except Exception as error:
            errors[f"delivery to {self.key}: {type(error).__name__}"] += 1
            self.error = f"delivery raised {type(error).__name__}"

    def _run(self, names: list[str], source: Any, consent: Any, deadline: float) -> None:
        self.progressed = False
        try:
            exporters = self._build(deadline)
        except Exception as error:
            self.error = f"cannot build exporters: {error}"
            return
        attempt = 0
        index = 0
        group: list[str] = []
        items: list[Any] = []
        while (index < len(names) or group) and time.monotonic() < deadline and consent():
            size = sum(item.count for item in items)
            while index < len(names) and size < CHUNK:
                item = source(names[index], deadline)
                if item is None:
                    break
                group.append(names[index])
                items.append(item)
                size += item.count
                index += 1
            if not group:
                return
            owed = self.spool.dropped(self.key)
            extra = [self._dropped_report(owed)] if owed else []
            result, retry_after, rejected = self._export(exporters, items + extra)
            if result is not _FAILED:
                if result is _REFUSED:  # sending it again cannot succeed: dropped, counted
                    rejected = sum(item.count for item in items)
                else:
                    self.spool.reported_dropped(self.key, owed)
                    self.records += sum(len(i.spans) + len(i.logs) for i in items)
                if rejected:
                    self.spool.owe(self.key, rejected, "rejected")
                self.spool.mark_delivered(self.key, group)
                self.done.update(group)
                self.progressed = True
                group, items = [], []
                attempt = 0
                continue
            attempt += 1
            wait = max(min(MAX_BACKOFF, 0.25 * 2**attempt), retry_after or 0.0)
            if time.monotonic() + wait >= deadline:
                if retry_after:
                    self._hold(retry_after)
                return
            time.sleep(wait)

    def _dropped_report(self, owed: dict[str, int]) -> Any:
        from phonehome._mapping import dropped_report

        return dropped_report(self.config.get("resource", {}), owed)

    def _build(self, deadline: float) -> dict[str, Any]:
        """The destination's exporters, each request bounded by what is left of the budget."""
        if self._exporters is None:
            from phonehome import _exporters

            remaining = max(0.1, deadline - time.monotonic())
            bounded = self.destination._replace(timeout=min(self.destination.timeout, remaining))
            self._exporters = {
                s: _exporters.build(bounded, s) for s in ("traces", "logs", "metrics")
            }
        return self._exporters

    def _export(self, exporters: dict[str, Any], group: list[Any]) -> tuple[str, float | None, int]:
        """Export one group: delivered, failed (try again) or refused (never again); the
        ``Retry-After`` asked for, and the items the destination refused inside a success.
        """
        from opentelemetry.sdk._logs.export import LogRecordExportResult
        from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
        from opentelemetry.sdk.trace.export import SpanExportResult

        from phonehome._exporters import outcome

        spans = [s for m in group for s in m.spans]
        logs = [r for m in group for r in m.logs]
        metrics = [rm for m in group if m.metrics for rm in m.metrics.resource_metrics]
        batches = (
            ("traces", spans, SpanExportResult.SUCCESS),
            ("logs", logs, LogRecordExportResult.SUCCESS),
            (
                "metrics",
                MetricsData(resource_metrics=metrics) if metrics else None,
                MetricExportResult.SUCCESS,
            ),
        )
        rejected = 0
        try:
            for signal, batch, success in batches:
                exporter = exporters[signal]
                if exporter is None or not batch:
                    continue
                result = exporter.export(batch)
                seen = outcome(exporter)
                if result is not success:
                    self.error = f"{signal} export failed" + (
                        f" (HTTP {seen.status})" if seen.status else ""
                    )
                    if seen.refused:
                        return _REFUSED, None, 0
                    return _FAILED, seen.retry_after, 0
                rejected += seen.rejected
        except Exception as error:
            record_error(f"export to {self.key}", error)
            self.error = f"export raised {type(error).__name__}"
            return _FAILED, None, 0
        self.error = ""
        try:
            from phonehome import _ledger

            _ledger.record(
                self.spool.directory.parent,
                f"{self.config['destinations'][self.key]['role']}: {self.destination.describe()}",
                spans,
                logs,
                metrics,
            )
        except Exception:  # the ledger is a courtesy; the delivery itself succeeded
            errors["ledger"] += 1
        return _DELIVERED, None, rejected


_DELIVERED, _FAILED, _REFUSED = "delivered", "failed", "refused"


# -- the detached process ---------------------------------------------------------------------
def main(argv: list[str]) -> int:
    """``python -m phonehome._sender STATE_DIR [LIFETIME] [LOCK_FD]``"""
    import signal

    state_dir = Path(argv[0])
    lifetime = float(argv[1]) if len(argv) > 1 else DEFAULT_LIFETIME
    lock_fd = int(argv[2]) if len(argv) > 2 else None
    if hasattr(signal, "alarm"):  # the hard cap, whatever an export does
        signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
        signal.alarm(int(lifetime) + 2)
    logging.disable(logging.CRITICAL)  # never print, whatever a library logs
    try:
        while time.monotonic() < _STARTED + lifetime:
            report = deliver(state_dir, _STARTED + lifetime - time.monotonic(), lock_fd)
            lock_fd = None
            if report is None or report.failed or report.held:
                break
            # a host may have spooled after our last look, while we held the lock: look again
            if not Spool(state_dir / "spool").names():
                break
    except Exception:
        return 1
    return 0


_STARTED = time.monotonic()

if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
