"""The spool format: round trips, torn and corrupt records, caps, progress and purge."""

from __future__ import annotations

import json
import time
from pathlib import Path

from phonehome._spool.clock import Clock, Moment
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
    path = Path(spool.append(HEADER, records(4)))
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
    later = spool.clock.now()
    assert spool.enforce_caps(now=later.later(30)) == 0
    assert spool.enforce_caps(now=later.later(120)) == 3
    assert spool.names() == []
    assert spool.progress.dropped("vendor-1") == {"age": 3}


class Clocks:
    """A wall clock and a boot clock that a test moves, each on its own."""

    def __init__(self, wall: float = 1_700_000_000.0, boot: float = 5_000.0) -> None:
        self.wall, self.boot, self.boot_id = wall, boot, "b00710000001"

    def clock(self) -> Clock:
        return Clock(lambda: self.wall, lambda: self.boot, self.boot_id)

    def reboot(self, wall_jump: float) -> None:
        self.wall, self.boot, self.boot_id = self.wall + wall_jump, 10.0, "b00710000002"


def test_a_wall_clock_jump_does_not_age_the_spool_within_a_boot(tmp_path: Path) -> None:
    clocks = Clocks()
    spool = Spool(tmp_path, max_age=7 * 86400, clock=clocks.clock())
    spool.append(HEADER, records(2))
    clocks.wall += 30 * 86400  # someone sets the clock 30 days ahead; a minute passes
    clocks.boot += 60
    assert spool.enforce_caps() == 0
    clocks.wall -= 60 * 86400  # and 30 days behind: still a minute and a bit
    assert spool.enforce_caps() == 0
    clocks.boot += 7 * 86400  # a week passes, whatever the wall clock says
    assert spool.enforce_caps() == 2
    assert spool.progress.dropped("vendor-1") == {"age": 2}


def test_across_a_reboot_the_spool_ages_by_the_wall_clock_and_never_backwards(
    tmp_path: Path,
) -> None:
    clocks = Clocks()
    spool = Spool(tmp_path, max_age=7 * 86400, clock=clocks.clock())
    spool.append(HEADER, records(1))
    clocks.reboot(wall_jump=-30 * 86400)  # back after a reboot: the segment is not "old"
    spool.clock = clocks.clock()
    assert spool.enforce_caps() == 0
    clocks.reboot(wall_jump=60 * 86400)  # 30 days after it was written, by the wall clock
    spool.clock = clocks.clock()
    assert spool.enforce_caps() == 1


def test_an_older_senders_segment_name_ages_by_the_wall_clock(tmp_path: Path) -> None:
    clocks = Clocks()
    spool = Spool(tmp_path, max_age=60, clock=clocks.clock())
    path = Path(spool.append(HEADER, records(1)))
    old = tmp_path / f"{int(clocks.wall * 1e9):020d}-1-abcdef.seg"  # version 1 names
    path.rename(old)
    clocks.boot += 3600
    assert spool.enforce_caps() == 0  # no boot clock in the name: the wall clock decides
    clocks.wall += 61
    assert spool.enforce_caps() == 1


def test_a_directory_named_like_a_segment_is_not_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = Path(spool.append(HEADER, records(1)))
    (tmp_path / "00000000000000000001-1-abcdef.seg").mkdir()
    (tmp_path / "00000000000000000002-1-abcdef.seg").symlink_to(kept)
    assert spool.names() == [kept.name]
    spool.remove("00000000000000000001-1-abcdef.seg")  # never raises
    assert (tmp_path / "00000000000000000001-1-abcdef.seg").is_dir()
    assert spool.enforce_caps(now=Moment(time.time() + 30 * 86400)) == 1  # only the segment


def test_a_newer_format_is_kept_for_a_newer_sender_then_dropped_as_unsupported(
    tmp_path: Path,
) -> None:
    clocks = Clocks()
    spool = Spool(tmp_path, max_age=3600, clock=clocks.clock())
    path = Path(spool.append(HEADER, records(3)))
    raw = path.read_bytes().replace(b'"version":1', b'"version":2', 1)
    path.write_bytes(raw)
    segment = spool.read(path.name)
    assert segment is not None and segment.unsupported and segment.corrupt == 0
    assert spool.enforce_caps() == 0 and spool.names() == [path.name]
    spool.progress.mark_delivered("user-1", [path.name])
    clocks.boot += 3601
    assert spool.enforce_caps() == 3  # its frames still count its records
    assert spool.names() == []
    assert spool.progress.dropped("vendor-1") == {"unsupported": 3}
    assert spool.progress.dropped("user-1") == {}


def test_progress_is_kept_per_destination_and_compacted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a = Path(spool.append(HEADER, records(1))).name
    b = Path(spool.append(HEADER, records(1))).name
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
    name = Path(spool.append(HEADER, records(1))).name
    spool.progress.mark_delivered("vendor-1", [name])
    spool.progress.owe("user-1", 3, "rejected")
    assert spool.purge() == 1
    assert spool.names() == [] and spool.progress.delivered("vendor-1") == set()
    assert spool.progress.dropped("user-1") == {}


def test_the_header_is_json_on_the_first_line(tmp_path: Path) -> None:
    path = Path(Spool(tmp_path).append(HEADER, records(1)))
    header = json.loads(path.read_bytes().split(b"\n", 1)[0])
    assert header == {"format": "phonehome-spool", "version": 1, **HEADER}


def test_a_dead_hosts_temporary_file_is_deleted_once_old(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    kept = Path(spool.append(HEADER, records(1)))
    abandoned = tmp_path / ".00000000000000000001-1-abcdef.seg.tmp"
    abandoned.write_bytes(b"half a segment")
    spool.enforce_caps()
    assert abandoned.exists()  # it may still be being written
    spool.enforce_caps(now=Moment(time.time() + 3600))
    assert not abandoned.exists() and kept.exists()
