"""Segments: records made durable on local disk until every destination has them.

One segment file per write, never modified after it is renamed into place; each destination
keeps its own progress (``progress``). Bounded by size and age: the oldest segments go first
and the records dropped are counted, to be reported in the next delivery. The format is in
``docs/spool.md``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import marshal
import os
import struct
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from phonehome._core.settings import DEFAULT_SPOOL_MAX_AGE, DEFAULT_SPOOL_MAX_BYTES
from phonehome._spool.records import Record, from_wire, to_wires

TYPE_CHECKING = False
if TYPE_CHECKING:
    from phonehome._spool.progress import Progress

FORMAT = "phonehome-spool"
VERSION = 1
MARSHAL_VERSION = 4
_FRAME = struct.Struct("<II")
"""Each record: its length and CRC-32 (little-endian u32 each), then its bytes."""
SEGMENT_SUFFIX = ".seg"
ABANDONED = 600.0
"""Seconds after which a temporary segment file is a dead host's, and deleted."""


class Segment:
    """One spooled write: its header, the records that could be read, and how many lines
    were skipped because they were torn or did not check out (``corrupt``)."""

    __slots__ = ("corrupt", "header", "name", "records")

    def __init__(
        self, name: str, header: dict[str, Any], records: list[Record], corrupt: int
    ) -> None:
        self.name = name
        self.header = header
        self.records = records
        self.corrupt = corrupt

    @property
    def destinations(self) -> list[str]:
        return list(self.header.get("destinations", ()))


class Spool:
    """The spool directory of one product (``<state>/spool``)."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        max_age: float = DEFAULT_SPOOL_MAX_AGE,
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._progress: Progress | None = None

    @property
    def progress(self) -> Progress:
        """Each destination's progress (the sender's concern: a host never loads it)."""
        if self._progress is None:
            from phonehome._spool.progress import Progress

            self._progress = Progress(self.directory / "progress")
        return self._progress

    # -- writing (in the host) -------------------------------------------------------------
    def append(self, header: dict[str, Any], records: Iterable[Record]) -> Path:
        """Write one segment atomically: a temporary file renamed into place."""
        parts = [
            json.dumps(
                {"format": FORMAT, "version": VERSION, **header}, separators=(",", ":")
            ).encode(),
            b"\n",
        ]
        # The plain tuples made for marshal are thousands of allocations while the host holds
        # its records: the cyclic collector would scan them all, several times (measured: four
        # times the cost of the writing itself). Nothing here makes a cycle.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for wire in to_wires(list(records)):
                try:
                    data = marshal.dumps(wire, MARSHAL_VERSION)
                except ValueError:  # an object marshal cannot write: keep it, as text
                    data = marshal.dumps(_plain(wire), MARSHAL_VERSION)
                parts.append(_FRAME.pack(len(data), zlib.crc32(data)))
                parts.append(data)
        finally:
            if collecting:
                gc.enable()
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(3).hex()}{SEGMENT_SUFFIX}"
        temporary = self.directory / f".{name}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"".join(parts))
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
        """A segment, skipping corrupt records; ``None`` if the file is gone or unreadable."""
        try:
            raw = (self.directory / name).read_bytes()
        except OSError:
            return None
        first, newline, body = raw.partition(b"\n")
        try:
            header = json.loads(first)
            if (
                not isinstance(header, dict)
                or header.get("format") != FORMAT
                or header.get("version") != VERSION
                or not newline
            ):
                raise ValueError("not a spool segment of a known version")
        except ValueError:
            return Segment(name, {}, [], 1)
        records, corrupt = _records(body)
        return Segment(name, header, records, corrupt)

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / name)

    def enforce_caps(self, now: float | None = None) -> int:
        """Drop the oldest segments beyond the size or age cap; return the records dropped.

        Each destination that had not received a dropped segment is owed a report of it
        (``Progress.dropped``).
        """
        now = time.time() if now is None else now
        self._remove_abandoned(now)
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
                if name not in self.progress.delivered(destination):
                    self.progress.owe(destination, count, "age" if too_old else "size")
            dropped += count
            self.remove(name)
            total -= size
        return dropped

    def _remove_abandoned(self, now: float) -> None:
        """Delete the temporary files of hosts killed while writing a segment (a host that
        lives writes one within milliseconds; these are older than ``ABANDONED`` seconds)."""
        from phonehome._spool.progress import files

        for path in files(self.directory):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > ABANDONED:
                        path.unlink()

    def _census(self, name: str) -> tuple[int, list[str]]:
        """A segment's record count and destinations."""
        segment = self.read(name)
        if segment is None:
            return 0, []
        return len(segment.records), [str(d) for d in segment.destinations]

    def purge(self) -> int:
        """Delete every segment and all progress (consent was revoked)."""
        removed = 0
        for name in self.names():
            self.remove(name)
            removed += 1
        self.progress.purge()
        return removed


def _records(body: bytes) -> tuple[list[Record], int]:
    """The records framed in a segment's body, and how many were torn or corrupt."""
    records: list[Record] = []
    corrupt = 0
    offset, end = 0, len(body)
    while offset < end:
        if end - offset < _FRAME.size:
            corrupt += 1  # a torn frame header
            break
        length, checksum = _FRAME.unpack_from(body, offset)
        offset += _FRAME.size
        data = body[offset : offset + length]
        offset += length
        if len(data) < length:
            corrupt += 1  # torn: the write stopped inside this record
            break
        try:
            if zlib.crc32(data) != checksum:
                raise ValueError("checksum")
            records.append(from_wire(marshal.loads(data)))
        except (ValueError, EOFError, TypeError):
            corrupt += 1
    return records, corrupt


def _plain(value: Any) -> Any:
    """``value`` with anything marshal cannot write replaced by its text."""
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
