"""The ledger: what was actually sent, kept locally so that a user can audit it afterwards.

One JSON line per accepted export (destination, time, and the spans, log records and metric
points it carried, as sent: after the schema and scrubbing). Bounded: the newest
``MAX_ENTRIES`` entries, each with at most ``MAX_ITEMS`` items listed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

LEDGER_FILE = "ledger.jsonl"
MAX_ENTRIES = 100
MAX_ITEMS = 50


def record(
    state_dir: Path, destination: str, spans: list[Any], logs: list[Any], metrics: list[Any]
) -> None:
    """Append one accepted export (ReadableSpan, ReadableLogRecord, ResourceMetrics)."""
    entry = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "destination": destination,
        "counts": {"spans": len(spans), "logs": len(logs)},
        "spans": [
            {"name": s.name, "attributes": dict(s.attributes or {})} for s in spans[:MAX_ITEMS]
        ],
        "logs": [
            {
                "body": r.log_record.body,
                "event": r.log_record.event_name,
                "attributes": dict(r.log_record.attributes or {}),
            }
            for r in logs[:MAX_ITEMS]
        ],
        "metrics": sorted(
            {m.name for rm in metrics for sm in rm.scope_metrics for m in sm.metrics}
        )[:MAX_ITEMS],
    }
    path = state_dir / LEDGER_FILE
    lines = read_lines(path)[-(MAX_ENTRIES - 1) :]
    lines.append(json.dumps(entry, default=str))
    temporary = path.with_name(f".{LEDGER_FILE}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def read_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (FileNotFoundError, UnicodeDecodeError):
        return []


def entries(state_dir: Path) -> list[dict[str, Any]]:
    """The ledger's entries, oldest first (unreadable lines are skipped)."""
    found = []
    for line in read_lines(state_dir / LEDGER_FILE):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found
