"""The telemetry schema: policies on the wire, undeclared fields stopped and counted,
TOML files, the generated page, and bad schemas."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import phonehome
from phonehome import Schema, field
from phonehome._core.errors import SchemaError
from phonehome.testing import OTLPReceiver
from tests.conftest import app_logs

SCHEMA = Schema(
    commands={
        "generate": {
            "language": field("string", "Target language", policy="enum", values=["python", "go"]),
            "openapi": field("string", "Path of the spec", policy="hash"),
            "token": field("string", "An access token", policy="drop"),
            "force": field("bool", "Overwrite", policy="raw"),
        }
    },
    events={
        "purchase_completed": {
            "amount": field("float", "Order total"),
            "coupon": field("string", "Coupon code", policy="presence"),
        }
    },
    attributes={"files": field("int", "Files parsed")},
    descriptions={"generate": "Generate a client", "purchase_completed": "A purchase"},
)
TOML = """
[commands.generate]
description = "Generate a client"
[commands.generate.params.language]
type = "string"
policy = "enum"
values = ["python", "go"]
description = "Target language"

[events.purchase_completed]
description = "A purchase"
[events.purchase_completed.attributes.amount]
type = "float"
description = "Order total"

[attributes.files]
type = "int"
description = "Files parsed"
"""


def run(receiver: OTLPReceiver, state_dir: Path, schema: object, body) -> None:  # type: ignore[no-untyped-def]
    with phonehome.instrument(
        "democli", vendor=receiver.url, state_dir=state_dir, schema=schema, mode="ci"
    ) as t:  # type: ignore[arg-type]
        body(t)


def test_each_policy_on_the_wire(otlp_receiver: OTLPReceiver, state_dir: Path) -> None:
    def body(t: phonehome.Telemetry) -> None:
        with t.command(
            "generate",
            params={
                "language": "rust",
                "openapi": "/srv/spec.yaml",
                "token": "s3cret",
                "force": True,
                "out": "dir",
            },
        ):
            pass
        with t.command("generate", params={"language": "go"}):
            pass
        t.event("purchase_completed", {"amount": 149.99, "coupon": "SPRING24"})

    run(otlp_receiver, state_dir, SCHEMA, body)
    first, second = sorted(otlp_receiver.spans, key=lambda s: len(s.attributes), reverse=True)
    salt = bytes.fromhex((state_dir / "salt").read_text().strip())
    assert first.attributes == {
        "command.name": "generate",
        "command.params": ["force", "language", "openapi", "out"],  # token: drop, even its name
        "command.param.language": "other",  # enum: not a listed value
        "command.param.openapi": hashlib.sha256(salt + b"/srv/spec.yaml").hexdigest(),
        "command.param.force": True,
        "command.result": "success",
        "process.exit.code": 0,
    }
    assert second.attributes["command.param.language"] == "go"
    (event,) = app_logs(otlp_receiver)
    assert event.attributes == {
        "amount": 149.99,
        "coupon": True,
        "event.name": "purchase_completed",
    }
    wire = b"".join(otlp_receiver.bodies)
    for secret in (b"s3cret", b"SPRING24", b"/srv/spec.yaml", b"rust", salt.hex().encode()):
        assert secret not in wire


def test_undeclared_attributes_never_leave_and_are_counted(
    lenient: None, otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    def body(t: phonehome.Telemetry) -> None:
        t.event("purchase_completed", {"amount": 1.0, "email": "alice@example.com"})
        with t.span("parse", {"files": 3, "path": "/home/alice/x"}):
            pass
        t.counter("runs").add(1, {"host": "alice-laptop"})

    run(otlp_receiver, state_dir, SCHEMA, body)
    wire = b"".join(otlp_receiver.bodies)
    for secret in (b"alice@example.com", b"/home/alice/x", b"alice-laptop"):
        assert secret not in wire
    assert app_logs(otlp_receiver)[0].attributes == {
        "amount": 1.0,
        "event.name": "purchase_completed",
    }
    assert [s.attributes for s in otlp_receiver.spans] == [{"files": 3}]
    assert sum(p.value for p in otlp_receiver.points("phonehome.schema.undeclared")) == 3


def test_in_tests_an_undeclared_attribute_raises_where_it_is_recorded(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    def body(t: phonehome.Telemetry) -> None:
        with t.command("generate"):
            pass
        t.event("purchase_completed", {"email": "alice@example.com"})

    with pytest.raises(phonehome.UndeclaredError, match="'email' is not declared") as raised:
        run(otlp_receiver, state_dir, SCHEMA, body)
    assert any(entry.name == "body" for entry in raised.traceback)  # the recording call
    # what was recorded before is not lost with it, and the undeclared value never leaves
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans)
    assert [s.name for s in otlp_receiver.spans] == ["generate"]
    assert b"alice@example.com" not in b"".join(otlp_receiver.bodies)


def _set_attribute(t: phonehome.Telemetry) -> None:
    with t.command("generate") as span:
        span.set_attribute("path", "x")


def _add_event(t: phonehome.Telemetry) -> None:
    with t.command("generate") as span:
        span.add_event("e", {"path": "x"})


@pytest.mark.parametrize(
    "record",
    [
        lambda t: t.span("parse", {"path": "x"}),
        lambda t: t.counter("runs").add(1, {"host": "x"}),
        lambda t: t.histogram("sizes").record(1.0, {"host": "x"}),
        lambda t: t.gauge("level").set(1, {"host": "x"}),
        _set_attribute,
        _add_event,
    ],
    ids=["span", "counter", "histogram", "gauge", "set_attribute", "add_event"],
)
def test_every_recording_call_checks_its_attributes_in_tests(
    record: Any, otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    with pytest.raises(phonehome.UndeclaredError, match="is not declared"):
        run(otlp_receiver, state_dir, SCHEMA, record)


def test_collect_is_the_shorthand_for_raw(otlp_receiver: OTLPReceiver, state_dir: Path) -> None:
    def body(t: phonehome.Telemetry) -> None:
        with t.command("init", params={"template": "web", "name": "x"}, collect={"template"}):
            pass

    run(otlp_receiver, state_dir, None, body)
    assert otlp_receiver.spans[0].attributes["command.param.template"] == "web"
    assert "command.param.name" not in otlp_receiver.spans[0].attributes


def test_a_toml_schema_file(otlp_receiver: OTLPReceiver, state_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "telemetry.toml"
    path.write_text(TOML)

    def body(t: phonehome.Telemetry) -> None:
        with t.command("generate", params={"language": "python"}):
            pass
        t.event("purchase_completed", {"amount": 5.0})

    run(otlp_receiver, state_dir, path, body)
    assert otlp_receiver.spans[0].attributes["command.param.language"] == "python"
    assert app_logs(otlp_receiver)[0].attributes["amount"] == 5.0
    assert Schema.from_toml(path).fingerprint() == Schema.from_toml(TOML).fingerprint()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[commands.x.params.p]\npolicy = 'sometimes'", "commands.x.params.p: policy 'sometimes'"),
        ("[attributes.a]\ntype = 'date'", "attributes.a: type 'date'"),
        ("[attributes.a]\npolicy = 'enum'", "needs its list of values"),
        ("[attributes.a]\nscrub = false", "scrub=False needs a reason"),
        ("not = [toml", "not valid TOML"),
    ],
)
def test_a_bad_schema_is_one_line_and_telemetry_is_off(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = tmp_path / "telemetry.toml"
    path.write_text(text)
    with phonehome.instrument(
        "democli", vendor="http://127.0.0.1:9", state_dir=state_dir, schema=path
    ) as t:
        assert t.enabled is False
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("phonehome: instrument(schema=...): ") and problem in line


def test_the_generated_page_lists_every_field() -> None:
    page = SCHEMA.doc("democli")
    assert page.startswith("# What democli collects")
    for row in (
        "| command `generate` | `language` | string | one of go, python, else `other` |",
        "| command `generate` | `openapi` | string | salted SHA-256 |",
        "| event `purchase_completed` | `coupon` | string | whether given |",
        "| spans, metrics, events | `files` | int | as given |",
    ):
        assert row in page


def test_the_fingerprint_changes_when_a_collected_field_is_added() -> None:
    bigger = Schema(
        commands=SCHEMA.commands,
        events=SCHEMA.events,
        attributes={**SCHEMA.attributes, "cache": field("bool", "Cache used")},
    )
    assert bigger.fingerprint() != SCHEMA.fingerprint()
    assert (
        Schema(
            commands=SCHEMA.commands, events=SCHEMA.events, attributes=SCHEMA.attributes
        ).fingerprint()
        == SCHEMA.fingerprint()
    )


def test_a_field_must_be_declared_with_field() -> None:
    with pytest.raises(SchemaError, match="attributes: x is not declared with field"):
        Schema(attributes={"x": "string"})  # type: ignore[dict-item]
