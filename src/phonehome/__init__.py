"""phonehome: consent-aware product telemetry on OpenTelemetry.

    with phonehome.instrument("democli", version="1.4.0", vendor=URL) as telemetry:
        with telemetry.command("generate", params=args, collect={"language"}):
            ...

Importing this package is cheap and does not import OpenTelemetry: everything beyond
``instrument`` (the handle's types, the schema, destinations, the OpenTelemetry components
in ``phonehome.otel``) loads on first access. (No ``from __future__ import annotations`` on
the consent-off path: importing ``__future__`` costs more than most of its modules.)
"""

from phonehome._instrument import instrument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from phonehome._core.consent import Decision
    from phonehome._core.destinations import Destination, azure, otlp
    from phonehome._core.errors import (
        DestinationError,
        PhonehomeError,
        SchemaError,
        UndeclaredError,
    )
    from phonehome._core.instruments import Counter, Gauge, Histogram, Span
    from phonehome._instrument import Telemetry
    from phonehome._policy.schema import Schema, field
    from phonehome.otel import (
        ConsentLogProcessor,
        ConsentMetricExporter,
        ConsentSampler,
        FanOutLogExporter,
        FanOutMetricExporter,
        FanOutSpanExporter,
    )

    __version__: str

__all__ = [
    "ConsentLogProcessor",
    "ConsentMetricExporter",
    "ConsentSampler",
    "Counter",
    "Decision",
    "Destination",
    "DestinationError",
    "FanOutLogExporter",
    "FanOutMetricExporter",
    "FanOutSpanExporter",
    "Gauge",
    "Histogram",
    "PhonehomeError",
    "Schema",
    "SchemaError",
    "Span",
    "Telemetry",
    "UndeclaredError",
    "__version__",
    "azure",
    "field",
    "instrument",
    "otlp",
]

_LAZY = {
    "Decision": "phonehome._core.consent",
    "Span": "phonehome._core.instruments",
    "Telemetry": "phonehome._instrument",
    "Counter": "phonehome._core.instruments",
    "Gauge": "phonehome._core.instruments",
    "Histogram": "phonehome._core.instruments",
    "Schema": "phonehome._policy.schema",
    "field": "phonehome._policy.schema",
    "Destination": "phonehome._core.destinations",
    "azure": "phonehome._core.destinations",
    "otlp": "phonehome._core.destinations",
    "DestinationError": "phonehome._core.errors",
    "PhonehomeError": "phonehome._core.errors",
    "SchemaError": "phonehome._core.errors",
    "UndeclaredError": "phonehome._core.errors",
    "ConsentSampler": "phonehome.otel",
    "ConsentLogProcessor": "phonehome.otel",
    "ConsentMetricExporter": "phonehome.otel",
    "FanOutSpanExporter": "phonehome.otel",
    "FanOutLogExporter": "phonehome.otel",
    "FanOutMetricExporter": "phonehome.otel",
}


def __getattr__(name: str) -> "Any":
    if name == "__version__":
        from phonehome._core import VERSION

        return VERSION
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'phonehome' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)  # importlib is an import more
    globals()[name] = value
    return value
