#!/usr/bin/env python3
"""A long-running service: delivers in the background, heartbeat and a usage collector.

    SERVICE_VENDOR=http://127.0.0.1:4318 python examples/service.py --seconds 30

Consent changes are picked up while it runs (set SERVICE_TELEMETRY_OPTOUT=1 in its
environment, or run `phonehome -p service disable`), and it shuts down within
shutdown_timeout whatever the network does. Its users can refuse the infrastructure
metrics alone with SERVICE_TELEMETRY_SYSTEM_METRICS=0.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

import phonehome

SCHEMA = phonehome.Schema(
    events={
        "summary": {
            "queues": phonehome.field("int", "Queues configured"),
            "workers": phonehome.field("int", "Worker threads"),
        }
    },
    attributes={
        "queue": phonehome.field(
            "string", "Queue name", policy="enum", values=["default", "priority"]
        )
    },
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="run this long, then stop")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    with phonehome.instrument(
        "service",
        version="3.1.0",
        vendor=os.environ.get("SERVICE_VENDOR"),
        mode="service",
        system_metrics=True,  # CPU, memory, disk and network: its own consent category
        heartbeat="1h",
        schema=SCHEMA,
        shutdown_timeout=3.0,
    ) as telemetry:

        @telemetry.collector("summary", every="1h")
        def summary() -> dict[str, int]:
            return {"queues": 2, "workers": 4}

        processed = telemetry.counter("jobs.processed", unit="{job}")
        while not stop.wait(0.1) and args.seconds > 0:
            with telemetry.command("process"):
                processed.add(1, {"queue": "default"})
            args.seconds -= 0.1
    print("service stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
