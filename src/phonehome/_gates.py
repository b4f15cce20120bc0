"""Consent gates: ordinary OpenTelemetry SDK components that drop data while consent is off.

Each takes ``consent``, any zero-argument callable returning ``True`` while data may flow,
and asks it on every decision, so revoking consent in a running process stops data at once.
They work in any SDK set-up::

    provider = TracerProvider(sampler=ConsentSampler(lambda: settings.telemetry_on))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

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


__all__ = [
    "ConsentLogProcessor",
    "ConsentMetricExporter",
    "ConsentSampler",
    "sampler_from_environment",
]
