"""Concurrency (a reliability suite): many CLI runs at once, extra senders racing them, and a
service writing to the same state directory all the while. Nothing crashes here, so every
record must arrive exactly once, and the spool must end empty and readable."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

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


# -- threads ------------------------------------------------------------------------------------
THREADS = """
import sys, threading, phonehome
sys.setswitchinterval(1e-6)  # threads switch as often as the interpreter lets them
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="cli", sender_lifetime=30) as t:
    def work(n):
        for i in range(COMMANDS):
            with t.command(f"t{n}", params={"i": i}, collect={"i"}):
                pass
    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
print("done")
"""


def test_threads_recording_at_once_lose_nothing_and_warn_nothing(tmp_path: Path) -> None:
    threads, commands = 10, 1000
    state, tmp = tmp_path / "state", tmp_path / "tmp"
    tmp.mkdir()
    code = THREADS.replace("THREADS", str(threads)).replace("COMMANDS", str(commands))
    with OTLPReceiver() as vendor:
        host = subprocess.run(
            [sys.executable, "-c", code, vendor.url, str(state)],
            env=clean_environ(TMPDIR=str(tmp)),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        expected = {(f"t{n}", i) for n in range(threads) for i in range(commands)}
        arrived = vendor.wait_until(lambda: len(vendor.spans) >= len(expected), timeout=90)
        wait_no_sender(state)
        spans = Counter((s.name, int(s.attributes["command.param.i"])) for s in vendor.spans)
    row = figures.row("concurrency")
    row.cases += 1
    row.produced += len(expected)
    row.delivered += len(set(spans) & expected)
    row.duplicated += sum(n - 1 for n in spans.values())
    row.host_failures += (host.returncode, host.stdout, host.stderr) != (0, "done\n", "")
    assert (host.returncode, host.stdout, host.stderr) == (0, "done\n", "")
    assert arrived and set(spans) == expected and max(spans.values()) == 1
    assert list(tmp.iterdir()) == []  # no fallback directory, no new install id
    assert len({s.resource["device.id"] for s in vendor.spans}) == 1


def test_threads_writing_one_state_file_never_remove_each_others(tmp_path: Path) -> None:
    """The temporary file of an atomic write is the writer's own, not the process's."""
    from phonehome._core import state as statefiles

    failures: list[BaseException] = []
    target = tmp_path / "config.json"

    def write(n: int) -> None:
        for i in range(200):
            try:
                statefiles.write_text(target, f"{n} {i}\n")
            except OSError as error:
                failures.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temporary file left


# -- fork ---------------------------------------------------------------------------------------
FORK = """
import os, sys, phonehome
how = sys.argv[3]
t = phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                         mode="cli", sender_lifetime=30)
with t.command("before"):
    pass
children = []
with t.command("outer"):
    for n in range(CHILDREN):
        pid = os.fork()
        if pid == 0:
            with t.span("inner", {"n": n}):
                with t.command(f"child{n}"):
                    pass
            if how == "atexit":
                sys.exit(0)  # no end of any block: the exit hook spools
            raise SystemExit(0)  # through the open command, whose span is the parent's
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
with t.command("after"):
    pass
t.shutdown()
print("done", codes)
""".replace("CHILDREN", "4")


def spans_by_name(receiver: OTLPReceiver) -> Counter[str]:
    return Counter(s.name for s in receiver.spans)


def fork_run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def record_fork_case(
    host: subprocess.CompletedProcess[str], expected: Counter[str], got: Counter[str]
) -> None:
    row = figures.row("concurrency")
    row.cases += 1
    row.produced += sum(expected.values())
    row.delivered += sum(min(n, got[name]) for name, n in expected.items())
    row.duplicated += sum(max(0, got[name] - n) for name, n in expected.items())
    row.host_failures += host.returncode != 0 or host.stderr != ""


@pytest.mark.parametrize("how", ["block", "atexit"])
def test_fork_children_deliver_their_own_records_once_with_ids_of_their_own(
    tmp_path: Path, how: str
) -> None:
    state = tmp_path / "state"
    expected = Counter({"before": 1, "outer": 1, "after": 1, "inner": 4})
    expected.update({f"child{n}": 1 for n in range(4)})
    with OTLPReceiver() as vendor:
        host = fork_run(FORK, vendor.url, str(state), how)
        arrived = vendor.wait_until(lambda: spans_by_name(vendor) == expected, timeout=60)
        wait_no_sender(state)
        got = spans_by_name(vendor)
        spans = list(vendor.spans)
    record_fork_case(host, expected, got)
    assert (host.returncode, host.stdout, host.stderr) == (0, "done [0, 0, 0, 0]\n", "")
    assert arrived, got
    assert got == expected  # the pre-fork records once, each child's once
    (outer,) = [s for s in spans if s.name == "outer"]
    inner = [s for s in spans if s.name == "inner"]
    assert {(s.trace_id, s.parent_span_id) for s in inner} == {(outer.trace_id, outer.span_id)}
    assert len({s.span_id for s in spans}) == len(spans)  # no id made twice
    roots = [s for s in spans if s.name in ("before", "outer", "after")]
    assert len({s.trace_id for s in roots}) == 3


POOL = """
import multiprocessing, sys, phonehome

def work(i):
    with t.command("task", params={"i": i}, collect={"i"}):
        pass
    return i

with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="cli", sender_lifetime=30) as t:
    with t.command("before"):
        pass
    pool = multiprocessing.get_context("fork").Pool(4)
    results = pool.map(work, range(TASKS), chunksize=1)
    pool.close()
    pool.join()
    with t.command("after"):
        pass
print("done", sum(results))
"""


def test_a_fork_pools_workers_deliver_every_task_once(tmp_path: Path) -> None:
    tasks = figures.scale(40, 200)
    state = tmp_path / "state"
    with OTLPReceiver() as vendor:
        host = fork_run(POOL.replace("TASKS", str(tasks)), vendor.url, str(state))
        arrived = vendor.wait_until(
            lambda: len([s for s in vendor.spans if s.name == "task"]) >= tasks, timeout=60
        )
        wait_no_sender(state)
        names = spans_by_name(vendor)
        per_task = Counter(
            int(s.attributes["command.param.i"]) for s in vendor.spans if s.name == "task"
        )
        spans = list(vendor.spans)
    expected = Counter({"before": 1, "after": 1, "task": tasks})
    record_fork_case(host, expected, names)
    assert (host.returncode, host.stdout, host.stderr) == (
        0,
        f"done {sum(range(tasks))}\n",
        "",
    )
    assert arrived and names == expected, names
    assert per_task == Counter(range(tasks))
    assert len({s.span_id for s in spans}) == len(spans)
    assert len({s.trace_id for s in spans}) == len(spans)  # each a command of its own


def test_threads_recording_while_the_buffer_is_spooled_lose_no_record() -> None:
    """Appending and taking the buffer are one lock's work: a record added while another
    thread spools the buffer goes into the next segment, not into the one being written."""
    from phonehome._host.recorder import Recorder, RecordingSpan

    spooled: list[int] = []

    def spool(records: list[Any]) -> None:
        batch = [int(r.attributes["i"]) for r in records]  # what a segment write reads
        time.sleep(0.0002)  # the write itself: other threads run meanwhile
        spooled.extend(batch)

    recorder = Recorder(spool, max_buffered=50)
    threads, spans = 8, figures.scale(2000, 5000)

    def work(n: int) -> None:
        for i in range(spans):
            with RecordingSpan(recorder, "s", {"i": n * spans + i}, False):
                pass

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as the interpreter lets them
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    recorder.drain()
    assert sorted(spooled) == list(range(threads * spans))
