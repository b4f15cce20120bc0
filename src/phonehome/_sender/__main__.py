"""The detached sender: ``python -m phonehome._sender STATE_DIR [LIFETIME] [LOCK_FD]``.

Started by a CLI run (``phonehome._host.spawn``) with the sender lock already taken and its
descriptor inherited. Never prints: the host's terminal is not ours. A hard lifetime cap
(``SIGALRM``) ends it whatever an export does.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from phonehome._sender.deliver import DEFAULT_LIFETIME, deliver
from phonehome._spool.segments import Spool

_STARTED = time.monotonic()


def main(argv: list[str]) -> int:
    """Deliver until nothing is left, a destination fails or the lifetime is up."""
    import signal

    state_dir = Path(argv[0])
    lifetime = float(argv[1]) if len(argv) > 1 else DEFAULT_LIFETIME
    lock_fd = int(argv[2]) if len(argv) > 2 else None
    if hasattr(signal, "alarm"):  # the hard cap, whatever an export does
        signal.signal(signal.SIGALRM, lambda *_: os._exit(3))
        signal.alarm(int(lifetime) + 2)
    logging.disable(logging.CRITICAL)  # never print, whatever a library logs
    try:
        while time.monotonic() < _STARTED + lifetime:
            report = deliver(state_dir, _STARTED + lifetime - time.monotonic(), lock_fd)
            lock_fd = None
            if report is None or report.failed or report.held:
                break
            # a host may have spooled after our last look, while we held the lock: look again
            if not Spool(state_dir / "spool").names():
                break
    except Exception:
        return 1
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
