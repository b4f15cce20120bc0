"""``<PREFIX>_TELEMETRY_DEBUG=1``: print the exact, final payload per destination; send nothing.

The records go through the same schema, scrubbing and SDK replay as a delivery, then through
the OTLP encoders each OTLP destination's exporter uses; the result is printed to stderr as
OTLP/JSON. An Azure Monitor destination is shown as the same OTLP data, which its exporter
turns into envelopes.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

from phonehome._spool.manifest import Manifest
from phonehome._spool.records import Record


def show(records: list[Record], header: dict[str, Any], manifest: Manifest) -> None:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from phonehome._policy.exemptions import Exemptions
    from phonehome._policy.scrub import Scrubber
    from phonehome._sender.replay import map_segment
    from phonehome._spool.segments import Segment

    segment = Segment("debug", header, records, 0)
    exemptions = Exemptions.from_data(manifest.exemptions)
    mapped = map_segment(segment, lambda: True, Scrubber(), exemptions)
    payload: dict[str, Any] = {}
    if mapped.spans:
        payload["traces"] = MessageToDict(encode_spans(mapped.spans))
    if mapped.logs:
        payload["logs"] = MessageToDict(encode_logs(mapped.logs))
    if mapped.metrics is not None:
        payload["metrics"] = MessageToDict(encode_metrics(mapped.metrics))
    for destination in manifest.destination_entries.values():
        kind = destination.get("kind")
        where = destination.get("endpoint") or "OTEL_EXPORTER_OTLP_* variables"
        note = (
            " (as OTLP; the Azure Monitor exporter makes envelopes of it)"
            if kind == "azure"
            else ""
        )
        _print(
            f"phonehome debug: payload for {destination.get('role')} destination {kind} "
            f"{where}{note}, not sent:"
        )
        _print(json.dumps(payload, indent=1, sort_keys=True))
    _print("phonehome debug: nothing was sent")


def _print(text: str) -> None:
    with contextlib.suppress(Exception):  # a closed stderr: nobody to show it to
        print(text, file=sys.stderr)
