#!/usr/bin/env python3
"""A month of monthcli in a few minutes: a few hundred installs, each run a real CLI process.

    make demo-month                     # writes build/month.html and prints the report
    MONTH_INSTALLS=50 make demo-month   # smaller

Every run goes the whole way: monthcli (examples/monthcli.py) records it, spools it and
starts its sender, which delivers through `phonehome collector --store` (Rotel in front of
the embedded store). Only the clock is played: each monthcli process is told its day with
MONTHCLI_CLOCK_OFFSET, which it applies to its own clock, so the month ends today. Installs
differ by OS and architecture (OTEL_RESOURCE_ATTRIBUTES, as a user could set them), some run
in CI or under an agent, version 1.1.0 ships on day 12 and installs upgrade over the days
after; a funnel of events (signup, first_generate, purchase) runs through the month.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from demo import PHONEHOME, store_collector  # the demo beside this file

HERE = Path(__file__).resolve().parent
DAYS, RELEASE_DAY = 30, 12
Run = tuple[float, list[str], dict[str, str]]


def install_runs(index: int, rng: random.Random, now: float) -> list[Run]:
    """One install's month: when it runs what, with which version and environment."""
    first = int(min(DAYS - 1, rng.expovariate(1 / 9)))
    keen = rng.uniform(0.08, 0.45)
    upgrade = RELEASE_DAY + rng.expovariate(1 / 4)
    last = first + int(rng.expovariate(1 / 14)) + 1  # some stop coming back
    system = rng.choices(["linux", "darwin", "windows"], [55, 30, 15])[0]
    arch = "arm64" if system == "darwin" and rng.random() < 0.7 else "amd64"
    python = rng.choice(["3.10.14", "3.11.9", "3.12.4", "3.13.1"])
    runner = rng.choices([{}, {"GITHUB_ACTIONS": "true"}, {"CLAUDECODE": "1"}], [85, 10, 5])[0]
    buyer = rng.random() < 0.25
    runs: list[Run] = []
    for day in range(first, min(DAYS, last)):
        if day != first and rng.random() > keen:
            continue
        moment = now - (DAYS - day) * 86400 + rng.uniform(8, 20) * 3600
        version = "1.1.0" if day >= upgrade else "1.0.0"
        environ = {
            "MONTHCLI_CLOCK_OFFSET": str(moment - now),
            "MONTHCLI_VERSION": version,
            "OTEL_RESOURCE_ATTRIBUTES": f"os.type={system},host.arch={arch},"
            f"process.runtime.version={python}",
            **runner,
        }
        if not runs:
            runs.append((moment, ["init"], {**environ, "MONTHCLI_EVENT": "signup"}))
            continue
        failing = 0.12 if version == "1.0.0" else 0.03
        argv = rng.choices(
            [["generate", "--language", rng.choice(["python", "go", "typescript"])], ["deploy"]],
            [70, 30],
        )[0]
        if argv == ["deploy"] and rng.random() < failing:
            argv = ["fail"]
        event = ""
        if argv[0] == "generate" and all(r[1][0] != "generate" for r in runs):
            event = "first_generate"
        elif buyer and len(runs) >= 3 and all("purchase" not in r[2].values() for r in runs):
            event = "purchase"
        runs.append((moment + index * 1e-3, argv, {**environ, "MONTHCLI_EVENT": event}))
    return runs


def play(runs: list[Run], state: Path, base: dict[str, str]) -> int:
    """An install's runs, in order; the number that ran."""
    for _, argv, extra in runs:
        subprocess.run(
            [sys.executable, str(HERE / "monthcli.py"), *argv],
            env={**base, **extra, "MONTHCLI_TELEMETRY_DIR": str(state)},
            capture_output=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
    return len(runs)


def drained(states: list[Path], timeout: float = 180.0) -> bool:
    """Whether every install's spool has been delivered (what `phonehome preview` shows)."""
    from phonehome._tools.admin import preview

    deadline = time.monotonic() + timeout
    pending = list(states)
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if preview(s)["waiting"]]
        time.sleep(0.5)
    return not pending


def main() -> int:
    installs = int(os.environ.get("MONTH_INSTALLS") or 200)
    output = Path(os.environ.get("MONTH_HTML") or "build/month.html").resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    rng, now = random.Random(15), time.time()
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "DO_NOT_TRACK", "MONTHCLI_", "CI", "GITHUB_", "CLAUDE"))
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="phonehome-month-") as name:
        directory = Path(name)
        store = directory / "vendor.duckdb"
        with store_collector(store, base) as (collector, port):
            assert collector.stdout is not None
            print(collector.stdout.readline().strip())
            base.update(MONTHCLI_VENDOR=f"http://127.0.0.1:{port}", MONTHCLI_TELEMETRY_NOLOGO="1")
            plans = [install_runs(i, rng, now) for i in range(installs)]
            states = [directory / f"install-{i}" for i in range(installs)]
            print(f"{installs} installs, {sum(map(len, plans))} runs over {DAYS} days ...")
            with ThreadPoolExecutor(3) as pool:
                ran = sum(pool.map(lambda i: play(plans[i], states[i], base), range(installs)))
            print(f"{ran} runs in {time.monotonic() - started:.0f} s; waiting for delivery")
            if not drained(states):
                print("some installs' data is still waiting to be sent", file=sys.stderr)
            collector.send_signal(signal.SIGINT)
            collector.wait(timeout=60)
        window = ["--since", f"{DAYS + 1}d", "--until", "0d"]
        funnel = ["--funnel", "signup,first_generate,purchase"]
        common = [*PHONEHOME, "insights", "--store", str(store), "--product", "monthcli"]
        text = subprocess.run([*common, *window, *funnel], env=base, text=True, capture_output=True)
        print(text.stdout or text.stderr)
        page = subprocess.run(
            [*common, *window, *funnel, "--html", str(output)],
            env=base,
            text=True,
            capture_output=True,
        )
        print(page.stdout.strip() or page.stderr.strip())
    print(f"done in {time.monotonic() - started:.0f} s")
    return text.returncode or page.returncode


if __name__ == "__main__":
    sys.exit(main())
