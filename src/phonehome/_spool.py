"""The spool: records made durable on local disk until every destination has them.

One segment file per write, never modified after it is renamed into place; each
destination keeps its own progress (the segments it has), so a dead destination holds back
nobody else. Bounded by size and age: the oldest segments go first and the records dropped
are counted, to be reported in the next delivery. The format is in ``docs/spool.md``.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

FORMAT = "phonehome-spool"
VERSION = 1
MARSHAL_VERSION = 4
_FRAME = struct.Struct("<II")
"""Each record: its length and CRC-32 (little-endian u32 each), then its bytes."""
SEGMENT_SUFFIX = ".seg"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_AGE = 7 * 24 * 3600.0
_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
"""Progress files are appended to, never through a link planted in their place."""
ABANDONED = 600.0
"""Seconds after which a temporary segment file is a dead host's, and deleted."""


class Segment:
    """One spooled write: its header, the records that could be read, and how many lines
    were skipped because they were torn or did not check out (``corrupt``)."""

    __slots__ = ("corrupt", "header", "name", "records")

    def __init__(
        self, name: str, header: dict[str, Any], records: list[list[Any]], corrupt: int
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
        self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES, max_age: float = DEFAULT_MAX_AGE
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_age = max_age

    # -- writing (in the host) -------------------------------------------------------------
    def append(self, header: dict[str, Any], records: Iterable[Any]) -> Path:
        """Write one segment atomically: a temporary file renamed into place."""
        parts = [
            json.dumps(
                {"format": FORMAT, "version": VERSION, **header}, separators=(",", ":")
            ).encode(),
            b"\n",
        ]
        for record in records:
            try:
                data = marshal.dumps(record, MARSHAL_VERSION)
            except ValueError:  # an object marshal cannot write: keep it, as text
                data = marshal.dumps(_plain(record), MARSHAL_VERSION)
            parts.append(_FRAME.pack(len(data), zlib.crc32(data)))
            parts.append(data)
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
        records: list[Any] = []
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
                record = marshal.loads(data)
                if not isinstance(record, tuple | list) or not record:
                    raise ValueError("not a record")
                records.append(record)
            except (ValueError, EOFError, TypeError):
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
                if name not in self.delivered(destination):
                    self.owe(destination, count, "age" if too_old else "size")
            dropped += count
            self.remove(name)
            total -= size
        return dropped

    def _remove_abandoned(self, now: float) -> None:
        """Delete the temporary files of hosts killed while writing a segment (a host that
        lives writes one within milliseconds; these are older than ``ABANDONED`` seconds)."""
        for path in _files(self.directory):
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

    # -- per-destination progress ------------------------------------------------------------
    def delivered(self, destination: str) -> set[str]:
        """The segments ``destination`` already has."""
        try:
            text = (self.directory / "progress" / destination).read_text(errors="replace")
        except FileNotFoundError:
            return set()
        return set(text.split())

    def mark_delivered(self, destination: str, names: Iterable[str]) -> None:
        directory = self.directory / "progress"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / destination, _APPEND, 0o600)
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
                from phonehome import _state

                _state.write_text(path, "".join(f"{n}\n" for n in kept))
            else:
                path.unlink(missing_ok=True)

    # -- dropped-record accounting -----------------------------------------------------------
    def owe(self, destination: str, count: int, reason: str) -> None:
        """``destination`` is owed a report of ``count`` records dropped for ``reason``."""
        directory = self.directory / "progress"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / f"{destination}.dropped", _APPEND, 0o600)
        try:
            os.write(fd, f"{count} {reason}\n".encode())
        finally:
            os.close(fd)

    def dropped(self, destination: str) -> dict[str, int]:
        """Records dropped unsent that ``destination`` has not been told about, by reason:
        ``size`` or ``age`` (the caps), ``rejected`` (the destination refused them).
        """
        try:
            path = self.directory / "progress" / f"{destination}.dropped"
            text = path.read_text(errors="replace")
        except FileNotFoundError:
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


def _plain(value: Any) -> Any:
    """``value`` with anything marshal cannot write replaced by its text."""
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
