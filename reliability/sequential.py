#!/usr/bin/env python3
"""Sequential CLI runs of one install: how many senders they start, and at what CPU cost.

    python reliability/sequential.py --runs 1000            # through a live collector
    python reliability/sequential.py --runs 100 --offline   # the collector's port closed

Each run is a fresh interpreter that records one command in CLI mode, started as soon as the
previous one exited (a script calling the program in a loop). This process is the senders'
subreaper (``PR_SET_CHILD_SUBREAPER``): a detached sender is reparented here when its host
exits, so each one is counted, and its CPU time read exactly (``wait4``), when it ends. With
a collector (Rotel on loopback, forwarding to a capture receiver), every record is counted
on the wire after the last run; offline, the runs meet the destination's backoff.

Prints one JSON object: runs, sender starts, host and sender CPU seconds, the most senders
alive at once, records produced, delivered, duplicated, and the seconds from the end of the
last run until everything had arrived. Linux only.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = """
import sys, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="cli") as t:
    with t.command("run", params={"n": int(sys.argv[3])}, collect={"n"}):
        pass
"""
_PR_SET_CHILD_SUBREAPER = 36


def _environ() -> dict[str, str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "DO_NOT_TRACK", "APPLICATIONINSIGHTS", "CI", "GITHUB_"))
        and "_TELEMETRY_" not in k
    }
    environ["DEMOCLI_TELEMETRY_NOLOGO"] = "1"
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), environ.get("PYTHONPATH", "")) if p
    )
    return environ


class Senders:
    """The senders reparented here: counted and their CPU summed as they are reaped; the
    most alive at once, watched from /proc."""

    def __init__(self, state: Path) -> None:
        self.state = str(state).encode()
        self.started: set[int] = set()
        self.reaped: set[int] = set()
        self.cpu = 0.0
        self.most = 0
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Senders:
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watcher.join()

    def alive(self) -> list[int]:
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            zombie = stat.rsplit(")", 1)[1].split()[0] == "Z"
            if b"phonehome._sender" in cmdline and self.state in cmdline and not zombie:
                found.append(int(pid))
        return found

    def _watch(self) -> None:
        while not self._stop.is_set():
            alive = self.alive()
            self.started.update(alive)
            self.most = max(self.most, len(alive))
            self._stop.wait(0.01)

    def reap(self) -> None:
        """Collect the senders that ended (reparented here once their host exited)."""
        for pid in sorted(self.started - self.reaped):
            try:
                found, _, usage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:  # still its host's child, or gone before we saw it
                continue
            if found == pid:
                self.reaped.add(pid)
                self.cpu += usage.ru_utime + usage.ru_stime


def run_host(vendor: str, state: Path, n: int, environ: dict[str, str]) -> tuple[float, bool]:
    """One run: its CPU seconds, and whether it behaved (exit 0, no output)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOST, vendor, str(state), str(n)],
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    return usage.ru_utime + usage.ru_stime, process.returncode == 0 and output == b""


def measure(runs: int, offline: bool) -> dict[str, Any]:
    from phonehome.testing import OTLPReceiver, Rotel, free_port

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    environ = _environ()
    with tempfile.TemporaryDirectory(prefix="phonehome-sequential-") as work:
        state = Path(work) / "state"
        with OTLPReceiver() as receiver, Rotel(receiver.url) as rotel, Senders(state) as senders:
            vendor = f"http://127.0.0.1:{free_port()}" if offline else rotel.http_endpoint
            host_cpu, failures = 0.0, 0
            started = time.monotonic()
            for n in range(runs):
                cpu, ok = run_host(vendor, state, n, environ)
                host_cpu += cpu
                failures += not ok
                senders.reap()
            last = time.monotonic()
            arrived = None
            if not offline:
                done = receiver.wait_until(
                    lambda: (
                        len({s.attributes.get("command.param.n") for s in receiver.spans}) >= runs
                    ),
                    timeout=60,
                )
                arrived = time.monotonic() - last if done else None
            deadline = time.monotonic() + 60
            while senders.started - senders.reaped and time.monotonic() < deadline:
                time.sleep(0.05)  # the last sender lingers a few seconds, then leaves
                senders.reap()
            spans = Counter(int(s.attributes["command.param.n"]) for s in receiver.spans)
    return {
        "runs": runs,
        "senders_unaccounted": len(senders.started - senders.reaped),
        "offline": offline,
        "seconds": round(last - started, 1),
        "sender_starts": len(senders.started),
        "most_senders_at_once": senders.most,
        "host_cpu": round(host_cpu, 2),
        "sender_cpu": round(senders.cpu, 2),
        "host_failures": failures,
        "produced": runs,
        "delivered": len(spans),
        "duplicated": sum(n - 1 for n in spans.values()),
        "arrived_after_last_run": None if arrived is None else round(arrived, 1),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--offline", action="store_true", help="the collector's port closed")
    options = parser.parse_args(argv)
    print(json.dumps(measure(options.runs, options.offline)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
