"""One settings object, built once, and one table that the docs are generated from.

The table must name every ``instrument()`` argument with its real default, every variable
the code reads, and docs/configuration.md must be exactly what the table generates.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import phonehome
from phonehome._core import environment as env
from phonehome._core import settings, table
from phonehome._core.errors import SettingError

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "phonehome"


def test_docs_configuration_is_what_the_table_generates() -> None:
    document = (ROOT / "docs" / "configuration.md").read_text()
    assert table.render(document) == document, "run: make docs"


def test_every_instrument_argument_is_a_row_with_its_real_default() -> None:
    parameters = {  # the catch-alls of a typo (one line, telemetry off) are no setting
        name: parameter
        for name, parameter in inspect.signature(phonehome.instrument).parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
    rows = {row.name: row for row in table.TABLE if row.argument}
    assert list(rows) == list(parameters)
    for name, parameter in parameters.items():
        default = parameter.default
        if default is inspect.Parameter.empty:
            assert rows[name].default == "required"
        elif isinstance(default, int | float) and not isinstance(default, bool) and default > 1e3:
            continue  # written in units (10 MiB, 7 days), checked below
        else:
            shown = repr(default) if isinstance(default, str) else f"`{default!r}`"
            assert rows[name].default.split(" (")[0] in (shown, f"`{default}`", repr(default)), name
    assert rows["spool_max_bytes"].default == f"{settings.DEFAULT_SPOOL_MAX_BYTES >> 20} MiB"
    assert rows["spool_max_age"].default == f"{settings.DEFAULT_SPOOL_MAX_AGE / 86400:.0f} days"


def _variables_read_in_source() -> set[str]:
    """Every upper-case variable name the code reads from the environment."""
    found: set[str] = set()
    pattern = re.compile(r"""environ(?:\.get)?[(\[]\s*["']([A-Z][A-Z0-9_]+)["']""")
    for path in SOURCE.rglob("*.py"):
        if "testing" in path.parts:
            continue
        found |= set(pattern.findall(path.read_text()))
    return found


def test_every_variable_the_code_reads_is_in_the_table() -> None:
    documented = {v for row in table.TABLE for v in row.variables}
    constants = {
        value
        for name, value in vars(env).items()
        if name.isupper()
        and isinstance(value, str)
        and name not in ("SIGNALS",)
        and (value.startswith("{prefix}") or value.isupper())
    }
    read = _variables_read_in_source() | constants
    detection = {v for v, _ in (*env.CI_VARIABLES, *env.AGENT_VARIABLES)}
    missing = {
        v
        for v in read - documented - detection
        if not v.startswith(("OTEL_EXPORTER_OTLP_", "OTEL_PYTHON_", "APPLICATIONINSIGHTS_"))
        and v
        not in (
            *("USER", "USERNAME", "LOGNAME", "PYTHONPATH", "GRPC_VERBOSITY"),
            *("LOCALAPPDATA", "APPDATA", "PROGRAMDATA"),  # the platforms' directories
        )
    }
    assert missing == set()


def test_settings_are_frozen_and_resolved_once() -> None:
    resolved = settings.resolve("democli", environ={"DEMOCLI_TELEMETRY_MODE": "service"})
    assert resolved.delivery_mode == "service" and resolved.prefix == "DEMOCLI"
    with pytest.raises(AttributeError, match="frozen"):
        resolved.mode = "cli"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "argument", "expected"),
    [
        ({}, "auto", "cli"),
        ({"CI": "true"}, "auto", "ci"),
        ({"CI": "true", "DEMOCLI_TELEMETRY_MODE": "cli"}, "auto", "cli"),
        ({"DEMOCLI_TELEMETRY_MODE": "service"}, "ci", "ci"),  # the code's choice wins
    ],
)
def test_the_mode_follows_the_tables_precedence(
    environ: dict[str, str], argument: str, expected: str
) -> None:
    resolved = settings.resolve("democli", mode=argument, environ=environ)
    assert resolved.delivery_mode == expected


def test_the_state_directory_argument_wins_over_its_variable(tmp_path: Path) -> None:
    environ = {"DEMOCLI_TELEMETRY_DIR": str(tmp_path / "env")}
    assert settings.resolve("democli", environ=environ).state_dir == str(tmp_path / "env")
    chosen = settings.resolve("democli", state_dir=tmp_path / "arg", environ=environ)
    assert chosen.state_dir == str(tmp_path / "arg")


def test_a_bad_variable_is_a_problem_named_not_an_error() -> None:
    resolved = settings.resolve("democli", environ={"OTEL_BSP_SCHEDULE_DELAY": "soon"})
    assert resolved.service_interval == settings.DEFAULT_SERVICE_INTERVAL
    assert resolved.problems == (
        "OTEL_BSP_SCHEDULE_DELAY='soon' is not a number of milliseconds; using 5000",
    )


@pytest.mark.parametrize(
    ("variable", "setting", "read", "means"),
    [
        ("VENDOR_OPTOUT", "vendor_optout", True, "the vendor's copy is off"),
        ("DEBUG", "debug", True, "debug mode: the payload is shown, nothing is sent"),
        ("NOLOGO", "nologo", False, "the notice is shown"),
        ("SYSTEM_METRICS", "system_metrics", False, "system metrics are off"),
    ],
)
def test_a_yes_no_variable_that_is_neither_is_named_and_read_as_sending_less(
    variable: str, setting: str, read: bool, means: str
) -> None:
    name = f"DEMOCLI_TELEMETRY_{variable}"
    resolved = settings.resolve("democli", system_metrics=True, environ={name: "maybe"})
    assert getattr(resolved, setting) is read
    assert resolved.problems == (
        f"{name}='maybe' is not a yes/no value (use 1/true/yes/on or 0/false/no/off); "
        f"{means} until it is fixed",
    )
    for value, expected in (("yes", True), ("0", False)):
        assert getattr(settings.resolve("democli", environ={name: value}), setting) is (
            expected and setting != "system_metrics"  # on only when the code asks for it
        )


def test_a_bad_argument_raises_naming_it() -> None:
    with pytest.raises(SettingError, match=r"instrument\(ci_budget=-1\)"):
        settings.resolve("democli", ci_budget=-1)
