"""Starting the detached sender after a CLI run: the host waits for nothing.

The host takes the sender lock (so at most one sender runs per state directory) and hands
its descriptor to the child, which runs ``python -m phonehome._sender`` in a new session with
its standard streams on ``/dev/null``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from phonehome._spool.lock import try_lock

_SENDER = (
    "import sys; del sys.path[0]; import runpy; "
    "runpy.run_module('phonehome._sender', run_name='__main__', alter_sys=True)"
)
"""How the sender starts: like ``-m phonehome._sender``, without the working directory on
``sys.path`` (whatever ``.py`` files lie there are not ours to run)."""


def spawn_sender(state_dir: Path, lifetime: float) -> bool:
    """Start a detached sender unless one runs; it holds the lock we take here."""
    fd = try_lock(state_dir)
    if fd is None:
        return False  # a sender is running; it looks for new segments before it exits
    try:
        package_root = str(Path(__file__).resolve().parents[2])
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, environ.get("PYTHONPATH", "")) if p
        )
        argv = [sys.executable, "-c", _SENDER, str(state_dir), str(lifetime), str(fd)]
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
