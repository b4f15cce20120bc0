"""One switch for every tool: the machine policy and the user-wide choice, their precedence
against every other consent source, their effect on the wire, and their cost when absent."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from phonehome._core.consent import Resolver
from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, clean_environ, run_python

DEMOCLI = ROOT / "examples" / "democli.py"

# Each source, as a user or an administrator sets it: (kind, value). Two sources of one kind
# cannot be present at once (a file says one thing).
SOURCES = {
    "DO_NOT_TRACK": ("variable", None),
    "policy off": ("policy", 'telemetry = "off"\n'),
    "enabled=False": ("enabled", False),
    "user-wide off": ("user-wide", 'telemetry = "off"\n'),
    "stored off": ("stored", False),
    "enabled=True": ("enabled", True),
    "user-wide on": ("user-wide", 'telemetry = "on"\n'),
    "stored on": ("stored", True),
}
ORDER = list(SOURCES)
"""docs/configuration.md's order: every "off" first, then every "on"; the first present
decides."""
DECIDED_BY = {
    "DO_NOT_TRACK": (False, "DO_NOT_TRACK"),
    "policy off": (False, "policy"),
    "enabled=False": (False, "enabled"),
    "user-wide off": (False, "user-wide"),
    "stored off": (False, "stored"),
    "enabled=True": (True, "enabled"),
    "user-wide on": (True, "user-wide"),
    "stored on": (True, "stored"),
}


def files(tmp_path: Path) -> dict[str, str]:
    """The environment that points phonehome at this test's policy and user-wide files."""
    return {
        "PHONEHOME_POLICY_FILE": str(tmp_path / "policy.toml"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


def user_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "phonehome" / "config.toml"


def decide(tmp_path: Path, present: tuple[str, ...]) -> tuple[bool, str]:
    environ = files(tmp_path)
    enabled = None
    state = tmp_path / "state"
    state.mkdir()
    for name in present:
        kind, value = SOURCES[name]
        if kind == "variable":
            environ["DO_NOT_TRACK"] = "1"
        elif kind == "policy":
            (tmp_path / "policy.toml").write_text(str(value))
        elif kind == "user-wide":
            user_file(tmp_path).parent.mkdir(parents=True)
            user_file(tmp_path).write_text(str(value))
        elif kind == "stored":
            (state / "consent.json").write_text(json.dumps({"enabled": value}))
        else:
            enabled = value
    decision = Resolver("DEMOCLI", "opt-in", enabled, state).resolve(environ)  # type: ignore[arg-type]
    return decision.enabled, decision.source


PAIRS = [
    (a, b)
    for a, b in itertools.combinations(ORDER, 2)
    if SOURCES[a][0] != SOURCES[b][0]  # one file, one variable: one value at a time
]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=[f"{a} + {b}" for a, b in PAIRS])
def test_every_pair_of_sources_is_decided_as_documented(
    tmp_path: Path, first: str, second: str
) -> None:
    winner = min((first, second), key=ORDER.index)
    assert decide(tmp_path, (first, second)) == DECIDED_BY[winner]


@pytest.mark.parametrize("source", ORDER)
def test_each_source_alone_decides(tmp_path: Path, source: str) -> None:
    assert decide(tmp_path, (source,)) == DECIDED_BY[source]


def test_the_documented_order_is_the_one_tested() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    section = doc.split("## Consent: who decides", 1)[1]
    order = " ".join(section[section.index("\n1. ") :].split("\n\n", 1)[0].split())
    positions = [
        order.index(marker)
        for marker in (
            "`DO_NOT_TRACK` true",
            "the machine policy",
            "`enabled=False`",
            'the user\'s "no" for every product',
            'the user\'s stored "no"',
            '`enabled=True`, then the user\'s "yes" for every product',
        )
    ]
    assert positions == sorted(positions)


# -- the files, as users and administrators write them -------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('telemtry = "off"\n', "unknown key 'telemtry' (valid: telemetry, vendor, endpoint)"),
        ('telemetry = "on"\n', 'telemetry = "on" is not valid (use telemetry = "off")'),
        ("vendor = false\n", 'vendor = false is not valid (use vendor = "off")'),
        ('endpoint = "ftp://x"\n', "not an http:// or https:// URL"),
        ('endpoint = "https://otel.example.org/v1/traces"\n', "ends in the signal path"),
        ("telemetry = \n", "not valid TOML"),
    ],
)
def test_an_unusable_policy_turns_telemetry_off_in_one_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    (tmp_path / "policy.toml").write_text(text)
    code = "import phonehome\nprint(phonehome.instrument('democli', vendor='http://127.0.0.1:9').decision)"
    result = run_python(code, clean_environ(**files(tmp_path)))
    assert result.stdout.strip() == f"off (the machine policy ({tmp_path / 'policy.toml'}))"
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert expected in result.stderr and "telemetry is off until it is fixed" in result.stderr


def test_an_unusable_user_wide_file_counts_as_no(tmp_path: Path) -> None:
    user_file(tmp_path).parent.mkdir(parents=True)
    user_file(tmp_path).write_bytes(b"\xff\xfe garbage")
    code = "import phonehome\nprint(phonehome.instrument('democli').decision.source)"
    result = run_python(code, clean_environ(**files(tmp_path)))
    assert result.stdout.strip() == "user-wide"
    assert "not valid TOML" in result.stderr and len(result.stderr.splitlines()) == 1


# -- on the wire ---------------------------------------------------------------------------------
def manage(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``phonehome ARGV -p democli`` on this test's state directory and files."""
    return subprocess.run(
        [sys.executable, "-m", "phonehome", *argv, "-p", "democli"],
        env=clean_environ(DEMOCLI_TELEMETRY_DIR=str(tmp_path / "state"), **files(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def democli(tmp_path: Path, vendor: str, **environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEMOCLI), "version"],
        env=clean_environ(
            DEMOCLI_VENDOR=vendor,
            DEMOCLI_TELEMETRY_DIR=str(tmp_path / "state"),
            DEMOCLI_TELEMETRY_MODE="ci",
            **files(tmp_path),
            **environ,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_policy_sends_every_copy_to_the_organisation_and_can_stop_the_vendors(
    tmp_path: Path,
) -> None:
    with OTLPReceiver() as vendor, OTLPReceiver() as organisation:
        (tmp_path / "policy.toml").write_text(f'endpoint = "{organisation.url}"\n')
        democli(tmp_path, vendor.url)
        assert vendor.wait_until(lambda: vendor.spans)
        assert organisation.wait_until(lambda: organisation.spans)
        assert [s.span_id for s in vendor.spans] == [s.span_id for s in organisation.spans]
        (tmp_path / "policy.toml").write_text(f'vendor = "off"\nendpoint = "{organisation.url}"\n')
        democli(tmp_path, vendor.url)
        assert organisation.wait_until(lambda: len(organisation.spans) == 2)
        assert len(vendor.spans) == 1  # the second run sent nothing to the vendor
    status = manage(tmp_path, "status")
    assert re.search(r"^vendor copy +off \(the machine policy\)$", status.stdout, re.M), (
        status.stdout
    )


def test_a_policy_installed_later_purges_what_waits(tmp_path: Path) -> None:
    democli(tmp_path, "http://127.0.0.1:9")  # the vendor is down: the run's records wait
    assert list((tmp_path / "state" / "spool").glob("*.seg"))
    (tmp_path / "policy.toml").write_text('telemetry = "off"\n')
    flush = manage(tmp_path, "flush")
    assert flush.returncode == 0, flush.stderr
    assert f"telemetry is off (the machine policy ({tmp_path / 'policy.toml'}))" in flush.stdout
    assert not list((tmp_path / "state" / "spool").glob("*.seg"))


def test_disable_all_holds_for_every_product_present_and_future(tmp_path: Path) -> None:
    environ = {**files(tmp_path), "XDG_STATE_HOME": str(tmp_path / "xdg-state")}
    with OTLPReceiver() as vendor:
        host = (
            "import sys, phonehome\n"
            "with phonehome.instrument(sys.argv[1], vendor=sys.argv[2], mode='ci') as t:\n"
            "    print(t.decision)\n"
        )

        def run(product: str) -> str:
            argv = [sys.executable, "-c", host, product, vendor.url]
            nologo = {f"{product.upper()}_TELEMETRY_NOLOGO": "1"}
            return subprocess.run(
                argv, env=clean_environ(**environ, **nologo), capture_output=True, text=True
            ).stdout.strip()

        assert run("alpha").startswith("on")  # alpha has run here, with its data waiting
        off = subprocess.run(
            [sys.executable, "-m", "phonehome", "disable", "--all"],
            env=clean_environ(**environ),
            capture_output=True,
            text=True,
        )
        assert off.returncode == 0 and "forgot the install ids of: alpha" in off.stdout
        for product in ("alpha", "beta"):  # beta has never run
            assert (
                run(product) == f"off (the user's choice for every product ({user_file(tmp_path)}))"
            )
        sent = len(vendor.requests)
        status = subprocess.run(
            [sys.executable, "-m", "phonehome", "status", "-p", "alpha"],
            env=clean_environ(**environ),
            capture_output=True,
            text=True,
        )
        assert "off, decided by the user's choice for every product" in status.stdout
        assert "every product       off (the user-wide choice" in status.stdout
        subprocess.run(
            [sys.executable, "-m", "phonehome", "enable", "--all"],
            env=clean_environ(**environ),
            check=True,
            capture_output=True,
        )
        assert run("beta").startswith("on (the user's choice for every product")
        assert vendor.wait_until(lambda: len(vendor.requests) > sent)


# -- what it costs when there is none ------------------------------------------------------------
PROBE = """
import os, sys
touched = []
sys.addaudithook(lambda event, args: touched.append(str(args[0])) if event == "open" else None)
real_stat = os.stat
def stat(path, *args, **kwargs):
    touched.append(str(path))
    return real_stat(path, *args, **kwargs)
os.stat = stat
before = set(sys.modules)
import phonehome
with phonehome.instrument("democli", consent="opt-in") as t:
    pass
print(t.decision.source)
print(" ".join(sorted(set(sys.modules) - before)))
print(sum(p == {policy!r} for p in touched), sum(p == {user!r} for p in touched))
"""


def test_absent_files_cost_one_stat_each_and_no_import(tmp_path: Path) -> None:
    from tests.test_off import OFF_PATH_MODULES

    code = PROBE.format(policy=str(tmp_path / "policy.toml"), user=str(user_file(tmp_path)))
    result = run_python(code, clean_environ(**files(tmp_path)))
    source, modules, counts = result.stdout.splitlines()
    assert source == "default", result.stderr
    # no command was asked for, so no no-op span either
    assert set(modules.split()) == OFF_PATH_MODULES - {"phonehome._core.instruments"}
    assert counts == "1 1"


def test_a_present_file_is_read_once_per_decision(tmp_path: Path) -> None:
    (tmp_path / "policy.toml").write_text('vendor = "off"\n')
    user_file(tmp_path).parent.mkdir(parents=True)
    user_file(tmp_path).write_text('telemetry = "off"\n')
    code = PROBE.format(policy=str(tmp_path / "policy.toml"), user=str(user_file(tmp_path)))
    result = run_python(code, clean_environ(**files(tmp_path)))
    source, _, counts = result.stdout.splitlines()
    assert source == "user-wide", result.stderr
    assert counts == "2 2"  # a stat, then the one read
