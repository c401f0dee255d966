"""Trade dates in America/New_York, vectorised over nanosecond timestamps.

The CME trade date D runs from 18:00 ET on D-1 to 17:00 ET on D, so the trade date of an instant
is the New York calendar date of that instant shifted forward by six hours (18:00 + 6 h = 00:00).
Offsets come from the IANA database through ``zoneinfo``; they are looked up once per distinct
hour in a chunk, so a day of records costs a handful of look-ups, and DST changeovers (which
happen on the hour) are exact. A US equities venue has no evening session: its trade date is the
calendar date (a roll of 0 hours; ``operators.calendar`` says which venue rolls how).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
NS_PER_SECOND = 1_000_000_000
NS_PER_HOUR = 3_600 * NS_PER_SECOND
NS_PER_DAY = 86_400 * NS_PER_SECOND
_EPOCH_DATE = date(1970, 1, 1)
TRADE_DATE_ROLL_HOURS = 6
"""Hours added to New York time so that 18:00 rolls to the next calendar date."""


@lru_cache(maxsize=65_536)
def _utc_offset_ns(hour: int) -> int:
    instant = datetime.fromtimestamp(hour * 3_600, tz=UTC)
    offset = instant.astimezone(NEW_YORK).utcoffset()
    assert offset is not None
    return int(offset.total_seconds()) * NS_PER_SECOND


def new_york_offsets(ts_ns: np.ndarray) -> np.ndarray:
    """UTC offset of New York (int64 ns, negative) at each timestamp."""
    hours = ts_ns.astype(np.int64) // NS_PER_HOUR
    if hours.size == 0:
        return np.zeros(0, np.int64)
    low, high = int(hours.min()), int(hours.max())
    if _utc_offset_ns(low) == _utc_offset_ns(high) and high - low < 24 * 180:
        # Offsets change at most twice a year, so equal ends within half a year mean no change.
        return np.full(hours.size, _utc_offset_ns(low), np.int64)
    unique, inverse = np.unique(hours, return_inverse=True)
    table = np.array([_utc_offset_ns(int(h)) for h in unique], np.int64)
    return table[inverse]


def trade_date_days(ts_ns: np.ndarray, roll_hours: int = TRADE_DATE_ROLL_HOURS) -> np.ndarray:
    """Trade date of each timestamp, as int32 days since 1970-01-01: the New York calendar date
    ``roll_hours`` later (CME's 6 by default; 0 for a venue whose trade date is the calendar date,
    see ``operators.calendar.TradingCalendar``)."""
    local = ts_ns.astype(np.int64) + new_york_offsets(ts_ns) + roll_hours * NS_PER_HOUR
    return (local // NS_PER_DAY).astype(np.int32)


def trade_date_of(ts_ns: int, roll_hours: int = TRADE_DATE_ROLL_HOURS) -> date:
    """Trade date of one timestamp (CME's by default)."""
    return day_to_date(int(trade_date_days(np.array([ts_ns], np.int64), roll_hours)[0]))


def day_to_date(days: int) -> date:
    return _EPOCH_DATE + timedelta(days=days)


def date_to_day(d: date) -> int:
    return (d - _EPOCH_DATE).days


def new_york_instant_ns(d: date, hour: int, minute: int = 0) -> int:
    """The UTC nanosecond instant of wall-clock ``hour:minute`` in New York on date ``d``."""
    local = datetime(d.year, d.month, d.day, hour, minute, tzinfo=NEW_YORK)
    return int(local.timestamp()) * NS_PER_SECOND
