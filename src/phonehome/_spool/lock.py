"""The sender lock: at most one sender per state directory, by ``flock(2)``; and how a
sender starts, with the lock already taken.

Its own module so that a CLI host can take it and start a sender without importing the
sender; a sender at the end of its life starts its successor the same way.
"""

from __future__ import annotations

import os
import sys

from phonehome._core.state import StrPath

LOCK_FILE = "sender.lock"


def try_lock(state_dir: StrPath) -> int | None:
    """Take the sender lock without waiting; the descriptor, or ``None`` if it is held."""
    import fcntl

    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    os.close(fd)  # closing the last descriptor releases the lock


_SENDER = (
    "import sys; del sys.path[0]; import runpy; "
    "runpy.run_module('phonehome._sender', run_name='__main__', alter_sys=True)"
)
"""How the sender starts: like ``-m phonehome._sender``, without the working directory on
``sys.path`` (whatever ``.py`` files lie there are not ours to run)."""


def sender_command(state_dir: StrPath, lifetime: float, fd: int) -> list[str]:
    """The sender's command line: it holds the lock through the inherited ``fd``."""
    return [sys.executable, "-c", _SENDER, os.fspath(state_dir), str(lifetime), str(fd)]


def sender_environment() -> dict[str, str]:
    """The environment, with this copy of phonehome first on ``PYTHONPATH``."""
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
    environ = dict(os.environ)
    paths = environ.get("PYTHONPATH", "").split(os.pathsep)
    if package_root not in paths:
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, *paths) if p)
    return environ


def spawn(state_dir: StrPath, lifetime: float) -> bool:
    """Start a detached sender unless one runs; it holds the lock we take here."""
    fd = try_lock(state_dir)
    if fd is None:
        return False  # a sender is running; it looks for new segments before it exits
    try:
        argv = sender_command(state_dir, lifetime, fd)
        environ = sender_environment()
        os.set_inheritable(fd, True)
        if hasattr(os, "posix_spawn"):
            devnull = os.devnull
            os.posix_spawn(
                sys.executable,
                argv,
                environ,
                setsid=True,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, devnull, os.O_WRONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 2, devnull, os.O_WRONLY, 0),
                ],
            )
        else:  # pragma: no cover - Windows
            import subprocess

            subprocess.Popen(
                argv,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                creationflags=0x00000008 | 0x00000200,
                close_fds=False,
            )
        return True
    finally:
        os.close(fd)  # the child keeps the lock through its inherited descriptor
