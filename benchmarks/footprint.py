"""What each install of phonehome weighs: the wheel built from this tree, installed with each
extra into a fresh venv from PyPI, measured on disk (``make footprint``; README.md states it).

Prints a markdown table: the distributions an install adds and their size on disk, beyond an
empty venv (pip's own files are not counted).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTALLS = ("", "grpc", "azure", "system", "collector", "insights")


def size(path: Path) -> int:
    """Bytes on disk under ``path`` (files counted once, links not followed)."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            found = Path(directory) / name
            if not found.is_symlink():
                total += found.stat().st_size
    return total


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def measure(wheel: Path, extra: str, work: Path) -> tuple[int, int]:
    """(distributions, bytes) that ``pip install wheel[extra]`` adds to a fresh venv."""
    venv = work / f"venv-{extra or 'base'}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    packages = site_packages(venv)
    before = size(packages)
    before_dists = len(list(packages.glob("*.dist-info")))
    target = f"{wheel}[{extra}]" if extra else str(wheel)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", target], check=True
    )
    dists = len(list(packages.glob("*.dist-info"))) - before_dists
    return dists, size(packages) - before


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="phonehome-footprint-") as directory:
        work = Path(directory)
        subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", str(work)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        wheel = next(work.glob("phonehome-*.whl"))
        rows = {extra: measure(wheel, extra, work) for extra in INSTALLS}
    _, base = rows[""]
    print(f"Python {sys.version.split()[0]}, {sys.platform}")
    print("| install | distributions | on disk | beyond the base install |")
    print("| --- | ---: | ---: | ---: |")
    for extra, (dists, total) in rows.items():
        name = f"`phonehome[{extra}]`" if extra else "`phonehome`"
        beyond = f"+{(total - base) / 2**20:.1f} MiB" if extra else "-"
        print(f"| {name} | {dists} | {total / 2**20:.1f} MiB | {beyond} |")


if __name__ == "__main__":
    main()
