"""The sender: delivers spooled records to every destination through the OpenTelemetry SDK,
in a detached process (``python -m phonehome._sender``) or in the host's own thread."""
