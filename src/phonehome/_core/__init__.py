"""What every stage shares: variable names, settings, consent, diagnostics, state files,
destinations, and the no-op bases of what the handle returns (so that a run with consent off
loads no other package). Nothing here imports OpenTelemetry or any other stage."""

VERSION = "0.1.0"
"""phonehome's version, defined once (``pyproject.toml`` reads it from here)."""
