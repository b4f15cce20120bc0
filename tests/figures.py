"""The reliability figures: each suite's tests add what they tried and what they saw.

``make reliability`` runs the suites at full scale (``PHONEHOME_RELIABILITY=full``) and
``reliability/report.py`` writes the rows to docs/reliability.md; the normal test run runs
the same tests at a quick scale and checks the same targets.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

FULL = os.environ.get("PHONEHOME_RELIABILITY") == "full"

SUITES = {
    "faults": "Destination faults",
    "crash": "Crash consistency (kill -9)",
    "concurrency": "Concurrency",
    "state": "Corrupt and hostile state",
    "senders": "Senders for sequential runs",
    "input": "Bad input (property-based)",
    "security": "Security",
}


def scale(quick: int, full: int) -> int:
    """A count for the quick run in CI, or for ``make reliability``."""
    return full if FULL else quick


@dataclass
class Row:
    cases: int = 0
    produced: int = 0
    delivered: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    """Records dropped, by reason (each reason is reported to the destination as a count)."""
    duplicated: int = 0
    host_failures: int = 0
    """Runs in which the host's output, exit code or time changed, or a traceback printed."""
    notes: dict[str, str] = field(default_factory=dict)
    """Figures of the suite's own, by name (sender starts, CPU)."""


_rows: dict[str, Row] = {}


def row(suite: str) -> Row:
    """The running figures of one suite (a key of ``SUITES``)."""
    if suite not in SUITES:
        raise KeyError(suite)
    return _rows.setdefault(suite, Row())


def dump(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {k: {**asdict(v), "dropped": dict(v.dropped)} for k, v in _rows.items()}
    path.write_text(json.dumps({"full": FULL, "rows": rows}, indent=1))
