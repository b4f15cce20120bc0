"""Delivery rounds: every spooled segment to every destination named in it, within a budget.

Runs in the detached sender (``python -m phonehome._sender``), in a service's background
thread, or synchronously in CI and ``flush()``. At most one delivery per state directory at a
time (the sender lock). Before anything is sent, consent is decided again from the
manifest (``phonehome._spool.manifest``) and the spool is purged if it is off. Each round
reads up to ``ROUND_SEGMENTS`` segments, replays them through the SDK (``replay``) while one
worker per destination (``worker``) exports what is ready, then deletes what every
destination has.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phonehome._core import state as statefiles
from phonehome._core.consent import LiveConsent, Resolver
from phonehome._core.diagnostics import errors
from phonehome._core.settings import DEFAULT_SENDER_LIFETIME
from phonehome._policy.exemptions import Exemptions
from phonehome._sender.worker import Worker
from phonehome._spool import manifest as manifests
from phonehome._spool.lock import try_lock, unlock
from phonehome._spool.manifest import Manifest
from phonehome._spool.schedule import Schedule
from phonehome._spool.segments import Segment, Spool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from phonehome._policy.scrub import Scrubber
    from phonehome._sender.replay import Mapped
    from phonehome._sender.worker import Source

REPORT_FILE = "last-delivery.json"
DEFAULT_LIFETIME = DEFAULT_SENDER_LIFETIME
ROUND_SEGMENTS = 256


@dataclass(slots=True)
class Report:
    """What one delivery did, per destination key."""

    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    pending_segments: int = 0
    corrupt: int = 0
    purged: int = 0
    unsupported: int = 0
    """Segments of a newer format, kept for a newer sender."""
    held: bool = False
    """A destination waits beyond this delivery (``Retry-After``, or its backoff)."""
    waiting: list[str] = field(default_factory=list)
    """The destinations that wait."""


_QUIET_LOGGERS = ("opentelemetry", "azure.monitor.opentelemetry.exporter", "azure.core.pipeline")
_SHARED_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "urllib3.http2.connection",
    "charset_normalizer",
)
"""The HTTP libraries under the exporters, which the host may use (and log) as well: only
what they say in a delivery thread is kept from the host's handlers."""
_THREAD = "phonehome-delivery"


class _Counted(logging.Handler):
    """Counts the exporters' warnings and errors instead of letting them reach a terminal."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            errors[f"{record.name}: {record.levelname.lower()}"] += 1


class _NotFromDelivery(logging.Filter):
    """Drops what a library logs in a delivery thread (a host at ``DEBUG`` would print a
    line per request); what it logs for the host itself passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != _THREAD


def quiet_exporter_logs() -> None:
    """Keep the exporters' own messages (a dead collector, a retry) and those of the HTTP
    libraries under them off the user's terminal.

    For in-process delivery (CI, services). Not undone afterwards: an export abandoned at the
    deadline may still log later.
    """
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _Counted) for h in logger.handlers):
            logger.addHandler(_Counted())
            logger.propagate = False
    for name in _SHARED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NotFromDelivery) for f in logger.filters):
            logger.addFilter(_NotFromDelivery())


def deliver(
    state_dir: Path, budget: float, lock_fd: int | None = None, *, retry_now: bool = False
) -> Report | None:
    """Deliver what is spooled within ``budget`` seconds; ``None`` if another sender runs.

    ``retry_now``: also try the destinations whose backoff is not over (an explicit flush);
    a ``Retry-After`` is honoured all the same.
    """
    fd = lock_fd if lock_fd is not None else try_lock(state_dir)
    if fd is None:
        return None
    try:
        return deliver_locked(state_dir, time.monotonic() + budget, retry_now=retry_now)
    finally:
        unlock(fd)


def deliver_locked(state_dir: Path, deadline: float, *, retry_now: bool = False) -> Report:
    """:func:`deliver`, by a caller that holds the sender lock (the detached sender)."""
    quiet_exporter_logs()
    return _deliver_locked(state_dir, deadline, not retry_now)


def _ready(state_dir: Path, report: Report) -> tuple[Manifest, Spool, LiveConsent] | None:
    """The manifest, spool and live consent, or ``None`` when nothing may be sent: no
    manifest, consent off (the spool is purged first), or the notice not yet confirmed.
    """
    found = manifests.load(state_dir)
    if found is None:
        return None
    spool = Spool(state_dir / "spool", found.max_bytes, found.max_age)
    resolver = Resolver(found.prefix, found.consent, found.enabled, state_dir, found.automation)  # type: ignore[arg-type]
    decision = resolver.resolve()
    if not decision.enabled:
        report.purged = spool.purge()
        return None
    if not found.notice_confirmed:
        return None  # the notice was shown in the last run: what it recorded waits for the next
    return found, spool, LiveConsent(resolver, decision)


def _deliver_locked(state_dir: Path, deadline: float, backoff: bool) -> Report:
    report = Report()
    ready = _ready(state_dir, report)
    if ready is None:
        return report
    found, spool, consent = ready
    spool.enforce_caps()
    schedule = Schedule(os.path.join(spool.directory, "progress"), spool.clock)
    workers = {
        key: Worker(
            key, destination, found.role(key), spool.progress, found.resource, state_dir, schedule
        )
        for key, destination in found.destinations().items()
    }
    ready_workers = {k: w for k, w in workers.items() if not w.held(backoff)}
    if ready_workers:
        from phonehome._policy.scrub import Scrubber

        scrubber = Scrubber()
        while time.monotonic() < deadline:
            roles = {worker.role for worker in ready_workers.values()}
            mapped = _Mapped(scrubber, Exemptions.from_data(found.exemptions), roles)
            go_on = _round(spool, ready_workers, workers, mapped, consent, deadline, report)
            if go_on is None:  # consent was revoked during the round
                report.purged = spool.purge()
                return report
            # a destination that failed is left to a later sender, after its backoff
            ready_workers = {k: w for k, w in ready_workers.items() if not w.error}
            if not go_on or not ready_workers:
                break
    for worker in workers.values():
        _settle(worker, schedule)
        report.delivered[worker.key] = worker.records
        if worker.held():
            report.waiting.append(worker.key)
        if worker.error:
            report.failed[worker.key] = worker.error
    report.held = bool(report.waiting)
    with contextlib.suppress(OSError):
        schedule.publish(workers)
    report.pending_segments = len(spool.names())
    _write_report(state_dir, report)
    return report


def _settle(worker: Worker, schedule: Schedule) -> None:
    """The destination's backoff after this delivery: none once it took something; longer
    if it was tried and took nothing."""
    if not worker.tried:
        return
    with contextlib.suppress(OSError):
        if worker.progressed:
            schedule.succeed(worker.key)
        elif worker.error and not schedule.waits(worker.key, backoff=False):
            schedule.fail(worker.key)


def _round(
    spool: Spool,
    workers: dict[str, Worker],
    every: dict[str, Worker],
    mapped: _Mapped,
    consent: LiveConsent,
    deadline: float,
    report: Report,
) -> bool | None:
    """One round over the oldest ``ROUND_SEGMENTS`` segments: map them here while each
    ready destination's thread (``workers``; ``every`` destination counts for deleting)
    exports what is already mapped. Whether another round may help (``None``: consent was
    revoked, nothing more may be sent)."""
    names = spool.names()
    segments: dict[str, Segment] = {}
    unsupported = 0
    for name in names:
        segment = spool.read(name)
        if segment is None:
            continue
        if segment.unsupported:  # a newer sender's: left for it, until the age cap
            unsupported += 1
            continue
        segments[name] = segment
        if len(segments) >= ROUND_SEGMENTS:
            break
    names = list(segments)
    report.unsupported = max(report.unsupported, unsupported)
    report.corrupt += sum(s.corrupt for s in segments.values())
    jobs = {
        key: pending
        for key, worker in workers.items()
        if (pending := [n for n in names if _wants(worker, n, segments)])
    }
    if not jobs:
        _remove_delivered(spool, segments, every)
        return False
    threads = [
        threading.Thread(
            target=workers[key].run,
            args=(pending, mapped.source(segments, workers[key].role), consent, deadline),
            name=_THREAD,
            daemon=True,
        )
        for key, pending in jobs.items()
    ]
    for thread in threads:
        thread.start()
    wanted = [n for n in names if any(n in pending for pending in jobs.values())]
    mapped.fill(wanted, segments, consent, deadline)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    if not consent():
        return None
    if any(thread.is_alive() for thread in threads):
        return False
    _remove_delivered(spool, segments, every)
    # every destination with work failed this round: back off until the next run
    return any(workers[key].progressed for key in jobs)


def _wants(worker: Worker, name: str, segments: dict[str, Segment]) -> bool:
    segment = segments.get(name)
    return segment is not None and worker.key in segment.destinations and name not in worker.done


class _Mapped:
    """Segments mapped to OpenTelemetry data, handed to the destination threads as they come.

    A segment is mapped once for every destination, or twice when the user set resource
    variables: the user's destinations get them, the vendor's never do.
    """

    def __init__(self, scrubber: Scrubber, exemptions: Exemptions, roles: set[str]) -> None:
        self._items: dict[tuple[str, str], Mapped] = {}
        self._done = False
        self.scrubber = scrubber
        self.exemptions = exemptions
        self.roles = roles
        self._cond = threading.Condition()

    @staticmethod
    def variant(segment: Segment, role: str) -> str:
        return "user" if role == "user" and segment.header.get("user_resource") else "vendor"

    def fill(
        self, names: list[str], segments: dict[str, Segment], consent: Any, deadline: float
    ) -> None:
        from phonehome._sender.replay import map_segment

        try:
            for name in names:
                segment = segments[name]
                for variant in sorted({self.variant(segment, role) for role in self.roles}):
                    if time.monotonic() >= deadline or not consent():
                        return
                    item = map_segment(segment, consent, self.scrubber, self.exemptions, variant)
                    with self._cond:
                        self._items[(name, variant)] = item
                        self._cond.notify_all()
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def source(self, segments: dict[str, Segment], role: str) -> Source:
        """What ``role``'s worker reads its mapped segments from."""

        def get(name: str, deadline: float) -> Mapped | None:
            return self.get((name, self.variant(segments[name], role)), deadline)

        return get

    def get(self, key: tuple[str, str], deadline: float) -> Mapped | None:
        """The mapped segment, waiting for it; ``None`` if it will not come in time."""
        with self._cond:
            while key not in self._items:
                remaining = deadline - time.monotonic()
                if self._done or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._items[key]


def _remove_delivered(
    spool: Spool, segments: dict[str, Segment], workers: dict[str, Worker]
) -> None:
    """Delete the segments every destination named in them has; forget their progress."""
    removed = False
    for name, segment in segments.items():
        wanted = [k for k in segment.destinations if k in workers]
        if all(name in workers[k].done for k in wanted):
            spool.remove(name)
            removed = True
    if removed:
        spool.progress.compact(set(spool.names()))


def _write_report(state_dir: Path, report: Report) -> None:
    with contextlib.suppress(OSError):
        statefiles.write_text(
            state_dir / REPORT_FILE,
            json.dumps(
                {
                    "at": time.time(),
                    "delivered": report.delivered,
                    "failed": report.failed,
                    "pending_segments": report.pending_segments,
                    "corrupt": report.corrupt,
                    "purged": report.purged,
                    "unsupported": report.unsupported,
                    "waiting": report.waiting,
                }
            ),
        )
