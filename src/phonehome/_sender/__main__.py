"""The detached sender: ``python -m phonehome._sender STATE_DIR [LIFETIME] [LOCK_FD]``.

Started by a CLI run (``phonehome._spool.lock.spawn``) with the sender lock already taken and
its descriptor inherited. It delivers, then lingers: it watches the spool (a ``stat`` of its
directory every ``POLL`` seconds) and delivers what later runs spool, until nothing new has
come for ``IDLE`` seconds or its lifetime is nearly up. It holds the lock all along, so the
runs meanwhile start no sender of their own: a thousand runs in a row start a few senders,
not a thousand. It does not linger while every destination waits (``Retry-After``, backoff).

Never prints: the host's terminal is not ours. A hard lifetime cap (``SIGALRM``) ends it
whatever an export does. A run that spools while the sender is leaving finds the lock taken
and starts nothing: so after letting go of the lock the sender looks once more, and if a
segment came, takes the lock again and goes on (past its lifetime, as a fresh sender in the
same process).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from phonehome._sender.deliver import DEFAULT_LIFETIME, Report, deliver_locked
from phonehome._spool.lock import sender_command, sender_environment, try_lock, unlock
from phonehome._spool.segments import Spool

_STARTED = time.monotonic()
POLL = 0.25
"""Seconds between two looks at the spool directory while lingering."""
IDLE = 3.0
"""Seconds without a new segment after which a lingering sender exits."""
MARGIN = 2.0
"""Seconds before the lifetime cap when lingering stops: time for a last delivery."""
_LIST_EVERY = 4
"""Polls between two listings of the spool, whatever its modification time says (a file
system whose times are coarse may not show a new segment in them)."""


def main(argv: list[str]) -> int:
    """Deliver and linger until idle or the lifetime is up; hand over what came meanwhile."""
    import signal

    state_dir = Path(argv[0])
    lifetime = float(argv[1]) if len(argv) > 1 else DEFAULT_LIFETIME
    fd = int(argv[2]) if len(argv) > 2 else try_lock(state_dir)
    if hasattr(signal, "alarm"):  # the hard cap, whatever an export does
        signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
        signal.alarm(int(lifetime) + 2)
    logging.disable(logging.CRITICAL)  # never print, whatever a library logs
    end = _STARTED + lifetime
    while fd is not None:
        try:
            known = serve(state_dir, end)
        except Exception:
            return 1
        finally:
            unlock(fd)
        if not set(Spool(state_dir / "spool").names()) - known:
            return 0
        fd = try_lock(state_dir)  # a run spooled as we left, and started no sender
        if fd is not None and time.monotonic() >= end - MARGIN:
            try:
                _succeed(state_dir, lifetime, fd)
            except OSError:
                unlock(fd)
                return 1
    return 0


def serve(state_dir: Path, end: float) -> set[str]:
    """Deliver, then deliver again whenever a new segment comes, until ``IDLE`` seconds pass
    without one or ``end`` is near. The segments there were at the last look."""
    spool = state_dir / "spool"
    while True:
        # looked at before delivering: a segment spooled during the delivery is new after it
        modified = _modified(spool)
        known = set(Spool(spool).names())
        report = deliver_locked(state_dir, end)
        if not _linger_for(report) or not linger(spool, known, modified, end - MARGIN):
            return known


def linger(spool: Path, known: set[str], modified: int, until: float) -> bool:
    """Watch ``spool`` for a segment not in ``known``: ``True`` when one comes, ``False``
    after ``IDLE`` seconds or at ``until``."""
    idle_until = min(until, time.monotonic() + IDLE)
    polls = 0
    while time.monotonic() < idle_until:
        time.sleep(POLL)
        polls += 1
        now = _modified(spool)
        if now != modified or polls % _LIST_EVERY == 0:
            modified = now
            if set(Spool(spool).names()) - known:
                return True
    return False


def _linger_for(report: Report) -> bool:
    """Whether waiting for more segments could help: some destination may be sent to."""
    return bool(set(report.delivered) - set(report.waiting)) and not report.purged


def _modified(directory: Path) -> int:
    try:
        return os.stat(directory).st_mtime_ns
    except OSError:
        return 0


def _succeed(state_dir: Path, lifetime: float, fd: int) -> None:
    """Become a fresh sender holding ``fd``: this one's lifetime is up."""
    import signal

    if hasattr(signal, "alarm"):
        signal.alarm(0)  # an alarm survives exec; the new sender sets its own
    os.set_inheritable(fd, True)
    os.execve(sys.executable, sender_command(state_dir, lifetime, fd), sender_environment())


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
