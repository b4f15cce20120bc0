"""The per-product state directory: stored consent and the install id.

Nothing here runs unless consent is on or the user changes their choice: reading is allowed
on the "off" path, creating files is not. Files are written atomically, 0600 in a 0700
directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from phonehome._core import environment as env
from phonehome._core.diagnostics import warn
from phonehome._core.settings import platform_state_dir


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
    return Path(platform_state_dir(product))


def read_text(path: Path) -> str | None:
    """The file's text, or ``None`` when it does not exist. Bytes that are not UTF-8 (a
    corrupt file) become U+FFFD, so callers see invalid content, not an exception."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):  # the directory is not one: no file
        return None


def write_text(path: Path, text: str) -> None:
    """Write a small file atomically (temp file, fsync, rename), private to the user.

    Raises ``OSError`` when the directory cannot be written, or is not private (see
    :func:`private`). A temporary file left by a dead process, or planted as a symlink, is
    replaced, never written through.
    """
    private(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags, 0o600)
    try:
        try:
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def private(directory: Path) -> None:
    """Create ``directory`` (0700) if needed and check that it is the user's own.

    It may be a symlink (a state directory moved to another disk), but what it resolves to
    must belong to the user and not be writable by group or others: another user could
    read what is kept there, or plant links in it. Raises ``PermissionError`` otherwise.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = os.stat(directory)
    if hasattr(os, "geteuid") and (found.st_uid != os.geteuid() or found.st_mode & 0o022):
        raise PermissionError(errno.EPERM, "owned by another user or writable by others")


def fallback_dir(state_dir: Path) -> Path:
    """Where a run keeps its telemetry when the state directory cannot be written: a
    directory of the user's own under the system's temporary directory."""
    import tempfile

    uid = os.geteuid() if hasattr(os, "geteuid") else os.getpid()
    root = Path(tempfile.gettempdir()) / f"phonehome-{uid}"
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    found = os.lstat(root)  # in a shared directory: never a link someone else made
    if not stat.S_ISDIR(found.st_mode) or (
        hasattr(os, "geteuid") and (found.st_uid != os.geteuid() or found.st_mode & 0o077)
    ):
        raise PermissionError(errno.EPERM, f"{root} is not the user's own private directory")
    return root / state_dir.name


def cannot_write(state_dir: Path, error: OSError) -> None:
    """The one warning of a run whose state directory cannot be written."""
    warn(
        f"cannot write to {state_dir} ({error.strerror or error}); this run keeps its "
        "telemetry in a private temporary directory and uses a new install id"
    )
