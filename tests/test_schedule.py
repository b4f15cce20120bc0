"""When a destination may be tried again: holds, backoff and the host's one-read check, on
clocks the tests move (the wall clock jumps either way, the boot clock only goes on)."""

from __future__ import annotations

import os
from pathlib import Path

from phonehome._spool import schedule as schedules
from phonehome._spool.clock import Clock, Moment, parse, since
from phonehome._spool.schedule import BACKOFF_MAX, MAX_HOLD, Schedule, attempts, resting
from tests.test_spool import Clocks

KEY = "vendor-0123456789abcdef"


def test_a_moment_survives_its_file_and_an_older_files_number_is_a_wall_clock_moment() -> None:
    moment = Moment(1_700_000_000.25, 5000.5, "b00710000001")
    back = parse(moment.text())
    assert back is not None and (back.wall, back.boot, back.boot_id) == (
        1_700_000_000.25,
        5000.5,
        "b00710000001",
    )
    older = parse("1700000000.0")
    assert older is not None and (older.wall, older.boot) == (1_700_000_000.0, None)
    assert parse("nan") is None and parse("") is None and parse("x y z") is None


def test_within_a_boot_the_boot_clock_counts_and_across_boots_the_wall_clock() -> None:
    then = Moment(1000.0, 50.0, "a")
    assert since(then, Moment(1000.0 + 7200, 65.0, "a")) == 15.0  # wall clock 2 h ahead
    assert since(then, Moment(1000.0 - 7200, 65.0, "a")) == 15.0  # 2 h behind
    assert since(then, Moment(1100.0, 3.0, "b")) == 100.0  # another boot
    assert since(then, Moment(900.0, 3.0, "b")) == -100.0  # ... with the clock set back
    assert since(Moment(1000.0), Moment(1015.0, 3.0, "a")) == 15.0  # no boot clock then


def test_a_retry_after_hold_lasts_what_it_asked_whatever_the_wall_clock_does(
    tmp_path: Path,
) -> None:
    clocks = Clocks()
    schedule = Schedule(tmp_path, clocks.clock())
    schedule.hold(KEY, 15)
    clocks.wall += 7200  # the clock is set two hours ahead: the hold is not over
    assert schedule.waits(KEY)
    clocks.boot += 16
    assert not schedule.waits(KEY)
    schedule.hold(KEY, 15)
    clocks.wall -= 30 * 86400  # thirty days behind: fifteen seconds all the same
    clocks.boot += 16
    assert not schedule.waits(KEY)


def test_a_hold_is_capped_at_an_hour_and_is_over_when_the_clock_went_back_over_a_reboot(
    tmp_path: Path,
) -> None:
    clocks = Clocks()
    schedule = Schedule(tmp_path, clocks.clock())
    schedule.hold(KEY, 30 * 86400)  # a destination asks for thirty days
    clocks.boot += MAX_HOLD - 1
    assert schedule.waits(KEY)
    clocks.boot += 2
    assert not schedule.waits(KEY)
    schedule.hold(KEY, 600)
    clocks.reboot(wall_jump=-86400)
    schedule.clock = clocks.clock()
    assert not schedule.waits(KEY)  # cannot be trusted: tried once more
    schedule.hold(KEY, 600)
    clocks.reboot(wall_jump=300)
    schedule.clock = clocks.clock()
    assert schedule.waits(KEY)  # across a reboot the wall clock counts


def test_an_older_senders_hold_counts_from_when_it_was_written_capped(tmp_path: Path) -> None:
    clocks = Clocks()
    path = tmp_path / f"{KEY}.hold"
    path.write_text(str(clocks.wall + 30 * 86400))  # written with a clock 30 days ahead
    os.utime(path, (clocks.wall, clocks.wall))
    schedule = Schedule(tmp_path, clocks.clock())
    assert schedule.waits(KEY)
    clocks.wall += MAX_HOLD + 1
    assert not schedule.waits(KEY)


def test_the_backoff_doubles_to_its_cap_persists_and_ends_with_a_success(tmp_path: Path) -> None:
    clocks = Clocks()
    schedule = Schedule(tmp_path, clocks.clock())
    waits = [schedule.fail(KEY) for _ in range(9)]
    assert waits == [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]
    again = Schedule(tmp_path, clocks.clock())  # a later sender reads it back
    assert again.failures(KEY) == 9 and again.waits(KEY)
    assert not again.waits(KEY, backoff=False)  # an explicit flush does not wait it out
    clocks.wall += 10 * BACKOFF_MAX  # a wall-clock jump does not end it
    assert again.waits(KEY)
    clocks.boot += BACKOFF_MAX
    assert not again.waits(KEY)
    again.succeed(KEY)
    assert again.failures(KEY) == 0 and not (tmp_path / f"{KEY}.backoff").exists()


def test_a_day_offline_costs_a_bounded_number_of_attempts(tmp_path: Path) -> None:
    """The schedule's figure (docs/delivery.md), and the same schedule run through the files
    with a run every minute for a day."""
    assert attempts(86400) == 53
    assert attempts(86400, every=1.0) == 53  # however often the program runs
    clocks = Clocks()
    schedule = Schedule(tmp_path, clocks.clock())
    tried = 0
    for _ in range(24 * 60):
        if not schedule.waits(KEY):
            tried += 1
            schedule.fail(KEY)
        clocks.boot += 60
        clocks.wall += 60
    assert tried == attempts(86400)


def test_a_host_starts_no_sender_only_while_every_destination_of_its_own_waits(
    tmp_path: Path,
) -> None:
    clocks = Clocks()
    schedule = Schedule(tmp_path, clocks.clock())
    user = "user-0123456789abcdef"
    schedule.fail(KEY)
    schedule.publish([KEY, user])
    assert resting(tmp_path, [KEY], clocks.clock())
    assert not resting(tmp_path, [KEY, user], clocks.clock())  # the user's may be tried
    assert not resting(tmp_path, [], clocks.clock())
    schedule.hold(user, 120)
    schedule.publish([KEY, user])
    assert resting(tmp_path, [KEY, user], clocks.clock())
    clocks.boot += 31  # the backoff is over, the hold is not
    assert not resting(tmp_path, [KEY, user], clocks.clock())
    schedule.succeed(KEY)
    schedule.publish([KEY, user])
    assert (tmp_path / schedules.WAITING_FILE).read_text().split()[0] == user
    (tmp_path / schedules.WAITING_FILE).write_bytes(b"\x00garbage\n")
    assert not resting(tmp_path, [user], clocks.clock())


def test_the_system_clock_reads_a_boot_clock_where_linux_has_one() -> None:
    now = Clock().now()
    if hasattr(os, "uname") and os.uname().sysname == "Linux":
        assert now.boot is not None and len(now.boot_id) == 12
    assert abs(since(now, Clock().now())) < 5
