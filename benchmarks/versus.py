"""The minimal CLIs' start-up, this tree beside another checkout, in interleaved pairs.

    make bench-versus BEFORE=/path/to/checkout [ARGS="--pairs 31 click argparse"]

Wall-clock figures move with the machine and the hour; two trees measured in the same run,
each instrumented run right after its plain one and the variants in a random order, move
together. Their ratio carries a figure measured elsewhere on the older tree (an issue's)
over to this one. Consent off and on each have their own state directory (an opted-out run
forgets the install id an earlier run minted); the first run of each install is not
counted, and each run's detached sender is stopped before the next run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import CLEAN, MINIMAL, ROOT, minimal, reap

from phonehome.testing import OTLPReceiver


def environ(tree: Path, off: bool) -> dict[str, str]:
    found = {**CLEAN, "PYTHONPATH": str(tree / "src")}
    found.pop("PYTHONDONTWRITEBYTECODE", None)  # the cached bytecode an install has
    if off:
        found["DO_NOT_TRACK"] = "1"
    return found


def once(code: str, vendor: str, state: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, vendor, state],
        env=env,
        cwd=ROOT,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"benchmark program failed: {result.stderr[-2000:]!r}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="the other checkout")
    parser.add_argument("--pairs", type=int, default=31, help="pairs per figure")
    parser.add_argument("frameworks", nargs="*", help=f"any of {', '.join(MINIMAL)} (all)")
    options = parser.parse_args()
    unknown = set(options.frameworks) - set(MINIMAL)
    if unknown:
        parser.error(f"no minimal CLI for {', '.join(sorted(unknown))}: use {', '.join(MINIMAL)}")
    trees = {"before": options.before.resolve(), "this tree": ROOT}
    for tree in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "src")], check=True)
    variants = [(name, off) for name in trees for off in (True, False)]
    print(f"| minimal CLI | {' | '.join(f'{n} off / on' for n in trees)} | plain CLI |")
    print(f"| --- |{' ---: |' * len(trees)} ---: |")
    with OTLPReceiver() as receiver, tempfile.TemporaryDirectory() as work:
        for framework in options.frameworks or MINIMAL:
            plain, instrumented = minimal(framework, False), minimal(framework, True)
            states = {variant: tempfile.mkdtemp(dir=work) for variant in variants}
            for name, tree in trees.items():  # each install's first run, not counted
                once(instrumented, receiver.url, states[name, False], environ(tree, False))
                reap(Path(work))
            over: dict[tuple[str, bool], list[float]] = {variant: [] for variant in variants}
            plains = []
            for _ in range(options.pairs):
                for name, off in random.sample(variants, len(variants)):
                    env, state = environ(trees[name], off), states[name, off]
                    base = once(plain, receiver.url, state, env)
                    elapsed = once(instrumented, receiver.url, state, env)
                    reap(Path(work))
                    over[name, off].append(elapsed - base)
                    plains.append(base)
            cells = [
                " / ".join(
                    f"{statistics.median(over[name, off]) * 1e3:.1f}" for off in (True, False)
                )
                + " ms"
                for name in trees
            ]
            median = statistics.median(plains) * 1e3
            print(f"| {framework} | {' | '.join(cells)} | {median:.1f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
