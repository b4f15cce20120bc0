"""Delivery: nothing lost offline, exactly once per destination, isolation, one sender, caps,
purge on opt-out, crash safety, CI's synchronous budget, Retry-After. All on the wire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from phonehome._sender import deliver as _sender
from phonehome._spool import manifest
from phonehome._spool.segments import Spool
from phonehome.testing import OTLPReceiver, free_port
from tests.conftest import ROOT, clean_environ, poll, run_python, silent_server

HOST = """
import sys, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode=sys.argv[3], ci_budget=float(sys.argv[4]),
                          spool_max_bytes=int(sys.argv[5]), sender_lifetime=10) as t:
    for i in range(int(sys.argv[6])):
        with t.command(sys.argv[7], params={"i": i}, collect={"i"}):
            pass
"""


def host(
    vendor: str,
    state: Path,
    *,
    name: str = "run",
    commands: int = 1,
    mode: str = "cli",
    budget: float = 2.0,
    max_bytes: int = 10 << 20,
    **environ: str,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOST,
            vendor,
            str(state),
            mode,
            str(budget),
            str(max_bytes),
            str(commands),
            name,
        ],
        env=clean_environ(**environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def senders(state: Path) -> list[int]:
    """Sender processes alive for this state directory."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        alive = stat.rsplit(")", 1)[1].split()[0] != "Z"
        sender = any(b"phonehome._sender" in part for part in cmdline)
        if alive and sender and str(state).encode() in cmdline:
            found.append(int(pid))
    return found


def wait_no_sender(state: Path, timeout: float = 20) -> None:
    assert poll(lambda: not senders(state), timeout)


def span_keys(receiver: OTLPReceiver) -> Counter[tuple[str, int]]:
    return Counter((s.name, s.attributes["command.param.i"]) for s in receiver.spans)


def test_a_cli_run_waits_for_nothing_and_a_detached_sender_delivers(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    started = time.monotonic()
    code, out, err = finished(host(otlp_receiver.url, state, commands=3))
    assert (code, out, err) == (0, "", "")
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 3, timeout=20)
    wait_no_sender(state)
    assert span_keys(otlp_receiver) == Counter({("run", 0): 1, ("run", 1): 1, ("run", 2): 1})
    assert list((state / "spool").glob("*.seg")) == []
    assert time.monotonic() - started < 20


def test_offline_for_many_runs_then_online_every_record_reaches_both_exactly_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    vendor_port, user_port = free_port(), free_port()
    vendor_url, user_url = f"http://127.0.0.1:{vendor_port}", f"http://127.0.0.1:{user_port}"
    for run in range(6):  # both destinations down: each run spools, its sender gives up
        assert (
            finished(
                host(
                    vendor_url,
                    state,
                    name=f"r{run}",
                    commands=2,
                    mode="ci",
                    budget=0.3,
                    OTEL_EXPORTER_OTLP_ENDPOINT=user_url,
                )
            )[0]
            == 0
        )
    assert len(list((state / "spool").glob("*.seg"))) == 6
    with OTLPReceiver(port=vendor_port) as vendor, OTLPReceiver(port=user_port) as user:
        # online again, and delivered at once (as `phonehome flush` does): the runs' senders
        # may have left both destinations in their backoff, which a later run would wait out
        report = _sender.deliver(state, budget=20, retry_now=True)
        assert report is not None and not report.failed
        expected = Counter({(f"r{run}", i): 1 for run in range(6) for i in range(2)})
        assert span_keys(vendor) == expected
        assert span_keys(user) == expected
        assert _sender.deliver(state, budget=5) is not None  # a second sender: nothing more
        assert span_keys(vendor) == expected and span_keys(user) == expected
    assert list((state / "spool").glob("*.seg")) == []


def test_a_destination_that_never_answers_does_not_delay_the_other(tmp_path: Path) -> None:
    state = tmp_path / "state"
    silent, silent_port = silent_server()
    try:
        with OTLPReceiver() as user:
            process = host(
                f"http://127.0.0.1:{silent_port}",
                state,
                mode="ci",
                budget=3.0,
                OTEL_EXPORTER_OTLP_ENDPOINT=user.url,
            )
            arrived = user.wait_until(lambda: user.spans, timeout=3.0)
            code, _, err = finished(process)
            assert arrived and code == 0 and err == ""
            (vendor_key,) = [
                k
                for k in manifest.load(state).destination_entries  # type: ignore[union-attr]
                if k.startswith("vendor")
            ]
            segments = {p.name for p in (state / "spool").glob("*.seg")}
            assert len(segments) == 1  # held for the vendor, already delivered to the user
            assert not (Spool(state / "spool").progress.delivered(vendor_key) & segments)
    finally:
        silent.close()


def test_fifty_runs_at_once_leave_at_most_one_sender_and_lose_nothing(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    most = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal most
        while not stop.is_set():
            most = max(most, len(senders(state)))
            stop.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        processes = [host(otlp_receiver.url, state, name=f"run{n}") for n in range(50)]
        results = [finished(p) for p in processes]
        assert all(r == (0, "", "") for r in results)
        # a run that found a sender busy leaves its segment to it, or to the next run
        arrived = otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) >= 50, timeout=30)
        if not arrived:
            wait_no_sender(state)
            _sender.deliver(state, budget=10)
        wait_no_sender(state)
    finally:
        stop.set()
        watcher.join()
    assert most <= 1
    assert span_keys(otlp_receiver) == Counter({(f"run{n}", 0): 1 for n in range(50)})


def test_the_size_cap_drops_the_oldest_and_reports_how_many(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    for run in range(5):
        finished(
            host(
                f"http://127.0.0.1:{port}",
                state,
                name=f"r{run}",
                commands=20,
                mode="ci",
                budget=0.2,
                max_bytes=12_000,
            )
        )
    with OTLPReceiver(port=port) as vendor:
        # at once, whatever backoff the offline runs' senders left (as `phonehome flush` does)
        assert _sender.deliver(state, budget=20, retry_now=True) is not None
        names = {s.name for s in vendor.spans}
        dropped = sum(p.value for p in vendor.points("phonehome.spool.dropped"))
    assert "r4" in names and "r0" not in names  # the oldest went first
    assert dropped > 0
    assert len(vendor.spans) + len(vendor.logs) + dropped == 100 + 1  # and the install event


def test_opting_out_purges_the_spool_before_anything_is_sent(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    finished(host(f"http://127.0.0.1:{port}", state, commands=3, mode="ci", budget=0.2))
    assert list((state / "spool").glob("*.seg"))
    with OTLPReceiver(port=port) as vendor:
        # a sender that finds consent revoked purges before it sends anything
        environ = clean_environ(DEMOCLI_TELEMETRY_OPTOUT="1")
        result = run_python(
            f"from phonehome._sender import deliver as _sender; from pathlib import Path; "
            f"print(_sender.deliver(Path({str(state)!r}), 5).purged)",
            environ,
        )
        assert result.stdout.strip() == "1", result.stderr
        assert list((state / "spool").glob("*.seg")) == []
        # and so does the next run of the program with consent off, before anything else
        finished(host(f"http://127.0.0.1:{free_port()}", state, commands=2, mode="ci", budget=0.2))
        assert list((state / "spool").glob("*.seg"))
        code, _, err = finished(host(vendor.url, state, DEMOCLI_TELEMETRY_OPTOUT="1"))
        assert (code, err) == (0, "")
        assert list((state / "spool").glob("*.seg")) == []
        assert vendor.requests == []


def test_a_sender_killed_mid_delivery_loses_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    port = free_port()
    for run in range(8):
        finished(
            host(
                f"http://127.0.0.1:{port}",
                state,
                name=f"r{run}",
                commands=600,
                mode="ci",
                budget=0.2,
            )
        )
    with OTLPReceiver(port=port) as vendor:
        vendor.delay = 0.3
        sender = subprocess.Popen(
            [sys.executable, "-m", "phonehome._sender", str(state), "20"],
            env=clean_environ(),
            cwd=ROOT,
        )
        assert vendor.wait_until(lambda: len(vendor.spans) >= 600, timeout=20)
        os.kill(sender.pid, signal.SIGKILL)
        sender.wait(timeout=10)
        vendor.delay = 0
        assert _sender.deliver(state, budget=20) is not None
        keys = span_keys(vendor)
    assert set(keys) == {(f"r{run}", i) for run in range(8) for i in range(600)}
    duplicated = sum(n - 1 for n in keys.values())
    assert duplicated <= 1200  # at most the groups in flight when it was killed (at-least-once)


def test_in_ci_the_host_delivers_itself_within_its_budget(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with OTLPReceiver() as vendor:
        code, _, _ = finished(host(vendor.url, state, mode="auto", CI="true"))
        assert code == 0 and len(vendor.spans) == 1  # delivered before the host exited
    assert senders(state) == []
    silent, silent_port = silent_server()
    try:
        started = time.monotonic()
        code, _, err = finished(
            host(
                f"http://127.0.0.1:{silent_port}",
                state,
                mode="auto",
                budget=1.0,
                GITHUB_ACTIONS="true",
            )
        )
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert code == 0 and err == ""
    assert elapsed < 1.0 + 2.5  # the budget plus interpreter start-up


def test_retry_after_is_honoured_across_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with OTLPReceiver() as vendor:
        vendor.status, vendor.retry_after = 429, "120"
        finished(host(vendor.url, state, mode="ci", budget=1.0))
        first = len(vendor.requests)
        assert first >= 1
        report = _sender.deliver(state, budget=2)
        assert report is not None and report.held
        assert len(vendor.requests) == first  # asked to wait two minutes: nothing sent


def test_the_mode_variable_forces_synchronous_delivery_when_the_code_says_auto(
    tmp_path: Path,
) -> None:
    with OTLPReceiver() as vendor:
        code, _, err = finished(
            host(vendor.url, tmp_path / "s", mode="auto", DEMOCLI_TELEMETRY_MODE="ci")
        )
        assert (code, err) == (0, "")
        assert len(vendor.spans) == 1  # delivered before the host exited
        code, _, err = finished(
            host(vendor.url, tmp_path / "s", mode="auto", DEMOCLI_TELEMETRY_MODE="sometimes")
        )
        assert code == 0
        assert err.strip() == (
            "phonehome: DEMOCLI_TELEMETRY_MODE='sometimes' is not one of cli, "
            "ci, service, auto; using auto"
        )
        assert vendor.wait_until(lambda: len(vendor.spans) == 2, timeout=20)
        wait_no_sender(tmp_path / "s")  # before the receiver closes: its metrics went too


def test_a_service_delivers_while_it_runs_and_stops_at_once_when_consent_is_revoked(
    otlp_receiver: OTLPReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import phonehome

    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    with phonehome.instrument(
        "democli", vendor=otlp_receiver.url, state_dir=tmp_path, mode="service"
    ) as t:
        assert t.mode == "service"
        with t.command("while-running", params={"i": 0}, collect={"i"}):
            pass
        assert otlp_receiver.wait_until(lambda: otlp_receiver.spans, timeout=10)
        monkeypatch.setenv("DEMOCLI_TELEMETRY_OPTOUT", "1")  # the user opts out meanwhile
        assert poll(lambda: not t.enabled, 5)
        with t.command("after-opt-out", params={"i": 1}, collect={"i"}):
            pass
        spooled_after_opt_out = list((tmp_path / "spool").glob("*.seg"))
    assert [s.name for s in otlp_receiver.spans] == ["while-running"]
    assert spooled_after_opt_out == []
    assert list((tmp_path / "spool").glob("*.seg")) == []


@pytest.mark.parametrize("jump", [7200.0, -30 * 86400.0], ids=["2h-ahead", "30d-behind"])
def test_a_hold_written_under_a_jumped_wall_clock_lasts_what_it_asked(
    tmp_path: Path, jump: float
) -> None:
    """A Retry-After hold of 3 s, as a sender leaves it when the wall clock was set two hours
    ahead (or thirty days behind) while it waited: the boot clock counts, not the wall."""
    from phonehome._spool.clock import parse

    state = tmp_path / "state"
    with OTLPReceiver() as vendor:
        vendor.status, vendor.retry_after = 429, "3"
        finished(host(vendor.url, state, mode="ci", budget=2.0))
        (hold,) = (state / "spool" / "progress").glob("*.hold")
        seconds, _, moment = hold.read_text().partition(" ")
        began = parse(moment)
        assert began is not None and began.boot is not None  # Linux: a boot clock
        hold.write_text(f"{seconds} {began.wall + jump!r} {began.boot!r} {began.boot_id}\n")
        vendor.status = 200
        report = _sender.deliver(state, budget=5)
        assert report is not None and report.held  # the hold is not over yet
        started = time.monotonic()
        assert poll(lambda: bool(_sender.deliver(state, budget=5) and vendor.spans), 15, 0.2)
        assert time.monotonic() - started < 10  # seconds, not hours or days
        assert len(vendor.spans) == 1
