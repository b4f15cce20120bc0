"""When each destination may be tried again: ``Retry-After`` holds and the persistent backoff.

Kept with the progress (``<spool>/progress/``), each wait as its length and the moment it
began on both clocks (``clock``), so that no wall-clock jump stretches or cuts it:

- ``<key>.hold``: ``<seconds> <moment>``: the destination asked (``Retry-After``) not to be
  tried for that long; never more than ``MAX_HOLD``, whatever it asked. An older sender's
  file holds one number, the wall-clock time to wait until: it counts from the file's
  modification time, capped the same way.
- ``<key>.backoff``: ``<failures> <seconds> <moment>``: that many deliveries in a row failed;
  the next waits ``BACKOFF_FIRST`` doubling with each failure up to ``BACKOFF_MAX``, across
  runs, so a machine offline for a day makes a bounded number of attempts (:func:`attempts`).
- ``all.waiting``: ``<key> <seconds> <moment>`` for each destination that waits: the one small
  file a CLI host reads (:func:`resting`) so that it starts no sender while every destination
  of its own waits.

A wait whose moment lies ahead of now is over: the wall clock went back across a reboot, and
a wait cannot be trusted against a clock that moved (trying once too early costs one attempt).

A CLI host loads this module whenever a destination waits (offline, a collector down), so it
works on ``str`` paths: ``pathlib`` would cost each such run milliseconds.
"""

from __future__ import annotations

import os

from phonehome._core import state as statefiles
from phonehome._spool.clock import SYSTEM, Clock, Moment, parse, since
from phonehome._spool.segments import WAITING_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from phonehome._core.state import StrPath

MAX_HOLD = 3600.0
"""The longest ``Retry-After`` honoured (an hour), whatever the destination asks."""
BACKOFF_FIRST = 30.0
BACKOFF_MAX = 1800.0
"""A destination that keeps failing waits 30 s after its first failed delivery, twice as long
after each further one, at most 30 minutes."""


def backoff(failures: int) -> float:
    """The wait after ``failures`` failed deliveries in a row."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * float(2 ** max(0, min(failures, 32) - 1)))


def attempts(seconds: float, every: float = 60.0) -> int:
    """Deliveries attempted in ``seconds`` offline by runs every ``every`` seconds (each run
    tries when no wait holds it back, and fails): the schedule's cost of a day offline."""
    tried, failures, free_at, now = 0, 0, 0.0, 0.0
    while now < seconds:
        if now >= free_at:
            tried += 1
            failures += 1
            free_at = now + backoff(failures)
        now += every
    return tried


class Wait:
    """A wait: ``seconds`` from ``began``."""

    __slots__ = ("began", "seconds")

    def __init__(self, seconds: float, began: Moment) -> None:
        self.seconds = seconds
        self.began = began

    def left(self, now: Moment) -> float:
        """Seconds still to wait (0 once it is over, or if it began after now)."""
        elapsed = since(self.began, now)
        if elapsed < 0:
            return 0.0
        return max(0.0, self.seconds - elapsed)

    def text(self) -> str:
        return f"{self.seconds!r} {self.began.text()}"


def _wait(text: str) -> Wait | None:
    seconds, _, rest = text.strip().partition(" ")
    began = parse(rest)
    try:
        length = float(seconds)
    except ValueError:
        return None
    if began is None or not length >= 0:
        return None
    return Wait(length, began)


class Schedule:
    """The holds and backoff of one spool's destinations (``<spool>/progress``)."""

    def __init__(self, directory: StrPath, clock: Clock = SYSTEM) -> None:
        self.directory = os.fspath(directory)
        self.clock = clock

    # -- Retry-After -------------------------------------------------------------------------
    def hold(self, key: str, seconds: float) -> None:
        """``key`` asked not to be tried for ``seconds`` (at most ``MAX_HOLD``)."""
        wait = Wait(min(max(0.0, seconds), MAX_HOLD), self.clock.now())
        self._write(f"{key}.hold", wait.text())

    def _hold(self, key: str) -> Wait | None:
        path = os.path.join(self.directory, f"{key}.hold")
        text = _read(path)
        if text is None:
            return None
        wait = _wait(text)
        if wait is not None:
            wait.seconds = min(wait.seconds, MAX_HOLD)
            return wait
        try:  # an older sender's: the wall-clock time to wait until
            until, written = float(text), os.stat(path).st_mtime
        except (OSError, ValueError):
            return None
        return Wait(min(max(0.0, until - written), MAX_HOLD), Moment(written))

    # -- backoff -----------------------------------------------------------------------------
    def fail(self, key: str) -> float:
        """A delivery to ``key`` failed: the wait before the next one."""
        failures = self.failures(key) + 1
        seconds = backoff(failures)
        self._write(f"{key}.backoff", f"{failures} {Wait(seconds, self.clock.now()).text()}")
        return seconds

    def succeed(self, key: str) -> None:
        """A delivery to ``key`` worked: no more backoff."""
        try:  # noqa: SIM105 - contextlib would cost an offline CLI run an import
            os.unlink(os.path.join(self.directory, f"{key}.backoff"))
        except OSError:  # none (most deliveries), or it cannot go: the next success retries
            pass

    def failures(self, key: str) -> int:
        failures, _ = self._backoff(key)
        return failures

    def _backoff(self, key: str) -> tuple[int, Wait | None]:
        text = _read(os.path.join(self.directory, f"{key}.backoff"))
        if text is None:
            return 0, None
        count, _, rest = text.strip().partition(" ")
        wait = _wait(rest)
        if not count.isdigit() or wait is None:
            return 0, None
        wait.seconds = min(wait.seconds, BACKOFF_MAX)
        return int(count), wait

    # -- reading -----------------------------------------------------------------------------
    def wait(self, key: str, *, backoff: bool = True) -> Wait | None:
        """What ``key`` waits for now (the longer of its hold and its backoff), or ``None``.
        ``backoff=False``: the hold only (an explicit flush does not wait out a backoff)."""
        now = self.clock.now()
        found = [w for w in (self._hold(key), self._backoff(key)[1] if backoff else None) if w]
        waiting = [w for w in found if w.left(now) > 0]
        return max(waiting, key=lambda w: w.left(now)) if waiting else None

    def waits(self, key: str, *, backoff: bool = True) -> bool:
        return self.wait(key, backoff=backoff) is not None

    def publish(self, keys: Iterable[str]) -> None:
        """Write ``all.waiting`` for a host to read: each of ``keys`` that waits, and for how long.
        Not rewritten when nothing changed (most deliveries)."""
        lines = []
        for key in sorted(keys):
            wait = self.wait(key)
            if wait is not None:
                lines.append(f"{key} {wait.text()}\n")
        path = os.path.join(self.directory, WAITING_FILE)
        text = "".join(lines)
        if (_read(path) or "") == text:
            return
        if text:
            self._write(WAITING_FILE, text)
        else:
            try:  # noqa: SIM105 - contextlib would cost an offline CLI run an import
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _write(self, name: str, text: str) -> None:
        statefiles.private(self.directory)
        path = os.path.join(self.directory, name)
        statefiles.write_text(path, text + ("" if text.endswith("\n") else "\n"))


def resting(directory: StrPath, keys: Iterable[str], clock: Clock = SYSTEM) -> bool:
    """Whether every destination of ``keys`` waits, by the ``all.waiting`` file of the progress
    ``directory``: one small read, for a CLI host deciding whether to start a sender."""
    text = _read(os.path.join(directory, WAITING_FILE))
    if not text:
        return False
    waits = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        wait = _wait(rest)
        if wait is not None:
            waits[key] = wait
    wanted = list(keys)
    if not wanted:
        return False
    now = clock.now()
    return all(key in waits and waits[key].left(now) > 0 for key in wanted)


def _read(path: StrPath) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read(4096)
    except OSError:
        return None
