"""Every code block in README.md and docs/*.md, executed as written.

Python blocks run in a fresh interpreter, shell blocks in ``bash`` with this venv's ``bin``
first on ``PATH``, each in an empty temporary directory with its own state, user-wide and
policy files, against capture receivers on 127.0.0.1. The placeholders the docs use are
made runnable by :data:`URLS` and :data:`COMMANDS`, and nothing else; what a block promises
is checked by its entry in :data:`BLOCKS`. A block that cannot run here says so in the
markdown, right before it: ``<!-- not run: why -->``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from phonehome.testing import OTLPReceiver, free_port
from tests.conftest import ROOT, clean_environ, poll


def toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    return tomllib.loads(text)


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXEMPT = re.compile(r"<!-- not run: (.+?) -->")
RUN = ("python", "sh", "toml", "json")
"""The languages that run; a fence without one is a diagram or a layout (and may not hold a
command: see ``test_commands_are_never_in_an_unlabelled_fence``)."""


class Block(NamedTuple):
    doc: str
    line: int
    language: str
    text: str
    exemption: str


def blocks() -> list[Block]:
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        number = 0
        while number < len(lines):
            opening = re.fullmatch(r"```(\w*)\s*", lines[number])
            if not opening:
                number += 1
                continue
            end = lines.index("```", number + 1)
            before = next((line for line in reversed(lines[:number]) if line.strip()), "")
            exempt = EXEMPT.fullmatch(before.strip())
            found.append(
                Block(
                    path.relative_to(ROOT).as_posix(),
                    number + 1,
                    opening.group(1),
                    "\n".join(lines[number + 1 : end]) + "\n",
                    exempt.group(1) if exempt else "",
                )
            )
            number = end + 1
    return found


# -- what makes a block runnable here: a small, explicit table ------------------------------------
URLS = {
    "https://telemetry.example.com:4318": "vendor",
    "https://otel.example.org:4318": "organisation",
    "https://backend.example.com:4318": "backend",
}
"""Each placeholder URL becomes the URL of a capture receiver of that name."""

PYTHON = sys.executable
COMMANDS = {
    "democli": f"{PYTHON} {ROOT / 'examples' / 'democli.py'}",
    "clickapp": f"{PYTHON} {ROOT / 'examples' / 'clickapp.py'}",
}
"""The docs' example programs, by the name they have once installed."""


@dataclass
class Expect:
    """How one block runs here, and what it promises."""

    argv: tuple[str, ...] = ()
    environ: dict[str, str] = field(default_factory=dict)
    files: dict[str, str | Path] = field(default_factory=dict)
    """Files a reader has beside the program (their schema, their tests)."""
    runs: int = 1
    between: Callable[[Run], None] | None = None
    """Checked between two runs."""
    check: Callable[[Run], None] | None = None


@dataclass
class Run:
    results: list[subprocess.CompletedProcess[str]]
    receivers: dict[str, OTLPReceiver]
    directory: Path

    @property
    def stdout(self) -> str:
        return "".join(r.stdout for r in self.results)


def _block(doc: str, marker: str) -> str:
    """The text of the block in ``doc`` that holds ``marker`` (a file the doc shows)."""
    (found,) = [b.text for b in blocks() if b.doc == doc and marker in b.text]
    return found


def _quick_start(run: Run) -> None:
    first, second = run.results
    assert "democli collects anonymous usage data" in first.stderr
    assert "DEMOCLI_TELEMETRY_OPTOUT=1" in first.stderr
    assert first.stdout == "generated a go client from api.yaml\n"
    assert "democli collects" not in second.stderr
    vendor = run.receivers["vendor"]

    def purchases() -> list[dict[str, object]]:
        return [r.attributes for r in vendor.logs if r.event_name == "purchase_completed"]

    assert vendor.wait_until(lambda: len(vendor.spans) == 2 and len(purchases()) == 2, 30)
    assert [s.name for s in vendor.spans] == ["generate", "generate"]  # both runs' data
    assert {s.attributes["command.param.language"] for s in vendor.spans} == {"go"}
    assert "command.param.openapi" not in vendor.spans[0].attributes  # its name only
    assert purchases()[0]["amount"] == 149.99
    assert vendor.wait_until(lambda: bool(vendor.points("democli.command.duration")), 30)
    assert vendor.points("democli.command.executions")


def _first_run_is_held(run: Run) -> None:
    """Checked between the quick start's two runs: nothing left before the notice."""
    state = run.directory / "state" / "phonehome" / "democli"
    assert list((state / "spool").glob("*.seg"))
    assert run.receivers["vendor"].requests == []


def _spans_at(name: str, expected: list[str]) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        receiver = run.receivers[name]
        assert receiver.wait_until(lambda: len(receiver.spans) >= len(expected), timeout=30)
        assert [s.name for s in receiver.spans] == expected

    return check


def _fan_out(run: Run) -> None:
    for name in ("vendor", "organisation"):
        _spans_at(name, ["generate"])(run)


def _telemetry_group(run: Run) -> None:
    assert "telemetry for clickapp is off" in run.stdout
    assert "telemetry for clickapp is on" in run.stdout


def _exit_code(command: str, result: str, code: int) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        vendor = run.receivers["vendor"]
        assert vendor.wait_until(lambda: bool(vendor.spans), timeout=30)
        [span] = vendor.spans
        assert span.name == command
        assert span.attributes["command.result"] == result
        assert span.attributes["process.exit.code"] == code

    return check


def _event(name: str, **attributes: object) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        vendor = run.receivers["vendor"]

        def found() -> list[object]:
            return [r for r in vendor.logs if r.event_name == name]

        assert vendor.wait_until(lambda: bool(found()), timeout=30)
        for key, value in attributes.items():
            assert found()[0].attributes[key] == value  # type: ignore[attr-defined]

    return check


def _schema_commands(run: Run) -> None:
    page = (run.directory / "docs" / "telemetry.md").read_text()
    assert page.startswith("# What democli collects")
    assert "no undeclared fields" in run.stdout


def _pytest_passes(run: Run) -> None:
    assert re.search(r"\b2 passed\b", run.stdout), run.stdout


def _insights(run: Run) -> None:
    """The store's answers: both runs of the block, in the JSON and on the page."""
    report, page = run.directory / "report.json", run.directory / "report.html"
    assert poll(lambda: page.is_file() and "</html>" in page.read_text(), timeout=90)
    found = json.loads(report.read_text())
    assert found["installs"]["total"] == 1
    assert [(c["name"], c["runs"], c["failures"]) for c in found["commands"]] == [
        ("generate", 2, 0)
    ]
    assert "generate" in page.read_text()  # the last command: the block ran to its end


SMOKE_TEST = """\
import phonehome


def test_generate_records_only_declared_fields():
    schema = phonehome.Schema.from_toml("telemetry.toml")
    with phonehome.instrument("democli", vendor="http://127.0.0.1:9", schema=schema) as t:
        with t.command("generate", params={"language": "go"}):
            pass
"""

BLOCKS: dict[tuple[str, str], Expect] = {
    ("README.md", 'phonehome.instrument("democli"'): Expect(
        runs=2, between=_first_run_is_held, check=_quick_start
    ),
    ("docs/collectors.md", "phonehome collector --forward-to"): Expect(
        environ={"DEMOCLI_TELEMETRY_NOLOGO": "1"}, check=_spans_at("backend", ["generate"])
    ),
    ("docs/delivery.md", "FanOutSpanExporter"): Expect(check=_fan_out),
    ("docs/integrations.md", "instrument_click(cli"): Expect(
        argv=("generate", "--language", "go"),
        environ={"CLICKAPP_TELEMETRY_NOLOGO": "1"},
        files={"telemetry.toml": _block("docs/integrations.md", "[commands.generate.params")},
        check=_spans_at("vendor", ["generate"]),
    ),
    ("docs/integrations.md", "clickapp telemetry status"): Expect(check=_telemetry_group),
    ("docs/integrations.md", 'telemetry.command("check")'): Expect(
        environ={"LINTER_TELEMETRY_NOLOGO": "1"}, check=_exit_code("check", "failure", 1)
    ),
    ("docs/integrations.md", "as command:"): Expect(
        argv=("build",),
        environ={"TOOL_TELEMETRY_NOLOGO": "1"},
        check=_exit_code("build", "success", 0),
    ),
    ("docs/integrations.md", "def main(argv"): Expect(
        argv=("build",),
        environ={"TOOL_TELEMETRY_NOLOGO": "1"},
        check=_exit_code("build", "success", 0),
    ),
    ("docs/integrations.md", "serve_forever"): Expect(
        environ={"SERVICE_TELEMETRY_NOLOGO": "1"}, check=_event("heartbeat")
    ),
    ("docs/integrations.md", "@telemetry.collector"): Expect(
        environ={"SERVICE_TELEMETRY_NOLOGO": "1"},
        check=_event("summary", projects=3, users=2),
    ),
    ("docs/privacy.md", "phonehome schema doc"): Expect(
        files={
            "telemetry.toml": ROOT / "examples" / "democli.toml",
            "tests/test_smoke.py": SMOKE_TEST,
        },
        check=_schema_commands,
    ),
    ("docs/testing.md", "def test_"): Expect(check=_pytest_passes),
    ("docs/insights.md", "phonehome collector --store"): Expect(check=_insights),
}
"""Blocks that need more than the defaults, keyed by their document and a phrase in them.
Every other block must run and exit 0 without a traceback."""


def expectation(block: Block) -> Expect:
    matches = [
        e for (doc, phrase), e in BLOCKS.items() if doc == block.doc and phrase in block.text
    ]
    assert len(matches) <= 1, f"{block.doc}:{block.line} matches more than one entry"
    return matches[0] if matches else Expect()


def substitute(text: str, receivers: dict[str, OTLPReceiver], ports: tuple[int, int]) -> str:
    for placeholder, name in URLS.items():
        text = text.replace(placeholder, receivers[name].url)
    for name, command in COMMANDS.items():  # a program where a command starts
        text = re.sub(rf"(?m)^((?:[A-Z_]+=\S+ )*){name} ", rf"\g<1>{command} ", text)
    http, grpc = ports  # the collector's fixed ports may be taken on a shared machine
    text = text.replace(
        "phonehome collector ", f"phonehome collector --http-port {http} --grpc-port {grpc} "
    )
    return text.replace("127.0.0.1:4318", f"127.0.0.1:{http}")


def environment(directory: Path, extra: dict[str, str]) -> dict[str, str]:
    """A reader's shell: no telemetry settings, this venv first on ``PATH``, and state, user-wide
    and policy files of the block's own."""
    environ = clean_environ(
        XDG_STATE_HOME=str(directory / "state"),
        XDG_CONFIG_HOME=str(directory / "config"),
        PHONEHOME_POLICY_FILE=str(directory / "no-policy.toml"),
        PATH=f"{Path(PYTHON).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    environ.pop("DEMOCLI_TELEMETRY_NOLOGO")  # a reader sees the notice
    return {**environ, **extra}


def command(block: Block, text: str, expect: Expect, directory: Path) -> list[str]:
    """How the block runs: a python file (under pytest if it defines tests), or bash."""
    if block.language == "sh":
        return ["bash", "-e", "-c", text + "wait\n"]  # `wait`: background jobs run on
    if re.search(r"(?m)^def test_", text):
        (directory / "test_block.py").write_text(text)
        return [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_block.py"]
    # a program run from another directory than its own, as installed programs are
    (directory / "program" / "block.py").write_text(text)
    return [PYTHON, "program/block.py", *expect.argv]


def start(argv: list[str], directory: Path, environ: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv,
        cwd=directory,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a group of its own: its background jobs stop with it
    )


def stop(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Stop the block and whatever it started in the background; what it printed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=30)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


RUNNABLE = [b for b in blocks() if b.language in ("python", "sh") and not b.exemption]


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"{b.doc}:{b.line}" for b in RUNNABLE])
def test_the_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    expect = expectation(block)
    (tmp_path / "program").mkdir()
    beside = tmp_path / ("program" if block.language == "python" else "")
    for name, content in expect.files.items():
        target = beside / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content.read_text() if isinstance(content, Path) else content)
    environ = environment(tmp_path, expect.environ)
    with contextlib.ExitStack() as stack:
        receivers = {name: stack.enter_context(OTLPReceiver()) for name in URLS.values()}
        text = substitute(block.text, receivers, (free_port(), free_port()))
        argv = command(block, text, expect, tmp_path)
        run = Run([], receivers, tmp_path)
        if re.search(r"(?m)&\s*(#.*)?$", text):  # it starts a service: checked while it runs
            process = start(argv, tmp_path, environ)
            try:
                assert expect.check is not None
                expect.check(run)
            finally:
                result = stop(process)
            assert "Traceback" not in result.stderr, result.stderr
            return
        for number in range(expect.runs):
            if number and expect.between is not None:
                expect.between(run)
            process = start(argv, tmp_path, environ)
            try:
                process.wait(timeout=120)
            finally:
                result = stop(process)
            run.results.append(result)
            where = f"{block.doc}:{block.line}"
            assert result.returncode == 0, f"{where}\n{result.stdout}\n{result.stderr}"
            assert "Traceback" not in result.stderr, f"{where}\n{result.stderr}"
        if expect.check is not None:
            expect.check(run)


# -- the blocks that are data ---------------------------------------------------------------------
TOML = [b for b in blocks() if b.language == "toml"]


@pytest.mark.parametrize("block", TOML, ids=[f"{b.doc}:{b.line}" for b in TOML])
def test_the_toml_is_what_phonehome_accepts(block: Block, tmp_path: Path) -> None:
    """A machine policy is read without a problem; anything else is a schema file."""
    from phonehome._core.consentfiles import POLICY_KEYS
    from phonehome._policy.schema import Schema

    data = toml(block.text)
    path = tmp_path / "file.toml"
    path.write_text(block.text)
    if set(data) <= set(POLICY_KEYS):
        code = (
            "from phonehome._core.consentfiles import read_policy; "
            f"print(read_policy({str(path)!r}))"
        )
        result = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    else:
        assert Schema.from_toml(path).commands or Schema.from_toml(path).events


def test_the_spool_header_is_what_a_run_writes(tmp_path: Path) -> None:
    (block,) = [b for b in blocks() if b.doc == "docs/spool.md" and b.language == "json"]
    documented = json.loads(block.text)
    result = subprocess.run(
        [PYTHON, str(ROOT / "examples" / "democli.py"), "version"],
        env=clean_environ(DEMOCLI_VENDOR="http://127.0.0.1:9", DEMOCLI_TELEMETRY_DIR=str(tmp_path)),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0
    segment = next((tmp_path / "spool").glob("*.seg"))
    header = json.loads(segment.read_bytes().split(b"\n", 1)[0])
    assert set(header) == set(documented)
    assert (header["format"], header["version"]) == (documented["format"], documented["version"])


SPOOL_HOST = """
import sys, phonehome
schema = phonehome.Schema(events={"e": {"who": phonehome.field(policy="hash")}})
with phonehome.instrument("democli", vendor=sys.argv[1], state_dir=sys.argv[2], mode="ci",
                          heartbeat="1h", schema=schema) as t:
    t.event("e", {"who": "x"})
    t.enable()
"""


def test_the_spool_doc_names_every_file_a_run_writes(tmp_path: Path) -> None:
    (tree,) = [b for b in blocks() if b.doc == "docs/spool.md" and b.text.startswith("<state>/")]
    documented = set(re.findall(r"(?m)^  ([\w.-]+/?)", tree.text))
    with OTLPReceiver() as vendor:
        for _ in range(2):  # the notice, then the run that sends (and keeps a ledger)
            subprocess.run(
                [PYTHON, "-c", SPOOL_HOST, vendor.url, str(tmp_path)],
                env=clean_environ(DEMOCLI_TELEMETRY_NOLOGO=""),
                capture_output=True,
                timeout=60,
                check=True,
            )
        assert vendor.wait_until(lambda: bool(vendor.logs))
    written = {p.name + ("/" if p.is_dir() else "") for p in tmp_path.iterdir()}
    assert written - documented == set()
    assert {"salt", "notice.json", "usage.json", "lifecycle.json", "ledger.jsonl"} <= written


# -- the markdown itself --------------------------------------------------------------------------
def test_every_exemption_says_why_and_they_stay_rare() -> None:
    exempt = [b for b in blocks() if b.exemption]
    assert all(len(b.exemption.split()) >= 5 for b in exempt), exempt
    assert len(exempt) <= 3, [f"{b.doc}:{b.line}" for b in exempt]


def test_every_block_of_code_has_a_language_that_runs() -> None:
    for block in blocks():
        assert block.language in (*RUN, ""), f"{block.doc}:{block.line}: {block.language}"


def test_commands_are_never_in_an_unlabelled_fence() -> None:
    """A fence without a language is not run: it may hold a diagram, never a command."""
    for block in blocks():
        if block.language == "":
            for line in block.text.splitlines():
                command = line.lstrip("$ ").split(" ", 1)[0]
                assert command not in ("phonehome", "make", "pip", *COMMANDS), (
                    f"{block.doc}:{block.line}: {line}"
                )


def test_every_block_entry_matches_a_block() -> None:
    for doc, phrase in BLOCKS:
        assert any(b.doc == doc and phrase in b.text for b in RUNNABLE), (doc, phrase)


# -- README on the package index ------------------------------------------------------------------
def _project_url() -> str:
    data = toml((ROOT / "pyproject.toml").read_text())
    return str(data["project"]["urls"]["Source"])


def test_readme_links_work_on_the_package_index() -> None:
    """The index shows README.md without the repository: every link is absolute, and those
    into the repository name a file that exists."""
    base = _project_url() + "/blob/main/"
    links = re.findall(r"\]\(([^)]+)\)", (ROOT / "README.md").read_text())
    assert links
    for link in links:
        assert link.startswith("https://"), link
        if link.startswith(base):
            assert (ROOT / link[len(base) :].split("#", 1)[0]).is_file(), link


def test_readme_figures_come_from_the_benchmarks_page() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## What it costs your CLI", 1)[1].split("\n\n")[2]
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    figures = re.findall(r"\d[\d,]*(?:\.\d+)?", table)
    assert len(figures) >= 10
    for figure in figures:
        assert figure in benchmarks, f"README's {figure} is not in docs/benchmarks.md"


def test_readme_states_the_footprint_of_every_extra() -> None:
    extras = set(toml((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    readme = (ROOT / "README.md").read_text()
    stated = set(re.findall(r"\| `phonehome\[(\w+)\]` \|", readme))
    assert stated == extras - {"dev"}


def test_the_harness_stops_what_a_block_starts_in_the_background(tmp_path: Path) -> None:
    process = start(["bash", "-c", "sleep 600 & echo $! > pid; wait"], tmp_path, dict(os.environ))
    assert poll(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text(), 10)
    background = int((tmp_path / "pid").read_text())
    stop(process)
    assert poll(lambda: not Path(f"/proc/{background}").exists(), 10)
