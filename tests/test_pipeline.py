"""The way through, in memory: recorded records, the schema, scrubbing and the SDK replay.

Fixed ids and a fixed clock make the exported OTLP data whole-comparable: each test records
what a program would, runs it through every stage that runs before an exporter, encodes it
with the OTLP encoders the exporters use, and compares the result with what the stages
promise, field by field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from phonehome import Schema, field
from phonehome._host.attributes import command_attributes
from phonehome._host.recorder import Ids, Recorder, RecordingSpan
from phonehome._policy.enforce import Enforcer
from phonehome._policy.exemptions import Exemptions
from phonehome._policy.scrub import Scrubber
from phonehome._sender.replay import map_segment
from phonehome._spool.records import Record
from phonehome._spool.segments import Segment

START = 1_700_000_000_000_000_000
STEP = 1_000
SALT = b"0123456789abcdef"
SCHEMA = Schema(
    commands={
        "generate": {
            "language": field(policy="enum", values=["go", "python"]),
            "token": field(policy="hash"),
            "out": field(policy="presence"),
        }
    },
    events={"purchase_completed": {"amount": field("float")}},
    attributes={"files": field("int")},
)
HEADER = {
    "destinations": ["vendor-x"],
    "resource": {"service.name": "democli", "device.id": "0" * 32},
    "metric_prefix": "democli",
}


def clock() -> Iterator[int]:
    now = START
    while True:
        yield now
        now += STEP


def run(program: Any, schema: Schema = SCHEMA) -> tuple[dict[str, Any], Enforcer]:
    """``program(recorder)``'s records through enforcement, scrubbing and the SDK, encoded."""
    records: list[Record] = []
    ticks = clock()
    recorder = Recorder(
        records.extend,
        10_000,
        Ids(seed=1),
        lambda: next(ticks),
        schema.exception_messages,
    )
    program(recorder)
    recorder.drain()
    enforcer = Enforcer(schema, lambda: SALT)
    kept = [enforcer.apply(r) for r in records if enforcer.keep(r)]
    scrub = Scrubber(home="/home/alice", user="alice")
    mapped = map_segment(
        Segment("test", HEADER, kept, 0), lambda: True, scrub, Exemptions.of(schema)
    )
    exported: dict[str, Any] = {}
    if mapped.spans:
        exported["spans"] = _only(MessageToDict(encode_spans(mapped.spans)), "Spans")["spans"]
    if mapped.logs:
        exported["logs"] = _only(MessageToDict(encode_logs(mapped.logs)), "Logs")["logRecords"]
    if mapped.metrics is not None:
        exported["metrics"] = _points(MessageToDict(encode_metrics(mapped.metrics)))
    return exported, enforcer


def _only(message: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = message[f"resource{kind}"]
    attributes = _attributes(resource["resource"]["attributes"])
    assert attributes["service.name"] == "democli" and attributes["device.id"] == "0" * 32
    (scope,) = resource[f"scope{kind}"]
    return dict(scope)


def _attributes(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    return {p["key"]: next(iter(p["value"].values())) for p in pairs}


def _points(message: dict[str, Any]) -> dict[str, Any]:
    """Each metric's data points (values and attributes; the timestamps are the SDK's)."""
    found: dict[str, Any] = {}
    for resource in message["resourceMetrics"]:
        for scope in resource["scopeMetrics"]:
            for metric in scope["metrics"]:
                data = next(v for k, v in metric.items() if k in ("sum", "histogram", "gauge"))
                found[metric["name"]] = sorted(
                    (
                        _attributes(p.get("attributes", [])),
                        p.get("asInt") or p.get("asDouble") or p.get("count"),
                    )
                    for p in data["dataPoints"]
                )
    return found


def _ids() -> Iterator[str]:
    """The ids a recorder seeded with 1 hands out, in order, as OTLP/JSON shows them."""
    import base64

    ids = Ids(seed=1)
    yield base64.b64encode(ids.trace_id().to_bytes(16, "big")).decode()
    while True:
        yield base64.b64encode(ids.span_id().to_bytes(8, "big")).decode()


def command(recorder: Recorder, name: str, params: dict[str, Any]) -> RecordingSpan:
    declared = SCHEMA.collectable(name, ())
    return RecordingSpan(recorder, name, command_attributes(name, params, (), declared), True)


def test_a_command_with_a_nested_span_leaves_as_the_schema_says() -> None:
    def program(recorder: Recorder) -> None:
        params = {"language": "rust", "token": "s3cr3t", "out": "/home/alice/out"}
        with command(recorder, "generate", params):
            with RecordingSpan(recorder, "parse", {"files": 3, "secret": "x"}, False) as span:
                span.add_event("cache miss", {"files": 1, "path": "/home/alice/a"})

    exported, enforcer = run(program)
    trace, command_id, parse_id = (next(ids := _ids()), next(ids), next(ids))
    parse, generate = exported["spans"]
    assert parse == {
        "traceId": trace,
        "spanId": parse_id,
        "parentSpanId": command_id,
        "name": "parse",
        "kind": "SPAN_KIND_INTERNAL",
        "startTimeUnixNano": str(START + 1 * STEP),
        "endTimeUnixNano": str(START + 3 * STEP),
        "attributes": [{"key": "files", "value": {"intValue": "3"}}],
        "events": [
            {
                "timeUnixNano": str(START + 2 * STEP),
                "name": "cache miss",
                "attributes": [{"key": "files", "value": {"intValue": "1"}}],
            }
        ],
        "status": {},
        "flags": 256,  # the parent is local (OTLP's "has is_remote" bit, not remote)
    }
    assert _attributes(generate.pop("attributes")) == {
        "command.name": "generate",
        "command.params": {"values": [{"stringValue": n} for n in ("language", "out", "token")]},
        "command.param.language": "other",  # not one of the enum's values
        "command.param.token": hashlib.sha256(SALT + b"s3cr3t").hexdigest(),
        "command.result": "success",
        "process.exit.code": "0",
    }
    assert generate == {
        "traceId": trace,
        "spanId": command_id,
        "name": "generate",
        "kind": "SPAN_KIND_INTERNAL",
        "startTimeUnixNano": str(START),
        "endTimeUnixNano": str(START + 4 * STEP),
        "status": {},
        "flags": 256,
    }
    assert enforcer.undeclared == 2  # the span's "secret" and the event's "path"
    assert exported["metrics"] == {
        "democli.command.duration": [
            ({"command.name": "generate", "command.result": "success"}, "1")
        ],
        "democli.command.executions": [
            ({"command.name": "generate", "command.result": "success"}, "1")
        ],
    }


def failing(recorder: Recorder) -> None:
    with pytest.raises(ValueError), command(recorder, "generate", {}):
        try:
            raise KeyError("the user typed: DROP TABLE users")
        except KeyError:
            raise ValueError("cannot read /home/alice/spec.yaml for alice@example.com") from None


def test_a_failed_command_carries_its_type_and_frames_not_its_message() -> None:
    exported, _ = run(failing)
    (span,) = exported["spans"]
    assert _attributes(span["attributes"]) == {
        "command.name": "generate",
        "command.result": "failure",
        "error.type": "ValueError",
    }  # handled by the program: no crash, and no exit code
    assert span["status"] == {"code": "STATUS_CODE_ERROR", "message": "ValueError"}
    (event,) = span["events"]
    assert (event["name"], event["timeUnixNano"]) == ("exception", str(START + STEP))
    assert _attributes(event["attributes"]) == {
        "exception.type": "ValueError",
        "exception.stacktrace": (
            "Traceback (most recent call last):\n"
            f'  File "test_pipeline.py", line {failing.__code__.co_firstlineno + 5}, in failing\n'
            "ValueError\n"
        ),
    }
    assert exported["metrics"]["democli.command.executions"] == [
        ({"command.name": "generate", "command.result": "failure", "error.type": "ValueError"}, "1")
    ]


def test_with_messages_opted_in_they_are_sent_scrubbed_and_chained_ones_by_type() -> None:
    schema = Schema(commands=SCHEMA.commands, exception_messages=True)

    def chained(recorder: Recorder) -> None:
        with pytest.raises(ValueError), command(recorder, "generate", {}):
            try:
                raise KeyError("alice@example.com")
            except KeyError as error:
                raise ValueError("cannot read /home/alice/spec.yaml") from error

    exported, _ = run(chained, schema)
    (event,) = exported["spans"][0]["events"]
    attributes = _attributes(event["attributes"])
    assert attributes["exception.message"] == "cannot read ~/spec.yaml"
    stack = attributes["exception.stacktrace"]
    assert stack.startswith("Traceback (most recent call last):\n")
    assert "KeyError: '<email>'\n\nThe above exception was the direct cause" in stack
    assert stack.endswith("ValueError: cannot read ~/spec.yaml\n")


def test_a_crashed_command_is_reported_once_scrubbed_in_its_span() -> None:
    def program(recorder: Recorder) -> None:
        error = ValueError("cannot read /home/alice/spec.yaml for alice@example.com")
        with pytest.raises(ValueError), command(recorder, "generate", {}):
            raise error
        recorder.crash(error)  # it left the instrument() block
        recorder.crash(error)  # and is reported once

    exported, _ = run(program)
    (span,) = exported["spans"]
    assert _attributes(span["attributes"]) == {
        "command.name": "generate",
        "command.result": "crash",
        "error.type": "ValueError",
    }
    assert span["status"] == {"code": "STATUS_CODE_ERROR", "message": "ValueError"}
    assert "events" not in span  # the stack trace is in the crash report, once
    (crash,) = exported["logs"]
    assert (crash["traceId"], crash["spanId"]) == (span["traceId"], span["spanId"])
    assert (crash["severityText"], crash["eventName"]) == ("FATAL", "exception.unhandled")
    exception = _attributes(crash["attributes"])
    assert exception.pop("exception.stacktrace").endswith("\nValueError\n")  # no message
    assert exception == {"exception.type": "ValueError"}
    assert exported["metrics"]["democli.command.executions"] == [
        ({"command.name": "generate", "command.result": "crash", "error.type": "ValueError"}, "1")
    ]


def test_events_keep_declared_fields_and_log_lines_keep_only_built_in_ones() -> None:
    def program(recorder: Recorder) -> None:
        recorder.event("purchase_completed", {"amount": 9.5, "email": "bob@example.com"})
        recorder.log(17, "ERROR", "lost /home/alice/db", {"logger.name": "app", "user": "alice"})

    exported, enforcer = run(program)
    event, line = exported["logs"]
    assert event == {
        "timeUnixNano": str(START),
        "observedTimeUnixNano": str(START),
        "severityNumber": "SEVERITY_NUMBER_INFO",
        "severityText": "INFO",
        "body": {"stringValue": "purchase_completed"},
        "attributes": [
            {"key": "amount", "value": {"doubleValue": 9.5}},
            {"key": "event.name", "value": {"stringValue": "purchase_completed"}},
        ],
        "eventName": "purchase_completed",
    }
    assert line == {
        "timeUnixNano": str(START + STEP),
        "observedTimeUnixNano": str(START + STEP),
        "severityNumber": "SEVERITY_NUMBER_ERROR",
        "severityText": "ERROR",
        "body": {"stringValue": "lost ~/db"},
        "attributes": [{"key": "logger.name", "value": {"stringValue": "app"}}],
    }
    assert enforcer.undeclared == 1  # the event's "email"; a log line's extras are not fields
    assert "metrics" not in exported


def test_measurements_are_aggregated_per_attribute_set() -> None:
    from phonehome._spool.records import measure

    def program(recorder: Recorder) -> None:
        for files in (1, 2, 2):
            recorder.add(measure("counter", "democli.files", "{file}", "", files, {"files": 2}))
        recorder.add(measure("gauge", "democli.queue", "", "", 7, {}))

    exported, _ = run(program)
    assert exported == {
        "metrics": {"democli.files": [({"files": "2"}, "5")], "democli.queue": [({}, "7")]}
    }
