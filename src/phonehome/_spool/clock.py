"""Wall and boot clocks: how long ago something kept on disk happened, whatever the wall
clock did meanwhile.

A moment is kept as its wall-clock time and, where the system has one, its time on a clock
that counts from boot (``CLOCK_BOOTTIME``, which goes on during suspend and never jumps) with
the boot's id (``/proc/sys/kernel/random/boot_id``). Within one boot the boot clock says how
much time passed, even if someone set the wall clock two hours or thirty days either way;
across a reboot only the wall clock can say, and :func:`since` may then be negative (the
wall clock went back): each caller decides what that means for it (a hold is over; a record
is not old).

Holds, backoff and the spool's age cap use it (``progress``, ``schedule``, ``segments``);
tests give their own :class:`Clock`.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
_INFINITY = float("inf")
BOOT_ID_LENGTH = 12
"""Hex digits of the boot id kept: enough to tell two boots apart, short in a file name."""


class Moment:
    """A point in time: wall-clock seconds, and boot-clock seconds with the boot's id (or
    ``None`` and ``""`` where there is no boot clock)."""

    __slots__ = ("boot", "boot_id", "wall")

    def __init__(self, wall: float, boot: float | None = None, boot_id: str = "") -> None:
        self.wall = wall
        self.boot = boot if boot_id else None
        self.boot_id = boot_id if boot is not None else ""

    def later(self, seconds: float) -> Moment:
        """This moment plus ``seconds`` on both clocks."""
        boot = None if self.boot is None else self.boot + seconds
        return Moment(self.wall + seconds, boot, self.boot_id)

    def text(self) -> str:
        """``<wall> [<boot> <boot id>]``: what files keep (:func:`parse` reads it back)."""
        if self.boot is None:
            return repr(self.wall)
        return f"{self.wall!r} {self.boot!r} {self.boot_id}"

    def __repr__(self) -> str:
        return f"Moment({self.text()})"


def parse(text: str) -> Moment | None:
    """A moment as :meth:`Moment.text` wrote it, or ``None`` if it is not one. A bare number
    (an older file's wall-clock time) is a moment without a boot clock."""
    parts = text.split()
    try:
        wall = float(parts[0])
        boot = float(parts[1]) if len(parts) >= 3 else None
    except (IndexError, ValueError):
        return None
    if not abs(wall) < _INFINITY or (boot is not None and not abs(boot) < _INFINITY):
        return None  # NaN or infinite
    return Moment(wall, boot, parts[2] if boot is not None else "")


def since(then: Moment, now: Moment) -> float:
    """Seconds from ``then`` to ``now``: by the boot clock within one boot, else by the wall
    clock (negative if it went back)."""
    if then.boot is not None and now.boot is not None and then.boot_id == now.boot_id:
        return now.boot - then.boot
    return now.wall - then.wall


def _boot_id() -> str:
    try:
        with open(BOOT_ID_FILE, "rb") as file:
            found = file.read(64)
    except OSError:
        return ""
    digits = "".join(c for c in found.decode("latin-1") if c in "0123456789abcdef")
    return digits[:BOOT_ID_LENGTH]


def _boot_clock() -> Callable[[], float] | None:
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    if clock_id is None:
        return None
    return lambda: time.clock_gettime(clock_id)


_SYSTEM: Any = object()


class Clock:
    """The wall clock and the boot clock, read together. By default the system's; a test
    gives its own (``boot=None``: a system without a boot clock)."""

    __slots__ = ("_boot", "_boot_id", "_wall")

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        boot: Callable[[], float] | None = _SYSTEM,
        boot_id: str | None = None,
    ) -> None:
        self._wall = wall
        self._boot = _boot_clock() if boot is _SYSTEM else boot
        self._boot_id = boot_id
        """Read on first use: a host that writes no segment never opens the file."""

    def now(self) -> Moment:
        boot = self._boot
        if boot is None:
            return Moment(self._wall())
        if self._boot_id is None:
            self._boot_id = _boot_id()
        return Moment(self._wall(), boot(), self._boot_id)


SYSTEM = Clock()
"""The system's clocks."""
