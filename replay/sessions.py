"""Trading days and session bounds of the simulated files, in UTC nanoseconds.

The session is given in New York wall-clock time and converted with ``zoneinfo`` so that the
UTC offset follows daylight saving time (04:00 ET is 08:00 UTC in summer, 09:00 UTC in winter).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")


@dataclass(frozen=True)
class Session:
    """One simulated trading day: start of data, the 09:30 open and the end, in UTC ns.

    ``or_end_ns`` is the end of the opening range (09:45 New York).
    """

    trade_date: date
    start_ns: int
    rth_ns: int
    end_ns: int
    or_end_ns: int = 0


def _utc_ns(day: date, wall: time) -> int:
    local = datetime.combine(day, wall, tzinfo=NEW_YORK)
    return int(local.timestamp()) * 1_000_000_000


def trading_days(start: date, count: int) -> list[date]:
    """``count`` consecutive weekdays from ``start`` (a weekend start rolls forward)."""
    days: list[date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def session(day: date, start: time = time(4, 0), rth: time = time(9, 30), end: time = time(16, 0),
            or_end: time = time(9, 45)) -> Session:
    """The session of ``day`` with New York wall-clock bounds."""
    return Session(day, _utc_ns(day, start), _utc_ns(day, rth), _utc_ns(day, end), _utc_ns(day, or_end))
