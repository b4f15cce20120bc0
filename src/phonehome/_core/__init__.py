"""What every stage shares: variable names, settings, consent, diagnostics, state files,
destinations. Nothing here imports OpenTelemetry or any other stage."""

VERSION = "0.1.0"
"""phonehome's version, defined once (``pyproject.toml`` reads it from here)."""
