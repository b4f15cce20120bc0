"""The consent resolver: every source, its precedence, and the reason it reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import phonehome
from phonehome._core.consent import Resolver
from phonehome.testing import OTLPReceiver


def resolver(state_dir: Path, default: str = "opt-out", enabled: bool | None = None) -> Resolver:
    return Resolver("DEMOCLI", default, enabled, state_dir)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DO_NOT_TRACK", "1"),
        ("DO_NOT_TRACK", "TRUE"),
        ("DEMOCLI_TELEMETRY_OPTOUT", "yes"),
        ("DEMOCLI_TELEMETRY_OPTOUT", "On"),
        ("OTEL_SDK_DISABLED", "true"),
    ],
)
def test_an_off_variable_turns_telemetry_off_and_is_named(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    decision = resolver(state_dir, enabled=True).resolve()
    assert decision.enabled is False
    assert decision.source == variable
    assert variable in decision.detail


@pytest.mark.parametrize(
    "variable", ["DO_NOT_TRACK", "DEMOCLI_TELEMETRY_OPTOUT", "OTEL_SDK_DISABLED"]
)
@pytest.mark.parametrize("value", ["0", "false", "No", "OFF"])
def test_a_false_variable_has_no_say(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    decision = resolver(state_dir).resolve()
    assert (decision.enabled, decision.source) == (True, "default")


@pytest.mark.parametrize(
    "variable", ["DO_NOT_TRACK", "DEMOCLI_TELEMETRY_OPTOUT", "OTEL_SDK_DISABLED"]
)
def test_an_invalid_value_counts_as_off_with_one_warning_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
    variable: str,
) -> None:
    monkeypatch.setenv(variable, "maybe")
    first = resolver(state_dir).resolve()
    second = resolver(state_dir).resolve()
    assert first.enabled is False and second.enabled is False
    assert first.source == variable
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert variable in lines[0] and "'maybe'" in lines[0]


def test_off_sources_are_checked_in_the_documented_order(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("DEMOCLI_TELEMETRY_OPTOUT", "1")
    assert resolver(state_dir).resolve().source == "DEMOCLI_TELEMETRY_OPTOUT"
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    assert resolver(state_dir).resolve().source == "DO_NOT_TRACK"


def test_the_product_flag_false_wins_over_a_stored_yes(state_dir: Path) -> None:
    resolver(state_dir).store_choice(True)
    decision = resolver(state_dir, enabled=False).resolve()
    assert (decision.enabled, decision.source) == (False, "enabled")


def test_a_stored_no_wins_over_the_product_flag_true(state_dir: Path) -> None:
    resolver(state_dir).store_choice(False)
    decision = resolver(state_dir, enabled=True).resolve()
    assert (decision.enabled, decision.source) == (False, "stored")


def test_opt_in_is_off_until_enabled(state_dir: Path) -> None:
    assert resolver(state_dir, "opt-in").resolve() == phonehome.Decision(
        False, "default", "the product's default (opt-in)"
    )
    assert resolver(state_dir, "opt-in", enabled=True).resolve().enabled is True
    resolver(state_dir, "opt-in").store_choice(True)
    decision = resolver(state_dir, "opt-in").resolve()
    assert (decision.enabled, decision.source) == (True, "stored")


def test_opt_out_is_on_unless_refused(state_dir: Path) -> None:
    assert resolver(state_dir).resolve().enabled is True


def test_the_stored_choice_is_a_private_file(state_dir: Path) -> None:
    resolver(state_dir).store_choice(False)
    path = state_dir / "consent.json"
    assert json.loads(path.read_text())["enabled"] is False
    assert path.stat().st_mode & 0o777 == 0o600
    assert state_dir.stat().st_mode & 0o777 == 0o700


def test_an_unreadable_stored_choice_is_ignored_with_a_warning(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir.mkdir()
    (state_dir / "consent.json").write_text("{not json")
    decision = resolver(state_dir).resolve()
    assert (decision.enabled, decision.source) == (True, "default")
    assert "consent.json" in capsys.readouterr().err


def test_instrument_reports_the_deciding_source(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    monkeypatch.setenv("DEMOCLI_TELEMETRY_OPTOUT", "1")
    with phonehome.instrument("democli", state_dir=state_dir) as telemetry:
        assert telemetry.enabled is False
        assert telemetry.decision.source == "DEMOCLI_TELEMETRY_OPTOUT"


def test_the_prefix_comes_from_the_product_name(
    monkeypatch: pytest.MonkeyPatch, state_dir: Path
) -> None:
    monkeypatch.setenv("MY_CLI_2_TELEMETRY_OPTOUT", "1")
    with phonehome.instrument("my-cli.2", state_dir=state_dir) as telemetry:
        assert telemetry.decision.source == "MY_CLI_2_TELEMETRY_OPTOUT"


def test_disable_stores_the_choice_stops_recording_and_purges_what_is_held(
    state_dir: Path, otlp_receiver: OTLPReceiver
) -> None:
    with phonehome.instrument("democli", vendor=otlp_receiver.url, state_dir=state_dir) as t:
        assert t.enabled
        with t.command("delivered-before"):
            pass
        assert t.flush(10)
        with t.command("held-at-revoke"):
            pass
        t.disable()
        assert t.enabled is False
        with t.command("after-revoke"):
            pass
    assert resolver(state_dir).resolve().source == "stored"
    assert [s.name for s in otlp_receiver.spans] == ["delivered-before"]
    assert not list((state_dir / "spool").glob("*.seg"))
