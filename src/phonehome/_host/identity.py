"""Anonymous identity: a random install id per product and a session id per run.

Never derived from the machine (no host name, user name, MAC or hardware id): the install id
is random, minted only when consent is on, and kept in the state directory, as is the salt
for hashed fields (never sent).
"""

from __future__ import annotations

import os
from pathlib import Path

from phonehome._core import state as statefiles

INSTALL_ID_FILE = "install-id"
SALT_FILE = "salt"


def install_id(state_dir: Path, automation: str | None = None, policy: str = "tag") -> str:
    """The product's install id, minted on first use. Only call with consent on.

    Under a CI provider or an AI agent (``automation``) no id is kept: ``tag`` gives each run
    its own, ``collapse`` gives all runs of that provider one shared id.
    """
    if automation is not None:
        return f"automation-{automation}" if policy == "collapse" else os.urandom(16).hex()
    return _kept(state_dir / INSTALL_ID_FILE)


def salt(state_dir: Path) -> bytes:
    """The install's salt for hashed fields: random, kept in the state directory, never sent."""
    return bytes.fromhex(_kept(state_dir / SALT_FILE))


def session_id() -> str:
    return os.urandom(16).hex()


def forget(state_dir: Path) -> None:
    """Delete the install id and the salt: the next run with consent is a new install."""
    for name in (INSTALL_ID_FILE, SALT_FILE):
        (state_dir / name).unlink(missing_ok=True)


def _kept(path: Path) -> str:
    """A random 128-bit hex value kept in ``path``: read it, or mint and store one."""
    try:
        existing = (statefiles.read_text(path) or "").strip()
    except OSError:
        existing = ""
    if len(existing) == 32 and all(c in "0123456789abcdef" for c in existing):
        return existing
    fresh = os.urandom(16).hex()
    try:
        statefiles.write_text(path, fresh + "\n")
    except OSError as error:
        statefiles.cannot_write(path.parent, error)
    return fresh
