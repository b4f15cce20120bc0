"""Awkward CLI shapes, each run plain and instrumented: the same output, the rule on the wire.

Every program is small and written the way real CLIs are (chained and lazy groups, a group
that runs without a subcommand, ``standalone_mode=False``, exits from callbacks, prompts,
``ctx.invoke``, typer sub-apps, an argparse ``main`` that catches its parser's exit or has
two parsers). Each invocation runs twice, without and with the integration: stdout, stderr
and the exit code must be byte-identical, and the commands that reach the collector must be
the ones listed, with the result and exit code that ``docs/integrations.md`` gives.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from phonehome.testing import OTLPReceiver
from tests.conftest import clean_environ, poll

INSTRUMENT = {
    "click": "from phonehome.integrations import instrument_click\n"
    "instrument_click(cli, 'shape', vendor=os.environ['VENDOR'], mode='ci')\n",
    "typer": "from phonehome.integrations import instrument_typer\n"
    "instrument_typer(app, 'shape', vendor=os.environ['VENDOR'], mode='ci')\n",
    "argparse": "from phonehome.integrations import instrument_argparse\n"
    "main = instrument_argparse(None, 'shape', vendor=os.environ['VENDOR'], mode='ci')(main)\n",
}
INSTRUMENT["click main"] = INSTRUMENT["click"]
RUN = {
    "click": "cli()\n",
    "click main": "main()\n",  # the program's own main around click's
    "typer": "app()\n",
    "argparse": "sys.exit(main())\n",
}

OWN_CLICK = importlib.util.find_spec("typer._click") is not None
"""typer 0.29 and later run their own copy of click, which does not handle click's exceptions
(nor click typer's)."""

Sent = list[tuple[str, str, "int | None"]]
"""The commands a run puts on the wire: name, ``command.result``, ``process.exit.code``."""

# program: (framework, source, [(argv, commands sent, crash report's exception type)])
SHAPES: dict[str, tuple[str, str, list[tuple[list[str], Sent, str | None]]]] = {
    "click exits": (
        "click",
        """
import click
@click.group()
def cli(): pass
@cli.command()
def message(): sys.exit("fatal: a message")
@cli.command()
def none(): sys.exit(None)
@cli.command()
def interrupt(): raise KeyboardInterrupt
@cli.command()
def eof(): raise EOFError
@cli.command()
def abort(): raise click.Abort()
@cli.command()
@click.option("--name", prompt=True)
def ask(name): click.echo(name)
@cli.command()
@click.confirmation_option(prompt="sure?")
def drop(): click.echo("dropped")
@cli.command()
@click.pass_context
def leave(ctx): ctx.exit(4)
@cli.command()
@click.pass_context
def forward(ctx): ctx.invoke(code, n=3)
@cli.command()
@click.option("--n", type=int)
def code(n): click.echo(f"n={n}"); sys.exit(n)
@cli.command()
def missing(): open("/nonexistent/phonehome-shape")
@cli.command()
@click.argument("n", type=int)
def wraps(n): sys.exit(n)
""",
        [
            (["message"], [("message", "failure", 1)], None),
            (["none"], [("none", "success", 0)], None),
            (["interrupt"], [("interrupt", "cancelled", 1)], None),  # click: Aborted!, exit 1
            (["eof"], [("eof", "cancelled", 1)], None),  # click treats EOF as Ctrl-C
            (["abort"], [("abort", "cancelled", 1)], None),
            (["ask"], [("ask", "cancelled", 1)], None),  # stdin at its end: the prompt aborts
            (["drop"], [("drop", "cancelled", 1)], None),
            (["drop", "--yes"], [("drop", "success", 0)], None),
            (["leave"], [("leave", "failure", 4)], None),
            (["forward"], [("forward", "failure", 3)], None),
            (["missing"], [("missing", "crash", None)], "FileNotFoundError"),
            (["wraps", "256"], [("wraps", "success", 0)], None),  # what the process exits with
            (["wraps", "--", "-1"], [("wraps", "failure", 255)], None),
        ],
    ),
    "click chain": (
        "click",
        """
import click
@click.group(chain=True)
def cli(): pass
@cli.command()
def first(): click.echo("first")
@cli.command()
@click.option("--n", type=int, default=1)
def second(n):
    click.echo(f"second {n}")
    if n == 3: sys.exit(3)
""",
        [
            (["first", "second"], [("first", "success", 0), ("second", "success", 0)], None),
            (["second", "--n", "3", "first"], [("second", "failure", 3)], None),
            (["first", "second", "--n", "x"], [("second", "usage_error", 2)], None),
            (["first", "nosuch"], [("shape", "usage_error", 2)], None),
            ([], [("shape", "usage_error", 2)], None),
        ],
    ),
    "click groups": (
        "click",
        """
import click
@click.group()
@click.option("--fail", type=int)
def cli(fail):
    if fail == 1: sys.exit(5)
    if fail == 2: raise RuntimeError("the group's own bug")
    if fail == 3: raise click.UsageError("options that do not go together")
@cli.group(invoke_without_command=True)
@click.pass_context
def db(ctx):
    if ctx.invoked_subcommand is None: click.echo("db itself")
@db.command(name="create-table")
@click.argument("name")
def create(name): click.echo(f"created {name}")
""",
        [
            (["db"], [("db", "success", 0)], None),
            (["db", "create-table", "t"], [("db create-table", "success", 0)], None),
            (["db", "create-table"], [("db create-table", "usage_error", 2)], None),
            (["db", "nosuch"], [("db", "usage_error", 2)], None),
            (["--help"], [("shape", "success", 0)], None),
            (["db", "--help"], [("db", "success", 0)], None),
            (["--fail", "1", "db"], [("shape", "failure", 5)], None),
            (["--fail", "2", "db"], [("shape", "crash", None)], "RuntimeError"),
            (["--fail", "3", "db"], [("shape", "usage_error", 2)], None),
        ],
    ),
    "click lazy group, not standalone": (
        "click",
        """
import click
class Lazy(click.Group):
    def list_commands(self, ctx): return ["fetch", "gone"]
    def get_command(self, ctx, name):
        if name != "fetch": return None
        @click.command(name="fetch")
        @click.option("--fail", is_flag=True)
        def fetch(fail):
            if fail: raise click.ClickException("could not fetch")
            click.echo("fetched")
            return 5
        return fetch
@click.group(cls=Lazy)
def cli(): pass
""",
        [
            (["fetch"], [("fetch", "success", 0)], None),
            (["fetch", "--fail"], [("fetch", "failure", 1)], None),
            (["gone"], [("shape", "usage_error", 2)], None),
        ],
    ),
    "click default group": (  # click-default-group, as sqlite-utils, llm and datasette use
        "click",
        """
import click
from click_default_group import DefaultGroup
@click.group(cls=DefaultGroup, default="query", default_if_no_args=True)
def cli(): pass
@cli.command()
@click.argument("sql", nargs=-1)
def query(sql): click.echo(f"query {' '.join(sql)}")
@cli.command()
def tables(): click.echo("tables")
""",
        [
            (["select", "1"], [("query", "success", 0)], None),
            (["tables"], [("tables", "success", 0)], None),
            ([], [("query", "success", 0)], None),
            (["--help"], [("shape", "success", 0)], None),
        ],
    ),
    "click inside the program's own handling": (  # as hf's main: try: app() except ...
        "click main",
        """
import click
@click.group()
def cli(): pass
@cli.command()
def ok(): click.echo("ok")
@cli.command()
def oops(): raise RuntimeError("the command's bug")
@cli.command()
def lookup(): {}["key"]
def main():
    runs = {"twice": [["oops"], ["ok"]], "interrupted": [["oops"]]}.get(sys.argv[1])
    for argv in runs or [sys.argv[1:]]:
        try:
            cli(argv, standalone_mode=False)
        except KeyError as error:
            raise RuntimeError("could not look it up") from error
        except Exception as error:
            print(f"Error: {error}", file=sys.stderr)
    if sys.argv[1] == "interrupted":
        raise KeyboardInterrupt  # Ctrl-C, after a run the program handled
""",
        [
            (["ok"], [("ok", "success", 0)], None),
            (["oops"], [("oops", "failure", None)], None),  # the program handled it
            (["twice"], [("oops", "failure", None), ("ok", "success", 0)], None),
            (["lookup"], [("lookup", "crash", None)], "RuntimeError"),  # raised from its error
            (["interrupted"], [("oops", "failure", None)], None),  # and dies of the signal
        ],
    ),
    "click in a worker thread": (
        "click main",
        """
import threading, click
@click.group()
def cli(): pass
@cli.command()
def ok(): click.echo("ok")
@cli.command()
def boom(): raise RuntimeError("the command's bug, in a thread")
def main():
    worker = threading.Thread(target=cli, args=(sys.argv[1:],), name="worker")
    worker.start()
    worker.join()
""",
        [
            (["ok"], [("ok", "success", 0)], None),
            (["boom"], [("boom", "crash", None)], "RuntimeError"),  # threading's report of it
        ],
    ),
    "typer": (
        "typer",
        """
import typer
app = typer.Typer(pretty_exceptions_show_locals=False)
users = typer.Typer()
app.add_typer(users, name="users")
@app.callback()
def main(verbose: bool = False): pass
@app.command()
def hello(name: str): print(f"hello {name}")
@app.command()
def boom(): raise ValueError("boom")
@app.command()
def abort(): raise typer.Abort()
@app.command()
def code(): raise typer.Exit(code=5)
@users.command()
def add(n: int = 1): print(n)
""",
        [
            (["hello", "you"], [("hello", "success", 0)], None),
            (["hello"], [("hello", "usage_error", 2)], None),
            (["boom"], [("boom", "crash", None)], "ValueError"),
            (["abort"], [("abort", "cancelled", 1)], None),
            (["code"], [("code", "failure", 5)], None),
            (["users", "add", "--n", "2"], [("users add", "success", 0)], None),
            (["users", "add", "--n", "x"], [("users add", "usage_error", 2)], None),
            (["users"], [("users", "usage_error", 2)], None),
            (["--help"], [("shape", "success", 0)], None),
        ],
    ),
    "argparse main with exits of its own": (
        "argparse",
        """
import argparse
def main():
    parser = argparse.ArgumentParser(prog="shape")
    parser.add_argument("n", type=int)
    if sys.argv[1:] == ["early"]: sys.exit(4)
    if sys.argv[1:] == ["crash"]: raise ValueError("before parsing")
    if sys.argv[1:] == ["return"]: return 6
    if sys.argv[1:] == ["interrupted"]:  # its own Ctrl-C handling, as httpie's
        try: raise KeyboardInterrupt
        except KeyboardInterrupt: return 130
    try:
        args = parser.parse_args()
    except SystemExit as exit:
        print("parsing exited with", exit.code, file=sys.stderr)
        return 5
    print(args.n)
    return 0
""",
        [
            (["1"], [("shape", "success", 0)], None),
            (["x"], [("shape", "usage_error", 5)], None),  # caught, and exit 5 instead
            (["--help"], [("shape", "failure", 5)], None),
            (["early"], [("shape", "failure", 4)], None),  # before any parsing
            (["return"], [("shape", "failure", 6)], None),
            (["interrupted"], [("shape", "cancelled", 130)], None),
            (["crash"], [("shape", "crash", None)], "ValueError"),
        ],
    ),
    "argparse main with two parsers": (
        "argparse",
        """
import argparse
def main():
    parser = argparse.ArgumentParser(prog="shape", exit_on_error=False)
    parser.add_argument("--n", type=int, default=0)
    try:
        args, rest = parser.parse_known_args()
    except argparse.ArgumentError as error:
        print("error:", error, file=sys.stderr)
        return 9
    second = argparse.ArgumentParser(prog="shape run")
    second.add_argument("m", type=int)
    more = second.parse_args(rest)
    print(args.n, more.m)
""",
        [
            (["--n", "1", "2"], [("shape", "success", 0)], None),
            (["--n", "x"], [("shape", "failure", 9)], None),  # the program's own handling
            (["--n", "1", "x"], [("shape", "usage_error", 2)], None),  # the second's error()
            (["--n", "1"], [("shape", "usage_error", 2)], None),
        ],
    ),
    "argparse main whose own excepthook reports and exits": (
        "argparse",
        """
import argparse
class ToolError(Exception):  # as commitizen's: each error its exit code
    exit_code = 14
def hook(kind, value, tb):
    if isinstance(value, ToolError):
        print(f"error: {value}", file=sys.stderr)
        sys.exit(value.exit_code)
    sys.__excepthook__(kind, value, tb)
def main():
    sys.excepthook = hook
    parser = argparse.ArgumentParser(prog="shape")
    parser.add_argument("code")
    args = parser.parse_args()
    if args.code == "bug": raise ValueError("the program's bug")
    ToolError.exit_code = int(args.code)
    raise ToolError("bad commit message")
""",
        [
            (["14"], [("shape", "failure", 14)], None),
            (["0"], [("shape", "success", 0)], None),
            (["bug"], [("shape", "crash", None)], "ValueError"),
            ([], [("shape", "usage_error", 2)], None),
        ],
    ),
    "click with an excepthook of the program's that reports and exits": (
        "click",
        """
import click
class ToolError(Exception):
    exit_code = 3
def hook(kind, value, tb):
    if isinstance(value, ToolError):
        print(f"error: {value}", file=sys.stderr)
        sys.exit(value.exit_code)
    sys.__excepthook__(kind, value, tb)
sys.excepthook = hook
@click.group()
def cli(): pass
@cli.command()
def bump(): raise ToolError("no commits to bump")
@cli.command()
def done():
    ToolError.exit_code = 0
    raise ToolError("nothing to do")
""",
        [
            (["bump"], [("bump", "failure", 3)], None),
            (["done"], [("done", "success", 0)], None),
        ],
    ),
    "typer raising the exceptions of click itself": (
        "typer",
        """
import click, typer
app = typer.Typer()
@app.command()
def check(): raise click.ClickException("no .cruft.json")  # as cruft's NoCruftFound
@app.command()
def usage(): raise click.UsageError("bad")
""",
        [
            (["check"], [("check", "crash", None)], "click.exceptions.ClickException")
            if OWN_CLICK
            else (["check"], [("check", "failure", 1)], None),
            (["usage"], [("usage", "crash", None)], "click.exceptions.UsageError")
            if OWN_CLICK
            else (["usage"], [("usage", "usage_error", 2)], None),
        ],
    ),
    "click raising typer's exit": (
        "click",
        """
import click, typer
@click.group()
def cli(): pass
@cli.command()
def done(): raise typer.Exit(0)
@cli.command()
def other(): pass
""",
        [
            (["done"], [("done", "crash", None)], "typer.exceptions.Exit")
            if OWN_CLICK
            else (["done"], [("done", "success", 0)], None),
        ],
    ),
    "argparse main that leaves through os._exit": (
        "argparse",
        """
import argparse
def main():  # as mypy's hard_exit: no interpreter shutdown, no atexit, no finally
    parser = argparse.ArgumentParser(prog="shape")
    parser.add_argument("code", type=int)
    args = parser.parse_args()
    print("checked", flush=True)
    os._exit(args.code)
""",
        [
            (["0"], [("shape", "success", 0)], None),
            (["3"], [("shape", "failure", 3)], None),
            (["x"], [("shape", "usage_error", 2)], None),
        ],
    ),
    "click command that leaves through os._exit": (
        "click",
        """
import click
@click.group()
def cli(): pass
@cli.command()
@click.argument("code", type=int)
def check(code):
    click.echo("checked")
    sys.stdout.flush()
    os._exit(code)
@cli.command()
def other(): pass
""",
        [
            (["check", "0"], [("check", "success", 0)], None),
            (["check", "3"], [("check", "failure", 3)], None),
        ],
    ),
    "argparse main that re-exits a second parser's exit": (
        "argparse",
        """
import argparse
def main():  # as virtualenv's: a first parser for one option, then the whole one
    first = argparse.ArgumentParser(prog="shape", add_help=False)
    first.add_argument("-p")
    first.parse_known_args()
    whole = argparse.ArgumentParser(prog="shape")
    whole.add_argument("-p")
    whole.add_argument("dest")
    try:
        args = whole.parse_args()
    except SystemExit as exit:
        sys.exit(exit.code)
    print(args.dest)
""",
        [
            (["here"], [("shape", "success", 0)], None),
            ([], [("shape", "usage_error", 2)], None),
            (["--help"], [("shape", "success", 0)], None),
        ],
    ),
}


def make(framework: str, source: str, instrumented: bool) -> str:
    hook = INSTRUMENT[framework]
    if not instrumented:  # as many lines: a traceback names the same line numbers
        hook = "\n" * hook.count("\n")
    return f"import os, sys\n{source}\n{hook}{RUN[framework]}"


def started(
    framework: str,
    source: str,
    instrumented: bool,
    command: str,
    environ: dict[str, str],
    stdin: int = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    """The program running ``command``, its output in pipes, to be read as it runs."""
    return subprocess.Popen(
        [sys.executable, "-c", make(framework, source, instrumented), command],
        env=environ,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(code: str, argv: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=environ,
        input="",  # a prompt meets the end of its input
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_an_awkward_cli_is_unchanged_and_its_commands_follow_the_rule(
    shape: str, otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    framework, source, invocations = SHAPES[shape]
    environ = clean_environ(
        VENDOR=otlp_receiver.url,
        SHAPE_TELEMETRY_DIR=str(tmp_path),
        SHAPE_TELEMETRY_NOLOGO="1",
        COLUMNS="80",
        TERM="dumb",
        NO_COLOR="1",
    )
    plain_code, instrumented_code = (make(framework, source, on) for on in (False, True))
    with ThreadPoolExecutor(2) as pool:  # the plain run beside the instrumented one
        for argv, sent, crash in invocations:
            shown = f"{shape}: {' '.join(argv)}"
            spans, logs = len(otlp_receiver.spans), len(otlp_receiver.logs)
            plain = pool.submit(run, plain_code, argv, environ)
            instrumented = run(instrumented_code, argv, environ)
            expected = plain.result()
            assert (instrumented.stdout, instrumented.stderr, instrumented.returncode) == (
                expected.stdout,
                expected.stderr,
                expected.returncode,
            ), shown
            # mode=ci delivers before the process exits (a detached sender, when it dies of
            # Ctrl-C: delivering then would cost it that exit)
            count = spans + len(sent)
            poll(lambda n=count: len(otlp_receiver.spans) >= n, 10)
            arrived = [
                (s.name, s.attributes["command.result"], s.attributes.get("process.exit.code"))
                for s in otlp_receiver.spans[spans:]
            ]
            assert arrived == sent, shown
            crashes = [
                r.attributes["exception.type"]
                for r in otlp_receiver.logs[logs:]
                if r.event_name == "exception.unhandled"
            ]
            assert crashes == ([crash] if crash else []), shown


INTERRUPTED = {
    "click": """
import click
@click.group()
def cli(): pass
@cli.command()
def wait():
    print("waiting", flush=True)
    sys.stdin.read()
""",
    "click group": """
import click
@click.group()
def cli():
    print("waiting", flush=True)
    sys.stdin.read()
@cli.command()
def wait(): pass
""",
    "typer": """
import typer
app = typer.Typer()
@app.command()
def wait():
    print("waiting", flush=True)
    sys.stdin.read()
@app.command()
def other(): pass
""",
    "argparse": """
import argparse
def main():
    parser = argparse.ArgumentParser(prog="shape")
    parser.add_argument("what")
    parser.parse_args()
    print("waiting", flush=True)
    sys.stdin.read()
""",
}


@pytest.mark.parametrize(
    ("program", "name", "sent"),
    [
        ("click", "wait", 1),  # click: Aborted!
        ("click group", "shape", 1),  # in the group's callback: the command had not started
        ("typer", "wait", 130),  # typer exits 130 itself
        ("argparse", "shape", None),  # the process dies of the signal: no code
    ],
)
def test_ctrl_c_in_a_running_command_is_cancelled_with_the_exit_code_the_program_gives(
    program: str, name: str, sent: int | None, otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    framework = program.split(maxsplit=1)[0]
    environ = clean_environ(
        VENDOR=otlp_receiver.url, SHAPE_TELEMETRY_DIR=str(tmp_path), SHAPE_TELEMETRY_NOLOGO="1"
    )
    ended = []
    for instrumented in (False, True):
        source = INTERRUPTED[program]
        with started(
            framework, source, instrumented, "wait", environ, stdin=subprocess.PIPE
        ) as process:
            assert process.stdout is not None and process.stdout.readline() == "waiting\n"
            process.send_signal(signal.SIGINT)  # Ctrl-C, while the command waits
            out, err = process.communicate(timeout=60)
            ended.append((process.returncode, out, err.splitlines()[-1:]))
    assert ended[1] == ended[0]  # the same exit (click: Aborted! and 1), the same output
    assert poll(lambda: len(otlp_receiver.spans) == 1, 10)
    span = otlp_receiver.spans[0]
    assert (span.name, span.attributes["command.result"]) == (name, "cancelled")
    assert span.attributes.get("process.exit.code") == sent  # argparse's dies of the signal


CLOSED_PIPE = {
    "click": """
import click
@click.group()
def cli(): pass
@cli.command()
def rows():
    for i in range(200_000): click.echo(f"row {i}")
""",
    "typer": """
import typer
app = typer.Typer()
@app.command()
def rows():
    for i in range(200_000): typer.echo(f"row {i}")
@app.command()
def other(): pass
""",
}


@pytest.mark.parametrize("framework", CLOSED_PIPE)
def test_output_into_a_closed_pipe_is_a_failure_with_the_exit_code_click_gives(
    framework: str, otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """``cli rows | head -1``: the reader goes away, click and typer exit 1 quietly."""
    environ = clean_environ(
        VENDOR=otlp_receiver.url, SHAPE_TELEMETRY_DIR=str(tmp_path), SHAPE_TELEMETRY_NOLOGO="1"
    )
    ended = []
    for instrumented in (False, True):
        source = CLOSED_PIPE[framework]
        with started(framework, source, instrumented, "rows", environ) as process:
            assert process.stdout is not None and process.stdout.readline() == "row 0\n"
            process.stdout.close()  # head has what it wanted
            err = process.stderr.read() if process.stderr else ""
            ended.append((process.wait(timeout=60), err))
    assert ended[1] == ended[0] == (1, "")
    assert poll(lambda: len(otlp_receiver.spans) == 1, 10)
    span = otlp_receiver.spans[0]
    assert span.attributes["command.result"] == "failure"
    assert span.attributes["process.exit.code"] == 1
    assert span.attributes["error.type"] == "BrokenPipeError"


def test_a_default_group_answers_telemetry_status_instead_of_running_its_default(
    tmp_path: Path,
) -> None:
    """A click-default-group runs its default command for any name it does not know: the
    plain CLI takes ``telemetry status`` as the default command's arguments."""
    framework, source, _ = SHAPES["click default group"]
    environ = clean_environ(VENDOR="http://127.0.0.1:9", SHAPE_TELEMETRY_DIR=str(tmp_path))
    plain = run(make(framework, source, False), ["telemetry", "status"], environ)
    assert plain.stdout == "query telemetry status\n"
    status = run(make(framework, source, True), ["telemetry", "status"], environ)
    assert (status.returncode, status.stderr) == (0, "")
    assert status.stdout.startswith("telemetry      on, decided by")
    assert list(tmp_path.iterdir()) == []  # asking is not a run: nothing recorded or written


ARGUMENT_GROUP = {
    "click": """
import click
@click.group()
@click.argument("path")
def cli(path): click.echo(f"loading {path}")
@cli.command()
def run(): click.echo("ran")
""",
    "typer": """
import typer
app = typer.Typer()
@app.callback()
def main(path: str): print(f"loading {path}")
@app.command()
def run(): print("ran")
@app.command()
def other(): pass
""",
}


@pytest.mark.parametrize("framework", ARGUMENT_GROUP)
def test_a_group_with_an_argument_of_its_own_answers_telemetry_status(
    framework: str, tmp_path: Path
) -> None:
    """As typer's own ``typer PATH COMMAND``: click takes ``telemetry`` for the group's
    argument, so the plain CLI cannot get there; the instrumented one answers, without
    running the group's callback, and records nothing."""
    source = ARGUMENT_GROUP[framework]
    environ = clean_environ(VENDOR="http://127.0.0.1:9", SHAPE_TELEMETRY_DIR=str(tmp_path))
    plain = run(make(framework, source, False), ["telemetry", "status"], environ)
    assert plain.returncode == 2 and "status" in plain.stderr
    status = run(make(framework, source, True), ["telemetry", "status"], environ)
    assert (status.returncode, status.stderr) == (0, ""), status.stderr
    assert status.stdout.startswith("telemetry      on, decided by")
    assert list(tmp_path.iterdir()) == []
    ran = run(make(framework, source, True), ["x", "run"], environ)  # the group as it was
    assert (ran.returncode, ran.stdout) == (0, "loading x\nran\n"), ran.stderr


SIGNING_IN_GROUP = """
import click
class SigningIn(click.Group):  # as safety's: its invoke signs in over the network first
    def invoke(self, ctx):
        raise ConnectionError("no network")
@click.group(cls=SigningIn)
def cli(): print("the group's callback")
@cli.command()
def scan(): click.echo("scanned")
"""


def test_telemetry_status_runs_none_of_the_programs_own_code(tmp_path: Path) -> None:
    """Asking is answered before click parses the program's group: its ``invoke`` (or
    callback) never runs, so a program that cannot start offline can still be opted out."""
    environ = clean_environ(VENDOR="http://127.0.0.1:9", SHAPE_TELEMETRY_DIR=str(tmp_path))
    plain = run(make("click", SIGNING_IN_GROUP, False), ["scan"], environ)
    assert plain.returncode == 1 and "ConnectionError: no network" in plain.stderr
    for action, said in (("status", "telemetry      on, decided by"), ("disable", "is off")):
        asked = run(make("click", SIGNING_IN_GROUP, True), ["telemetry", action], environ)
        assert (asked.returncode, asked.stderr) == (0, ""), asked.stderr
        assert said in asked.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["consent.json"]  # the choice only
