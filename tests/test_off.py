"""Consent off means no side effect at all: no file, thread, socket or OpenTelemetry import.

Each case runs a host program in a fresh interpreter that uses every part of the API, then
inspects itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import clean_environ, run_python

HOST = """
import json, logging, os, sys, threading
import phonehome

logging.getLogger().addHandler(logging.NullHandler())  # the host's own logging set-up


def is_socket(fd):
    try:
        return os.readlink(f"/proc/self/fd/{{fd}}").startswith("socket:")
    except OSError:  # the descriptor listdir itself used
        return False


with phonehome.instrument("democli", version="1.0", vendor={vendor!r}, user={user!r},
                          consent={consent!r}, enabled={enabled!r}, state_dir={state!r},
                          shutdown_timeout=0.5) as t:
    with t.command("generate", params={{"language": "python"}}, collect={{"language"}}) as span:
        span.set_attribute("x", 1)
        with t.span("inner"):
            pass
    t.event("purchase_completed", {{"amount": 1.5}})
    t.counter("things").add(1)
    t.histogram("sizes").record(2.0)
    t.gauge("level").set(3)
    logging.getLogger("host").error("an error the host logs")
    t.flush(0.5)
    sockets = [fd for fd in os.listdir("/proc/self/fd") if is_socket(fd)]
    print(json.dumps({{
        "enabled": t.enabled,
        "source": t.decision.source,
        "otel": sorted(m for m in sys.modules if m.startswith(("opentelemetry", "azure", "grpc"))),
        "threads": threading.active_count(),
        "sockets": len(sockets),
        "traceparent": t.traceparent(),
    }}))
"""

CASES = {
    "DO_NOT_TRACK": ({"DO_NOT_TRACK": "1"}, {}),
    "optout variable": ({"DEMOCLI_TELEMETRY_OPTOUT": "true"}, {}),
    "OTEL_SDK_DISABLED": ({"OTEL_SDK_DISABLED": "true"}, {}),
    "invalid value": ({"DO_NOT_TRACK": "perhaps"}, {}),
    "enabled=False": ({}, {"enabled": False}),
    "opt-in default": ({}, {"consent": "opt-in"}),
}


@pytest.mark.parametrize("case", CASES)
def test_off_has_no_side_effect(case: str, tmp_path: Path) -> None:
    variables, arguments = CASES[case]
    state = tmp_path / "state"
    code = HOST.format(
        vendor="http://127.0.0.1:9/",
        user="InstrumentationKey=00000000-0000-0000-0000-000000000000",
        consent=arguments.get("consent", "opt-out"),
        enabled=arguments.get("enabled"),
        state=str(state),
    )
    environ = clean_environ(**variables, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    result = run_python(code, environ)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["enabled"] is False
    assert report["otel"] == []
    assert report["threads"] == 1
    assert report["sockets"] == 0
    assert report["traceparent"] is None
    assert not state.exists()
    assert not (tmp_path / "xdg").exists()
    # the only thing ever printed is the one warning about an invalid value
    expected_err = 1 if case == "invalid value" else 0
    assert len(result.stderr.splitlines()) == expected_err, result.stderr


def test_a_stored_no_has_no_side_effect(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "consent.json").write_text('{"enabled": false}')
    before = sorted(p.name for p in state.iterdir())
    code = HOST.format(
        vendor="http://127.0.0.1:9/", user=None, consent="opt-out", enabled=None, state=str(state)
    )
    result = run_python(code, clean_environ())
    report = json.loads(result.stdout)
    assert (report["enabled"], report["source"]) == (False, "stored")
    assert report["otel"] == [] and report["threads"] == 1 and report["sockets"] == 0
    assert sorted(p.name for p in state.iterdir()) == before


def test_the_probe_sees_every_side_effect_when_consent_is_on(tmp_path: Path) -> None:
    """The control case: the same host with consent on shows what the probe looks for."""
    state = tmp_path / "state"
    code = HOST.format(
        vendor="http://127.0.0.1:9/", user=None, consent="opt-out", enabled=None, state=str(state)
    )
    result = run_python(code, clean_environ())
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["enabled"] is True
    assert "opentelemetry.sdk.trace" in report["otel"]  # flush() delivered in-process
    assert report["traceparent"] is None  # printed outside any span
    assert (state / "install-id").exists()
    assert (state / "config.json").exists()


def test_importing_phonehome_does_not_import_opentelemetry() -> None:
    code = "import sys, phonehome; print([m for m in sys.modules if m.startswith('opentelemetry')])"
    result = run_python(code, clean_environ())
    assert result.stdout.strip() == "[]", result.stderr


OFF_PATH = """
import sys
before = set(sys.modules)
import phonehome
with phonehome.instrument("democli", version="1.0", consent="opt-in") as t:
    with t.command("generate", params={"language": "go"}) as span:
        span.set_attribute("x", 1)
    t.event("done")
print(" ".join(sorted(set(sys.modules) - before)))
"""
OFF_PATH_MODULES = {
    "phonehome",
    "phonehome._instrument",
    "phonehome._core",
    "phonehome._core.consent",
    "phonehome._core.environment",
    "phonehome._core.instruments",
    "phonehome._core.settings",
}
"""What an opted-out run loads: phonehome's off path, and nothing of the standard library
that a bare interpreter has not loaded already, not even ``__future__`` (45 modules before the
layout by stage, 10 before the off path did without ``from __future__ import annotations``).
``diagnostics`` loads only when there is something to say (a bad setting, a contained error);
``instruments`` when a no-op is handed out (the integrations ask for none while off)."""


@pytest.mark.parametrize("environ", [{"DO_NOT_TRACK": "1"}, {}], ids=["variable", "opt-in"])
def test_an_opted_out_run_loads_only_the_off_path(environ: dict[str, str], tmp_path: Path) -> None:
    run = run_python(OFF_PATH, clean_environ(XDG_STATE_HOME=str(tmp_path), **environ))
    assert run.returncode == 0, run.stderr
    assert set(run.stdout.split()) == OFF_PATH_MODULES
