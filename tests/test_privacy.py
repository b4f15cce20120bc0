"""Privacy on the wire: the first-run notice, debug output, identity, automation, levels,
and the vendor opt-out, each run as a user would run the program."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phonehome.testing import OTLPReceiver
from tests.conftest import ROOT, app_logs, clean_environ

HOST = """
import logging, sys, phonehome
schema = phonehome.Schema(commands={"generate": {"language": phonehome.field(
    "string", "Target language", policy="enum", values=["python", "go"])}},
    **({"events": {"extra": {}}} if len(sys.argv) > 4 else {}))
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          mode="ci", schema=schema, notice_url="https://example.com/t") as t:
    with t.command("generate", params={"language": "go"}):
        pass
    try:
        with t.command("fail"):
            raise ValueError("no")
    except ValueError:
        pass
    logging.getLogger("host").error("an error")
    if sys.argv[3] == "crash":
        raise RuntimeError("unhandled")
"""


def run(
    vendor: str, state: Path, *, crash: bool = False, grow: bool = False, **environ: str
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", HOST, vendor, str(state), "crash" if crash else "ok"]
    if grow:
        argv.append("grow")
    return subprocess.run(
        argv, env=clean_environ(**environ), capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def shown(result: subprocess.CompletedProcess[str]) -> bool:
    return "democli collects anonymous usage data" in result.stderr


COLLECTING = """
import sys, phonehome
with phonehome.instrument("democli", vendor=sys.argv[1], state_dir=sys.argv[2], mode="ci") as t:
    with t.command("generate", params={"language": "go", "out": "./x", "target": "linux"},
                   collect=set(sys.argv[3].split(",")) - {""}):
        print("generated")
"""


def test_a_value_collected_that_no_notice_named_shows_the_notice_again_and_waits(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    def collecting(names: str, nologo: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", COLLECTING, otlp_receiver.url, str(tmp_path), names],
            env=clean_environ(DEMOCLI_TELEMETRY_NOLOGO=nologo),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    def sent() -> list[dict[str, object]]:
        return [dict(s.attributes) for s in otlp_receiver.spans]

    first = collecting("language")  # the notice at the start, then one line for the value
    assert first.stdout == "generated\n" and shown(first)
    assert first.stderr.splitlines()[-1] == "democli also records the values of language."
    second = collecting("language")  # seen: the first run's data and its own go
    assert not second.stderr and otlp_receiver.wait_until(lambda: len(sent()) == 2)
    third = collecting("language,out")  # a value no notice named: shown again, held
    assert "It records: " in third.stderr and "the values of language, out" in third.stderr
    assert third.stdout == "generated\n" and len(sent()) == 2
    fourth = collecting("language,out")  # the next run confirms it: both go
    assert not fourth.stderr and otlp_receiver.wait_until(lambda: len(sent()) == 4)
    assert [a.get("command.param.out") for a in sent()] == [None, None, "./x", "./x"]
    hidden = collecting("language,out,target", nologo="1")  # named, not shown: sent at once
    assert not hidden.stderr and otlp_receiver.wait_until(lambda: len(sent()) == 5)
    assert sent()[-1]["command.param.target"] == "linux"
    assert "target" in (tmp_path / "notice.json").read_text()


def test_nothing_leaves_before_the_notice_and_the_first_run_is_sent_by_the_next(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    first = run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_NOLOGO="")
    assert first.returncode == 0 and shown(first)
    assert "DEMOCLI_TELEMETRY_OPTOUT=1" in first.stderr
    assert "Read more: https://example.com/t" in first.stderr
    assert otlp_receiver.requests == []  # shown, and still nothing sent from that run
    second = run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_NOLOGO="")
    assert second.returncode == 0 and not shown(second) and second.stderr == "an error\n"
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 4)  # both runs


def test_opting_out_after_the_notice_purges_what_the_first_run_held(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    assert shown(run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_NOLOGO=""))
    assert list((tmp_path / "spool").glob("*.seg"))
    run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_OPTOUT="1", DEMOCLI_TELEMETRY_NOLOGO="")
    assert list((tmp_path / "spool").glob("*.seg")) == []
    run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_NOLOGO="")  # opted in again
    assert otlp_receiver.wait_until(lambda: len(otlp_receiver.spans) == 2)
    assert {s.resource["session.id"] for s in otlp_receiver.spans} == {
        otlp_receiver.spans[0].resource["session.id"]
    }  # only the last run's


def test_a_new_collected_field_shows_the_notice_again(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    assert shown(run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_NOLOGO=""))
    assert not shown(run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_NOLOGO=""))
    assert shown(run(otlp_receiver.url, tmp_path, grow=True, DEMOCLI_TELEMETRY_NOLOGO=""))


def test_the_notice_is_never_shown_with_consent_off(tmp_path: Path) -> None:
    result = run(
        "http://127.0.0.1:9", tmp_path, DEMOCLI_TELEMETRY_OPTOUT="1", DEMOCLI_TELEMETRY_NOLOGO=""
    )
    assert result.stderr == "an error\n"  # the host's own logging, nothing of ours
    assert list(tmp_path.iterdir()) == []


def test_nologo_hides_the_notice_without_changing_consent(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    result = run(otlp_receiver.url, tmp_path, DEMOCLI_TELEMETRY_NOLOGO="1")
    assert result.stderr == "an error\n"  # the host's own logging, as without us
    assert len(otlp_receiver.spans) == 2


def test_debug_prints_the_final_payload_and_sends_nothing(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    result = run(
        otlp_receiver.url,
        tmp_path,
        DEMOCLI_TELEMETRY_DEBUG="1",
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
    )
    assert result.returncode == 0
    assert otlp_receiver.requests == []
    assert not list(tmp_path.glob("spool/*.seg"))
    headers = [line for line in result.stderr.splitlines() if line.startswith("phonehome debug:")]
    assert headers[0].startswith(
        f"phonehome debug: payload for vendor destination otlp {otlp_receiver.url}"
    )
    assert "payload for user destination otlp OTEL_EXPORTER_OTLP_* variables" in headers[1]
    assert headers[-1] == "phonehome debug: nothing was sent"
    payload = result.stderr.split("not sent:\n", 1)[1].split("\nphonehome debug:", 1)[0]
    data = json.loads(payload)
    names = [
        s["name"]
        for rs in data["traces"]["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    ]
    assert names == ["generate", "fail"]


def test_levels_choose_what_is_sent(otlp_receiver: OTLPReceiver, tmp_path: Path) -> None:
    def names(level: str, crash: bool = False) -> set[str]:
        otlp_receiver.spans.clear()
        otlp_receiver.logs.clear()
        run(otlp_receiver.url, tmp_path / level, crash=crash, DEMOCLI_TELEMETRY_LEVEL=level)
        return {s.name for s in otlp_receiver.spans} | {
            f"log:{r.event_name or r.body}" for r in app_logs(otlp_receiver)
        }

    assert names("all") == {"generate", "fail", "log:an error"}
    assert names("error") == {"fail", "log:an error"}
    assert names("crash", crash=True) == {"log:exception.unhandled"}
    assert names("crash") == set()
    assert names("off") == set()
    assert not (tmp_path / "off").exists()


def test_an_unhandled_exception_is_a_crash_record_with_a_relative_stack(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    result = run(otlp_receiver.url, tmp_path, crash=True)
    assert result.returncode == 1 and "RuntimeError: unhandled" in result.stderr
    (crash,) = [r for r in otlp_receiver.logs if r.event_name == "exception.unhandled"]
    assert crash.severity == "FATAL"
    assert crash.attributes["exception.type"] == "RuntimeError"
    assert str(ROOT) not in crash.attributes["exception.stacktrace"]


def test_vendor_opt_out_keeps_the_users_own_copy(tmp_path: Path) -> None:
    with OTLPReceiver() as vendor, OTLPReceiver() as user:
        run(
            vendor.url,
            tmp_path,
            DEMOCLI_TELEMETRY_VENDOR_OPTOUT="1",
            OTEL_EXPORTER_OTLP_ENDPOINT=user.url,
        )
        assert user.wait_until(lambda: len(user.spans) == 2)
        assert vendor.requests == []


def test_a_vendor_opt_out_that_is_not_yes_or_no_counts_as_off_and_says_so(
    tmp_path: Path,
) -> None:
    """The user meant to keep the vendor out: a value phonehome cannot read says so and
    sends the vendor nothing (it was read as unset, and everything went out)."""
    with OTLPReceiver() as vendor, OTLPReceiver() as user:
        ran = run(
            vendor.url,
            tmp_path,
            DEMOCLI_TELEMETRY_VENDOR_OPTOUT="ja",
            OTEL_EXPORTER_OTLP_ENDPOINT=user.url,
        )
        assert ran.returncode == 0
        assert ran.stderr.splitlines() == [
            "phonehome: DEMOCLI_TELEMETRY_VENDOR_OPTOUT='ja' is not a yes/no value (use "
            "1/true/yes/on or 0/false/no/off); the vendor's copy is off until it is fixed",
            "an error",
        ]
        assert user.wait_until(lambda: len(user.spans) == 2)
        assert vendor.requests == []


@pytest.mark.parametrize(("policy", "sent"), [("tag", True), ("collapse", True), ("drop", False)])
def test_ci_and_agents_follow_the_policy_and_no_id_is_minted(
    otlp_receiver: OTLPReceiver, tmp_path: Path, policy: str, sent: bool
) -> None:
    code = HOST.replace('notice_url="https://example.com/t"', f'automation="{policy}"')
    for run_number in range(2):
        subprocess.run(
            [sys.executable, "-c", code, otlp_receiver.url, str(tmp_path), "ok"],
            env=clean_environ(GITHUB_ACTIONS="true"),
            capture_output=True,
            timeout=60,
            cwd=ROOT,
            check=True,
        )
        del run_number
    assert not (tmp_path / "install-id").exists() and not (tmp_path / "salt").exists()
    if not sent:
        assert otlp_receiver.requests == [] and list(tmp_path.iterdir()) == []
        return
    ids = {s.resource["device.id"] for s in otlp_receiver.spans}
    if policy == "tag":
        assert len(ids) == 2  # every run its own id
        assert {s.resource["phonehome.automation"] for s in otlp_receiver.spans} == {
            "github-actions"
        }
    else:
        assert ids == {"automation-github-actions"}


@pytest.mark.parametrize(
    ("variable", "forgotten"),
    [
        ({"DO_NOT_TRACK": "1"}, True),
        ({"DEMOCLI_TELEMETRY_OPTOUT": "yes"}, True),
        ({"DEMOCLI_TELEMETRY_LEVEL": "off"}, True),
        ({"GITHUB_ACTIONS": "true"}, False),  # automation="drop": not the user's no
    ],
)
def test_an_opt_out_by_variable_forgets_the_install_id_and_salt_too(
    tmp_path: Path, variable: dict[str, str], forgotten: bool
) -> None:
    code = HOST.replace('notice_url="https://example.com/t"', 'automation="drop"')
    on = run("http://127.0.0.1:9", tmp_path)  # the vendor down: an id all the same
    assert on.returncode == 0, on.stderr
    first = (tmp_path / "install-id").read_text()
    off = subprocess.run(
        [sys.executable, "-c", code, "http://127.0.0.1:9", str(tmp_path), "ok"],
        env=clean_environ(**variable),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert off.returncode == 0, off.stderr
    if forgotten:
        assert not (tmp_path / "install-id").exists() and not (tmp_path / "salt").exists()
    else:
        assert (tmp_path / "install-id").read_text() == first
    assert not list((tmp_path / "spool").glob("*.seg"))  # what waited is purged either way


def test_reset_id_and_opt_out_then_in_start_a_new_identity(tmp_path: Path) -> None:
    import phonehome

    with phonehome.instrument(
        "democli", vendor="http://127.0.0.1:9", state_dir=tmp_path, mode="ci", ci_budget=0.1
    ):
        pass
    first = (tmp_path / "install-id").read_text()
    with phonehome.instrument(
        "democli", vendor="http://127.0.0.1:9", state_dir=tmp_path, mode="ci", ci_budget=0.1
    ) as t:
        t.reset_id()
    assert not (tmp_path / "install-id").exists()
    with phonehome.instrument(
        "democli", vendor="http://127.0.0.1:9", state_dir=tmp_path, mode="ci", ci_budget=0.1
    ) as t:
        second = (tmp_path / "install-id").read_text()
        t.disable()
    assert second != first and not (tmp_path / "install-id").exists()
    with phonehome.instrument(
        "democli", vendor="http://127.0.0.1:9", state_dir=tmp_path, mode="ci", ci_budget=0.1
    ) as t:
        assert t.enabled is False  # the stored no
        t.enable()
    with phonehome.instrument(
        "democli", vendor="http://127.0.0.1:9", state_dir=tmp_path, mode="ci", ci_budget=0.1
    ):
        third = (tmp_path / "install-id").read_text()
    assert third not in (first, second)
