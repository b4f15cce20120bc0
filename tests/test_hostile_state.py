"""Corrupt state files: each is recovered from (at most one warning line), the host is
unaffected, and delivery goes on. (A first piece of the reliability suites.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, clean_environ

HOST = """
import sys, phonehome
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="ci") as t:
    with t.command("generate"):
        print("host output")
"""
GARBAGE = b"\x00\xff{not json\n\x89PNG\r\n"


def run(vendor: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HOST, vendor, str(state)],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
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
    assert result.returncode == 0 and result.stdout == "host output\n"
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) <= 1, result.stderr
    assert all(line.startswith("phonehome: ") for line in result.stderr.splitlines())
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2)


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
