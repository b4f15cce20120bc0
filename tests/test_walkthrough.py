"""A newcomer's first hour, from the wheel: build it, install it in a fresh venv outside the
source tree, run the README's quick start, docs/testing.md's example under pytest, and the
``phonehome`` command, with no source checkout on the path.

The venv is built once per test session (from PyPI, like a user's ``pip install``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from phonehome._core import VERSION
from phonehome.testing import OTLPReceiver, free_port
from tests.conftest import ROOT, clean_environ
from tests.test_docs import blocks, substitute

SDIST_SOURCES = ("src", "pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")
"""What the package is built from (a copy, so that the build writes nothing in the tree)."""


class Installed(NamedTuple):
    venv: Path
    wheel: Path
    sdist: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def phonehome(self) -> str:
        return str(self.venv / "bin" / "phonehome")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    work = tmp_path_factory.mktemp("walkthrough")
    source = work / "source"
    source.mkdir()
    for name in SDIST_SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    wheel = next((work / "dist").glob("phonehome-*.whl"))
    sdist = next((work / "dist").glob("phonehome-*.tar.gz"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # the base install only, and pytest to run the testing example with
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel), "pytest"],
        check=True,
        capture_output=True,
    )
    yield Installed(venv, wheel, sdist)


def user_environ(home: Path, **extra: str) -> dict[str, str]:
    """A user's shell: the venv's programs, nothing of this checkout, state of their own."""
    environ = clean_environ(
        XDG_STATE_HOME=str(home / "state"),
        XDG_CONFIG_HOME=str(home / "config"),
        PHONEHOME_POLICY_FILE=str(home / "no-policy.toml"),
    )
    for name in ("PYTHONPATH", "DEMOCLI_TELEMETRY_NOLOGO", "VIRTUAL_ENV"):
        environ.pop(name, None)
    return {**environ, **extra}


def run(
    installed: Installed, argv: list[str], home: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    program = {"python": installed.python, "phonehome": installed.phonehome}[argv[0]]
    return subprocess.run(
        [program, *argv[1:]],
        cwd=home,
        env=user_environ(home, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_package_holds_the_license_and_no_tests(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
    assert f"phonehome-{VERSION}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith("tests/") for n in names)
    with tarfile.open(installed.sdist) as sdist:
        members = [m.split("/", 1)[1] for m in sdist.getnames() if "/" in m]
    assert "LICENSE" in members
    assert not any(m.startswith("tests") for m in members)  # they need the whole repository
    metadata = zipfile.ZipFile(installed.wheel).read(f"phonehome-{VERSION}.dist-info/METADATA")
    assert b"License-Expression: Apache-2.0" in metadata
    assert b"Project-URL: Source, https://" in metadata


def test_the_base_install_is_opentelemetry_and_nothing_more(
    installed: Installed, tmp_path: Path
) -> None:
    code = (
        "import importlib.metadata as m, phonehome\n"
        "print(phonehome.__file__)\n"
        "print(' '.join(sorted(d.metadata['Name'].lower() for d in m.distributions())))\n"
    )
    result = run(installed, ["python", "-c", code], tmp_path)
    where, names = result.stdout.splitlines()
    assert where.startswith(str(installed.venv)), where  # not this checkout
    installed_names = set(names.split())
    assert {"opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"} <= (
        installed_names
    )
    for extra in ("click", "typer", "rotel", "grpcio", "azure-monitor-opentelemetry-exporter"):
        assert extra not in installed_names


def test_the_readme_quick_start(installed: Installed, tmp_path: Path) -> None:
    (block,) = [b for b in blocks() if b.doc == "README.md" and b.language == "python"]
    with OTLPReceiver() as vendor, OTLPReceiver() as other, OTLPReceiver() as backend:
        receivers = {"vendor": vendor, "organisation": other, "backend": backend}
        (tmp_path / "app.py").write_text(substitute(block.text, receivers, (0, 0)))
        first = run(installed, ["python", "app.py"], tmp_path)
        assert first.returncode == 0, first.stderr
        assert "democli collects anonymous usage data" in first.stderr  # before any byte
        assert vendor.requests == []
        second = run(installed, ["python", "app.py"], tmp_path)
        assert second.returncode == 0 and second.stderr == "", second.stderr
        assert vendor.wait_until(lambda: len(vendor.spans) == 2, timeout=30)
        assert {s.resource["telemetry.distro.version"] for s in vendor.spans} == {VERSION}


def test_the_testing_example_passes_in_a_fresh_project(
    installed: Installed, tmp_path: Path
) -> None:
    """A project with no conftest of phonehome's: the plugin comes with the wheel."""
    (block,) = [b for b in blocks() if b.doc == "docs/testing.md" and b.language == "python"]
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_telemetry.py").write_text(block.text)
    result = run(installed, ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    # the strict check is the plugin's: with it off, the undeclared field is not an error
    off = run(
        installed,
        ["python", "-m", "pytest", "-q", "-p", "no:phonehome", "-p", "no:cacheprovider"],
        project,
    )
    assert "fixture 'phonehome_env' not found" in off.stdout


def test_the_phonehome_command(installed: Installed, tmp_path: Path) -> None:
    assert run(installed, ["phonehome", "--version"], tmp_path).stdout == f"phonehome {VERSION}\n"
    assert run(installed, ["python", "-m", "phonehome", "--help"], tmp_path).returncode == 0
    port = free_port()
    program = (
        "import phonehome\n"
        f"with phonehome.instrument('democli', vendor='http://127.0.0.1:{port}', mode='ci') as t:\n"
        "    with t.command('generate'):\n"
        "        pass\n"
    )
    (tmp_path / "democli.py").write_text(program)
    assert (
        run(installed, ["python", "democli.py"], tmp_path, DEMOCLI_TELEMETRY_NOLOGO="1").returncode
        == 0
    )
    listed = run(installed, ["phonehome", "list"], tmp_path)
    assert listed.stdout.startswith("democli  on (the product's default (opt-out))"), listed
    status = run(installed, ["phonehome", "status", "-p", "democli"], tmp_path)
    assert "telemetry" in status.stdout and status.returncode == 0, status.stderr
    unknown = run(installed, ["phonehome", "status", "-p", "democlj"], tmp_path)
    assert unknown.returncode == 2 and "known on this machine: democli" in unknown.stderr
    flush = run(installed, ["phonehome", "flush", "-p", "democli", "--timeout", "5"], tmp_path)
    assert flush.returncode == 1
    assert f"connection refused by http://127.0.0.1:{port}/v1/traces" in flush.stderr
    collector = run(installed, ["phonehome", "collector"], tmp_path)
    assert (collector.returncode, collector.stderr) == (
        1,
        "phonehome collector: Rotel is not installed: pip install 'phonehome[collector]'\n",
    )
    bad = tmp_path / "telemetry.toml"
    bad.write_text('[commands.generate]\ndecription = "typo"\n')
    check = run(installed, ["phonehome", "schema", "check", str(bad)], tmp_path)
    assert check.returncode == 1 and "unknown key 'decription'" in check.stderr
    everywhere = run(installed, ["phonehome", "disable", "--all"], tmp_path)
    assert everywhere.returncode == 0, everywhere.stderr
    after = run(installed, ["phonehome", "status", "-p", "democli"], tmp_path)
    assert "off, decided by the user's choice for every product" in after.stdout
    for result in (listed, status, unknown, flush, collector, check, everywhere, after):
        assert "Traceback" not in result.stderr, result.stderr
