"""Telemetry never hurts the host: exit code, output and exceptions unchanged, no traceback."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest

import phonehome
from phonehome._core import diagnostics as _diagnostics
from phonehome.testing import OTLPReceiver
from tests.conftest import TEST_SCHEMA, app_logs, clean_environ, run_python, silent_server

HOST = """
import sys, phonehome
with phonehome.instrument("democli", vendor={vendor!r}, state_dir={state!r},
                          shutdown_timeout=1.0, mode={mode!r}, ci_budget=1.0) as t:
    with t.command("generate", params={{"language": "go"}}, collect={{"language"}}):
        print("host output")
    t.event("done", {{"n": 1}})
sys.exit(3)
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("mode", ["cli", "ci"])
@pytest.mark.parametrize("fault", ["port closed", "never answers", "HTTP 503"])
def test_a_failing_collector_leaves_output_and_exit_code_alone(
    tmp_path: Path, fault: str, mode: str
) -> None:
    server = receiver = None
    if fault == "port closed":
        vendor = f"http://127.0.0.1:{closed_port()}"
    elif fault == "never answers":
        server, port = silent_server()
        vendor = f"http://127.0.0.1:{port}"
    else:
        receiver = OTLPReceiver()
        receiver.status = 503
        receiver.start()
        vendor = receiver.url
    try:
        result = run_python(
            HOST.format(vendor=vendor, state=str(tmp_path / "s"), mode=mode), clean_environ()
        )
    finally:
        if server is not None:
            server.close()
        if receiver is not None:
            receiver.stop()
    assert result.returncode == 3
    assert result.stdout == "host output\n"
    assert result.stderr == ""


def test_the_hosts_exception_keeps_its_traceback_and_exit_code(tmp_path: Path) -> None:
    code = HOST.replace('print("host output")', 'raise RuntimeError("host bug")')
    result = run_python(
        code.format(
            vendor=f"http://127.0.0.1:{closed_port()}", state=str(tmp_path / "s"), mode="cli"
        ),
        clean_environ(),
    )
    assert result.returncode == 1
    assert result.stderr.count("Traceback") == 1
    assert result.stderr.rstrip().endswith("RuntimeError: host bug")
    assert "phonehome" not in result.stderr.replace("phonehome.instrument", "")


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")

    __repr__ = __str__


def test_hostile_values_are_contained(
    lenient: None, otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    with phonehome.instrument(
        "democli", vendor=otlp_receiver.url, state_dir=state_dir, schema=TEST_SCHEMA
    ) as t:
        with t.command(Unprintable(), params={Unprintable(): 1}, collect={"x"}):  # type: ignore[arg-type]
            pass
        with t.command("ok", params={"x": Unprintable()}, collect={"x"}):
            pass
        t.event("e", {"bad": Unprintable(), "nan": float("nan"), "deep": [[1, [2]]]})
        t.counter("c").add("many")  # type: ignore[arg-type]
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans and app_logs(otlp_receiver))
    (span,) = [s for s in otlp_receiver.spans if s.name == "ok"]
    assert span.attributes["command.param.x"] == "<unprintable Unprintable>"
    assert app_logs(otlp_receiver)[0].attributes["bad"] == "<unprintable Unprintable>"


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"consent": "maybe"}, "consent='maybe'"),
        ({"enabled": "yes"}, "enabled='yes'"),
        ({"vendor": 42}, "vendor=..."),
        ({"shutdown_timeout": -1}, "shutdown_timeout=-1"),
        ({"capture_logging": "no"}, "capture_logging='no'"),  # bool("no") would be True
        ({"version": (1, 2)}, "version=(1, 2)"),
        ({"vender": "http://127.0.0.1:9"}, "vender=...): no such argument (did you mean vendor=?)"),
        ({"sate_dir": "x"}, "sate_dir=...): no such argument (did you mean state_dir=?)"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_setting_and_telemetry_is_off(
    state_dir: Path, capsys: pytest.CaptureFixture[str], kwargs: dict[str, object], setting: str
) -> None:
    threads = set(threading.enumerate())  # an earlier test's may still be ending
    with phonehome.instrument("democli", state_dir=state_dir, **kwargs) as t:  # type: ignore[arg-type]
        with t.command("x"):
            pass
        assert t.enabled is False
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("phonehome: instrument(") and setting in line
    assert set(threading.enumerate()) <= threads  # telemetry off started none
    assert not state_dir.exists()


def test_a_positional_argument_after_the_product_is_one_line_and_telemetry_off(
    capsys: pytest.CaptureFixture[str],
) -> None:
    telemetry = phonehome.instrument("democli", "1.0")  # type: ignore[arg-type]
    assert telemetry.enabled is False
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("phonehome: instrument(): the product's name is its only positional")


def test_a_bad_product_name_turns_telemetry_off(capsys: pytest.CaptureFixture[str]) -> None:
    telemetry = phonehome.instrument("")
    assert telemetry.enabled is False
    assert "product" in capsys.readouterr().err


def test_an_unusable_state_directory_still_delivers_with_warnings(
    lenient: None,
    tmp_path: Path,
    otlp_receiver: OTLPReceiver,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with phonehome.instrument("democli", vendor=otlp_receiver.url, state_dir=blocker / "s") as t:
        t.event("e")
    assert otlp_receiver.wait_until(lambda: app_logs(otlp_receiver))
    err = capsys.readouterr().err
    fallback = tmp_path / "tmp" / f"phonehome-{os.geteuid()}" / "s"
    assert err == (
        f"phonehome: cannot write to {blocker / 's'} (Not a directory); telemetry is kept "
        f"in {fallback} instead (said once a day)\n"
    )  # one line
    assert list((tmp_path / "tmp").glob(f"phonehome-{os.geteuid()}/s/spool"))
    assert not _diagnostics.errors


LOGGING_HOST = """
import logging, sys, phonehome
with phonehome.instrument("democli", vendor=sys.argv[1], state_dir=sys.argv[2], mode="ci",
                          ci_budget=2) as t:
    logging.getLogger("democli").warning("disk almost full")  # no handler: Python prints it
    # at DEBUG, as nox sets it: the delivery's HTTP library (urllib3) logs every request there
    logging.basicConfig(level=logging.DEBUG, format="configured: %(message)s")
    logging.getLogger("democli").info("after basicConfig")
"""


def test_the_hosts_logging_behaves_as_without_telemetry(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    code = LOGGING_HOST.replace("sys.argv[1]", repr(otlp_receiver.url))
    code = code.replace("sys.argv[2]", repr(str(tmp_path / "state")))
    on = run_python(code, clean_environ())
    off = run_python(code, clean_environ(DEMOCLI_TELEMETRY_OPTOUT="1"))
    assert off.stderr == "disk almost full\nconfigured: after basicConfig\n"
    assert (on.returncode, on.stdout, on.stderr) == (off.returncode, off.stdout, off.stderr)
    assert [r.body for r in app_logs(otlp_receiver)] == ["disk almost full"]  # and recorded


def test_a_command_ends_with_the_exit_code_and_the_class_of_error_the_program_names(
    lenient: None, otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    with phonehome.instrument("democli", vendor=otlp_receiver.url, state_dir=state_dir) as t:
        with t.command("named") as span:
            span.set_exit_code(3, error_type="tool.errors.ConfigError")
        with t.command("stopped") as span:
            span.set_exit_code(130, cancelled=True)
        with t.command("texted") as span:  # free text is no class of error: never sent
            span.set_exit_code(4, error_type="cannot read /home/bob/notes.txt")
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 3)
    ended = {
        s.name: (s.attributes["command.result"], s.attributes["process.exit.code"])
        for s in otlp_receiver.spans
    }
    kinds = {s.name: s.attributes["error.type"] for s in otlp_receiver.spans}
    assert ended == {
        "named": ("failure", 3),
        "stopped": ("cancelled", 130),
        "texted": ("failure", 4),
    }
    assert kinds == {"named": "tool.errors.ConfigError", "stopped": "130", "texted": "4"}
