"""Bad input, fuzzed: no exception escapes into the host, and settings get one-line messages.
(A piece of the reliability suites; every destination here is on loopback.)"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phonehome
from phonehome import Schema, field
from phonehome.testing import OTLPReceiver
from tests import figures


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    def __repr__(self) -> str:  # hypothesis prints its examples with repr()
        return "Hostile()"


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.binary(max_size=20),
    st.just("x" * 20_000),
    st.builds(Hostile),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
SCHEMA = Schema(
    events={"e": {"v": field()}}, attributes={"v": field()}, commands={"c": {"v": field()}}
)


@settings(
    max_examples=figures.scale(15, 200), deadline=None, suppress_health_check=list(HealthCheck)
)
@given(value=values, name=st.one_of(st.text(max_size=30), st.builds(Hostile), st.integers()))
def test_hostile_values_in_every_position_never_reach_the_host(
    tmp_path_factory: pytest.TempPathFactory, value: Any, name: Any
) -> None:
    phonehome._core.diagnostics.set_strict(False)
    phonehome._core.diagnostics.set_strict_schema(False)
    figures.row("input").cases += 1
    with OTLPReceiver() as receiver:
        with phonehome.instrument(
            "democli",
            vendor=receiver.url,
            mode="ci",
            schema=SCHEMA,
            state_dir=tmp_path_factory.mktemp("s"),
        ) as t:
            with (
                t.command(
                    name,
                    params={"v": value, name: value} if isinstance(name, str) else {"v": value},
                ),
                t.span(name, {"v": value}) as span,
            ):
                span.set_attribute("v", value)
                span.add_event(name, {"v": value})
            t.event(name, {"v": value})
            t.event("e", {"v": value})
            t.counter("c").add(1, {"v": value})
            t.histogram("h").record(value, {"v": value})  # not even a number
        assert receiver.wait_until(lambda: receiver.spans, timeout=10)


FLAGS = [
    "DO_NOT_TRACK",
    "DEMOCLI_TELEMETRY_OPTOUT",
    "OTEL_SDK_DISABLED",
    "DEMOCLI_TELEMETRY_LEVEL",
    "DEMOCLI_TELEMETRY_MODE",
    "DEMOCLI_TELEMETRY_NOLOGO",
    "DEMOCLI_TELEMETRY_DEBUG",
    "DEMOCLI_TELEMETRY_VENDOR_OPTOUT",
    "DEMOCLI_TELEMETRY_SYSTEM_METRICS",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_TRACES_SAMPLER",
]
env_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)


@settings(
    max_examples=figures.scale(15, 200), deadline=None, suppress_health_check=list(HealthCheck)
)
@given(environment=st.dictionaries(st.sampled_from(FLAGS), env_text, max_size=len(FLAGS)))
def test_any_value_of_any_setting_variable_is_contained(
    tmp_path_factory: pytest.TempPathFactory,
    environment: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    phonehome._core.diagnostics.reset()
    figures.row("input").cases += 1
    with pytest.MonkeyPatch.context() as patch, OTLPReceiver() as receiver:
        for key, value in environment.items():
            patch.setenv(key, value)
        with phonehome.instrument(
            "democli",
            vendor=receiver.url,
            mode="ci",
            ci_budget=1.0,
            state_dir=tmp_path_factory.mktemp("s"),
        ) as t:
            with t.command("generate"):
                pass
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line in err.splitlines():
        # warnings name the setting; the notice (NOLOGO unset) and debug payloads are ours
        assert line.startswith(("phonehome: ", "phonehome debug: ")) or not line.startswith(
            "Traceback"
        )


def test_nan_and_infinity_are_sent_as_numbers(otlp_receiver: OTLPReceiver, state_dir: Path) -> None:
    with phonehome.instrument(
        "democli", vendor=otlp_receiver.url, mode="ci", schema=SCHEMA, state_dir=state_dir
    ) as t:
        t.event("e", {"v": math.inf})
    (record,) = [r for r in otlp_receiver.logs if r.event_name == "e"]
    assert record.attributes["v"] == math.inf
