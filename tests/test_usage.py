"""Usage collectors, the heartbeat and lifecycle events, on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest

import phonehome
from phonehome import Schema, field
from phonehome._core.settings import interval
from phonehome.testing import OTLPReceiver

SCHEMA = Schema(events={"summary": {"projects": field("int", "Projects held")}})


def run(receiver: OTLPReceiver, state_dir: Path, version: str = "1.0", **kwargs: object):  # type: ignore[no-untyped-def]
    telemetry = phonehome.instrument(
        "democli",
        version=version,
        vendor=receiver.url,
        state_dir=state_dir,
        mode="ci",
        schema=SCHEMA,
        **kwargs,
    )  # type: ignore[arg-type]
    return telemetry


def events(receiver: OTLPReceiver, name: str) -> list[dict[str, object]]:
    return [r.attributes for r in receiver.logs if r.event_name == name]


def test_a_collector_runs_at_most_once_per_interval_across_runs(
    lenient: None, otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    calls = []
    for _ in range(3):
        with run(otlp_receiver, state_dir) as t:

            @t.collector("summary", every="1h")
            def summary() -> dict[str, int]:
                calls.append(1)
                return {"projects": 7, "secret": "x"}

    assert len(calls) == 1
    assert events(otlp_receiver, "summary") == [{"projects": 7, "event.name": "summary"}]


def test_a_failing_collector_is_reported_not_fatal(
    otlp_receiver: OTLPReceiver, state_dir: Path
) -> None:
    with run(otlp_receiver, state_dir) as t:

        @t.collector("summary", every=60)
        def summary() -> dict[str, int]:
            raise OSError("database gone")

        with t.command("status"):
            pass
    assert events(otlp_receiver, "phonehome.collector.failed") == [
        {
            "collector": "summary",
            "error.type": "OSError",
            "event.name": "phonehome.collector.failed",
        }
    ]
    assert [s.name for s in otlp_receiver.spans] == ["status"]


def test_the_heartbeat_and_lifecycle_events(otlp_receiver: OTLPReceiver, state_dir: Path) -> None:
    with run(otlp_receiver, state_dir, heartbeat="24h"):
        pass
    with run(otlp_receiver, state_dir, heartbeat="24h"):
        pass
    with run(otlp_receiver, state_dir, version="1.1", heartbeat="24h"):
        pass
    assert len(events(otlp_receiver, "heartbeat")) == 1
    assert events(otlp_receiver, "install") == [
        {"version": "1.0", "channel": "unknown", "event.name": "install"}
    ]
    assert events(otlp_receiver, "upgrade") == [
        {"from": "1.0", "to": "1.1", "channel": "unknown", "event.name": "upgrade"}
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("30m", 1800), ("7d", 604800), ("10s", 10), (5, 5.0)]
)
def test_intervals(text: str | float, seconds: float) -> None:
    assert interval(text) == seconds


def test_a_bad_heartbeat_is_one_line(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with phonehome.instrument("democli", state_dir=state_dir, heartbeat="often") as t:
        assert t.enabled is False
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("phonehome: instrument(heartbeat='often'): ")


def test_the_channel_is_one_of_the_known_installers_or_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phonehome._host import usage as _usage

    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    info = site / "democli-1.0.dist-info"
    info.mkdir(parents=True)
    for written, sent in (("uv\n", "uv"), ("PIP", "pip"), ("my secret path /home/x\n", "other")):
        (info / "INSTALLER").write_text(written)
        assert _usage.installer("democli") == sent
    (info / "INSTALLER").write_bytes(b"\xff\xfe")
    assert _usage.installer("democli") == "other"
