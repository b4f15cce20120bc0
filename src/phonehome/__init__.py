"""phonehome: consent-aware product telemetry on OpenTelemetry.

    with phonehome.instrument("democli", version="1.4.0", vendor=URL) as telemetry:
        with telemetry.command("generate", params=args, collect={"language"}):
            ...

Importing this package is cheap and does not import OpenTelemetry: everything beyond
``instrument`` (destinations, the OpenTelemetry components) loads on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from phonehome._consent import Decision
from phonehome._instrument import instrument
from phonehome._telemetry import Telemetry

if TYPE_CHECKING:
    from phonehome._destinations import Destination, DestinationError, azure, otlp
    from phonehome._fanout import FanOutLogExporter, FanOutMetricExporter, FanOutSpanExporter
    from phonehome._gates import ConsentLogProcessor, ConsentMetricExporter, ConsentSampler
    from phonehome._schema import Field, Schema, SchemaError, UndeclaredError, field

__version__ = "0.1.0"

__all__ = [
    "ConsentLogProcessor",
    "ConsentMetricExporter",
    "ConsentSampler",
    "Decision",
    "Destination",
    "DestinationError",
    "FanOutLogExporter",
    "FanOutMetricExporter",
    "FanOutSpanExporter",
    "Field",
    "Schema",
    "SchemaError",
    "Telemetry",
    "UndeclaredError",
    "__version__",
    "azure",
    "field",
    "instrument",
    "otlp",
]

_LAZY = {
    "Field": "phonehome._schema",
    "Schema": "phonehome._schema",
    "SchemaError": "phonehome._schema",
    "UndeclaredError": "phonehome._schema",
    "field": "phonehome._schema",
    "Destination": "phonehome._destinations",
    "DestinationError": "phonehome._destinations",
    "azure": "phonehome._destinations",
    "otlp": "phonehome._destinations",
    "ConsentSampler": "phonehome._gates",
    "ConsentLogProcessor": "phonehome._gates",
    "ConsentMetricExporter": "phonehome._gates",
    "FanOutSpanExporter": "phonehome._fanout",
    "FanOutLogExporter": "phonehome._fanout",
    "FanOutMetricExporter": "phonehome._fanout",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'phonehome' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
