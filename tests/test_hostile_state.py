"""Corrupt state files: each is recovered from (at most one warning line), the host is
unaffected, and delivery goes on. (A first piece of the reliability suites.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
            for suffix in ("", ".dropped", ".hold")
        ]
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
    assert result.stderr == ONE_LINE.format(state=state, reason="Read-only file system")
    assert len(otlp_receiver.spans) == 2  # delivered from the temporary directory


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
    assert result.stderr == ONE_LINE.format(state=link, reason=reason)
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
