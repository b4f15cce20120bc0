"""Fan-out isolation: a slow or failing destination delays and loses nothing for the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from phonehome import FanOutSpanExporter


class Recording(SpanExporter):
    def __init__(self) -> None:
        self.names: list[str] = []
        self.arrived = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.names.extend(s.name for s in spans)
        self.arrived.set()
        return SpanExportResult.SUCCESS


class Stuck(SpanExporter):
    """Blocks every export until released: a destination that accepts and never answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.entered.set()
        self.release.wait(timeout=30)
        return SpanExportResult.SUCCESS


class Broken(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionResetError("reset by peer")

    def shutdown(self) -> None:
        raise RuntimeError("cannot even shut down")


def tracer_for(fanout: FanOutSpanExporter):  # type: ignore[no-untyped-def]
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(fanout))
    return provider.get_tracer("t")


def test_a_stuck_destination_does_not_delay_the_other() -> None:
    stuck, healthy = Stuck(), Recording()
    fanout = FanOutSpanExporter([stuck, healthy], names=["stuck", "healthy"])
    tracer = tracer_for(fanout)
    started = time.monotonic()
    for name in ("a", "b", "c"):
        tracer.start_span(name).end()
    assert time.monotonic() - started < 1.0  # export only enqueues
    assert fanout.force_flush(timeout_millis=500) is False  # the stuck lane is still busy
    assert healthy.names == ["a", "b", "c"]
    stuck.release.set()
    assert fanout.force_flush(timeout_millis=5000) is True
    assert stuck.calls == 3
    assert fanout.stats["stuck"].exported == 3


def test_a_failing_destination_does_not_cost_the_other_anything(lenient: None) -> None:
    healthy = Recording()
    fanout = FanOutSpanExporter([Broken(), healthy], names=["broken", "healthy"])
    tracer = tracer_for(fanout)
    tracer.start_span("a").end()
    assert fanout.force_flush(5000)
    assert healthy.names == ["a"]
    assert fanout.stats["broken"].failed == 1
    fanout.shutdown()  # the broken child's shutdown error is contained


def test_shutdown_is_bounded_by_one_shared_deadline() -> None:
    stuck = [Stuck(), Stuck(), Stuck()]
    fanout = FanOutSpanExporter(stuck, shutdown_timeout=0.3)
    tracer_for(fanout).start_span("a").end()
    started = time.monotonic()
    fanout.shutdown()
    elapsed = time.monotonic() - started
    for exporter in stuck:
        exporter.release.set()
    assert 0.25 <= elapsed < 1.0


def test_a_slow_lane_keeps_a_bounded_backlog_dropping_the_oldest() -> None:
    stuck = Stuck()
    fanout = FanOutSpanExporter([stuck], max_pending=2)
    tracer = tracer_for(fanout)
    tracer.start_span("a").end()
    assert stuck.entered.wait(5)  # "a" is in flight
    for name in "bcde":
        tracer.start_span(name).end()
    stats = fanout.stats["Stuck"]
    stuck.release.set()
    assert fanout.force_flush(5000)
    # one batch was in flight, two waited, the two oldest waiting were dropped
    assert (stats.exported, stats.dropped) == (3, 2)
