"""Segments: records made durable on local disk until every destination has them.

One segment file per write, never modified after it is renamed into place; each destination
keeps its own progress (``progress``). Bounded by size and age: the oldest segments go first
and the records dropped are counted, to be reported in the next delivery. The format is in
``docs/spool.md``.
"""

from __future__ import annotations

import marshal
import os
import zlib

from phonehome._core import jsontext
from phonehome._core.settings import DEFAULT_SPOOL_MAX_AGE, DEFAULT_SPOOL_MAX_BYTES
from phonehome._spool.clock import SYSTEM, Clock, Moment, since
from phonehome._spool.records import LOG, MEASURE, SPAN, Record, from_wire, to_wires

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from phonehome._core.state import StrPath
    from phonehome._spool.progress import Progress

FORMAT = "phonehome-spool"
VERSION = 1
MARSHAL_VERSION = 4
FRAME_SIZE = 8
"""Each record: its length and CRC-32 (little-endian u32 each), then its bytes. Written and
read with ``int.to_bytes``/``from_bytes``: ``struct`` would be one more module to load."""
SEGMENT_SUFFIX = ".seg"
ABANDONED = 600.0
"""Seconds after which a temporary segment file is a dead host's, and deleted."""
WAITING_FILE = "all.waiting"
"""In the progress directory: which destinations wait, and how long (``schedule``). Named
with a dot: not a segment list (``Progress.compact``)."""


_SIGNAL_OF = {SPAN: "traces", LOG: "logs", MEASURE: "metrics"}


class Segment:
    """One spooled write: its header, the records that could be read, and how many lines
    were skipped because they were torn or did not check out (``corrupt``).

    ``unsupported``: the segment is of a newer format version than this sender reads; it is
    kept, unread, for a newer sender, until the age cap drops it (``reason="unsupported"``).
    """

    __slots__ = ("corrupt", "header", "name", "records", "unsupported")

    def __init__(
        self,
        name: str,
        header: dict[str, Any],
        records: list[Record],
        corrupt: int,
        unsupported: bool = False,
    ) -> None:
        self.name = name
        self.header = header
        self.records = records
        self.corrupt = corrupt
        self.unsupported = unsupported

    @property
    def destinations(self) -> list[str]:
        found = self.header.get("destinations", ())
        return [str(d) for d in found] if isinstance(found, list | tuple) else []

    def counts(self) -> dict[str, int]:
        """Its records by the signal they are sent as (``traces``, ``logs``, ``metrics``)."""
        counts: dict[str, int] = {}
        for record in self.records:
            signal = _SIGNAL_OF.get(record[0], "metrics")
            counts[signal] = counts.get(signal, 0) + 1
        return counts


class Spool:
    """The spool directory of one product (``<state>/spool``)."""

    def __init__(
        self,
        directory: StrPath,
        max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        max_age: float = DEFAULT_SPOOL_MAX_AGE,
        clock: Clock = SYSTEM,
    ) -> None:
        self.directory = os.fspath(directory)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        """What dates segments: their names carry the moment of the write (``written``)."""
        self._progress: Progress | None = None

    @property
    def waiting_file(self) -> str:
        """Where the sender says which destinations wait (``schedule.resting`` reads it)."""
        return os.path.join(self.directory, "progress", WAITING_FILE)

    @property
    def progress(self) -> Progress:
        """Each destination's progress (the sender's concern: a host never loads it)."""
        if self._progress is None:
            from phonehome._spool.progress import Progress

            self._progress = Progress(os.path.join(self.directory, "progress"))
        return self._progress

    # -- writing (in the host) -------------------------------------------------------------
    def append(self, header: dict[str, Any], records: Iterable[Record]) -> str:
        """Write one segment atomically: a temporary file renamed into place."""
        parts = [
            jsontext.dumps({"format": FORMAT, "version": VERSION, **header}, compact=True).encode(),
            b"\n",
        ]
        # The plain tuples made for marshal are thousands of allocations while the host holds
        # its records: the cyclic collector would scan them all, several times (measured: four
        # times the cost of the writing itself). Nothing here makes a cycle. A CLI's few
        # records never wake the collector: they do without importing ``gc``.
        records = list(records)
        paused = len(records) >= PAUSE_COLLECTOR_FROM and _pause_collector()
        try:
            for wire in to_wires(records):
                try:
                    data = marshal.dumps(wire, MARSHAL_VERSION)
                except ValueError:  # an object marshal cannot write: keep it, as text
                    data = marshal.dumps(_plain(wire), MARSHAL_VERSION)
                parts.append((zlib.crc32(data) << 32 | len(data)).to_bytes(8, "little"))
                parts.append(data)
        finally:
            if paused:
                _resume_collector()
        name = segment_name(self.clock.now())
        temporary = os.path.join(self.directory, f".{name}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"".join(parts))
        finally:
            os.close(fd)
        final = os.path.join(self.directory, name)
        os.replace(temporary, final)
        return final

    # -- reading and housekeeping (in the sender) -------------------------------------------
    def names(self) -> list[str]:
        """Segment names, oldest first: regular files only (a directory or a link named
        like a segment is not one, and is left alone)."""
        try:
            with os.scandir(self.directory) as entries:
                return sorted(
                    e.name
                    for e in entries
                    if e.name.endswith(SEGMENT_SUFFIX) and e.is_file(follow_symlinks=False)
                )
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read(self, name: str) -> Segment | None:
        """A segment, skipping corrupt records; ``None`` if the file is gone or unreadable."""
        try:
            raw = _read_bytes(os.path.join(self.directory, name))
        except OSError:
            return None
        first, newline, body = raw.partition(b"\n")
        try:
            header = jsontext.loads(first)
            if not isinstance(header, dict) or header.get("format") != FORMAT or not newline:
                raise ValueError("not a spool segment")
            version = header.get("version")
            if type(version) is int and version > VERSION:  # a newer sender's: keep it
                return Segment(name, header, [], 0, unsupported=True)
            if version != VERSION:
                raise ValueError("not a spool segment of a known version")
        except ValueError:
            return Segment(name, {}, [], 1)
        records, corrupt = _records(body)
        return Segment(name, header, records, corrupt)

    def remove(self, name: str) -> None:
        """Delete a segment; never raises (it may be gone, or not a file at all)."""
        try:  # noqa: SIM105 - contextlib would cost every CLI an import
            os.unlink(os.path.join(self.directory, name))
        except OSError:
            pass

    def enforce_caps(self, now: Moment | None = None) -> int:
        """Drop the oldest segments beyond the size or age cap; return the records dropped.

        A segment's age is counted on the boot clock when it was written in this boot, so a
        wall clock set days ahead drops nothing. Each destination that had not received a
        dropped segment is owed a report of it (``Progress.dropped``), with the reason:
        ``size``, ``age``, or ``unsupported`` (a newer sender's segment that none came for).
        """
        now = self.clock.now() if now is None else now
        self._remove_abandoned(now.wall)
        sizes: list[tuple[str, int]] = []
        for name in self.names():
            try:
                sizes.append((name, os.stat(os.path.join(self.directory, name)).st_size))
            except OSError:
                continue
        total = sum(size for _, size in sizes)
        dropped = 0
        for name, size in sizes:
            too_old = self._age(name, now) > self.max_age
            if not too_old and total <= self.max_bytes:
                continue
            dropped += self._drop(name, "age" if too_old else "size")
            total -= size
        return dropped

    def _age(self, name: str, now: Moment) -> float:
        """Seconds since ``name`` was written (0 if its moment lies ahead, or is unknown)."""
        moment = written(name)
        if moment is None:
            try:
                moment = Moment(os.stat(os.path.join(self.directory, name)).st_mtime)
            except OSError:
                return 0.0
        return since(moment, now)

    def _drop(self, name: str, reason: str) -> int:
        """Delete a segment, owing each destination that had not received it a report."""
        segment = self.read(name)
        count = 0
        if segment is not None:
            if segment.unsupported:
                reason = "unsupported"
            counts = segment.counts() if not segment.unsupported else {"": _frames(name, self)}
            count = sum(counts.values())
            for destination in segment.destinations:
                whole, partly = self.progress.read(destination)
                if name in whole:
                    continue
                owed = sum(n for s, n in counts.items() if s not in partly.get(name, ()))
                if owed:
                    self.progress.owe(destination, owed, reason)
        self.remove(name)
        return count

    def _remove_abandoned(self, now: float) -> None:
        """Delete the temporary files of hosts killed while writing a segment (a host that
        lives writes one within milliseconds; these are older than ``ABANDONED`` seconds)."""
        from pathlib import Path

        from phonehome._spool.progress import files

        for path in files(Path(self.directory)):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                try:
                    if now - path.stat().st_mtime > ABANDONED:
                        path.unlink()
                except OSError:
                    pass

    def purge(self) -> int:
        """Delete every segment and all progress (consent was revoked)."""
        removed = 0
        for name in self.names():
            self.remove(name)
            removed += 1
        self.progress.purge()
        return removed


def segment_name(moment: Moment) -> str:
    """``<wall ns>-<pid>-<random>[-<boot id>-<boot ns>].seg``: sorted by the wall clock,
    dated by both clocks (:func:`written`), unique across processes and threads."""
    name = f"{int(moment.wall * 1e9):020d}-{os.getpid()}-{os.urandom(3).hex()}"
    if moment.boot is not None:
        name += f"-{moment.boot_id}-{int(moment.boot * 1e9)}"
    return name + SEGMENT_SUFFIX


def written(name: str) -> Moment | None:
    """When a segment was written, from its name (``None`` if the name does not say)."""
    parts = name.removesuffix(SEGMENT_SUFFIX).split("-")
    try:
        wall = int(parts[0]) / 1e9
        if len(parts) >= 5:
            return Moment(wall, int(parts[4]) / 1e9, parts[3])
    except ValueError:
        return None
    return Moment(wall)


def _frames(name: str, spool: Spool) -> int:
    """How many framed records a segment holds, for one this sender cannot read: counted by
    their frames if the frames fit the file exactly, else one."""
    try:
        raw = _read_bytes(os.path.join(spool.directory, name))
    except OSError:
        return 1
    body = raw.partition(b"\n")[2]
    offset = count = 0
    while offset + FRAME_SIZE <= len(body):
        length = int.from_bytes(body[offset : offset + 4], "little")
        offset += FRAME_SIZE + length
        count += 1
    return count if offset == len(body) and count else 1


def _records(body: bytes) -> tuple[list[Record], int]:
    """The records framed in a segment's body, and how many were torn or corrupt."""
    records: list[Record] = []
    corrupt = 0
    offset, end = 0, len(body)
    while offset < end:
        if end - offset < FRAME_SIZE:
            corrupt += 1  # a torn frame header
            break
        length = int.from_bytes(body[offset : offset + 4], "little")
        checksum = int.from_bytes(body[offset + 4 : offset + FRAME_SIZE], "little")
        offset += FRAME_SIZE
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


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


PAUSE_COLLECTOR_FROM = 64
"""Records in one segment from which writing it pauses the cyclic collector."""


def _pause_collector() -> bool:
    """Turn the cyclic collector off; whether it was on (and is to be turned back on)."""
    import gc

    collecting = gc.isenabled()
    gc.disable()
    return collecting


def _resume_collector() -> None:
    import gc

    gc.enable()
