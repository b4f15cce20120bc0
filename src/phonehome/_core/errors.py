"""Every exception phonehome raises, in one place.

Configuration problems that reach the integrator's code raise these (``SchemaError`` from a
schema that cannot be used, ``DestinationError`` from ``phonehome.otlp()``); in tests,
``UndeclaredError``. Anything that goes wrong while a host program runs is contained and
counted instead (``phonehome._core.diagnostics``), never raised into the host.
"""


class PhonehomeError(Exception):
    """The base of phonehome's own exceptions."""


class SettingError(PhonehomeError, ValueError):
    """An ``instrument()`` argument that cannot be used; the message names it and the fix."""


class SchemaError(PhonehomeError, ValueError):
    """A schema that cannot be used; the message names the field and the problem."""


class UndeclaredError(PhonehomeError, ValueError):
    """Raised in tests (strict mode) when code records a field the schema does not declare."""


class DestinationError(PhonehomeError, ValueError):
    """A destination setting that cannot be used; the message says why."""


class MissingExtra(PhonehomeError, RuntimeError):
    """An optional dependency for a destination kind is not installed."""
