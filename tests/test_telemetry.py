"""What instrument() records, checked on the wire through the capture receiver."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import phonehome
from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, TEST_SCHEMA, app_logs, clean_environ


def run(receiver: OTLPReceiver, state_dir: Path, body, **kwargs) -> None:  # type: ignore[no-untyped-def]
    with phonehome.instrument(
        "democli",
        version="1.4.0",
        vendor=receiver.url,
        state_dir=state_dir,
        **{"schema": TEST_SCHEMA, **kwargs},
    ) as telemetry:
        body(telemetry)


def test_a_command_is_a_span_with_parameter_names_and_only_collected_values(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    def body(t: phonehome.Telemetry) -> None:
        with t.command(
            "generate", params={"language": "python", "openapi": "spec.yaml"}, collect={"language"}
        ):
            pass

    run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans)
    (span,) = otlp_receiver.spans
    assert span.name == "generate"
    assert span.status == "unset"
    assert span.attributes == {
        "command.name": "generate",
        "command.params": ["language", "openapi"],
        "command.param.language": "python",
        "command.result": "success",
        "process.exit.code": 0,
    }
    assert "spec.yaml" not in repr(otlp_receiver.spans)


def test_a_crashing_command_is_reported_once_and_the_exception_propagates_unchanged(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    raised = KeyError("missing")

    def body(t: phonehome.Telemetry) -> None:
        with t.command("fail"):
            raise raised

    with pytest.raises(KeyError) as caught:
        run(otlp_receiver, state_dir, body)
    assert caught.value is raised
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans and crashes(otlp_receiver))
    (span,) = otlp_receiver.spans
    assert span.status == "error"
    assert span.attributes["command.result"] == "crash"
    assert span.attributes["error.type"] == "KeyError"
    assert "process.exit.code" not in span.attributes  # nothing exited
    assert span.events == []  # the stack trace is the crash report's, sent once
    (crash,) = crashes(otlp_receiver)  # not again when it left the instrument() block
    assert crash.attributes["exception.type"] == "KeyError"
    assert crash.trace_id == span.trace_id


def crashes(receiver: OTLPReceiver) -> list[Any]:
    return [r for r in receiver.logs if r.event_name == "exception.unhandled"]


def installed(receiver: OTLPReceiver) -> bool:
    """The run's log records arrived (its ``install`` event is among them, in one export)."""
    return any(r.event_name == "install" for r in receiver.logs)


class _Abort(Exception):
    """A class named like click's, outside click: an ordinary exception."""


@pytest.mark.parametrize(
    ("exc", "result", "code", "error_type"),
    [
        (SystemExit(0), "success", 0, None),
        (SystemExit(None), "success", 0, None),
        (SystemExit(2), "failure", 2, "2"),
        (SystemExit("a message, printed"), "failure", 1, "1"),
        (KeyboardInterrupt(), "cancelled", None, "KeyboardInterrupt"),
        (_Abort(), "crash", None, f"{__name__}._Abort"),
    ],
)
def test_exits_and_interrupts_have_a_result_and_an_exit_code_and_are_no_crash(
    otlp_receiver: OTLPReceiver,
    state_dir: Path,
    exc: BaseException,
    result: str,
    code: int | None,
    error_type: str | None,
) -> None:
    def body(t: phonehome.Telemetry) -> None:
        with t.command("quit"):
            raise exc

    with pytest.raises(type(exc)):
        run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans and installed(otlp_receiver))
    attributes = otlp_receiver.spans[0].attributes
    assert attributes["command.result"] == result
    assert attributes.get("process.exit.code") == code
    assert attributes.get("error.type") == error_type
    assert len(crashes(otlp_receiver)) == (result == "crash")


@pytest.mark.parametrize(
    ("code", "usage_error", "result"),
    [(0, False, "success"), (3, False, "failure"), (2, True, "usage_error")],
)
def test_set_exit_code_ends_a_command_without_raising(
    otlp_receiver: OTLPReceiver, state_dir: Path, code: int, usage_error: bool, result: str
) -> None:
    def body(t: phonehome.Telemetry) -> None:
        with t.command("check") as span:
            span.set_exit_code(code, usage_error=usage_error)

    run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans and installed(otlp_receiver))
    (span,) = otlp_receiver.spans
    assert span.attributes["command.result"] == result
    assert span.attributes["process.exit.code"] == code
    assert span.status == ("unset" if code == 0 else "error")
    assert crashes(otlp_receiver) == []


def test_set_exit_code_is_a_no_op_while_off(state_dir: Path) -> None:
    with phonehome.instrument("democli", state_dir=state_dir, enabled=False) as t:
        with t.command("check") as span:
            span.set_exit_code(3)
    assert t.enabled is False


def test_commands_produce_execution_and_duration_metrics_by_command_and_result(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    def body(t: phonehome.Telemetry) -> None:
        for _ in range(3):
            with t.command("generate"):
                pass
        with pytest.raises(ValueError), t.command("fail"):
            raise ValueError

    run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(lambda: otlp_receiver.points("democli.command.duration"))
    executions = {
        (p.attributes["command.name"], p.attributes["command.result"]): p.value
        for p in otlp_receiver.points("democli.command.executions")
    }
    assert executions == {("generate", "success"): 3, ("fail", "failure"): 1}
    durations = otlp_receiver.points("democli.command.duration")
    assert {p.count for p in durations} == {3, 1}
    assert all(0 <= p.value < 5 for p in durations)
    units = {m.name: m.unit for m in otlp_receiver.metrics}
    assert units["democli.command.duration"] == "s"


def test_an_event_is_a_log_record_carrying_event_name(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    run(otlp_receiver, state_dir, lambda t: t.event("purchase_completed", {"amount": 149.99}))
    assert otlp_receiver.wait_until(lambda: app_logs(otlp_receiver))
    (record,) = app_logs(otlp_receiver)
    assert record.event_name == "purchase_completed"
    assert record.attributes == {"amount": 149.99, "event.name": "purchase_completed"}


def test_nested_spans_form_one_trace_and_traceparent_names_the_current_span(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    seen: list[str | None] = []

    def body(t: phonehome.Telemetry) -> None:
        with t.command("generate"), t.span("parse", {"files": 2}):
            seen.append(t.traceparent())

    run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2)
    spans = {s.name: s for s in otlp_receiver.spans}
    assert spans["parse"].parent_span_id == spans["generate"].span_id
    assert spans["parse"].trace_id == spans["generate"].trace_id
    assert spans["parse"].attributes == {"files": 2}
    (traceparent,) = seen
    assert traceparent is not None
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id, span_id) == ("00", spans["parse"].trace_id, spans["parse"].span_id)
    assert int(flags, 16) & 1  # sampled


def test_custom_counters_histograms_and_gauges(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    def body(t: phonehome.Telemetry) -> None:
        t.counter("files.generated").add(4, {"language": "go"})
        t.histogram("spec.size", unit="By").record(2048)
        t.gauge("cache.entries").set(7)

    run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.metrics) >= 3)
    assert [(p.attributes, p.value) for p in otlp_receiver.points("files.generated")] == [
        ({"language": "go"}, 4)
    ]
    assert [(p.value, p.count) for p in otlp_receiver.points("spec.size")] == [(2048, 1)]
    assert [p.value for p in otlp_receiver.points("cache.entries")] == [7]


def test_host_logging_at_warning_and_above_becomes_log_records_in_the_current_span(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    log = logging.getLogger("democli.core")

    def body(t: phonehome.Telemetry) -> None:
        with t.command("generate"):
            log.info("chatty")
            log.warning("disk almost full")
        log.error("failed: %s", "reason")

    run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(
        lambda: len(app_logs(otlp_receiver)) >= 2 and otlp_receiver.spans
    )
    by_body = {r.body: r for r in app_logs(otlp_receiver)}
    # the text the program's author wrote, not the values filled into it (they can hold
    # what the user typed); Schema(exception_messages=True) sends whole messages
    assert set(by_body) == {"disk almost full", "failed: %s"}
    assert by_body["disk almost full"].severity == "WARNING"
    assert by_body["disk almost full"].trace_id == otlp_receiver.spans[0].trace_id
    assert by_body["disk almost full"].attributes["logger.name"] == "democli.core"
    assert not any("code.file.path" in r.attributes for r in app_logs(otlp_receiver))
    log.warning("after the block")  # the handler is gone once telemetry ended
    assert "after the block" not in {r.body for r in app_logs(otlp_receiver)}


def test_the_resource_describes_the_product_anonymously(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    run(otlp_receiver, state_dir, lambda t: t.event("e"))
    run(otlp_receiver, state_dir, lambda t: t.event("e"))
    assert otlp_receiver.wait_until(lambda: len(app_logs(otlp_receiver)) == 2)
    first, second = (r.resource for r in app_logs(otlp_receiver))
    assert first["service.name"] == "democli"
    assert first["service.version"] == "1.4.0"
    assert first["os.type"] == sys.platform.replace("win32", "windows")
    assert first["host.arch"] and first["os.version"]
    assert first["process.runtime.version"] == ".".join(map(str, sys.version_info[:3]))
    assert first["device.id"] == second["device.id"]  # one install
    assert first["session.id"] != second["session.id"]  # two runs
    assert (state_dir / "install-id").read_text().strip() == first["device.id"]
    identifying = {socket.gethostname(), Path.home().name}
    assert not identifying & {str(v) for v in first.values()}
    assert not any(key.startswith(("host.name", "host.id", "user.")) for key in first)


def test_log_messages_are_sent_whole_when_the_schema_opts_in(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    schema = phonehome.Schema(attributes=dict(TEST_SCHEMA.attributes), exception_messages=True)

    def body(t: phonehome.Telemetry) -> None:
        logging.getLogger("democli.core").error("failed: %s", "reason")

    run(otlp_receiver, state_dir, body, schema=schema)
    assert otlp_receiver.wait_until(lambda: app_logs(otlp_receiver))
    assert [r.body for r in app_logs(otlp_receiver)] == ["failed: reason"]


def test_resource_variables_reach_the_users_destination_only_and_never_replace_identity(
    otlp_receiver: OTLPReceiver, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "renamed")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging,device.id=mine"
    )
    with OTLPReceiver() as mine:
        run(otlp_receiver, state_dir, lambda t: t.event("e"), user=mine.url)
        assert mine.wait_until(lambda: app_logs(mine))
        assert otlp_receiver.wait_until(lambda: app_logs(otlp_receiver))
        users = app_logs(mine)[0].resource
    vendors = app_logs(otlp_receiver)[0].resource
    assert users["service.name"] == "renamed"
    assert users["deployment.environment.name"] == "staging"
    assert users["device.id"] == vendors["device.id"] != "mine"
    assert vendors["service.name"] == "democli"
    assert "deployment.environment.name" not in vendors


def test_otel_traces_sampler_is_honoured(
    otlp_receiver: OTLPReceiver, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")

    def body(t: phonehome.Telemetry) -> None:
        with t.command("generate"):
            pass
        t.event("still-sent")

    run(otlp_receiver, state_dir, body)
    assert otlp_receiver.wait_until(lambda: app_logs(otlp_receiver))
    assert otlp_receiver.spans == []


def test_leaving_twice_is_harmless(otlp_receiver: OTLPReceiver, state_dir: Path) -> None:
    telemetry = phonehome.instrument("democli", vendor=otlp_receiver.url, state_dir=state_dir)
    with telemetry:
        telemetry.event("once")
    telemetry.shutdown()
    telemetry.__exit__(None, None, None)
    assert otlp_receiver.wait_until(lambda: app_logs(otlp_receiver))
    assert len(app_logs(otlp_receiver)) == 1


def test_flush_says_whether_the_destinations_took_what_was_recorded(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    with phonehome.instrument("democli", vendor=otlp_receiver.url, state_dir=state_dir) as t:
        with t.command("taken"):
            pass
        assert t.flush(10) is True
        assert "taken" in {span.name for span in otlp_receiver.spans}
        otlp_receiver.status = 503  # the collector refuses from now on
        with t.command("refused"):
            pass
        assert t.flush(1) is False  # kept in the spool for a later run
    assert "refused" not in {span.name for span in otlp_receiver.spans}
    assert list((state_dir / "spool").glob("*.seg"))


LATE_LOGGING = """
import sys, phonehome
with phonehome.instrument("democli", vendor=sys.argv[1], state_dir=sys.argv[2], mode="ci") as t:
    loaded_at_start = "logging" in sys.modules
    with t.command("generate"):
        import logging  # the host loads logging only now, inside a command
        logging.getLogger("host").warning("late %s", "warning")
print(loaded_at_start, logging.getLogRecordFactory() is logging.LogRecord)
"""


def test_logging_is_not_loaded_for_a_cli_that_never_logs_and_bridged_once_it_does(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", LATE_LOGGING, otlp_receiver.url, str(state_dir)],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    # not loaded by instrument(); the bridge is gone at the end (the factory is logging's own)
    assert result.stdout.split() == ["False", "True"]
    assert result.stderr == "late warning\n"  # the host's own output, unchanged
    assert otlp_receiver.wait_until(lambda: app_logs(otlp_receiver))
    (record,) = app_logs(otlp_receiver)
    assert (record.body, record.severity) == ("late %s", "WARNING")  # the author's text
    (span,) = otlp_receiver.spans
    assert record.trace_id == span.trace_id


def test_a_later_run_rewrites_none_of_the_install_state(state_dir: Path) -> None:
    """After the first runs, a run with consent on writes its segment and nothing else: the
    manifest carries no per-run id, so it is not rewritten (and synced to disk) every time."""

    def one_run() -> None:
        with phonehome.instrument("democli", vendor="http://127.0.0.1:9", state_dir=state_dir) as t:
            with t.command("generate"):
                pass

    one_run()
    one_run()

    def files() -> dict[str, tuple[int, int]]:
        found = (p for p in state_dir.iterdir() if p.is_file())
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in found}

    kept = files()
    assert {"config.json", "install-id", "lifecycle.json", "notice.json"} <= kept.keys()
    one_run()
    assert files() == kept
