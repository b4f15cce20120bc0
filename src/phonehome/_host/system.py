"""Infrastructure telemetry for services: the OpenTelemetry system-metrics instrumentation.

Its own consent category: off unless the integrator asks (``system_metrics=True``), sampled
only by a service's background thread (never by a short CLI run), and refused on its own by
``<PREFIX>_TELEMETRY_SYSTEM_METRICS=0`` while the rest of the telemetry stays on. Samples
become ordinary records: gauges as they are, monotonic sums as the increase since the last
sample.
"""

from __future__ import annotations

from phonehome._policy.enforce import SYSTEM_METRICS
from phonehome._spool.records import MeasureRecord, measure

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class SystemMetrics:
    """A private MeterProvider with the instrumentation, read on every :meth:`sample`."""

    def __init__(self) -> None:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        self._reader = InMemoryMetricReader()
        self._provider = MeterProvider(metric_readers=[self._reader], shutdown_on_exit=False)
        self._instrumentor = SystemMetricsInstrumentor(config=dict(SYSTEM_METRICS))
        self._instrumentor.instrument(meter_provider=self._provider)
        self._last: dict[tuple[str, tuple[tuple[str, Any], ...]], float] = {}

    def sample(self) -> list[MeasureRecord]:
        """Records for what changed since the last sample (the first one sets a baseline)."""
        data = self._reader.get_metrics_data()
        records: list[MeasureRecord] = []
        for resource_metrics in data.resource_metrics if data else ():
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    records.extend(self._records(metric))
        return records

    def _records(self, metric: Any) -> list[MeasureRecord]:
        found = []
        monotonic = getattr(metric.data, "is_monotonic", False)
        for point in getattr(metric.data, "data_points", ()):
            value = getattr(point, "value", None)
            if value is None:
                continue
            attributes = dict(point.attributes or {})
            if not monotonic:
                found.append(
                    measure(
                        "gauge", metric.name, metric.unit, metric.description, value, attributes
                    )
                )
                continue
            key = (metric.name, tuple(sorted(attributes.items())))
            previous = self._last.get(key)
            self._last[key] = value
            if previous is not None and value >= previous:
                found.append(
                    measure(
                        "counter",
                        metric.name,
                        metric.unit,
                        metric.description,
                        value - previous,
                        attributes,
                    )
                )
        return found

    def close(self) -> None:
        self._instrumentor.uninstrument()
        self._provider.shutdown()
