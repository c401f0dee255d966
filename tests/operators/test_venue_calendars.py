"""Trading calendars per venue: CME Globex rolls its trade date at 18:00 ET, US equities keep the
calendar date (04:00 pre-market to 20:00 post-market); half days close every window early."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import pytest

from operators.calendar import (
    CME_GLOBEX,
    US_EQUITIES,
    SessionWindows,
    calendar_of,
    session_clock,
    trade_dates_by_feed,
)
from operators.errors import ConfigError
from operators.sessions import date_to_day, new_york_instant_ns

DEFAULT = SessionWindows()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1_000_000_000


def ny(d: date, hour: int, minute: int = 0) -> int:
    return new_york_instant_ns(d, hour, minute)


@pytest.mark.parametrize(("code", "name"), [
    ("GLBX.MDP3", "cme_globex"), ("XCME", "cme_globex"), ("", "cme_globex"),
    ("XNAS.ITCH", "us_equities"), ("OPRA.PILLAR", "us_equities"), ("xnys.pillar", "us_equities"),
    ("DBEQ.BASIC", "us_equities"), ("EQUS.MINI", "us_equities")])
def test_a_feed_follows_its_venues_calendar(code: str, name: str) -> None:
    assert calendar_of(code).name == name


def test_an_evening_record_is_the_next_cme_trade_date_but_the_same_equities_date() -> None:
    d = date(2025, 3, 10)  # the Monday after spring forward: both sides of the changeover
    times = np.array([ny(d, 3, 59), ny(d, 4, 0), ny(d, 17, 59), ny(d, 18, 0), ny(d, 19, 30), ny(d, 23, 59)])

    cme = CME_GLOBEX.trade_date_days(times).tolist()
    equities = US_EQUITIES.trade_date_days(times).tolist()

    assert cme == [date_to_day(d)] * 3 + [date_to_day(d + timedelta(days=1))] * 3
    assert equities == [date_to_day(d)] * 6


@pytest.mark.parametrize("calendar", [CME_GLOBEX, US_EQUITIES], ids=lambda c: c.name)
@pytest.mark.parametrize("d", [date(2025, 3, 9), date(2025, 3, 10), date(2025, 11, 2), date(2025, 11, 3)])
def test_a_trade_date_starts_where_the_calendar_dates_it(calendar, d: date) -> None:
    start = calendar.dates_start_ns(d)

    dated = calendar.trade_date_days(np.array([start - 1, start], np.int64)).tolist()

    assert dated == [date_to_day(d) - 1, date_to_day(d)]


def test_an_equities_session_runs_from_pre_market_to_post_market_with_no_overnight() -> None:
    clock = session_clock(date(2025, 3, 10), DEFAULT, US_EQUITIES)

    assert clock.session_start == utc(2025, 3, 10, 8, 0)  # 04:00 EDT, the same day
    assert clock.session_end == utc(2025, 3, 11, 0, 0)  # 20:00 EDT
    assert (clock.pm_start, clock.rth_start, clock.rth_end) == (utc(2025, 3, 10, 8), utc(2025, 3, 10, 13, 30),
                                                                utc(2025, 3, 10, 20))
    assert session_clock(date(2025, 3, 10), DEFAULT).session_start == utc(2025, 3, 9, 22, 0)  # CME: Sun 18:00


def test_a_half_day_closes_rth_and_the_setup_window_early_and_splits_what_is_left() -> None:
    friday = date(2025, 11, 28)
    equities = US_EQUITIES.with_half_days([friday])
    windows = SessionWindows(setup=(time(9, 30), time(14, 30)), buckets=5)

    half = session_clock(friday, windows, equities)
    full = session_clock(friday - timedelta(days=1), windows, equities)

    assert half.rth_end == utc(2025, 11, 28, 18, 0)  # 13:00 EST
    assert (half.setup_start, half.setup_end) == (utc(2025, 11, 28, 14, 30), utc(2025, 11, 28, 18, 0))
    assert np.diff(half.bucket_edges).tolist() == [42 * 60 * 10**9] * 5  # 3.5 hours in five
    assert half.or_end == utc(2025, 11, 28, 14, 45)  # before the close: untouched
    assert full.rth_end == utc(2025, 11, 27, 21, 0)  # a full day stays full
    assert session_clock(friday, windows, CME_GLOBEX.with_half_days([friday])).rth_end == utc(2025, 11, 28, 18, 15)


def test_rows_of_several_feeds_are_each_dated_on_their_own_calendar() -> None:
    d = date(2025, 3, 10)
    ts = np.array([ny(d, 19), ny(d, 19), ny(d, 10)], np.int64)

    days = trade_dates_by_feed(ts, ["GLBX.MDP3", "XNAS.ITCH", "GLBX.MDP3"]).tolist()

    assert days == [date_to_day(d) + 1, date_to_day(d), date_to_day(d)]


def test_a_same_day_calendar_must_open_before_it_closes() -> None:
    from dataclasses import replace

    with pytest.raises(ConfigError, match="must open before it closes"):
        replace(US_EQUITIES, opens=time(21, 0))
