"""The per-product state directory: stored consent and the install id.

Nothing here runs unless consent is on or the user changes their choice: reading is allowed
on the "off" path, creating files is not. Files are written atomically, 0600 in a 0700
directory.
"""

from __future__ import annotations

import _thread
import os
import stat

from phonehome._core import environment as env
from phonehome._core.diagnostics import warn
from phonehome._core.settings import platform_state_dir

StrPath = str | os.PathLike[str]
"""A path as callers may give it; this module returns ``str``."""


def state_dir(product: str, override: StrPath | None = None) -> str:
    """Where the product's telemetry state lives.

    Precedence: the ``state_dir=`` argument, then ``<PREFIX>_TELEMETRY_DIR``, then the
    platform's user state directory (``~/.local/state/phonehome/<product>`` on Linux).
    """
    if override is not None:
        return os.fspath(override)
    from_env = os.environ.get(env.TELEMETRY_DIR.format(prefix=env.prefix_for(product)))
    if from_env:
        return from_env
    return platform_state_dir(product)


def read_text(path: StrPath) -> str | None:
    """The file's text, or ``None`` when it does not exist. Bytes that are not UTF-8 (a
    corrupt file) become U+FFFD, so callers see invalid content, not an exception."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read()
    except (FileNotFoundError, NotADirectoryError):  # the directory is not one: no file
        return None


def write_text(path: StrPath, text: str) -> None:
    """Write a small file atomically (temp file, fsync, rename), private to the user.

    Raises ``OSError`` when the directory cannot be written, or is not private (see
    :func:`private`). The temporary file's name is this writer's own (process, thread and a
    random part), so two threads or processes writing the same file never remove each
    other's; it is created exclusively, never through a link planted in its place.
    """
    directory, name = os.path.split(os.fspath(path))
    private(directory)
    writer = f"{os.getpid()}.{_thread.get_ident():x}.{os.urandom(4).hex()}"
    temporary = os.path.join(directory, f".{name}.{writer}.tmp")
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
        try:  # noqa: SIM105 - contextlib would cost every CLI an import
            os.unlink(temporary)
        except OSError:
            pass
        raise


def private(directory: StrPath) -> None:
    """Create ``directory`` (0700) if needed and check that it is the user's own.

    It may be a symlink (a state directory moved to another disk), but what it resolves to
    must belong to the user and not be writable by group or others: another user could
    read what is kept there, or plant links in it. Raises ``PermissionError`` otherwise.
    """
    directory = os.fspath(directory) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    found = os.stat(directory)
    if hasattr(os, "geteuid") and (found.st_uid != os.geteuid() or found.st_mode & 0o022):
        import errno  # on this branch only: one import less for every run

        raise PermissionError(errno.EPERM, "owned by another user or writable by others")


def fallback_dir(state_dir: StrPath) -> str:
    """Where a run keeps its telemetry when the state directory cannot be written: a
    directory of the user's own under the system's temporary directory."""
    import tempfile

    uid = os.geteuid() if hasattr(os, "geteuid") else os.getpid()
    root = os.path.join(tempfile.gettempdir(), f"phonehome-{uid}")
    try:  # noqa: SIM105 - contextlib would cost every CLI an import
        os.mkdir(root, 0o700)
    except FileExistsError:
        pass
    found = os.lstat(root)  # in a shared directory: never a link someone else made
    if not stat.S_ISDIR(found.st_mode) or (
        hasattr(os, "geteuid") and (found.st_uid != os.geteuid() or found.st_mode & 0o077)
    ):
        import errno

        raise PermissionError(errno.EPERM, f"{root} is not the user's own private directory")
    return os.path.join(root, os.path.basename(os.path.normpath(os.fspath(state_dir))))


FALLBACK_WARNED_FILE = "fallback-warned"
"""In the fallback directory: when a run last said it uses it (said at most once a day)."""
WARN_EVERY = 86400.0


def usable(state_dir: StrPath) -> str:
    """The directory this run keeps its state in, decided once, before anything is kept.

    ``state_dir``, or when it cannot be used (a file in its path, a read-only file system,
    a directory that cannot be created, or one that is not the user's own) the private
    fallback directory (:func:`fallback_dir`), for the notice, the install id and the spool
    alike, so that a fresh install with an unusable ``HOME`` works end to end. That is said
    in one line, at most once a day. When there is no private fallback either, it is
    ``state_dir`` all the same: the writes fail, and the run says so (``cannot_write``).
    """
    state_dir = os.fspath(state_dir)
    try:
        private(state_dir)
        if not os.access(state_dir, os.W_OK | os.X_OK):
            import errno

            code = errno.EACCES
            if hasattr(os, "statvfs") and os.statvfs(state_dir).f_flag & os.ST_RDONLY:
                code = errno.EROFS
            raise OSError(code, os.strerror(code))
        return state_dir
    except OSError as error:
        problem = error
    try:
        fallback = fallback_dir(state_dir)
        private(fallback)
    except OSError:
        return state_dir
    _say_daily(
        fallback,
        f"cannot write to {state_dir} ({problem.strerror or problem}); "
        f"telemetry is kept in {fallback} instead (said once a day)",
    )
    return fallback


def _say_daily(directory: str, message: str) -> None:
    """``message``, unless it was said in the last day (as ``directory`` remembers)."""
    import time

    marker = os.path.join(directory, FALLBACK_WARNED_FILE)
    now = time.time()
    try:
        said = float(read_text(marker) or "nan")
    except (OSError, ValueError):
        said = float("nan")
    if 0 <= now - said < WARN_EVERY:
        return
    warn(message)
    try:  # noqa: SIM105 - contextlib would cost every CLI an import
        write_text(marker, f"{now!r}\n")
    except OSError:
        pass


def cannot_write(state_dir: StrPath, error: OSError) -> None:
    """The one warning of a run whose state directory cannot be written."""
    warn(
        f"cannot write to {state_dir} ({error.strerror or error}); this run keeps its "
        "telemetry in a private temporary directory and uses a new install id"
    )
