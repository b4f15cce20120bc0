"""Delivery to one destination: its exporters, progress, backoff and ``Retry-After``.

Each destination has its own worker thread in a delivery round, with its own progress on
disk (``phonehome._spool.progress``), so a slow or dead destination delays and loses nothing
for the others. This is the sender's fan-out: independent workers rather than the public
``FanOut*Exporter`` classes, because progress must survive the process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from phonehome._core.destinations import Destination
from phonehome._core.diagnostics import errors, record_error
from phonehome._spool.progress import Progress

CHUNK = 512
"""Items (spans, log records, a segment's metrics) exported in one group."""
MAX_BACKOFF = 30.0

_DELIVERED, _FAILED, _REFUSED = "delivered", "failed", "refused"

TYPE_CHECKING = False
if TYPE_CHECKING:
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
    ) -> None:
        self.key = key
        self.destination = destination
        self.role = role
        """``vendor`` or ``user``: what the destination may receive (``_sender/replay``) and
        which ambient credentials its exporters may use (``_sender/exporters``)."""
        self.progress = progress
        self.description = f"{role}: {destination.describe()}"
        """The destination with credentials masked, for the ledger."""
        self.resource = resource
        self.ledger_dir = ledger_dir
        self.done = progress.delivered(key)
        self.records = 0
        self.progressed = False
        self.error = ""
        self._exporters: dict[str, Any] | None = None

    def held(self) -> bool:
        """Whether the destination asked us (``Retry-After``) to wait beyond now."""
        return self.progress.held(self.key)

    def run(self, names: list[str], source: Source, consent: Any, deadline: float) -> None:
        """Export ``names`` in groups of about ``CHUNK`` items, marking each group on success.

        ``source(name, deadline)`` gives a segment's mapped data as soon as it is ready. In a
        thread of the host (CI, services): whatever fails here is counted, never printed.
        """
        try:
            self._run(names, source, consent, deadline)
        except Exception as error:
            errors[f"delivery to {self.key}: {type(error).__name__}"] += 1
            self.error = f"delivery raised {type(error).__name__}"

    def _run(self, names: list[str], source: Source, consent: Any, deadline: float) -> None:
        self.progressed = False
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
            retry_after = self._send(exporters, group)
            if retry_after is None:
                group, attempt = [], 0
                continue
            attempt += 1
            wait = max(min(MAX_BACKOFF, 0.25 * 2**attempt), retry_after)
            if time.monotonic() + wait >= deadline:
                if retry_after:
                    self.progress.hold(self.key, retry_after)
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

    def _send(self, exporters: dict[str, Any], group: list[tuple[str, Mapped]]) -> float | None:
        """Export one group with the dropped-records report owed; mark it delivered unless
        it failed. ``None`` when done with it, else the seconds to wait (``Retry-After``)."""
        items = [item for _, item in group]
        owed = self.progress.dropped(self.key)
        extra = [self._dropped_report(owed)] if owed else []
        result, retry_after, rejected = self._export(exporters, items + extra)
        if result is _FAILED:
            return retry_after or 0.0
        if result is _REFUSED:  # sending it again cannot succeed: dropped, counted
            rejected = sum(item.count for item in items)
        else:
            self.progress.reported_dropped(self.key, owed)
            self.records += sum(len(i.spans) + len(i.logs) for i in items)
        if rejected:
            self.progress.owe(self.key, rejected, "rejected")
        names = [name for name, _ in group]
        self.progress.mark_delivered(self.key, names)
        self.done.update(names)
        self.progressed = True
        return None

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
        self, exporters: dict[str, Any], group: list[Mapped]
    ) -> tuple[str, float | None, int]:
        """Export one group: delivered, failed (try again) or refused (never again); the
        ``Retry-After`` asked for, and the items the destination refused inside a success.
        """
        from phonehome._sender.exporters import outcome

        spans = [s for m in group for s in m.spans]
        logs = [r for m in group for r in m.logs]
        metrics = [rm for m in group if m.metrics for rm in m.metrics.resource_metrics]
        rejected = 0
        try:
            for signal, batch, success in _batches(spans, logs, metrics):
                exporter = exporters[signal]
                if exporter is None or not batch:
                    continue
                result = exporter.export(batch)
                seen = outcome(exporter)
                if result is not success:
                    status = f" (HTTP {seen.status})" if seen.status else ""
                    self.error = f"{signal} export failed{status}"
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
            from phonehome._sender import ledger

            ledger.record(self.ledger_dir, self.description, spans, logs, metrics)
        except Exception:  # the ledger is a courtesy; the delivery itself succeeded
            errors["ledger"] += 1
        return _DELIVERED, None, rejected


def _batches(spans: list[Any], logs: list[Any], metrics: list[Any]) -> list[tuple[str, Any, Any]]:
    """Each signal's batch and the result its exporter returns on success."""
    from opentelemetry.sdk._logs.export import LogRecordExportResult
    from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData
    from opentelemetry.sdk.trace.export import SpanExportResult

    return [
        ("traces", spans, SpanExportResult.SUCCESS),
        ("logs", logs, LogRecordExportResult.SUCCESS),
        (
            "metrics",
            MetricsData(resource_metrics=metrics) if metrics else None,
            MetricExportResult.SUCCESS,
        ),
    ]
