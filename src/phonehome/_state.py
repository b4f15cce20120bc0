"""The per-product state directory: stored consent and the install id.

Nothing here runs unless consent is on or the user changes their choice: reading is allowed
on the "off" path, creating files is not. Files are written atomically, 0600 in a 0700
directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from phonehome import _environment as env


def state_dir(product: str, override: str | os.PathLike[str] | None = None) -> Path:
    """Where the product's telemetry state lives.

    Precedence: the ``state_dir=`` argument, then ``<PREFIX>_TELEMETRY_DIR``, then the
    platform's user state directory (``~/.local/state/phonehome/<product>`` on Linux).
    """
    if override is not None:
        return Path(override)
    from_env = os.environ.get(env.TELEMETRY_DIR.format(prefix=env.prefix_for(product)))
    if from_env:
        return Path(from_env)
    return _user_state_dir() / "phonehome" / product


def _user_state_dir() -> Path:
    """The platform's per-user state directory, as platformdirs defines it.

    Written out here because an opted-out run must be able to find (and purge) held data
    without paying for an import: XDG_STATE_HOME or ~/.local/state on Linux and the BSDs,
    ~/Library/Application Support on macOS, %LOCALAPPDATA% on Windows.
    """
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    xdg = os.environ.get("XDG_STATE_HOME", "").strip()
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"


def read_text(path: Path) -> str | None:
    """The file's text, or ``None`` when it does not exist. Bytes that are not UTF-8 (a
    corrupt file) become U+FFFD, so callers see invalid content, not an exception."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


def write_text(path: Path, text: str) -> None:
    """Write a small file atomically (temp file, fsync, rename), private to the user."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
