"""Delivery to one destination: its exporters, progress, retries, backoff and ``Retry-After``.

Each destination has its own worker thread in a delivery round, with its own progress on
disk (``phonehome._spool.progress``), so a slow or dead destination delays and loses nothing
for the others. This is the sender's fan-out: independent workers rather than the public
``FanOut*Exporter`` classes, because progress must survive the process.

Each signal of a group is exported and written down on its own: when the logs request fails
after the spans were accepted, the retry sends the logs only. A failing destination is tried
``TRIES`` times in one delivery; then the persistent backoff of ``phonehome._spool.schedule``
decides when a later sender tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from phonehome._core.destinations import Destination
from phonehome._core.diagnostics import errors, record_error
from phonehome._spool.progress import SIGNALS, Progress
from phonehome._spool.schedule import Schedule

CHUNK = 512
"""Items (spans, log records, a segment's metrics) exported in one group."""
MAX_BACKOFF = 30.0
TRIES = 3
"""Requests for one group in one delivery (0.5 s and 1 s apart) before it is left to a
later sender, after the destination's persistent backoff."""

_DELIVERED, _FAILED, _REFUSED = "delivered", "failed", "refused"
_REVOKED = -1.0
"""What ``_send`` answers when consent was withdrawn before an export: stop."""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from phonehome._core.consent import LiveConsent
    from phonehome._sender.replay import Mapped

    Source = Callable[[str, float], Mapped | None]


class Worker:
    """Delivers to one destination (``key`` names it in the spool's progress)."""

    def __init__(
        self,
        key: str,
        destination: Destination,
        role: str,
        progress: Progress,
        resource: dict[str, Any],
        ledger_dir: Any,
        schedule: Schedule | None = None,
    ) -> None:
        self.key = key
        self.destination = destination
        self.role = role
        """``vendor`` or ``user``: what the destination may receive (``_sender/replay``) and
        which ambient credentials its exporters may use (``_sender/exporters``)."""
        self.progress = progress
        self.schedule = schedule if schedule is not None else Schedule(progress.directory)
        self.description = f"{role}: {destination.describe()}"
        """The destination with credentials masked, for the ledger."""
        self.resource = resource
        self.ledger_dir = ledger_dir
        self.done, self.partly = progress.read(key)
        """The segments it has whole, and the signals it has of others."""
        self.records = 0
        self.progressed = False
        """It took something in this delivery."""
        self.tried = False
        self.error = ""
        self._exporters: dict[str, Any] | None = None

    def held(self, backoff: bool = True) -> bool:
        """Whether the destination waits: it asked to (``Retry-After``), or, with
        ``backoff``, it kept failing."""
        return self.schedule.waits(self.key, backoff=backoff)

    def run(self, names: list[str], source: Source, consent: LiveConsent, deadline: float) -> None:
        """Export ``names`` in groups of about ``CHUNK`` items, marking each group on success.

        ``source(name, deadline)`` gives a segment's mapped data as soon as it is ready. In a
        thread of the host (CI, services): whatever fails here is counted, never printed.
        """
        try:
            self._run(names, source, consent, deadline)
        except Exception as error:
            errors[f"delivery to {self.key}: {type(error).__name__}"] += 1
            self.error = f"delivery raised {type(error).__name__}"

    def _run(self, names: list[str], source: Source, consent: LiveConsent, deadline: float) -> None:
        self.tried = True
        try:
            exporters = self._build(deadline)
        except Exception as error:
            self.error = f"cannot build exporters: {error}"
            return
        attempt = 0
        pending = iter(names)
        group: list[tuple[str, Mapped]] = []
        while time.monotonic() < deadline and consent():
            group = group or self._next_group(pending, source, deadline)
            if not group:
                return
            retry_after = self._send(exporters, group, consent)
            if retry_after == _REVOKED:
                return
            if retry_after is None:
                group, attempt = [], 0
                continue
            attempt += 1
            wait = max(min(MAX_BACKOFF, 0.25 * 2**attempt), retry_after)
            if attempt >= TRIES or time.monotonic() + wait >= deadline:
                if retry_after:
                    self.schedule.hold(self.key, retry_after)
                return
            time.sleep(wait)

    def _next_group(
        self, pending: Iterator[str], source: Source, deadline: float
    ) -> list[tuple[str, Mapped]]:
        """The next segments, about ``CHUNK`` items in all, as soon as they are mapped."""
        group: list[tuple[str, Mapped]] = []
        size = 0
        while size < CHUNK:
            name = next(pending, None)
            item = None if name is None else source(name, deadline)
            if name is None or item is None:
                break
            group.append((name, item))
            size += item.count
        return group

    def _send(
        self, exporters: dict[str, Any], group: list[tuple[str, Mapped]], consent: LiveConsent
    ) -> float | None:
        """Export one group, signal by signal, with the dropped-records report owed; write
        down what was accepted. ``None`` when done with it, ``_REVOKED`` when consent was
        withdrawn (decided again right before each export: the user may have said no a
        moment ago), else the seconds to wait (``Retry-After``, 0 if none)."""
        names = [name for name, _ in group]
        owed = self.progress.dropped(self.key)
        accepted: dict[str, list[Any]] = {}
        for signal in SIGNALS:
            items = [m for name, m in group if signal not in self.partly.get(name, ())]
            batch = _batch(signal, items)
            extra = owed and signal == "metrics"
            if extra:
                batch += _batch(signal, [self._dropped_report(owed)])
            if batch:
                if not consent.now():
                    self._write_down(names, accepted)
                    return _REVOKED
                result, retry_after, rejected = self._export(exporters, signal, batch)
                if result is _FAILED:
                    self._write_down(names, accepted)
                    return retry_after or 0.0
                if result is _REFUSED:  # sending it again cannot succeed: dropped, counted
                    rejected = _count(signal, items)
                else:
                    accepted[signal] = batch
                    if extra:
                        self.progress.reported_dropped(self.key, owed)
                if rejected:
                    self.progress.owe(self.key, rejected, "rejected")
            for name in names:
                self.partly.setdefault(name, set()).add(signal)
        self.records += len(accepted.get("traces", ())) + len(accepted.get("logs", ()))
        self._ledger(accepted)
        self.progress.mark_delivered(self.key, names)
        self.done.update(names)
        for name in names:
            self.partly.pop(name, None)
        self.progressed = True
        return None

    def _write_down(self, names: list[str], accepted: dict[str, list[Any]]) -> None:
        """Another signal failed: write down the signals of ``names`` done in this try."""
        self.records += len(accepted.get("traces", ())) + len(accepted.get("logs", ()))
        self._ledger(accepted)
        for signal in SIGNALS:
            done = [n for n in names if signal in self.partly.get(n, ())]
            if done:
                self.progress.mark_signal(self.key, done, signal)
                self.progressed = True

    def _dropped_report(self, owed: dict[str, int]) -> Mapped:
        from phonehome._sender.replay import dropped_report

        return dropped_report(self.resource, owed)

    def _build(self, deadline: float) -> dict[str, Any]:
        """The destination's exporters, each request bounded by what is left of the budget."""
        if self._exporters is None:
            from phonehome._sender import exporters

            remaining = max(0.1, deadline - time.monotonic())
            bounded = self.destination._replace(timeout=min(self.destination.timeout, remaining))
            self._exporters = {
                s: exporters.build(bounded, s, self.role) for s in ("traces", "logs", "metrics")
            }
        return self._exporters

    def _export(
        self, exporters: dict[str, Any], signal: str, batch: list[Any]
    ) -> tuple[str, float | None, int]:
        """Export one signal's batch: delivered, failed (try again) or refused (never
        again); the ``Retry-After`` asked for, and the items the destination refused inside
        a success (OTLP's ``partial_success``, Azure's 206).
        """
        from phonehome._sender.exporters import outcome

        exporter = exporters[signal]
        if exporter is None:  # the destination does not take this signal
            return _DELIVERED, None, 0
        try:
            result = exporter.export(_payload(signal, batch))
        except Exception as error:
            record_error(f"export to {self.key}", error)
            self.error = f"export raised {type(error).__name__}"
            return _FAILED, None, 0
        seen = outcome(exporter)
        if result is not _success(signal):
            status = f" (HTTP {seen.status})" if seen.status else ""
            self.error = f"{signal} export failed{status}"
            if seen.refused:
                return _REFUSED, None, 0
            return _FAILED, seen.retry_after, 0
        self.error = ""
        return _DELIVERED, None, seen.rejected

    def _ledger(self, accepted: dict[str, list[Any]]) -> None:
        if not accepted:
            return
        try:
            from phonehome._sender import ledger

            ledger.record(
                self.ledger_dir,
                self.description,
                accepted.get("traces", []),
                accepted.get("logs", []),
                accepted.get("metrics", []),
            )
        except Exception:  # the ledger is a courtesy; the delivery itself succeeded
            errors["ledger"] += 1


def _batch(signal: str, items: list[Mapped]) -> list[Any]:
    """What ``items`` hold of ``signal``: spans, log records, or resource metrics."""
    if signal == "traces":
        return [s for m in items for s in m.spans]
    if signal == "logs":
        return [r for m in items for r in m.logs]
    return [rm for m in items if m.metrics for rm in m.metrics.resource_metrics]


def _count(signal: str, items: list[Mapped]) -> int:
    """Records of ``signal`` in ``items`` (a segment's metrics count as one)."""
    if signal == "metrics":
        return sum(1 for m in items if m.metrics)
    return len(_batch(signal, items))


def _payload(signal: str, batch: list[Any]) -> Any:
    if signal != "metrics":
        return batch
    from opentelemetry.sdk.metrics.export import MetricsData

    return MetricsData(resource_metrics=batch)


def _success(signal: str) -> Any:
    """The result an exporter of ``signal`` returns on success."""
    if signal == "traces":
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS
    if signal == "logs":
        from opentelemetry.sdk._logs.export import LogRecordExportResult

        return LogRecordExportResult.SUCCESS
    from opentelemetry.sdk.metrics.export import MetricExportResult

    return MetricExportResult.SUCCESS
