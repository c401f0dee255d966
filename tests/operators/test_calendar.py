"""The session clock: exact UTC instants on both 2025 DST changeovers, buckets, custom windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import numpy as np
import pytest

from operators.calendar import SessionWindows, SessionWindowsError, session_clock
from operators.errors import ConfigError

DEFAULT = SessionWindows()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """UTC nanoseconds of that instant in UTC."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()) * 1_000_000_000


def test_monday_after_spring_forward_starts_sunday_edt() -> None:
    clock = session_clock(date(2025, 3, 10), DEFAULT)
    assert clock.session_start == utc(2025, 3, 9, 22, 0)  # Sun 18:00 EDT
    assert clock.session_end == utc(2025, 3, 10, 21, 0)  # Mon 17:00 EDT
    assert clock.pm_start == utc(2025, 3, 10, 8, 0)
    assert clock.pm_end == utc(2025, 3, 10, 13, 30)
    assert clock.rth_start == utc(2025, 3, 10, 13, 30)
    assert clock.rth_end == utc(2025, 3, 10, 20, 0)
    assert (clock.or_start, clock.or_end) == (utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 13, 45))
    assert (clock.setup_start, clock.setup_end) == (utc(2025, 3, 10, 13, 30), utc(2025, 3, 10, 17, 30))


def test_friday_before_spring_forward_is_est() -> None:
    clock = session_clock(date(2025, 3, 7), DEFAULT)
    assert clock.session_start == utc(2025, 3, 6, 23, 0)  # Thu 18:00 EST
    assert clock.rth_start == utc(2025, 3, 7, 14, 30)
    assert clock.rth_end == utc(2025, 3, 7, 21, 0)


def test_monday_after_fall_back_starts_sunday_est() -> None:
    clock = session_clock(date(2025, 11, 3), DEFAULT)
    assert clock.session_start == utc(2025, 11, 2, 23, 0)  # Sun 18:00 EST
    assert clock.rth_start == utc(2025, 11, 3, 14, 30)
    assert clock.or_end == utc(2025, 11, 3, 14, 45)


def test_friday_before_fall_back_is_edt() -> None:
    clock = session_clock(date(2025, 10, 31), DEFAULT)
    assert clock.session_start == utc(2025, 10, 30, 22, 0)  # Thu 18:00 EDT
    assert clock.rth_start == utc(2025, 10, 31, 13, 30)
    assert clock.session_end == utc(2025, 10, 31, 21, 0)


def test_session_spanning_the_changeover_night() -> None:
    # Session 2025-03-09 (a Sunday trade date only in arithmetic) would start Sat 18:00 EST and end
    # Sun 17:00 EDT: 23 hours of wall clock minus the lost hour.
    clock = session_clock(date(2025, 3, 9), DEFAULT)
    assert clock.session_start == utc(2025, 3, 8, 23, 0)
    assert clock.session_end == utc(2025, 3, 9, 21, 0)
    assert clock.session_end - clock.session_start == 22 * 3_600 * 1_000_000_000


def test_default_bucket_edges_are_48_minutes() -> None:
    clock = session_clock(date(2025, 3, 10), DEFAULT)
    ny = [(9, 30), (10, 18), (11, 6), (11, 54), (12, 42), (13, 30)]
    assert clock.bucket_edges.dtype == np.int64
    assert clock.bucket_edges.tolist() == [utc(2025, 3, 10, h + 4, m) for h, m in ny]
    winter = session_clock(date(2025, 11, 3), DEFAULT)
    assert winter.bucket_edges.tolist() == [utc(2025, 11, 3, h + 5, m) for h, m in ny]
    assert not clock.bucket_edges.flags.writeable


def test_bucket_of_is_half_open_and_minus_one_outside() -> None:
    clock = session_clock(date(2025, 11, 3), DEFAULT)
    e = clock.bucket_edges
    ts = np.array([e[0] - 1, e[0], e[1] - 1, e[1], e[2], e[4] + 5, e[5] - 1, e[5], clock.pm_start], np.int64)
    out = clock.bucket_of(ts)
    assert out.dtype == np.int8
    assert out.tolist() == [-1, 0, 0, 1, 2, 4, 4, -1, -1]


def test_window_membership_helpers_are_half_open() -> None:
    clock = session_clock(date(2025, 3, 7), DEFAULT)
    ts = np.array(
        [clock.pm_start - 1, clock.pm_start, clock.rth_start - 1, clock.rth_start, clock.or_end - 1, clock.or_end,
         clock.rth_end - 1, clock.rth_end],
        np.int64,
    )
    assert clock.in_pm(ts).tolist() == [False, True, True, False, False, False, False, False]
    assert clock.in_rth(ts).tolist() == [False, False, False, True, True, True, True, False]
    assert clock.in_or(ts).tolist() == [False, False, False, True, True, False, False, False]
    assert clock.in_setup(ts).tolist() == [False, False, False, True, True, True, False, False]
    assert clock.in_session(ts).all()


def test_helpers_accept_uint64_timestamps() -> None:
    clock = session_clock(date(2025, 3, 7), DEFAULT)
    ts = np.array([clock.rth_start, clock.pm_start], np.uint64)
    assert clock.in_rth(ts).tolist() == [True, False]
    assert clock.bucket_of(ts).tolist() == [0, -1]


def test_custom_windows() -> None:
    windows = SessionWindows(
        pm=(time(7, 0), time(9, 0)),
        rth=(time(9, 30), time(16, 15)),
        opening_range=(time(9, 30), time(10, 0)),
        setup=(time(10, 0), time(12, 0)),
        buckets=4,
    )
    clock = session_clock(date(2025, 3, 10), windows)
    assert (clock.pm_start, clock.pm_end) == (utc(2025, 3, 10, 11, 0), utc(2025, 3, 10, 13, 0))
    assert clock.rth_end == utc(2025, 3, 10, 20, 15)
    assert clock.or_end == utc(2025, 3, 10, 14, 0)
    assert clock.bucket_edges.tolist() == [
        utc(2025, 3, 10, 14, 0), utc(2025, 3, 10, 14, 30), utc(2025, 3, 10, 15, 0),
        utc(2025, 3, 10, 15, 30), utc(2025, 3, 10, 16, 0),
    ]
    assert clock.buckets == 4
    assert clock.bucket_of(np.array([utc(2025, 3, 10, 15, 59, 59)])).tolist() == [3]


def test_uneven_buckets_floor_and_end_exactly() -> None:
    windows = SessionWindows(setup=(time(9, 30), time(9, 30, 10)), buckets=3)
    clock = session_clock(date(2025, 3, 7), windows)
    s = 1_000_000_000
    start = utc(2025, 3, 7, 14, 30)
    assert clock.bucket_edges.tolist() == [start, start + 3 * s + s // 3, start + 6 * s + 2 * s // 3, start + 10 * s]


def test_single_bucket_covers_the_setup_window() -> None:
    clock = session_clock(date(2025, 3, 7), SessionWindows(buckets=1))
    assert clock.bucket_edges.tolist() == [clock.setup_start, clock.setup_end]


def test_clock_is_cached_and_comparable() -> None:
    a = session_clock(date(2025, 3, 10), SessionWindows())
    b = session_clock(date(2025, 3, 10), SessionWindows())
    assert a is b
    assert a == b
    assert a != session_clock(date(2025, 3, 11), SessionWindows())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"pm": (time(9, 30), time(4, 0))}, "pm must start before it ends"),
        ({"rth": (time(9, 30), time(9, 30))}, "rth must start before it ends"),
        ({"buckets": 0}, "buckets must be an integer >= 1"),
        ({"buckets": True}, "buckets must be an integer >= 1"),
        ({"buckets": 2.0}, "buckets must be an integer >= 1"),
        ({"opening_range": (time(9, 0), time(9, 45))}, "opening_range (09:00:00-09:45:00) must lie inside RTH"),
        ({"setup": (time(9, 30), time(16, 30))}, "setup (09:30:00-16:30:00) must lie inside RTH"),
        ({"pm": (time(4, 0), time(10, 0))}, "pm must end by the RTH start"),
        ({"rth": (time(9, 30), time(17, 30))}, "rth must end by the 17:00:00 session close"),
        ({"setup": (time(9, 30),)}, "setup must be a (start, end) tuple of datetime.time"),
        ({"setup": (time(9, 30), time(9, 30, 2))}, "under 1 s"),
    ],
)
def test_invalid_windows_raise_one_sentence(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match="SessionWindows") as info:
        SessionWindows(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert isinstance(info.value, SessionWindowsError)
    assert isinstance(info.value, ConfigError)
    assert str(info.value).count(". ") == 0


def test_session_clock_wants_a_plain_date() -> None:
    with pytest.raises(ValueError, match="session_date must be a datetime.date"):
        session_clock(datetime(2025, 3, 10, 9, 30), DEFAULT)  # a datetime is a date to the type checker
