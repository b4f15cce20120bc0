"""click, typer and argparse integrations, run as users run those CLIs."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from phonehome.integrations import run_argparse
from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, clean_environ


def app(script: str, state: Path, *argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    prefix = script.upper().replace(".PY", "")
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *argv],
        env=clean_environ(
            **{
                f"{prefix}_TELEMETRY_DIR": str(state),
                f"{prefix}_TELEMETRY_NOLOGO": "1",
                f"{prefix}_TELEMETRY_MODE": "ci",
                **environ,
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_click_commands_are_recorded_by_path_with_the_given_parameters(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    ok = app(
        "clickapp.py",
        tmp_path,
        "remote",
        "add",
        "origin",
        "https://u:p@x.example/r",
        "--force",
        CLICKAPP_VENDOR=otlp_receiver.url,
    )
    failed = app("clickapp.py", tmp_path, "fail", CLICKAPP_VENDOR=otlp_receiver.url)
    assert (ok.returncode, ok.stdout) == (0, "added origin\n")
    assert failed.returncode == 1 and "Error: it went wrong" in failed.stderr
    spans = {s.name: s for s in otlp_receiver.spans}
    assert spans["remote add"].attributes["command.params"] == ["force", "name", "url"]
    assert spans["remote add"].attributes["command.param.force"] is True  # declared: raw
    assert "command.param.url" not in spans["remote add"].attributes  # presence only
    assert spans["fail"].attributes["command.result"] == "failure"
    assert b"x.example" not in b"".join(otlp_receiver.bodies)


def test_click_gets_a_telemetry_group(tmp_path: Path) -> None:
    help_text = app("clickapp.py", tmp_path, "telemetry", "--help").stdout
    for command in ("status", "enable", "disable"):
        assert command in help_text
    off = app("clickapp.py", tmp_path, "telemetry", "disable")
    assert "telemetry for clickapp is off" in off.stdout
    status = app("clickapp.py", tmp_path, "telemetry", "status")
    assert "off, decided by the user's stored choice" in status.stdout


def test_typer_commands_are_recorded(otlp_receiver: OTLPReceiver, tmp_path: Path) -> None:
    result = app(
        "typerapp.py",
        tmp_path,
        "build",
        "--target",
        "sdist",
        "--verbose",
        TYPERAPP_VENDOR=otlp_receiver.url,
    )
    assert result.returncode == 0 and result.stdout == "built a sdist\n"
    (span,) = otlp_receiver.spans
    assert span.name == "build"
    assert span.attributes["command.params"] == ["target", "verbose"]
    assert span.attributes["command.param.target"] == "sdist"
    assert "telemetry" not in app("typerapp.py", tmp_path, "--help").stdout  # hidden
    assert "disable" in app("typerapp.py", tmp_path, "telemetry", "--help").stdout


def parser(calls: list[str]) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tool")
    commands = root.add_subparsers(dest="command", required=True)
    remote = commands.add_parser("remote").add_subparsers(dest="action", required=True)
    add = remote.add_parser("add")
    add.add_argument("name")
    add.add_argument("--force", action="store_true")
    add.set_defaults(func=lambda args: calls.append(args.name))
    fail = commands.add_parser("fail")
    fail.set_defaults(func=lambda args: 3)
    return root


def test_argparse_runs_the_command_inside_a_span(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    calls: list[str] = []
    kwargs = {"vendor": otlp_receiver.url, "state_dir": state_dir, "mode": "ci"}
    assert run_argparse(parser(calls), "tool", ["remote", "add", "origin"], **kwargs) == 0
    assert run_argparse(parser(calls), "tool", ["fail"], **kwargs) == 3
    assert calls == ["origin"]
    spans = {s.name: s for s in otlp_receiver.spans}
    assert spans["remote add"].attributes["command.params"] == ["action", "command", "name"]
    assert spans["fail"].attributes["command.result"] == "failure"


def test_argparse_answers_telemetry_commands_like_version_with_exit_0(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        run_argparse(parser([]), "tool", ["telemetry", "disable"], state_dir=state_dir)
    assert done.value.code == 0
    assert "telemetry for tool is off" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_argparse(parser([]), "tool", ["telemetry", "status"], state_dir=state_dir)
    assert "off, decided by the user's stored choice" in capsys.readouterr().out


LOADED = """
import sys
before = set(sys.modules)
{program}
print("\\n".join(sorted(set(sys.modules) - before)))
"""
OFF_PROGRAMS = {
    "click": (
        "import click\n"
        "@click.group()\ndef cli():\n    pass\n"
        "@cli.command()\ndef hello():\n    pass\n"
        "{instrument}"
        "try:\n    cli(['hello'])\nexcept SystemExit:\n    pass\n",  # how click ends
        "from phonehome.integrations import instrument_click\ninstrument_click(cli, 'tool')\n",
    ),
    "typer": (
        "import typer\n"
        "app = typer.Typer()\n"
        "@app.command()\ndef hello():\n    pass\n"
        "@app.command()\ndef bye():\n    pass\n"
        "{instrument}"
        "try:\n    app(['hello'])\nexcept SystemExit:\n    pass\n",
        "from phonehome.integrations import instrument_typer\ninstrument_typer(app, 'tool')\n",
    ),
    "argparse": (
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_subparsers().add_parser('hello').set_defaults(func=lambda args: 0)\n"
        "{instrument}",
        "from phonehome.integrations import run_argparse\n"
        "run_argparse(parser, 'tool', ['hello'])\n",
    ),
}


@pytest.mark.parametrize("framework", OFF_PROGRAMS)
def test_an_opted_out_cli_loads_only_the_off_path_and_its_integration(
    framework: str, tmp_path: Path
) -> None:
    """Nothing recorded: no parameters looked at, no exit code worked out, no ``telemetry``
    group built, no no-op span, no frames hidden from a ``SystemExit``; and no ``__future__``,
    ``contextvars``, ``json``, ``pathlib`` or ``typing`` the plain CLI does not load."""
    from tests.conftest import run_python
    from tests.test_off import OFF_PATH_MODULES

    program, instrument = OFF_PROGRAMS[framework]
    plain = program.format(
        instrument=""
        if framework != "argparse"
        else "args = parser.parse_args(['hello']); args.func(args)\n"
    )
    environ = clean_environ(DO_NOT_TRACK="1", XDG_STATE_HOME=str(tmp_path))
    loaded = {}
    for name, code in (("plain", plain), ("instrumented", program.format(instrument=instrument))):
        result = run_python(LOADED.format(program=code), environ)
        assert result.returncode == 0, result.stderr
        loaded[name] = set(result.stdout.split())
    integration = {"phonehome.integrations", f"phonehome.integrations._{_module(framework)}"}
    extra = loaded["instrumented"] - loaded["plain"]
    assert extra == (OFF_PATH_MODULES - {"phonehome._core.instruments"}) | integration


def _module(framework: str) -> str:
    return "click" if framework == "typer" else framework


def test_instrument_argparse_goes_around_a_programs_own_dispatch(
    otlp_receiver: OTLPReceiver,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from phonehome.integrations import instrument_argparse

    monkeypatch.setenv("TOOL_TELEMETRY_NOLOGO", "1")
    kwargs = {"vendor": otlp_receiver.url, "state_dir": state_dir, "mode": "ci"}
    root = argparse.ArgumentParser(prog="tool")
    commands = root.add_subparsers(dest="command")
    check = commands.add_parser("check")
    check.add_argument("--strict", action="store_true")
    for sent, argv in enumerate((["check", "--strict"], ["check"]), start=1):
        with instrument_argparse(root, "tool", **kwargs) as command:
            args = root.parse_args(argv)
            if args.command == "check":  # the program's own dispatch
                command.set_exit_code(3 if args.strict else 0)
        assert otlp_receiver.wait_until(lambda n=sent: len(otlp_receiver.spans) == n)
    with pytest.raises(SystemExit), instrument_argparse(root, "tool", **kwargs):
        root.parse_args(["nosuch"])
    assert "invalid choice" in capsys.readouterr().err
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 3)
    outcomes = [
        (s.name, s.attributes["command.result"], s.attributes["process.exit.code"])
        for s in otlp_receiver.spans
    ]
    assert outcomes == [
        ("check", "failure", 3),
        ("check", "success", 0),
        ("tool", "usage_error", 2),
    ]
    assert otlp_receiver.spans[0].attributes["command.params"] == ["command", "strict"]


CLICK_CLI = """
import os, sys, click

@click.group()
def cli():
    pass

@cli.command()
@click.option("--code", type=int, default=0)
def leave(code):
    sys.exit(code)

@cli.command()
def boom():
    raise RuntimeError("boom")

if os.environ.get("INSTRUMENT"):
    from phonehome.integrations import instrument_click
    instrument_click(cli, "clicli", vendor=sys.argv[1], mode="ci")
cli(sys.argv[2:])
"""


@pytest.mark.parametrize("level", ["all", "crash"])
def test_click_handled_exits_are_never_crashes_and_a_crash_is_reported_once(
    otlp_receiver: OTLPReceiver, tmp_path: Path, level: str
) -> None:
    def run(*argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", CLICK_CLI, otlp_receiver.url, *argv],
            env=clean_environ(
                CLICLI_TELEMETRY_DIR=str(tmp_path),
                CLICLI_TELEMETRY_NOLOGO="1",
                CLICLI_TELEMETRY_LEVEL=level,
                **environ,
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )

    for argv in (["leave", "--code", "3"], ["leave"], ["leave", "--bad"], ["boom"]):
        plain, instrumented = run(*argv), run(*argv, INSTRUMENT="1")
        assert (instrumented.returncode, instrumented.stdout, instrumented.stderr) == (
            plain.returncode,
            plain.stdout,
            plain.stderr,  # the crash's traceback too: no frame of phonehome's in it
        )
    assert otlp_receiver.wait_until(
        lambda: [r for r in otlp_receiver.logs if r.event_name == "exception.unhandled"]
    )
    crashes = [r for r in otlp_receiver.logs if r.event_name == "exception.unhandled"]
    assert len(crashes) == 1
    assert crashes[0].attributes["exception.type"] == "RuntimeError"
    assert "phonehome" not in crashes[0].attributes["exception.stacktrace"]
    results = [(s.name, s.attributes["command.result"]) for s in otlp_receiver.spans]
    if level == "crash":
        assert results == []  # exits and usage errors are not crashes: nothing else sent
    else:
        assert results == [
            ("leave", "failure"),
            ("leave", "success"),
            ("leave", "usage_error"),
            ("boom", "crash"),
        ]


TYPER_SUBCLASS = """
import sys, typer

class App(typer.Typer):
    def __call__(self, *args, **kwargs):
        print("the subclass's own __call__", file=sys.stderr)
        return super().__call__(*args, **kwargs)

app = App(pretty_exceptions_enable=False)

@app.command()
def build(target: str = "wheel"):
    print(f"built {target}")

@app.command()
def clean():
    raise typer.Exit(0)

from phonehome.integrations import instrument_typer
assert instrument_typer(app, "subapp", vendor=sys.argv[1], mode="ci") is app
app(sys.argv[2:])
"""


def test_a_typer_subclass_keeps_its_own_call_and_its_commands_are_recorded(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", TYPER_SUBCLASS, otlp_receiver.url, *argv],
            env=clean_environ(SUBAPP_TELEMETRY_DIR=str(tmp_path), SUBAPP_TELEMETRY_NOLOGO="1"),
            capture_output=True,
            text=True,
            timeout=60,
        )

    built = run("build", "--target", "sdist")
    assert (built.returncode, built.stdout) == (0, "built sdist\n")
    assert built.stderr == "the subclass's own __call__\n"
    assert run("clean").returncode == 0
    admin = run("telemetry", "--help")
    assert admin.returncode == 0 and "disable" in admin.stdout
    assert "--run" not in admin.stdout  # the actions take no parameters
    status = run("telemetry", "status")
    assert status.returncode == 0 and "decided by" in status.stdout
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2)
    outcomes = [(s.name, s.attributes["command.result"]) for s in otlp_receiver.spans]
    assert outcomes == [("build", "success"), ("clean", "success")]  # telemetry: not recorded


TYPO = """
import sys, click
@click.group()
def cli(): pass
@cli.command()
def hello(): click.echo("hello")
from phonehome.integrations import instrument_click
instrument_click(cli, "clicli", vendr=sys.argv[1])  # a typo for vendor=
cli(["hello"])
"""


def test_an_argument_instrument_does_not_take_is_one_line_and_the_cli_runs(
    otlp_receiver: OTLPReceiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", TYPO, otlp_receiver.url],
        env=clean_environ(CLICLI_TELEMETRY_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (ran.returncode, ran.stdout) == (0, "hello\n")
    assert ran.stderr.splitlines() == [
        "phonehome: instrument(vendr=...): no such argument (did you mean vendor=?); "
        "telemetry is off"
    ]
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_subparsers().add_parser("build").set_defaults(func=lambda args: 3)
    assert run_argparse(parser, "tool", ["build"], state_dir=str(tmp_path), sate="x") == 3
    assert (
        "instrument(sate=...): no such argument (did you mean state_dir=?); telemetry is off"
        in (capsys.readouterr().err)
    )
    assert list(tmp_path.iterdir()) == []  # telemetry off: nothing written
