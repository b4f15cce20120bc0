"""The end user's choice, stored: what ``enable``/``disable`` do, wherever they are asked.

From the program (``telemetry.disable()``), its ``telemetry`` subcommands, or the
``phonehome`` command: one implementation, so that a "no" is the same "no" everywhere.
"""

from __future__ import annotations

import os

from phonehome._core.consent import Resolver
from phonehome._host.identity import forget
from phonehome._spool.segments import Spool


def store(resolver: Resolver, enabled: bool, spool: Spool | None = None) -> None:
    """Store the user's choice. A "no" also forgets the install id (a later "yes" starts a
    new identity: the two periods cannot be joined) and purges what is waiting to be sent,
    in ``spool`` (by default, the state directory's)."""
    directory = resolver.state_path
    if not enabled:
        forget(directory)
    resolver.store_choice(enabled)
    if not enabled:
        (spool if spool is not None else Spool(os.path.join(directory, "spool"))).purge()
