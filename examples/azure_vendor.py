#!/usr/bin/env python3
"""The vendor on Azure Monitor, the user's own copy on OTLP.

    AZURE_VENDOR="InstrumentationKey=...;IngestionEndpoint=https://..." \\
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python examples/azure_vendor.py

The vendor's connection string goes only to Azure Monitor; the user's OTLP headers only to
their collector.
"""

from __future__ import annotations

import os

import phonehome

with phonehome.instrument(
    "azdemo", version="1.0.0", vendor=os.environ.get("AZURE_VENDOR"), mode="ci"
) as telemetry:
    with telemetry.command("deploy", params={"region": "westeurope"}, collect={"region"}):
        print("deployed")
