"""docs/reliability.md from the figures a full run of the reliability suites wrote.

``make reliability`` runs the suites with ``PHONEHOME_RELIABILITY=full`` and then this script:
``python reliability/report.py build/reliability.json docs/reliability.md``.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

SUITES = {
    "faults": (
        "Destination faults",
        "tests/test_faults.py",
        "OTLP/HTTP, OTLP/gRPC and Azure Monitor, each with: HTTP 500 (gRPC INTERNAL), 503 "
        "(UNAVAILABLE), 429 with Retry-After (RESOURCE_EXHAUSTED with RetryInfo), 400 "
        "(INVALID_ARGUMENT), connection refused, reset mid-request, a response slower than "
        "the timeout, a port that accepts and never answers, a TLS handshake that fails, a "
        "name that does not resolve, and a partial acceptance (OTLP partial_success refusing "
        "every fifth span and event; Azure's 206 refusing every fifth item for good, the next "
        "one once). Spans, log records and metrics in every case. And the logs signal down "
        "(OTLP/HTTP and gRPC) while traces and metrics work, over several runs: each span is "
        "sent once.",
    ),
    "crash": (
        "Crash consistency (kill -9)",
        "tests/test_crash.py",
        "Alternately the detached sender (at a random moment of a slow delivery) and the host "
        "(at a random moment of its run, its spool write included) are killed with SIGKILL; a "
        "clean sender delivers what is left. Records: the spans of every host that finished, "
        "and of killed hosts whose spool write had completed. The duplicates are the "
        "at-least-once window at work: about 100 senders are killed while a slow destination "
        "takes their groups, and a group accepted but not yet written down is sent again "
        "whole (its spans are sent before its logs and metrics, so a kill during either "
        "resends the spans). The bound checked is 512 items per destination per kill. "
        "And a long command killed by SIGTERM (SIGHUP too, at full scale) after it became a "
        "service (PROMOTE_AFTER, 30 s), with a service interval of 1 s: phonehome installs no "
        "handler for the host's signals, so the records since the last spooling are lost; "
        "the check is that they are at most the last interval's.",
    ),
    "concurrency": (
        "Concurrency",
        "tests/test_concurrency.py",
        "50 CLI runs started at once, 8 extra senders racing them for the lock, and a "
        "service writing to the same state directory all the while; then every record is "
        "looked for on the wire. Ten threads of 1,000 commands each in one block (no "
        "warning, no fallback directory, one install id), and threads spooling while others "
        "record. Real os.fork() children, exiting through their block or by atexit, with "
        "spans open across the fork; a fork-mode multiprocessing Pool whose workers record "
        "(40 tasks, 200 at full scale): the pre-fork records once, every child's once, no "
        "id made twice. Nothing crashes here, so exactly once is the target.",
    ),
    "state": (
        "Corrupt and hostile state",
        "tests/test_hostile_state.py",
        "Garbage in each state file in turn (consent, install id, salt, notice, usage, "
        "lifecycle, config, ledger, last delivery, a spool segment, every progress file); a "
        "read-only state directory; a full disk (a 64 KiB filesystem, full); a state "
        "directory that is a link to a private directory (followed), or to one others can "
        "write (not used); a planted link as the temporary fallback; links planted inside "
        "the state directory (never written through). A fresh install whose HOME is a file, "
        "/nonexistent, read-only, or holds a state directory of another user: the notice "
        "once, one warning, and three runs' records delivered from the private fallback. A "
        "directory named like a segment (left alone, nothing stopped); a segment of a newer "
        "format version (kept for a newer sender, then dropped at the age cap and reported "
        "as unsupported).",
    ),
    "senders": (
        "Senders for sequential runs",
        "tests/test_senders.py",
        "A script runs the program again and again (1,000 runs, 100 in the quick run), each "
        "run one command in CLI mode, through a live collector (Rotel), then with the "
        "collector's port closed (half as many runs). The measuring process is the senders' "
        "subreaper: every sender is counted, and its CPU time read, when it ends. Targets: "
        "at most 20 sender starts per 1,000 runs, sender CPU at most 25 % of the runs' own, "
        "every record delivered exactly once within 60 s of the last run, never two senders "
        "at once; offline, no more senders than the backoff schedule's attempts.",
    ),
    "input": (
        "Bad input (property-based)",
        "tests/test_bad_input.py tests/test_fuzz_settings.py",
        "Hypothesis examples: attribute values and names in every recording position (bytes, "
        "20 KB strings, nesting, NaN/inf, objects whose __str__ raises), every setting "
        "variable, and the connection strings, endpoints, header strings and schema files.",
    ),
    "security": (
        "Security",
        "tests/test_security.py tests/test_destinations.py",
        "Every file access of a host and its sender, audited (nothing read or written outside "
        "the state directory but the interpreter's own files); TLS verified by default for "
        "the vendor, the user's endpoint and Azure; the user's key never at the vendor and "
        "the vendor's never at the user's endpoint, on the wire.",
    ),
}


def _cell(value: int, produced: int) -> str:
    return f"{value:,}" if produced else "n/a"


def render(figures: dict[str, object]) -> str:
    rows = figures["rows"]
    assert isinstance(rows, dict)
    lines = [
        "# Reliability",
        "",
        "What the reliability suites tried, and what happened to every record. Generated by",
        "`make reliability` (all suites at full scale, about eight minutes on a busy 2-core "
        "machine) on "
        f"{time.strftime('%Y-%m-%d')}, {platform.system()} {platform.machine()}, Python "
        f"{platform.python_version()}. The normal test run (`make test`, and CI) runs the "
        "same tests at a smaller scale and checks the same targets.",
        "",
        "| suite | cases | records produced | delivered | dropped (why) | duplicated "
        "| host failures | rerun |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for key, (title, files, _) in SUITES.items():
        row = rows.get(key)
        if not isinstance(row, dict):
            lines.append(f"| {title} | not run | | | | | | |")
            continue
        produced = int(row["produced"])
        dropped = ", ".join(f"{n:,} {why}" for why, n in sorted(row["dropped"].items())) or (
            "0" if produced else "n/a"
        )
        command = f"`PHONEHOME_RELIABILITY=full .venv/bin/python -m pytest {files}`"
        lines.append(
            f"| {title} | {int(row['cases']):,} | {_cell(produced, produced)} "
            f"| {_cell(int(row['delivered']), produced)} | {dropped} "
            f"| {_cell(int(row['duplicated']), produced)} | {int(row['host_failures'])} "
            f"| {command} |"
        )
    lines += ["", "Target for every suite: 0 host failures, nothing lost.", ""]
    for key, (title, _, what) in SUITES.items():
        lines += [f"## {title}", "", what, ""]
        row = rows.get(key)
        notes = row.get("notes", {}) if isinstance(row, dict) else {}
        if notes:
            lines += [f"- {label}: {text}." for label, text in notes.items()] + [""]
    return "\n".join(lines) + "\n" + NOTES


NOTES = """## Reading the figures

- **Host failures** count runs whose exit code, standard output or standard error differed
  from the same program's without a fault (a traceback, a second warning line, a changed exit
  code), or that took longer than their budget.
- **Dropped, rejected**: the destination refused the data itself (HTTP 4xx other than 401,
  403, 408 and 429; items Azure refuses for good inside a 206). Sending it again cannot
  succeed, so it is dropped for that destination and the count is reported to it as
  `phonehome.spool.dropped{reason="rejected"}` with the next export (the fault suite checks
  that report on the wire). gRPC statuses are all retried.
- **Dropped, still spooled**: a name that never resolves leaves its records in the spool;
  later runs retry them until the age cap (7 days), which reports them as `reason="age"`.
- **Dropped, killed by a signal**: the records a long command made since its last spooling
  when SIGTERM or SIGHUP killed it (at most one service interval's; the host's signals are
  not phonehome's to handle). The span of the command under way, which only its end
  records, is not counted: it was never made.
- **Duplicated** records come only from the documented at-least-once windows: a sender
  killed after a destination accepted a group and before it wrote that down sends the group
  again (at most 512 items per destination per kill); a destination that takes a request
  after the client gave up on it (the "slower than the timeout" fault) gets it again.
- **Crash consistency**: a killed host's records arrive all or not at all (its segment is
  written to a temporary file and renamed into place); records still in its memory when it
  is killed were never produced, in the table's sense.
"""


def main(argv: list[str]) -> int:
    source, target = Path(argv[0]), Path(argv[1])
    figures = json.loads(source.read_text())
    if not figures.get("full"):
        print("reliability/report.py: these figures are from a quick run", file=sys.stderr)
        return 1
    target.write_text(render(figures))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
