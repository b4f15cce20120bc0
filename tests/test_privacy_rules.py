"""The privacy rules one by one, on the wire: exemptions keyed by their owner, presence as a
parameter's default, undeclared commands enforced, nothing sent in debug mode by any path,
and the user's ambient credentials kept from the vendor but not from the user."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

import phonehome
from phonehome import Schema, field
from phonehome.testing import AzureIngestion, OTLPReceiver
from tests.conftest import ROOT, app_logs, backoff_over, clean_environ

NOTE = "see alice@example.com"


def test_an_exemption_belongs_to_its_own_field_only(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    schema = Schema(
        commands={"send": {"note": field(policy="raw", scrub=False, reason="a test")}},
        events={
            "kept": {"note": field(scrub=False, reason="the address is the point")},
            "other": {"note": field()},
        },
        attributes={"note": field()},
    )
    with phonehome.instrument(
        "democli", vendor=otlp_receiver.url, state_dir=state_dir, schema=schema, mode="ci"
    ) as t:
        with t.command("send", params={"note": NOTE}):
            pass
        with t.command("elsewhere", params={"note": NOTE}, collect={"note"}):
            with t.span("inner", {"note": NOTE}):
                pass
        t.event("kept", {"note": NOTE})
        t.event("other", {"note": NOTE})
        t.counter("notes").add(1, {"note": NOTE})
    logs = {r.event_name: r.attributes["note"] for r in app_logs(otlp_receiver)}
    spans = {s.name: s.attributes for s in otlp_receiver.spans}
    assert logs == {"kept": NOTE, "other": "see <email>"}
    assert spans["send"]["command.param.note"] == NOTE
    assert spans["elsewhere"]["command.param.note"] == "see <email>"
    assert spans["inner"]["note"] == "see <email>"
    points = otlp_receiver.points("notes")
    assert [p.attributes["note"] for p in points] == ["see <email>"]


def test_a_declared_parameter_without_a_policy_sends_only_whether_it_was_given(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    schema = Schema(
        commands={"run": {"path": field("string", "The input"), "level": field(values=["a"])}}
    )
    with phonehome.instrument(
        "democli", vendor=otlp_receiver.url, state_dir=state_dir, schema=schema, mode="ci"
    ) as t:
        with t.command("run", params={"path": "/srv/data/input.csv", "level": "a"}):
            pass
    (span,) = otlp_receiver.spans
    assert span.attributes["command.params"] == ["level", "path"]
    assert "command.param.path" not in span.attributes  # presence: the name only
    assert span.attributes["command.param.level"] == "a"  # listed values: enum
    assert b"input.csv" not in b"".join(otlp_receiver.bodies)
    assert schema.commands["run"]["path"].policy == "presence"


def test_an_undeclared_command_keeps_only_its_built_in_fields(
    otlp_receiver: OTLPReceiver, state_dir: Path, lenient: None
) -> None:
    schema = Schema(commands={"known": {}}, attributes={"files": field("int")})
    with phonehome.instrument(
        "democli", vendor=otlp_receiver.url, state_dir=state_dir, schema=schema, mode="ci"
    ) as t:
        with t.command("unknown", params={"target": "prod"}) as span:
            span.set_attribute("customer", "ACME Corp")
            span.set_attribute("files", 3)
    (span,) = otlp_receiver.spans
    assert span.attributes == {
        "command.name": "unknown",
        "command.params": ["target"],
        "command.result": "success",
        "process.exit.code": 0,
        "files": 3,
    }
    undeclared = otlp_receiver.points("phonehome.schema.undeclared")
    assert sum(p.value for p in undeclared) == 1


def test_debug_mode_sends_nothing_by_any_path_held_data_included(tmp_path: Path) -> None:
    state = tmp_path / "state"
    code = (
        "import sys, phonehome\n"
        "with phonehome.instrument('democli', vendor=sys.argv[1], state_dir=sys.argv[2],"
        " mode='service') as t:\n"
        "    with t.command('now'):\n"
        "        pass\n"
        "    print(t.flush(2.0), t.mode)\n"
    )

    def host(**environ: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, vendor.url, str(state)],
            env=clean_environ(**environ),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    with OTLPReceiver() as vendor:
        vendor.status = 503  # an earlier run's data waits in the spool
        assert host().returncode == 0
        assert list((state / "spool").glob("*.seg"))
        vendor.status = 200
        before = len(vendor.requests)
        run = host(DEMOCLI_TELEMETRY_DEBUG="1")
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["False", "debug"]
        assert "nothing was sent" in run.stderr
        assert len(vendor.requests) == before
        assert list((state / "spool").glob("*.seg"))  # still held, for a run that may send
        assert backoff_over(state) == 1  # the 503 put the vendor in backoff; it is over
        assert host().stdout.split() == ["True", "service"]  # and a run that may, sends it
        assert vendor.spans


NETRC_HOST = """
import sys, phonehome
vendor = sys.argv[1]
if vendor.startswith("InstrumentationKey="):
    vendor = phonehome.azure(vendor)
with phonehome.instrument("democli", vendor=vendor, state_dir=sys.argv[2], mode="ci") as t:
    with t.command("run"):
        pass
"""


def _netrc_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine 127.0.0.1 login someone password s3cret-netrc\n")
    (home / ".netrc").chmod(0o600)
    return home


def _authorizations(receiver: OTLPReceiver | AzureIngestion) -> list[str]:
    return [h["authorization"] for _, h in receiver.requests if "authorization" in h]


@pytest.mark.parametrize("kind", ["otlp", "azure"])
def test_the_users_netrc_reaches_the_users_destination_never_the_vendors(
    kind: str, tmp_path: Path
) -> None:
    home = _netrc_home(tmp_path)
    vendor_server = AzureIngestion() if kind == "azure" else OTLPReceiver()
    with vendor_server as vendor, OTLPReceiver() as mine:
        where = vendor.connection_string if kind == "azure" else vendor.url  # type: ignore[union-attr]
        run = subprocess.run(
            [sys.executable, "-c", NETRC_HOST, where, str(tmp_path / "state")],
            env=clean_environ(HOME=str(home), OTEL_EXPORTER_OTLP_ENDPOINT=mine.url),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert run.returncode == 0, run.stderr
        assert vendor.requests and mine.requests
        assert _authorizations(vendor) == []
        expected = "Basic " + base64.b64encode(b"someone:s3cret-netrc").decode()
        assert set(_authorizations(mine)) == {expected}  # the user's own: as requests does


def test_entra_id_authentication_is_never_used_for_the_vendors_azure_destination(
    tmp_path: Path,
) -> None:
    from tests.conftest import silent_server

    msi, port = silent_server()  # where a managed-identity token would be fetched from
    try:
        with AzureIngestion() as vendor:
            run = subprocess.run(
                [sys.executable, "-c", NETRC_HOST, vendor.connection_string, str(tmp_path)],
                env=clean_environ(
                    APPLICATIONINSIGHTS_AUTHENTICATION_STRING="Authorization=AAD",
                    IDENTITY_ENDPOINT=f"http://127.0.0.1:{port}/token",
                    IDENTITY_HEADER="x",
                ),
                capture_output=True,
                text=True,
                timeout=60,
                cwd=ROOT,
            )
            assert run.returncode == 0, run.stderr
            assert vendor.envelopes and _authorizations(vendor) == []
        msi.settimeout(0)
        with pytest.raises(BlockingIOError):
            msi.accept()
    finally:
        msi.close()


def test_the_notice_and_the_page_say_what_an_error_sends() -> None:
    default, opted = Schema(), Schema(exception_messages=True)
    assert any("never their message" in part for part in default.summary())
    assert any("and their message" in part for part in opted.summary())
    assert "Never the error's message" in default.doc("democli")
    assert "its message (scrubbed)" in opted.doc("democli")
    assert default.fingerprint() != opted.fingerprint()  # opting in shows the notice again
    toml = Schema.from_toml("exception_messages = true\n[events.x]\n")
    assert toml.exception_messages is True
    json.dumps(toml.summary())
