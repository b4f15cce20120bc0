"""Real CLIs from PyPI, instrumented by their entry object, against the same CLIs plain.

Each session runs every command twice, plain and instrumented (``tests/clis/entry.py``),
in two working directories laid out alike: stdout, stderr and the exit code must be
byte-identical, and every instrumented run must put one command on the wire with the result
the rule gives and the plain run's exit code. The sessions also run on the oldest click and
typer that ``pyproject.toml`` allows, installed once into ``build/matrix`` from PyPI.

The CLIs: python-dotenv (click: a group with its own exits), typer's own ``typer`` command
(typer: a callback group of a custom class that loads another typer app), yamllint and
codespell (argparse: a ``main`` that builds and parses its own parser, with exit codes of
their own).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, clean_environ, poll

ENTRY = ROOT / "tests" / "clis" / "entry.py"
MATRIX = ROOT / "build" / "matrix"
OLDEST = ("click==8.1.0", "typer==0.12.0")
"""The oldest click and typer ``pyproject.toml`` allows (the venv has the newest)."""

FILES = {
    ".env": "A=1\nB=two\n",
    "bad.yaml": "key: value\nlist:  [1,2\n",
    "good.yaml": "---\nkey: value\n",
    "typo.txt": "teh word\n",
    "hello.py": (
        "import typer\n\napp = typer.Typer()\n\n\n@app.command()\n"
        "def hello(name: str, loud: bool = False):\n"
        "    print(f'hello {name}' + ('!' if loud else ''))\n\n\n@app.command()\n"
        "def fail():\n    raise typer.Exit(4)\n"
    ),
}

NO_ARGS_IS_HELP = "help"
"""click 8.1 shows the help and exits 0 (success), click 8.2 exits 2 (a usage error)."""

# (argv, expected result, expected command name: the program itself is recorded under the
# product's name); the exit code is the plain run's
SESSIONS: dict[str, tuple[str, str, list[tuple[list[str], str, str]]]] = {
    "dotenv": (
        "click",
        "dotenv.cli:cli",
        [
            (["list"], "success", "list"),
            (["get", "A"], "success", "get"),
            (["get", "MISSING"], "failure", "get"),  # its own sys.exit(1)
            (["set", "C", "3"], "success", "set"),
            (["--file", "other.env", "list"], "failure", "list"),  # no such file
            (["unset", "B"], "success", "unset"),
            (["--help"], "success", "realcli"),
            (["list", "--format", "nope"], "usage_error", "list"),
            (["nosuch"], "usage_error", "realcli"),
        ],
    ),
    "typer": (
        "typer",
        "typer.cli:app",
        [
            (["hello.py", "run", "hello", "world", "--loud"], "success", "run hello"),
            (["hello.py", "run", "fail"], "failure", "run fail"),  # typer.Exit(4) in the app
            (["hello.py", "run", "--help"], "success", "run"),
            (["hello.py", "utils", "docs", "--name", "hello"], "success", "utils docs"),
            (["--version"], "success", "realcli"),
            ([], NO_ARGS_IS_HELP, "realcli"),
            (["hello.py", "nosuch"], "usage_error", "realcli"),
        ],
    ),
    "yamllint": (
        "argparse",
        "yamllint.cli:run",
        [
            (["good.yaml"], "success", "realcli"),
            (["bad.yaml"], "failure", "realcli"),
            (["-f", "parsable", "bad.yaml"], "failure", "realcli"),
            (["--version"], "success", "realcli"),
            (["--help"], "success", "realcli"),
            (["--no-such-option"], "usage_error", "realcli"),
            ([], "usage_error", "realcli"),  # its own parser.error(): no files
        ],
    ),
    "codespell": (
        "argparse",
        "codespell_lib:_script_main",
        [
            (["typo.txt"], "failure", "realcli"),  # exit 65: misspellings found
            (["good.yaml"], "success", "realcli"),
            (["--version"], "success", "realcli"),
            (["--count", "typo.txt"], "failure", "realcli"),
            (["--no-such-option"], "usage_error", "realcli"),
        ],
    ),
}


def workdir(path: Path) -> Path:
    path.mkdir(parents=True)
    for name, text in FILES.items():
        (path / name).write_text(text)
    return path


def run(
    name: str, argv: list[str], cwd: Path, path: list[str], **environ: str
) -> subprocess.CompletedProcess[str]:
    kind, entry, _ = SESSIONS[name]
    pythonpath = ":".join([*path, str(ROOT / "src")])
    return subprocess.run(
        [sys.executable, str(ENTRY), kind, entry, name, *argv],
        env=clean_environ(
            PYTHONPATH=pythonpath, COLUMNS="100", TERM="dumb", NO_COLOR="1", **environ
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def oldest() -> list[str]:
    """click and typer at the oldest versions allowed, installed once into build/."""
    target = MATRIX / "-".join(v.replace("==", "") for v in OLDEST)
    if not (target / ".done").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *OLDEST],
            check=True,
            capture_output=True,
            timeout=300,
        )
        (target / ".done").write_text("\n".join(OLDEST))
    return [str(target)]


@pytest.mark.parametrize("versions", ["newest", "oldest"])
@pytest.mark.parametrize("name", SESSIONS)
def test_a_real_cli_is_unchanged_and_every_command_is_on_the_wire(
    name: str, versions: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path: list[str] = request.getfixturevalue("oldest") if versions == "oldest" else []
    if versions == "oldest" and SESSIONS[name][0] == "argparse":
        pytest.skip("argparse is the standard library's: one version")
    plain_dir, instrumented_dir = workdir(tmp_path / "plain"), workdir(tmp_path / "instr")
    product = "realcli"
    with OTLPReceiver() as receiver:
        telemetry = {
            "PHONEHOME_ENTRY": product,
            "REALCLI_VENDOR": receiver.url,
            "REALCLI_TELEMETRY_DIR": str(tmp_path / "state"),
            "REALCLI_TELEMETRY_MODE": "ci",
            "REALCLI_TELEMETRY_NOLOGO": "1",
        }
        for argv, expected, command in SESSIONS[name][2]:
            sent = len(receiver.spans)
            plain = run(name, argv, plain_dir, path)
            instrumented = run(name, argv, instrumented_dir, path, **telemetry)
            shown = f"{name} {' '.join(argv)}"
            assert instrumented.stdout == plain.stdout, shown
            assert instrumented.stderr == plain.stderr, shown
            assert instrumented.returncode == plain.returncode, shown
            assert poll(lambda n=sent: len(receiver.spans) > n, 10), f"{shown}: nothing sent"
            span = receiver.spans[-1]
            result = expected
            if expected == NO_ARGS_IS_HELP:
                result = "success" if plain.returncode == 0 else "usage_error"
            assert span.name == command, shown
            assert span.attributes["command.result"] == result, shown
            assert span.attributes["process.exit.code"] == plain.returncode, shown
            assert (span.status == "error") == (plain.returncode != 0), shown
        crashes = [r for r in receiver.logs if r.event_name == "exception.unhandled"]
        assert crashes == []  # handled exits are never crashes
