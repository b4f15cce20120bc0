"""OpenTelemetry SDK components for your own set-up: consent gates and fan-out exporters.

Ordinary SDK components that anyone can put into their own providers::

    provider = TracerProvider(sampler=ConsentSampler(lambda: settings.telemetry_on))
    provider.add_span_processor(BatchSpanProcessor(FanOutSpanExporter([vendor, mine])))

Consent gates take ``consent``, any zero-argument callable returning ``True`` while data
may flow, and ask it on every decision, so revoking consent in a running process stops data
at once. Fan-out exporters send each batch to every child on its own lane (a bounded queue
and a worker thread), modelled on the SDK's ``SynchronousMultiSpanProcessor``: an immutable
tuple of children, per-child isolation, one shared deadline for flush and shutdown.

phonehome's own sender does not fan out through these classes: it delivers spooled records
to each destination with an independent worker (its own progress on disk, retries and
``Retry-After``), which a batch exporter cannot keep across processes (``docs/delivery.md``).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from phonehome._core.diagnostics import record_error

__all__ = [
    "DELTA",
    "ConsentLogProcessor",
    "ConsentMetricExporter",
    "ConsentSampler",
    "FanOutLogExporter",
    "FanOutMetricExporter",
    "FanOutSpanExporter",
    "LaneStats",
    "sampler_from_environment",
]

Consent = Callable[[], bool]

_DROP = SamplingResult(Decision.DROP)


def sampler_from_environment() -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` ask for."""
    return _get_from_env_or_default()


class ConsentSampler(Sampler):
    """Drops every span while consent is off; otherwise asks ``delegate``.

    Args:
        consent: called on every sampling decision; ``False`` means DROP.
        delegate: the sampler to follow while consent is on; by default the one the
            ``OTEL_TRACES_SAMPLER`` variables configure (``parentbased_always_on``).
    """

    def __init__(self, consent: Consent, delegate: Sampler | None = None) -> None:
        self._consent = consent
        self._delegate = delegate if delegate is not None else sampler_from_environment()

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if not self._consent():
            return _DROP
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"ConsentSampler{{{self._delegate.get_description()}}}"


class ConsentLogProcessor(LogRecordProcessor):
    """Passes log records to ``delegate`` only while consent is on."""

    def __init__(self, consent: Consent, delegate: LogRecordProcessor) -> None:
        self._consent = consent
        self._delegate = delegate

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        if self._consent():
            self._delegate.on_emit(log_record)

    def shutdown(self) -> None:
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._delegate.force_flush(timeout_millis)


class ConsentMetricExporter(MetricExporter):
    """Exports metrics through ``delegate`` only while consent is on; otherwise drops them."""

    def __init__(self, consent: Consent, delegate: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=delegate._preferred_temporality,
            preferred_aggregation=delegate._preferred_aggregation,
        )
        self._consent = consent
        self._delegate = delegate

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        if not self._consent():
            return MetricExportResult.SUCCESS
        return self._delegate.export(metrics_data, timeout_millis=timeout_millis)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._delegate.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        self._delegate.shutdown(timeout_millis=timeout_millis)


T = TypeVar("T")

DEFAULT_SHUTDOWN_TIMEOUT = 5.0
DEFAULT_MAX_PENDING = 64
DELTA: dict[type, AggregationTemporality] = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
}
"""Delta for counters and histograms: each short CLI run reports its own counts, and Azure
Monitor expects them."""


@dataclass(slots=True)
class LaneStats:
    """What one destination's lane did with the batches it was given."""

    exported: int = 0
    failed: int = 0
    dropped: int = 0


class _Lane(Generic[T]):
    """One destination's bounded queue and worker thread (started on first use)."""

    def __init__(self, name: str, export: Callable[[T], bool], max_pending: int) -> None:
        self.name = name
        self.stats = LaneStats()
        self._export = export
        self._queue: deque[T] = deque()
        self._max_pending = max_pending
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def put(self, batch: T) -> None:
        with self._cond:
            if self._closed:
                self.stats.dropped += 1
                return
            if len(self._queue) >= self._max_pending:
                self._queue.popleft()
                self.stats.dropped += 1
            self._queue.append(batch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"phonehome-{self.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = self._queue.popleft()
                self._busy = True
            try:
                ok = self._export(batch)
            except Exception as error:
                ok = False
                # in strict mode it re-raises, but a worker thread has nobody to raise to
                with contextlib.suppress(Exception):
                    record_error(f"export to {self.name}", error)
            with self._cond:
                self._busy = False
                if ok:
                    self.stats.exported += 1
                else:
                    self.stats.failed += 1
                self._cond.notify_all()

    def wait_idle(self, deadline: float) -> bool:
        """Wait until everything queued was attempted; ``False`` if the deadline passed."""
        with self._cond:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _FanOut(Generic[T]):
    def __init__(
        self, children: Sequence[tuple[str, Callable[[T], bool]]], max_pending: int
    ) -> None:
        self.lanes: tuple[_Lane[T], ...] = tuple(
            _Lane(name, export, max_pending) for name, export in children
        )

    def put(self, batch: T) -> None:
        for lane in self.lanes:
            lane.put(batch)

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all([lane.wait_idle(deadline) for lane in self.lanes])

    def close(self, timeout: float) -> bool:
        drained = self.flush(timeout)
        for lane in self.lanes:
            lane.close()
        return drained


class _FanOutBase(Generic[T]):
    """What the three fan-out exporters share: children, lanes, statistics, shutdown."""

    _children: tuple[Any, ...]
    _timeout: float
    _fan: _FanOut[T]

    def _setup(
        self,
        exporters: Sequence[Any],
        names: Sequence[str] | None,
        shutdown_timeout: float,
        max_pending: int,
        succeeded: Callable[[Any, T], bool],
    ) -> None:
        if names is not None and len(names) != len(exporters):
            raise ValueError("names must match exporters one to one")
        labels = list(names) if names is not None else [type(e).__name__ for e in exporters]
        self._children = tuple(exporters)
        self._timeout = shutdown_timeout
        self._fan = _FanOut(
            [
                (label, functools.partial(succeeded, child))
                for label, child in zip(labels, self._children, strict=True)
            ],
            max_pending,
        )

    @property
    def stats(self) -> dict[str, LaneStats]:
        """Per destination: batches exported, failed and dropped."""
        return {lane.name: lane.stats for lane in self._fan.lanes}

    def _close(self, timeout: float) -> None:
        self._fan.close(timeout)
        for child in self._children:
            try:
                child.shutdown()
            except Exception as error:
                record_error(f"shutdown of {type(child).__name__}", error)


def _span_ok(child: SpanExporter, batch: tuple[ReadableSpan, ...]) -> bool:
    return child.export(batch) is SpanExportResult.SUCCESS


def _log_ok(child: LogRecordExporter, batch: tuple[ReadableLogRecord, ...]) -> bool:
    return child.export(batch) is LogRecordExportResult.SUCCESS


def _metric_ok(child: MetricExporter, data: MetricsData) -> bool:
    return child.export(data) is MetricExportResult.SUCCESS


class FanOutSpanExporter(_FanOutBase[tuple[ReadableSpan, ...]], SpanExporter):
    """Sends every span batch to each child exporter, isolated from one another.

    Args:
        exporters: the destinations' exporters.
        names: labels for the lanes (thread names, statistics).
        shutdown_timeout: seconds that ``shutdown`` waits, in total, for queued batches.
        max_pending: batches a lane holds while its destination is slow; the oldest go first.
    """

    def __init__(
        self,
        exporters: Sequence[SpanExporter],
        *,
        names: Sequence[str] | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._setup(exporters, names, shutdown_timeout, max_pending, _span_ok)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._fan.put(tuple(spans))
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._fan.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self._close(self._timeout)


class FanOutLogExporter(_FanOutBase[tuple[ReadableLogRecord, ...]], LogRecordExporter):
    """Sends every log record batch to each child exporter, isolated from one another.

    Takes the same arguments as :class:`FanOutSpanExporter`.
    """

    def __init__(
        self,
        exporters: Sequence[LogRecordExporter],
        *,
        names: Sequence[str] | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._setup(exporters, names, shutdown_timeout, max_pending, _log_ok)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._fan.put(tuple(batch))
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._fan.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        self._close(self._timeout)


class FanOutMetricExporter(_FanOutBase[MetricsData], MetricExporter):
    """Sends every metrics export to each child exporter, isolated from one another.

    Counters and histograms use delta temporality (see ``DELTA``). Takes the same
    arguments as :class:`FanOutSpanExporter`.
    """

    def __init__(
        self,
        exporters: Sequence[MetricExporter],
        *,
        names: Sequence[str] | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        MetricExporter.__init__(self, preferred_temporality=dict(DELTA))
        self._setup(exporters, names, shutdown_timeout, max_pending, _metric_ok)

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        self._fan.put(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._fan.flush(timeout_millis / 1000)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        self._close(min(self._timeout, timeout_millis / 1000))
