"""Corrupt state files: each is recovered from (at most one warning line), the host is
unaffected, and delivery goes on. (A first piece of the reliability suites.)"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from phonehome.testing import OTLPReceiver
from tests import figures
from tests.conftest import ROOT, clean_environ

HOST = """
import sys, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="ci") as t:
    with t.command("generate"):
        print("host output")
"""
GARBAGE = b"\x00\xff{not json\n\x89PNG\r\n"


def run(
    vendor: str, state: Path, *, prefix: tuple[str, ...] = (), **environ: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-c", HOST, vendor, str(state)],
        env=clean_environ(**environ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def record(result: subprocess.CompletedProcess[str], delivered: bool, lines: int = 1) -> None:
    """One case of the suite's figures: one span produced; delivered or not; the host."""
    row = figures.row("state")
    row.cases += 1
    row.produced += 1
    row.delivered += delivered
    if not delivered:
        row.dropped["no writable directory"] += 1
    row.host_failures += not (
        result.returncode == 0
        and result.stdout == "host output\n"
        and len(result.stderr.splitlines()) <= lines
        and "Traceback" not in result.stderr
    )


@pytest.mark.parametrize(
    "name",
    [
        "consent.json",
        "install-id",
        "salt",
        "notice.json",
        "usage.json",
        "lifecycle.json",
        "config.json",
        "ledger.jsonl",
        "last-delivery.json",
        "spool/00000000000000000001-1-abcdef.seg",
        "every progress file",
    ],
)
def test_a_garbage_state_file_is_recovered_from(
    otlp_receiver: OTLPReceiver, tmp_path: Path, name: str
) -> None:
    run(otlp_receiver.url, tmp_path)  # a healthy install first
    assert len(otlp_receiver.spans) == 1
    if name == "every progress file":  # one per destination the last run configured
        keys = json.loads((tmp_path / "config.json").read_text())["destinations"]
        paths = [
            tmp_path / "spool" / "progress" / f"{k}{suffix}"
            for k in keys
            for suffix in ("", ".dropped", ".hold", ".backoff")
        ]
        paths.append(tmp_path / "spool" / "progress" / "all.waiting")
    else:
        paths = [tmp_path / name]
    assert paths
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(GARBAGE)
    result = run(otlp_receiver.url, tmp_path)
    record(result, otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2))
    assert result.returncode == 0 and result.stdout == "host output\n"
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) <= 1, result.stderr
    assert all(line.startswith("phonehome: ") for line in result.stderr.splitlines())
    assert len(otlp_receiver.spans) == 2


def test_every_state_file_is_private(tmp_path: Path) -> None:
    """0600 files in 0700 directories, whatever the run wrote (a Retry-After hold included)."""
    with OTLPReceiver() as vendor:
        run(vendor.url, tmp_path)
        vendor.status, vendor.retry_after = 429, "120"
        run(vendor.url, tmp_path)
    written = list(tmp_path.rglob("*"))
    assert any(p.name.endswith(".hold") for p in written)
    assert any(p.name.endswith(".seg") for p in written)
    for path in [tmp_path, *written]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), f"{path}: {oct(mode)}"


# -- hostile state directories ----------------------------------------------------------------
ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="mounts a read-only or full filesystem in a private mount namespace (root)",
)
ONE_LINE = (
    "phonehome: cannot write to {state} ({reason}); this run keeps its telemetry in a "
    "private temporary directory and uses a new install id\n"
)
"""A write that fails as the run goes (a full disk)."""
FALLBACK = (
    "phonehome: cannot write to {state} ({reason}); telemetry is kept in "
    "{tmp}/phonehome-{uid}/{name} instead (said once a day)\n"
)
"""A state directory found unusable as the run starts."""


def in_mount_namespace(setup: str) -> tuple[str, ...]:
    """Run the host after ``setup`` (shell) in a mount namespace of its own: the mounts
    vanish with it and nobody else sees them."""
    return ("unshare", "--mount", "sh", "-c", f'{setup} && exec "$@"', "sh")


@ROOT_ONLY
def test_a_read_only_state_directory(otlp_receiver: OTLPReceiver, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run(otlp_receiver.url, state)  # an existing install, then its directory turns read-only
    mount = in_mount_namespace(f"mount --bind -o ro {state} {state}")
    result = run(otlp_receiver.url, state, prefix=mount, TMPDIR=str(tmp_path))
    record(result, otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2))
    assert (result.returncode, result.stdout) == (0, "host output\n")
    assert result.stderr == FALLBACK.format(
        state=state, reason="Read-only file system", tmp=tmp_path, uid=os.geteuid(), name="state"
    )
    assert len(otlp_receiver.spans) == 2  # delivered from the temporary directory
    # the same install: its id came along, and the notice it had seen is not shown again
    ids = {s.resource["device.id"] for s in otlp_receiver.spans}
    assert len(ids) == 1


@ROOT_ONLY
def test_a_full_disk(otlp_receiver: OTLPReceiver, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    fill = f"mount -t tmpfs -o size=64k tmpfs {disk} && "
    fill += f"(cat /dev/zero > {disk}/fill 2>/dev/null || true)"
    result = run(
        otlp_receiver.url, disk / "state", prefix=in_mount_namespace(fill), TMPDIR=str(tmp_path)
    )
    record(result, otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 1))
    assert (result.returncode, result.stdout) == (0, "host output\n")
    assert result.stderr == ONE_LINE.format(state=disk / "state", reason="No space left on device")
    assert len(otlp_receiver.spans) == 1


def test_a_state_directory_linked_to_a_private_one_is_followed(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    target = tmp_path / "other-disk" / "democli"
    target.mkdir(parents=True, mode=0o700)
    link = tmp_path / "state"
    link.symlink_to(target)
    result = run(otlp_receiver.url, link)
    record(result, otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 1))
    assert (result.returncode, result.stdout, result.stderr) == (0, "host output\n", "")
    assert link.is_symlink() and (target / "config.json").exists()


def test_a_state_directory_others_can_write_is_not_used(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    link = tmp_path / "state"
    link.symlink_to(shared)
    result = run(otlp_receiver.url, link, TMPDIR=str(tmp_path))
    record(result, otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 1))
    assert (result.returncode, result.stdout) == (0, "host output\n")
    reason = "owned by another user or writable by others"
    assert result.stderr == FALLBACK.format(
        state=link, reason=reason, tmp=tmp_path, uid=os.geteuid(), name="state"
    )
    assert list(shared.iterdir()) == []  # nothing kept where others could read it


def test_a_planted_temporary_directory_is_refused(tmp_path: Path) -> None:
    """The fallback lives in a shared directory: a link someone put there is not followed."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / f"phonehome-{os.geteuid()}").symlink_to(victim)
    with OTLPReceiver() as vendor:
        result = run(vendor.url, blocker / "state", TMPDIR=str(tmp_path))
        record(result, delivered=False, lines=2)  # the directory, then the fallback
        assert vendor.requests == []
    assert (result.returncode, result.stdout) == (0, "host output\n")
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "telemetry is dropped" in lines[1], lines
    assert list(victim.iterdir()) == []


def test_a_link_planted_in_the_state_directory_is_not_written_through(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    run(otlp_receiver.url, state)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    keys = json.loads((state / "config.json").read_text())["destinations"]
    for key in keys:  # progress lists and counts, appended to by the sender
        for suffix in ("", ".dropped"):
            path = state / "spool" / "progress" / f"{key}{suffix}"
            path.unlink(missing_ok=True)
            path.symlink_to(victim)
    for name in ("config.json", "last-delivery.json"):  # replaced atomically by every run
        (state / f".{name}.tmp").symlink_to(victim)
        (state / name).unlink()
        (state / name).symlink_to(victim)
    result = run(otlp_receiver.url, state)
    record(result, otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2))
    assert victim.read_text() == "precious"
    assert (result.returncode, result.stdout) == (0, "host output\n")
    assert len(result.stderr.splitlines()) <= 1, result.stderr


# -- a fresh install whose HOME cannot be used ---------------------------------------------------
FRESH_HOST = """
import sys, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], mode="ci") as t:
    with t.command(sys.argv[2]):
        print("host output")
"""
NOBODY = 65534
UNUSABLE_HOMES = ("a file", "/nonexistent", "read-only", "another user's state directory")


def fresh_run(
    vendor: str, name: str, home: str, tmp: Path, prefix: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    # no machine policy, at a path the other user may look at (pytest's are private)
    environ = clean_environ(HOME=home, TMPDIR=str(tmp), PHONEHOME_POLICY_FILE=f"{tmp}/no-policy")
    environ.pop("XDG_STATE_HOME", None)
    environ.pop("XDG_CONFIG_HOME", None)  # the user-wide choice under HOME, as installed
    environ.pop("DEMOCLI_TELEMETRY_NOLOGO")  # a fresh install: the notice is shown
    return subprocess.run(
        [*prefix, sys.executable, "-c", FRESH_HOST, vendor, name],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture
def open_tmp_path() -> Iterator[Path]:
    """A directory another user can reach (pytest's own are private to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="phonehome-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def unusable_home(case: str, tmp_path: Path) -> tuple[str, Path, tuple[str, ...], str]:
    """The HOME of ``case``, the temporary directory, how the host runs, the reason given."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    home = tmp_path / "home"
    if case == "a file":
        home.write_text("not a directory")
        return str(home), tmp, (), "Not a directory"
    if case == "/nonexistent":
        if os.geteuid() != 0:  # an ordinary user cannot create it
            return "/nonexistent", tmp, (), "Permission denied"
        if not shutil.which("setpriv"):
            pytest.skip("root would create /nonexistent: needs setpriv(1) to run as nobody")
        os.chown(tmp, NOBODY, NOBODY)
        nobody = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
        return "/nonexistent", tmp, nobody, "Permission denied"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root: a read-only mount, or a directory of another user")
    home.mkdir()
    if case == "read-only":
        return (
            str(home),
            tmp,
            in_mount_namespace(f"mount --bind -o ro {home} {home}"),
            ("Read-only file system"),
        )
    state = home / ".local" / "state" / "phonehome" / "democli"
    state.mkdir(parents=True, mode=0o700)
    os.chown(state, NOBODY, NOBODY)
    return str(home), tmp, (), "owned by another user or writable by others"


@pytest.mark.parametrize("case", UNUSABLE_HOMES)
def test_a_fresh_install_with_an_unusable_home_works_from_the_fallback(
    otlp_receiver: OTLPReceiver, open_tmp_path: Path, case: str
) -> None:
    """The notice once, one warning a day, and the data delivered from the next run on."""
    home, tmp, prefix, reason = unusable_home(case, open_tmp_path)
    runs = [fresh_run(otlp_receiver.url, f"run{n}", home, tmp, prefix) for n in range(3)]
    delivered = otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 3)
    for result in runs:
        row = figures.row("state")
        row.cases += 1
        row.produced += 1
        row.host_failures += (result.returncode, result.stdout) != (0, "host output\n")
    figures.row("state").delivered += len({s.name for s in otlp_receiver.spans})
    first, second, third = runs
    assert [r.returncode for r in runs] == [0, 0, 0] and first.stdout == "host output\n"
    state = f"{home}/.local/state/phonehome/democli"
    uid = NOBODY if prefix[:1] == ("setpriv",) else os.geteuid()
    warning = FALLBACK.format(state=state, reason=reason, tmp=tmp, uid=uid, name="democli")
    lines = first.stderr.splitlines(keepends=True)
    assert lines.count(warning) == 1, first.stderr
    assert "democli collects anonymous usage data" in first.stderr  # the notice, once
    assert (second.stderr, third.stderr) == ("", "")  # no notice, no warning: said today
    assert delivered, otlp_receiver.spans
    assert sorted(s.name for s in otlp_receiver.spans) == ["run0", "run1", "run2"]
    assert len({s.resource["device.id"] for s in otlp_receiver.spans}) == 1  # one install


# -- the spool holds what it should not ---------------------------------------------------------
def test_a_directory_named_like_a_segment_stops_nothing(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    run(otlp_receiver.url, tmp_path)
    planted = tmp_path / "spool" / "00000000000000000001-1-abcdef.seg"
    planted.mkdir(parents=True)
    results = [run(otlp_receiver.url, tmp_path) for _ in range(2)]
    delivered = otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 3)
    for result in results:
        record(result, delivered)
    assert delivered, otlp_receiver.spans
    assert [(r.returncode, r.stderr) for r in results] == [(0, ""), (0, "")]
    assert planted.is_dir()  # left alone
    assert not list((tmp_path / "spool").glob("*.seg.tmp"))


def newer_segment(state: Path, name: str) -> Path:
    """A segment a newer phonehome wrote: format version 2, for this install's destinations."""
    keys = sorted(json.loads((state / "config.json").read_text())["destinations"])
    header = {"format": "phonehome-spool", "version": 2, "destinations": keys, "new": "?"}
    frame = struct.pack("<II", 3, zlib.crc32(b"abc")) + b"abc"
    path = state / "spool" / name
    path.write_bytes(json.dumps(header).encode() + b"\n" + frame * 2)
    return path


def test_a_newer_format_segment_waits_for_a_newer_sender_then_is_reported_as_unsupported(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    run(otlp_receiver.url, tmp_path)
    written = f"{time.time_ns():020d}-1-abcdef.seg"
    newer = newer_segment(tmp_path, written)
    result = run(otlp_receiver.url, tmp_path)
    record(result, otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2))
    assert newer.exists()  # kept, not deleted unsent
    report = json.loads((tmp_path / "last-delivery.json").read_text())
    assert (report["corrupt"], report["unsupported"]) == (0, 1)
    # a week and a day later no newer sender came: dropped, and the destination told why
    newer.rename(newer.with_name(f"{time.time_ns() - 8 * 86400 * 10**9:020d}-1-abcdef.seg"))
    result = run(otlp_receiver.url, tmp_path)
    dropped = lambda: [  # noqa: E731
        p for p in otlp_receiver.points("phonehome.spool.dropped") if p.value
    ]
    record(result, otlp_receiver.wait_until(lambda: bool(dropped())))
    assert [(p.attributes["reason"], p.value) for p in dropped()] == [("unsupported", 2)]
    assert list((tmp_path / "spool").glob("*.seg")) == []
