"""Per-destination progress: which segments each destination has, what it is owed, when it
may be tried again.

Kept beside the segments (``<spool>/progress/``), one set of files per destination key, so
that a dead destination holds back nobody else:

- ``<key>``: appended to, one line per segment it has (``<name>``), or per signal of a
  segment it has accepted while another signal of that segment failed (``<name> <signal>``),
  so that a logs outage does not send accepted spans again;
- ``<key>.dropped``: ``<count> <reason>`` lines, records dropped unsent that it has not
  been told about yet (negative counts once told);
- ``<key>.hold`` and ``<key>.backoff``: when it may be tried again (``schedule``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from phonehome._core import state as statefiles

SIGNALS = ("traces", "logs", "metrics")

_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
"""Progress files are appended to, never through a link planted in their place."""


class Progress:
    """The progress directory of one spool."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def delivered(self, destination: str) -> set[str]:
        """The segments ``destination`` has whole."""
        return self.read(destination)[0]

    def read(self, destination: str) -> tuple[set[str], dict[str, set[str]]]:
        """The segments ``destination`` has whole, and the signals it has of the others."""
        try:
            text = (self.directory / destination).read_text(errors="replace")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return set(), {}
        whole: set[str] = set()
        partly: dict[str, set[str]] = {}
        for line in text.splitlines():
            name, _, signal = line.strip().partition(" ")
            if not name:
                continue
            if not signal:  # a line of an older sender, too: the whole segment
                whole.add(name)
            elif signal in SIGNALS:
                partly.setdefault(name, set()).add(signal)
        for name in whole:
            partly.pop(name, None)
        return whole, partly

    def mark_delivered(self, destination: str, names: Iterable[str]) -> None:
        """``destination`` has these segments, every signal of them."""
        self._append(destination, "".join(f"{n}\n" for n in names))

    def mark_signal(self, destination: str, names: Iterable[str], signal: str) -> None:
        """``destination`` accepted ``signal`` of these segments (another signal failed)."""
        self._append(destination, "".join(f"{n} {signal}\n" for n in names))

    def compact(self, live: set[str]) -> None:
        """Forget progress about segments that no longer exist."""
        for path in files(self.directory):
            if "." in path.name:  # .dropped, .hold and .backoff files are not segment lists
                continue
            whole, partly = self.read(path.name)
            lines = [f"{n}\n" for n in sorted(whole & live)]
            lines += [f"{n} {s}\n" for n in sorted(partly.keys() & live) for s in sorted(partly[n])]
            if lines:
                statefiles.write_text(path, "".join(lines))
            else:
                path.unlink(missing_ok=True)

    # -- dropped-record accounting -----------------------------------------------------------
    def owe(self, destination: str, count: int, reason: str) -> None:
        """``destination`` is owed a report of ``count`` records dropped for ``reason``."""
        self._append(f"{destination}.dropped", f"{count} {reason}\n")

    def dropped(self, destination: str) -> dict[str, int]:
        """Records dropped unsent that ``destination`` has not been told about, by reason:
        ``size`` or ``age`` (the caps), ``rejected`` (the destination refused them).
        """
        try:
            text = (self.directory / f"{destination}.dropped").read_text(errors="replace")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return {}
        owed: dict[str, int] = {}
        for line in text.splitlines():
            count, _, reason = line.partition(" ")
            if count.lstrip("-").isdigit():
                reason = reason.strip() or "size"
                owed[reason] = owed.get(reason, 0) + int(count)
        return {reason: count for reason, count in owed.items() if count > 0}

    def reported_dropped(self, destination: str, reported: dict[str, int]) -> None:
        """``destination`` now knows about the ``reported`` dropped records."""
        for reason, count in reported.items():
            self.owe(destination, -count, reason)

    def purge(self) -> None:
        """Forget everything (consent was revoked)."""
        for path in files(self.directory):
            path.unlink(missing_ok=True)

    def _append(self, name: str, text: str) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / name, _APPEND, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def files(directory: Path) -> list[Path]:
    """The regular files in ``directory`` (none if it does not exist)."""
    try:
        return [p for p in directory.iterdir() if p.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
