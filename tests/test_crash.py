"""Crash consistency (a reliability suite): kill -9 the sender or the host at random points.

Trials alternate. A *sender trial* runs a host to completion and kills its detached sender at
a random moment of its delivery (the destination answers slowly, so the kill lands anywhere
from start-up to the progress write). A *host trial* kills the host itself at a random moment
of its run, the end of the block (the spool write, the sender's start) included. Afterwards
one clean sender delivers what is left, and every span is counted on the wire:

- no record of a host that finished is lost;
- a killed host's records arrive all or not at all (its segment is renamed into place);
- duplicates come only from the at-least-once window: a sender killed after the destination
  accepted a group and before it wrote that down sends the group again (at most ``CHUNK``
  items per destination per kill).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from phonehome._sender import deliver as _sender
from phonehome._sender.worker import CHUNK
from phonehome._spool.segments import Spool
from phonehome.testing import OTLPReceiver
from tests import figures
from tests.conftest import ROOT, clean_environ, poll
from tests.test_delivery import senders, wait_no_sender

COMMANDS = 40

HOST = """
import sys, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="cli", sender_lifetime=20) as t:
    for i in range(int(sys.argv[4])):
        with t.command(sys.argv[3], params={"i": i}, collect={"i"}):
            pass
print("done")
"""


def start_host(url: str, state: Path, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", HOST, url, str(state), name, str(COMMANDS)],
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


def kill_senders(state: Path) -> int:
    killed = 0
    for pid in senders(state):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except ProcessLookupError:
            pass
    return killed


@dataclass
class Trials:
    state: Path
    rng: random.Random
    finished: list[str] = field(default_factory=list)
    killed_hosts: list[str] = field(default_factory=list)
    sender_kills: int = 0
    host_failures: list[tuple[str, int, str, str]] = field(default_factory=list)

    def kill_the_sender(self, host: subprocess.Popen[str], name: str) -> None:
        out, err = host.communicate(timeout=60)
        if (host.returncode, out, err) != (0, "done\n", ""):
            self.host_failures.append((name, host.returncode, out, err))
        self.finished.append(name)
        if poll(lambda: bool(senders(self.state)), 5.0, interval=0.005):
            time.sleep(self.rng.uniform(0.0, 0.5))  # the fault's moment, not a wait
            self.sender_kills += kill_senders(self.state)

    def kill_the_host(self, host: subprocess.Popen[str], name: str) -> None:
        time.sleep(self.rng.uniform(0.0, 0.1))  # the fault's moment, not a wait
        host.send_signal(signal.SIGKILL)
        out, err = host.communicate(timeout=60)
        if host.returncode == 0:  # it finished before the kill
            self.finished.append(name)
            if (out, err) != ("done\n", ""):
                self.host_failures.append((name, host.returncode, out, err))
        else:
            self.killed_hosts.append(name)
        kill_senders(self.state)


def test_kill_9_of_sender_and_host_at_random_points_loses_nothing(tmp_path: Path) -> None:
    count = figures.scale(24, 200)
    seed = int(os.environ.get("PHONEHOME_CRASH_SEED", time.time_ns() % 100_000))
    state = tmp_path / "state"
    trials = Trials(state, random.Random(seed))
    with OTLPReceiver() as vendor:
        vendor.delay = 0.08  # each export takes a while: room for a kill inside it
        for trial in range(count):
            host = start_host(vendor.url, state, f"t{trial}")
            if trial % 2 == 0:
                trials.kill_the_sender(host, f"t{trial}")
            else:
                trials.kill_the_host(host, f"t{trial}")
            wait_no_sender(state)
        vendor.delay = 0.0
        deadline = time.monotonic() + 60
        while Spool(state / "spool").names() and time.monotonic() < deadline:
            _sender.deliver(state, budget=20)
        spans = Counter((s.name, s.attributes["command.param.i"]) for s in vendor.spans)

    by_run: dict[str, Counter[int]] = {}
    for (run, i), n in spans.items():
        by_run.setdefault(run, Counter())[int(i)] = n
    lost = sum(COMMANDS - len(by_run.get(run, ())) for run in trials.finished)
    torn = [r for r in trials.killed_hosts if len(by_run.get(r, ())) not in (0, COMMANDS)]
    committed = [r for r in trials.killed_hosts if r in by_run]
    duplicated = sum(n - 1 for n in spans.values())

    row = figures.row("crash")
    row.cases += count
    row.produced += COMMANDS * (len(trials.finished) + len(committed))
    row.delivered += len(spans)
    row.duplicated += duplicated
    row.host_failures += len(trials.host_failures)
    if lost:
        row.dropped["lost"] += lost
    context = (
        f"seed {seed}: {len(trials.finished)} hosts finished, {len(trials.killed_hosts)} "
        f"killed ({len(committed)} after their spool write), {trials.sender_kills} senders "
        "killed"
    )
    print(context)
    assert trials.host_failures == [], context
    assert lost == 0, context
    assert torn == [], context
    assert Spool(state / "spool").names() == [], context
    assert duplicated <= trials.sender_kills * CHUNK, context
    assert trials.sender_kills >= count // 6, context  # the kills did land on running senders


LONG = """
import sys, time, phonehome
schema = phonehome.Schema(events={"progress": {"i": phonehome.field("int")}})
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          schema=schema) as t:
    with t.command("sync"):
        i = 0
        while i < 100_000:
            t.event("progress", {"i": i})
            print(i, flush=True)
            i += 1
            time.sleep(0.05)
"""
INTERVAL = 1.0
"""The service interval the long command runs with (``OTEL_BSP_SCHEDULE_DELAY``)."""


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, *([signal.SIGHUP] if figures.FULL else [])], ids=lambda s: s.name
)
def test_a_long_command_killed_by_a_signal_loses_at_most_one_service_interval(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """No handler is installed for the host's signals: a long command becomes a service after
    PROMOTE_AFTER and spools every service interval, so a kill loses at most that window
    (and the span of the command under way, which only its end records)."""
    from phonehome._core.settings import PROMOTE_AFTER

    state = tmp_path / "state"
    with OTLPReceiver() as vendor:
        host = subprocess.Popen(
            [sys.executable, "-c", LONG, vendor.url, str(state)],
            env=clean_environ(OTEL_BSP_SCHEDULE_DELAY=str(int(INTERVAL * 1000))),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
        assert host.stdout is not None
        started = time.monotonic()
        printed = -1
        while time.monotonic() - started < PROMOTE_AFTER + 4 * INTERVAL:
            printed = int(host.stdout.readline())
        host.send_signal(signum)
        out, err = host.communicate(timeout=30)
        printed = max([printed, *(int(line) for line in out.split())])
        deliver_until_empty(state)
        events = sorted(int(r.attributes["i"]) for r in vendor.logs if r.event_name == "progress")
    produced = printed + 1
    lost = produced - len(events)
    bound = int((INTERVAL + 0.5) / 0.05) + 1  # a service interval's events, and a tick's time
    row = figures.row("crash")
    row.cases += 1
    row.produced += produced
    row.delivered += len(events)
    row.dropped[f"killed by {signum.name}: the last {INTERVAL:.0f} s"] += lost
    row.host_failures += (host.returncode, err) != (-signum, "")
    assert (host.returncode, err) == (-signum, "")
    assert events == list(range(len(events)))  # what arrived is everything up to a point
    assert 0 <= lost <= bound, (produced, len(events))
    assert not any(s.name == "sync" for s in vendor.spans)  # the command never ended


def deliver_until_empty(state: Path, timeout: float = 30) -> None:
    wait_no_sender(state)
    deadline = time.monotonic() + timeout
    while Spool(state / "spool").names() and time.monotonic() < deadline:
        _sender.deliver(state, budget=10, retry_now=True)
