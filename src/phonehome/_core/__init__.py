"""What every stage shares: variable names, settings, consent, diagnostics, state files,
destinations. Nothing here imports OpenTelemetry or any other stage."""
