"""The sender lock: at most one sender per state directory, by ``flock(2)``.

Its own module so that a CLI host can take it (to start a sender) without importing the
sender.
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_FILE = "sender.lock"


def try_lock(state_dir: Path) -> int | None:
    """Take the sender lock without waiting; the descriptor, or ``None`` if it is held."""
    import fcntl

    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    os.close(fd)  # closing the last descriptor releases the lock
