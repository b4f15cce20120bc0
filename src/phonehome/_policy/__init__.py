"""The policy: what may leave the process (the schema and its enforcement) and how text is
cleaned of personal data and secrets (scrubbing)."""
