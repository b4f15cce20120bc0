"""The spool format: round trips, torn and corrupt records, caps, progress and purge."""

from __future__ import annotations

import json
import time
from pathlib import Path

from phonehome._spool.records import MeasureRecord, measure
from phonehome._spool.segments import Spool

HEADER = {"destinations": ["vendor-1", "user-1"], "resource": {"service.name": "democli"}}


def records(n: int, size: int = 10) -> list[MeasureRecord]:
    return [measure("counter", f"c{i}", "", "", i, {"pad": "x" * size}) for i in range(n)]


def test_a_segment_round_trips(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.append(HEADER, records(3))
    (name,) = spool.names()
    segment = spool.read(name)
    assert segment is not None
    assert segment.records == records(3)
    assert segment.corrupt == 0
    assert segment.destinations == ["vendor-1", "user-1"]
    assert segment.header["format"] == "phonehome-spool" and segment.header["version"] == 1
    assert (tmp_path / "spool" / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700


def test_torn_and_corrupt_records_are_skipped_and_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.append(HEADER, records(4))
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"c1", b"cX")  # a flipped byte: the checksum fails
    torn = b"\n".join(lines)[:-15]  # the last record cut short
    path.write_bytes(torn)
    segment = spool.read(path.name)
    assert segment is not None
    assert [r.name for r in segment.records] == ["c0", "c2"]  # type: ignore[union-attr]
    assert segment.corrupt == 2


def test_a_garbage_file_is_one_corrupt_segment_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "00000000000000000001-1-abcdef.seg").write_bytes(b"\x00\xffgarbage\nmore\n")
    segment = Spool(tmp_path).read("00000000000000000001-1-abcdef.seg")
    assert segment is not None and segment.records == [] and segment.corrupt >= 1


def test_the_size_cap_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    for _ in range(5):
        spool.append(HEADER, records(3, size=250))
    spool.max_bytes = sum((tmp_path / n).stat().st_size for n in spool.names()[2:])
    first_two = spool.names()[:2]
    spool.progress.mark_delivered("user-1", first_two[:1])  # the user already had the oldest
    dropped = spool.enforce_caps()
    assert dropped == 6
    assert not set(first_two) & set(spool.names())
    assert len(spool.names()) == 3
    assert (spool.progress.dropped("vendor-1"), spool.progress.dropped("user-1")) == (
        {"size": 6},
        {"size": 3},
    )
    spool.progress.reported_dropped("vendor-1", {"size": 6})
    assert spool.progress.dropped("vendor-1") == {}


def test_the_age_cap_drops_old_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_age=60)
    spool.append(HEADER, records(2))
    spool.append(HEADER, records(1))
    assert spool.enforce_caps(now=time.time() + 30) == 0
    assert spool.enforce_caps(now=time.time() + 120) == 3
    assert spool.names() == []
    assert spool.progress.dropped("vendor-1") == {"age": 3}


def test_progress_is_kept_per_destination_and_compacted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a = spool.append(HEADER, records(1)).name
    b = spool.append(HEADER, records(1)).name
    spool.progress.mark_delivered("vendor-1", [a])
    spool.progress.mark_delivered("user-1", [a, b])
    assert spool.progress.delivered("vendor-1") == {a}
    assert spool.progress.delivered("user-1") == {a, b}
    spool.remove(a)
    spool.progress.compact(set(spool.names()))
    assert spool.progress.delivered("vendor-1") == set()
    assert spool.progress.delivered("user-1") == {b}


def test_purge_removes_segments_progress_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    name = spool.append(HEADER, records(1)).name
    spool.progress.mark_delivered("vendor-1", [name])
    spool.progress.owe("user-1", 3, "rejected")
    assert spool.purge() == 1
    assert spool.names() == [] and spool.progress.delivered("vendor-1") == set()
    assert spool.progress.dropped("user-1") == {}


def test_the_header_is_json_on_the_first_line(tmp_path: Path) -> None:
    path = Spool(tmp_path).append(HEADER, records(1))
    header = json.loads(path.read_bytes().split(b"\n", 1)[0])
    assert header == {"format": "phonehome-spool", "version": 1, **HEADER}


def test_a_dead_hosts_temporary_file_is_deleted_once_old(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = spool.append(HEADER, records(1))
    abandoned = tmp_path / ".00000000000000000001-1-abcdef.seg.tmp"
    abandoned.write_bytes(b"half a segment")
    spool.enforce_caps()
    assert abandoned.exists()  # it may still be being written
    spool.enforce_caps(now=time.time() + 3600)
    assert not abandoned.exists() and kept.exists()
