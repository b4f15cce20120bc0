"""Senders for sequential runs (a reliability suite): a script that runs the program again and
again starts few senders, which cost little CPU beside the runs, deliver every record once and
never run two at a time; offline, the destination's backoff keeps the senders away.

``reliability/sequential.py`` runs the program and counts: it is the senders' subreaper, so
each sender is seen, and its CPU time read, when it ends. ``make bench`` reports the same
measure for 1,000 runs.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from phonehome._core.settings import DEFAULT_SENDER_LIFETIME
from phonehome._spool.schedule import attempts
from tests import figures
from tests.conftest import ROOT

RUNS = figures.scale(100, 1000)
MAX_STARTS_PER_1000 = 20
MAX_SENDER_CPU = 0.25
"""The senders' CPU time, at most this share of the runs' own."""


def sequential(runs: int, *, offline: bool = False) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "reliability" / "sequential.py"),
            f"--runs={runs}",
            *(["--offline"] if offline else []),
        ],
        capture_output=True,
        text=True,
        timeout=60 + runs * 2,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def note(found: dict[str, Any], label: str) -> None:
    row = figures.row("senders")
    row.cases += 1
    row.produced += 0 if found["offline"] else found["produced"]
    row.delivered += found["delivered"]
    row.duplicated += found["duplicated"]
    row.host_failures += found["host_failures"]
    share = found["sender_cpu"] / max(found["host_cpu"], 1e-9)
    row.notes[label] = (
        f"{found['runs']:,} runs in {found['seconds']:.0f} s: {found['sender_starts']} sender "
        f"start(s), at most {found['most_senders_at_once']} at once; sender CPU "
        f"{found['sender_cpu']:.1f} s, {share:.0%} of the runs' {found['host_cpu']:.1f} s"
        + (
            ""
            if found["offline"]
            else f"; everything arrived {found['arrived_after_last_run']} s after the last run"
        )
    )


@pytest.mark.timeout(60 + RUNS * 3)
def test_sequential_runs_start_few_senders_and_deliver_every_record_once() -> None:
    found = sequential(RUNS)
    note(found, "through a live collector (Rotel)")
    assert found["host_failures"] == 0
    # 20 per 1,000 runs; on a loaded machine the runs take longer, and a sender lives at most
    # its lifetime: then one per lifetime (each sender lived it out, none was started beside)
    by_time = math.ceil(found["seconds"] / DEFAULT_SENDER_LIFETIME) + 1
    assert found["sender_starts"] <= max(RUNS * MAX_STARTS_PER_1000 // 1000, by_time), found
    assert found["sender_cpu"] <= MAX_SENDER_CPU * found["host_cpu"], found
    assert found["most_senders_at_once"] <= 1, found
    assert (found["delivered"], found["duplicated"]) == (RUNS, 0), found
    assert found["arrived_after_last_run"] is not None, found
    assert found["arrived_after_last_run"] <= 60, found
    assert found["senders_unaccounted"] == 0, found


@pytest.mark.timeout(60 + RUNS * 3)
def test_sequential_runs_offline_start_senders_only_as_the_backoff_allows() -> None:
    runs = RUNS // 2
    found = sequential(runs, offline=True)
    note(found, "offline (the collector's port closed)")
    assert found["host_failures"] == 0
    # however often the program runs, no more senders than the schedule's attempts
    assert found["sender_starts"] <= attempts(found["seconds"] + 10, every=1.0), found
    assert found["most_senders_at_once"] <= 1, found
