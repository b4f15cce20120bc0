"""Concurrency (a reliability suite): many CLI runs at once, extra senders racing them, and a
service writing to the same state directory all the while. Nothing crashes here, so every
record must arrive exactly once, and the spool must end empty and readable."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from phonehome._sender import deliver as _sender
from phonehome._spool.segments import Spool
from phonehome.testing import OTLPReceiver
from tests import figures
from tests.conftest import ROOT, clean_environ
from tests.test_delivery import wait_no_sender

COMMANDS = 20

CLI = """
import sys, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="cli", sender_lifetime=20) as t:
    for i in range(COMMANDS):
        with t.command(sys.argv[3], params={"i": i}, collect={"i"}):
            pass
print("done")
""".replace("COMMANDS", str(COMMANDS))

SERVICE = """
import os, sys, time, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="service", shutdown_timeout=10) as t:
    print("ready", flush=True)
    i = 0
    while not os.path.exists(sys.argv[3]) and i < 100_000:
        for _ in range(20):
            with t.command("svc", params={"i": i}, collect={"i"}):
                pass
            i += 1
        time.sleep(0.02)  # the service's own pace
print("served", i)
"""


def python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )


def test_cli_runs_racing_senders_and_a_service_deliver_every_record_exactly_once(
    tmp_path: Path,
) -> None:
    runs = figures.scale(30, 50)
    racers = figures.scale(3, 8)
    state = tmp_path / "state"
    with OTLPReceiver() as vendor:
        stop = tmp_path / "stop"
        service = python(SERVICE, vendor.url, str(state), str(stop))
        assert service.stdout is not None and service.stdout.readline() == "ready\n"
        clis = [python(CLI, vendor.url, str(state), f"c{n}") for n in range(runs)]
        senders = [
            subprocess.Popen(
                [sys.executable, "-m", "phonehome._sender", str(state), "20"],
                env=clean_environ(),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
            )
            for _ in range(racers)
        ]
        results = [(p.communicate(timeout=120), p.returncode) for p in clis]
        stop.touch()
        out, err = service.communicate(timeout=60)
        served = int(out.split()[-1])
        for racer in senders:
            racer.wait(timeout=60)
        wait_no_sender(state)
        deadline = time.monotonic() + 60
        while Spool(state / "spool").names() and time.monotonic() < deadline:
            _sender.deliver(state, budget=20)
        spans = Counter((s.name, int(s.attributes["command.param.i"])) for s in vendor.spans)

    expected = {(f"c{n}", i) for n in range(runs) for i in range(COMMANDS)}
    expected |= {("svc", i) for i in range(served)}
    failures = [r for r in results if r != (("done\n", ""), 0)]
    failures += [] if (service.returncode, err) == (0, "") else [((out, err), service.returncode)]
    duplicated = sum(n - 1 for n in spans.values())
    row = figures.row("concurrency")
    row.cases += runs + racers + 1
    row.produced += len(expected)
    row.delivered += len(set(spans) & expected)
    row.duplicated += duplicated
    row.host_failures += len(failures)
    assert failures == []
    assert set(spans) == expected
    assert duplicated == 0
    assert Spool(state / "spool").names() == []
    assert served >= 100  # the service wrote all along
