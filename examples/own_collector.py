#!/usr/bin/env python3
"""Send everything only to my own collector: no vendor at all.

    phonehome collector --forward-to http://my-backend:4318 &
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python examples/own_collector.py

With no vendor=, the standard OTEL_EXPORTER_OTLP_* variables alone say where data goes.
"""

from __future__ import annotations

import phonehome

with phonehome.instrument("mytool", version="0.1.0", mode="ci") as telemetry:
    with telemetry.command("sync"):
        print("synced")
