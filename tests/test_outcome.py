"""The exit rule, on exits, click's and typer's exceptions (both copies), and generated input."""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
from types import ModuleType

import click
import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st

from phonehome._host import outcome


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_an_exit_code_is_the_processs_and_success_only_when_that_is_zero(code: int) -> None:
    exits = code % 256  # POSIX keeps the low 8 bits: sys.exit(256) exits 0, sys.exit(-1) 255
    for raised in (SystemExit(code), click.exceptions.Exit(code), typer.Exit(code)):
        ended = outcome.of_exception(raised)
        assert ended.exit_code == exits
        assert ended.result == {0: "success", 130: "cancelled"}.get(exits, "failure")
        assert ended.error_type == (None if exits == 0 else str(exits))


@pytest.mark.parametrize("code", [-1, 255, 256, 257, -256, 2**31 - 1, -(2**31)])
def test_the_exit_code_recorded_is_the_one_a_real_process_exits_with(code: int) -> None:
    ran = subprocess.run([sys.executable, "-c", f"import sys; sys.exit({code})"], timeout=60)
    assert outcome.exit_code(code) == ran.returncode


@given(st.text())
def test_an_exit_with_a_message_is_a_failure_with_code_1(message: str) -> None:
    ended = outcome.of_exception(SystemExit(message))
    assert (ended.result, ended.exit_code) == ("failure", 1)


def _exception_modules() -> list[ModuleType]:
    """click's exceptions, and those of the copy of click that typer vendors (typer 0.2x)."""
    found = [click.exceptions]
    with contextlib.suppress(ImportError):
        found.append(importlib.import_module("typer._click.exceptions"))
    return found


@pytest.mark.parametrize(
    ("name", "result", "code"),
    [
        ("UsageError", "usage_error", 2),
        ("NoSuchOption", "usage_error", 2),
        ("BadParameter", "usage_error", 2),
        ("ClickException", "failure", 1),
        ("FileError", "failure", 1),
    ],
)
def test_clicks_exceptions_from_click_and_from_typers_copy(
    name: str, result: str, code: int
) -> None:
    for module in _exception_modules():
        raised = getattr(module, name)("x")
        ended = outcome.of_exception(raised)
        assert (ended.result, ended.exit_code) == (result, code), module
        assert ended.error_type == f"{module.__name__}.{name}"


def test_interrupts_are_cancelled_and_other_exceptions_crashes() -> None:
    assert outcome.of_exception(KeyboardInterrupt()).result == "cancelled"
    assert outcome.of_exception(click.exceptions.Abort()).result == "cancelled"
    assert outcome.of_exception(typer.Abort()).result == "cancelled"
    assert outcome.of_exception(ValueError()).crash
    assert outcome.of_exception(GeneratorExit()).crash

    class UsageError(Exception):  # named like click's, defined elsewhere: no exit
        exit_code = 2

    assert outcome.of_exception(UsageError()).crash
