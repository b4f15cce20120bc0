"""A service's background delivery: every interval, the periodic work, then a delivery.

A block becomes a service when ``mode="service"``, or when an ``auto`` block has run longer
than ``PROMOTE_AFTER``: from then on a daemon thread runs ``tick`` (due usage collectors,
the heartbeat, system metrics, spooling what is buffered) and delivers in this process.
"""

from __future__ import annotations

import threading

from phonehome._core.diagnostics import record_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Service:
    """The thread that ticks and delivers every ``interval`` seconds until stopped."""

    def __init__(
        self, interval: float, tick: Callable[[], None], deliver: Callable[[float], bool]
    ) -> None:
        self._interval = interval
        self._tick = tick
        self._deliver = deliver
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="phonehome-service", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop ticking; wait at most ``timeout`` for a delivery under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        interval = self._interval
        while not self._stop.wait(interval):
            try:
                self._tick()
                self._deliver(max(interval, 1.0))
            except Exception as error:
                record_error("service delivery", error)
