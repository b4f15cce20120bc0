"""The spool: records made durable on local disk until every destination has them.

One segment file per write, never modified after it is renamed into place; each
destination keeps its own progress (the segments it has), so a dead destination holds back
nobody else. Bounded by size and age: the oldest segments go first and the records dropped
are counted, to be reported in the next delivery. The format is in ``docs/spool.md``.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "phonehome-spool"
VERSION = 1
SEGMENT_SUFFIX = ".seg"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_AGE = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Segment:
    """One spooled write: its header and the records that could be read."""

    name: str
    header: dict[str, Any]
    records: list[list[Any]]
    corrupt: int
    """Lines skipped because they were torn or did not check out."""

    @property
    def destinations(self) -> list[str]:
        return list(self.header.get("destinations", ()))


class Spool:
    """The spool directory of one product (``<state>/spool``)."""

    def __init__(
        self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES, max_age: float = DEFAULT_MAX_AGE
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age

    # -- writing (in the host) -------------------------------------------------------------
    def append(self, header: dict[str, Any], records: Iterable[Any]) -> Path:
        """Write one segment atomically: a temporary file renamed into place."""
        lines = [
            json.dumps({"format": FORMAT, "version": VERSION, **header}, separators=(",", ":"))
        ]
        for record in records:
            line = json.dumps(record, separators=(",", ":"), default=str)
            lines.append(f"{zlib.crc32(line.encode()):08x} {line}")
        data = ("\n".join(lines) + "\n").encode()
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}{SEGMENT_SUFFIX}"
        temporary = self.directory / f".{name}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        final = self.directory / name
        os.replace(temporary, final)
        return final

    # -- reading and housekeeping (in the sender) -------------------------------------------
    def names(self) -> list[str]:
        """Segment names, oldest first."""
        try:
            return sorted(n for n in os.listdir(self.directory) if n.endswith(SEGMENT_SUFFIX))
        except FileNotFoundError:
            return []

    def read(self, name: str) -> Segment | None:
        """A segment, skipping corrupt lines; ``None`` if the file is gone or unreadable."""
        try:
            raw = (self.directory / name).read_bytes()
        except OSError:
            return None
        lines = raw.split(b"\n")
        try:
            header = json.loads(lines[0])
            if header.get("format") != FORMAT or header.get("version") != VERSION:
                raise ValueError("not a spool segment of a known version")
        except (ValueError, AttributeError):
            return Segment(name, {}, [], max(1, len(lines) - 1))
        records: list[list[Any]] = []
        corrupt = 0
        for line in lines[1:]:
            if not line:
                continue
            checksum, _, body = line.partition(b" ")
            try:
                if int(checksum, 16) != zlib.crc32(body):
                    raise ValueError("checksum")
                records.append(json.loads(body))
            except ValueError:
                corrupt += 1
        return Segment(name, header, records, corrupt)

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / name)

    def enforce_caps(self, now: float | None = None) -> int:
        """Drop the oldest segments beyond the size or age cap; return the records dropped.

        Each destination that had not received a dropped segment is owed a report of it
        (see :meth:`dropped`).
        """
        now = time.time() if now is None else now
        sizes: list[tuple[str, int]] = []
        for name in self.names():
            try:
                sizes.append((name, (self.directory / name).stat().st_size))
            except FileNotFoundError:
                continue
        total = sum(size for _, size in sizes)
        dropped = 0
        for name, size in sizes:
            too_old = now - int(name.split("-", 1)[0]) / 1e9 > self.max_age
            if not too_old and total <= self.max_bytes:
                break
            count, destinations = self._census(name)
            for destination in destinations:
                if name not in self.delivered(destination):
                    self._owe(destination, count)
            dropped += count
            self.remove(name)
            total -= size
        return dropped

    def _census(self, name: str) -> tuple[int, list[str]]:
        """A segment's record count and destinations, without parsing its records."""
        try:
            with open(self.directory / name, "rb") as handle:
                header = json.loads(handle.readline() or b"{}")
                count = sum(1 for line in handle if line.strip())
        except (OSError, ValueError):
            return 0, []
        destinations = header.get("destinations", []) if isinstance(header, dict) else []
        return count, [str(d) for d in destinations]

    # -- per-destination progress ------------------------------------------------------------
    def delivered(self, destination: str) -> set[str]:
        """The segments ``destination`` already has."""
        try:
            text = (self.directory / "progress" / destination).read_text()
        except FileNotFoundError:
            return set()
        return set(text.split())

    def mark_delivered(self, destination: str, names: Iterable[str]) -> None:
        directory = self.directory / "progress"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / destination, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, "".join(f"{n}\n" for n in names).encode())
        finally:
            os.close(fd)

    def compact(self, live: set[str]) -> None:
        """Forget progress about segments that no longer exist."""
        directory = self.directory / "progress"
        for path in _files(directory):
            if "." in path.name:  # .dropped and .hold files are not segment lists
                continue
            kept = sorted(self.delivered(path.name) & live)
            if kept:
                temporary = path.with_suffix(".tmp")
                temporary.write_text("".join(f"{n}\n" for n in kept))
                os.chmod(temporary, 0o600)
                os.replace(temporary, path)
            else:
                path.unlink(missing_ok=True)

    # -- dropped-record accounting -----------------------------------------------------------
    def _owe(self, destination: str, count: int) -> None:
        directory = self.directory / "progress"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(
            directory / f"{destination}.dropped", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        try:
            os.write(fd, f"{count}\n".encode())
        finally:
            os.close(fd)

    def dropped(self, destination: str) -> int:
        """Records dropped by the caps that ``destination`` has not been told about yet."""
        try:
            text = (self.directory / "progress" / f"{destination}.dropped").read_text()
        except FileNotFoundError:
            return 0
        return sum(int(n) for n in text.split() if n.lstrip("-").isdigit())

    def reported_dropped(self, destination: str, count: int) -> None:
        """``destination`` now knows about ``count`` dropped records."""
        if count:
            self._owe(destination, -count)

    def purge(self) -> int:
        """Delete every segment and all progress (consent was revoked)."""
        removed = 0
        for name in self.names():
            self.remove(name)
            removed += 1
        for path in _files(self.directory / "progress"):
            path.unlink(missing_ok=True)
        return removed


def _files(directory: Path) -> Iterator[Path]:
    try:
        yield from (p for p in directory.iterdir() if p.is_file())
    except FileNotFoundError:
        return
