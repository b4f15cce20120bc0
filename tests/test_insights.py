"""Every figure of ``phonehome insights`` equals a ground truth computed from the data alone,
on the embedded store (DuckDB) and on ClickHouse (chDB, the ClickHouse engine in-process),
also when deliveries were repeated."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from insights_data import (
    DAY,
    ChDB,
    Dataset,
    Dropped,
    Event,
    Run,
    logs_body,
    metrics_body,
    summary,
    traces_body,
    truth,
)

from phonehome._tools.insights import html, otlp, report, text
from phonehome._tools.insights.engines import Embedded
from phonehome._tools.insights.questions import Range
from phonehome._tools.insights.store import Store

T0 = 1_780_000_000 * 10**9
SINCE, UNTIL = T0 + 10 * DAY, T0 + 45 * DAY
EXAMPLES = 40 if os.environ.get("PHONEHOME_RELIABILITY") == "full" else 8
_counter = itertools.count()


@pytest.fixture(scope="module")
def chdb_session() -> Any:
    from chdb import session

    found = session.Session()
    yield found
    found.close()


def _unique(size: int) -> bytes:
    return next(_counter).to_bytes(size, "big")


installs = st.sampled_from([f"i{n}" for n in range(8)] + ["automation-claude-code"])
automations = st.sampled_from(["", "", "", "github-actions", "claude-code"])
results = st.sampled_from(["success", "success", "failure", "usage_error", "cancelled", "crash"])
moments = st.integers(T0, T0 + 50 * DAY)


@st.composite
def runs(draw: st.DrawFn) -> Run:
    result = draw(results)
    return Run(
        install=draw(installs),
        session=f"s{draw(st.integers(0, 5))}",
        version=draw(st.sampled_from(["1.0", "1.1", "2.0"])),
        os=draw(st.sampled_from(["linux", "darwin", "windows"])),
        arch=draw(st.sampled_from(["amd64", "arm64"])),
        python=draw(st.sampled_from(["3.11.4", "3.12.1"])),
        automation=draw(automations),
        command=draw(st.sampled_from(["generate", "version", "it's \\ odd"])),
        result=result,
        error="" if result == "success" else draw(st.sampled_from(["ValueError", "OSError"])),
        start=draw(moments),
        duration=draw(st.integers(0, 5 * 10**9)),
        # span ids are random: now and then two traces' spans share one (each counts)
        span_id=b"\x00" * 7 + b"\x01" if draw(st.integers(0, 5)) == 0 else _unique(8),
        trace_id=_unique(16),
    )


@st.composite
def events(draw: st.DrawFn) -> Event:
    return Event(
        install=draw(installs),
        session=f"s{draw(st.integers(0, 5))}",
        version=draw(st.sampled_from(["1.0", "2.0"])),
        automation=draw(automations),
        name=draw(st.sampled_from(["signup", "first_generate", "purchase"])),
        time=draw(moments),
    )


dropped = st.builds(
    Dropped,
    install=installs,
    session=st.sampled_from(["s0", "s1"]),
    reason=st.sampled_from(["size_cap", "age_cap", "rejected"]),
    count=st.integers(1, 50),
    time=moments,
)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[Dataset, list[bytes], list[bytes], list[bytes]]:
    data = Dataset(
        "demo-cli",
        draw(st.lists(runs(), min_size=1, max_size=40)),
        # a record is its time (ns), session and name: two events never share all three
        draw(st.lists(events(), max_size=25, unique_by=lambda e: (e.session, e.time, e.name))),
        draw(st.lists(dropped, max_size=4)),
    )
    # batches as the sender makes them, some delivered twice (a resend after kill -9)
    cut = draw(st.integers(0, len(data.runs)))
    traces = [
        traces_body(data.product, data.runs[:cut]),
        traces_body(data.product, data.runs[cut:]),
    ]
    logs = [logs_body(data.product, data.events)]
    metrics = [metrics_body(data.product, data.dropped, sent_at=1)]
    if draw(st.booleans()):
        traces.append(traces[draw(st.integers(0, 1))])
        logs.append(logs[0])
        metrics.append(metrics_body(data.product, data.dropped, sent_at=2))
    # another product's data is never counted
    traces.append(traces_body("other", data.runs[:3]))
    return data, traces, logs, metrics


def _load(target: Any, traces: list[bytes], logs: list[bytes], metrics: list[bytes]) -> None:
    for body in traces:
        target.insert(otlp.traces(body))
    for body in logs:
        target.insert(otlp.logs(body))
    for body in metrics:
        target.insert(otlp.metrics(body))


FUNNEL = ("signup", "first_generate", "purchase")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(found=datasets())
def test_every_figure_equals_the_ground_truth_on_both_engines(
    found: tuple[Dataset, list[bytes], list[bytes], list[bytes]],
    tmp_path_factory: pytest.TempPathFactory,
    chdb_session: Any,
) -> None:
    data, traces, logs, metrics = found
    path = tmp_path_factory.mktemp("store") / "store.duckdb"
    store = Store(path)
    _load(store, traces, logs, metrics)
    store.close()
    clickhouse = ChDB(chdb_session, f"t{next(_counter)}")
    try:
        _load(clickhouse, traces, logs, metrics)
        r = Range(data.product, SINCE, UNTIL)
        expected = truth(data, SINCE, UNTIL, FUNNEL)
        embedded = Embedded(path)
        try:
            if not expected["delivered"]:  # nothing in the range: one line, on both
                for engine in (embedded, clickhouse):
                    with pytest.raises(report.NoData, match="nothing between"):
                        report.build(engine, r, FUNNEL)
                return
            on_duckdb = report.build(embedded, r, FUNNEL)
        finally:
            embedded.close()
        on_clickhouse = report.build(clickhouse, r, FUNNEL)
    finally:
        clickhouse.drop()
    assert summary(on_duckdb) == expected
    assert data.product in text.render(on_duckdb) and "<svg" in html.render(on_duckdb)
    # the same questions give the same whole report on ClickHouse
    assert {**on_clickhouse, "engine": "duckdb"} == on_duckdb


def test_an_unknown_product_and_an_empty_range_are_one_line(tmp_path: Path) -> None:
    data = Dataset("demo-cli")
    path = tmp_path / "store.duckdb"
    store = Store(path)
    store.close()
    engine = Embedded(path)
    with pytest.raises(report.NoData, match=r"^--product nope: no telemetry"):
        report.build(engine, Range("nope", SINCE, UNTIL))
    with pytest.raises(report.NoData, match=r"^--since .* is not before --until"):
        report.build(engine, Range("nope", UNTIL, SINCE))
    engine.close()
    assert data.runs == []
