"""Trading calendars per venue, and the session clock of one trade date: its windows as UTC
nanosecond instants.

A ``TradingCalendar`` says when a venue's trade date D starts and ends: CME Globex runs from
18:00 ET on the calendar day before D to 17:00 ET on D (Monday's session starts Sunday 18:00);
US equities (Nasdaq, NYSE, the other lit venues, OPRA) have no evening session, so D is the
calendar date, from pre-market at 04:00 ET to the end of post-market at 20:00 ET. A half day
closes RTH early (configurable per venue: ``[calendars]``). Which calendar a record follows is
told by its dataset's venue code (``calendar_of``).

All windows are wall-clock times in America/New_York on the trade date D; ``session_clock``
turns a ``SessionWindows`` configuration into a ``SessionClock`` of UTC instants through
``zoneinfo`` (``operators.sessions.new_york_instant_ns``), so both DST changeovers are exact.
Every window is half-open, ``[start, end)``: an *instant* ``t`` is inside when
``start <= t < end``. (Summaries of 1-second rows use the rows' intervals instead; see
``operators.levels``.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Final

import numpy as np

from operators.errors import ConfigError
from operators.sessions import NS_PER_SECOND, day_to_date, new_york_instant_ns, trade_date_days

SESSION_OPEN = time(18, 0)
"""Wall-clock start of a CME session, on the calendar day before the trade date."""
SESSION_CLOSE = time(17, 0)
"""Wall-clock end of a CME session, on the trade date; every analytics window ends by it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingCalendar:
    """When one venue's sessions run (America/New_York wall clock) and which days close early."""

    name: str
    opens: time
    """Session start: on the calendar day before the trade date when ``opens_day_before``."""
    opens_day_before: bool
    closes: time
    """Session end, on the trade date."""
    half_days: frozenset[date] = frozenset()
    """Trade dates whose regular session closes at ``early_close``."""
    early_close: time = time(13, 0)

    def __post_init__(self) -> None:
        if not self.opens_day_before and not self.opens < self.closes:
            msg = f"calendar {self.name}: a same-day session must open before it closes, got {self.opens}-{self.closes}"
            raise ConfigError(msg)

    @property
    def roll_hours(self) -> int:
        """Hours added to New York time so the session's start falls on its trade date's midnight."""
        return 24 - self.opens.hour if self.opens_day_before else 0

    def trade_date_days(self, ts_ns: np.ndarray) -> np.ndarray:
        """The trade date of each timestamp, as int32 days since 1970-01-01."""
        return trade_date_days(ts_ns, self.roll_hours)

    def trade_date_of(self, ts_ns: int) -> date:
        return day_to_date(int(self.trade_date_days(np.array([ts_ns], np.int64))[0]))

    def session_start_ns(self, d: date) -> int:
        return _instant(d - timedelta(days=1) if self.opens_day_before else d, self.opens)

    def session_end_ns(self, d: date) -> int:
        return _instant(d, self.closes)

    def dates_start_ns(self, d: date) -> int:
        """Where trade date ``d`` begins: every instant from here to the next date's start is dated ``d``."""
        midnight = datetime(d.year, d.month, d.day, tzinfo=None)
        roll = timedelta(hours=self.roll_hours)
        local = midnight - roll
        return new_york_instant_ns(local.date(), local.hour, local.minute)

    def with_half_days(self, days: Iterable[date], early_close: time | None = None) -> TradingCalendar:
        return replace(self, half_days=frozenset(days), early_close=early_close or self.early_close)


CME_GLOBEX: Final = TradingCalendar(name="cme_globex", opens=SESSION_OPEN, opens_day_before=True,
                                    closes=SESSION_CLOSE, early_close=time(13, 15))
"""CME Globex: 18:00 ET the evening before to 17:00 ET; equity index futures halt at 13:15 ET on a half day."""
US_EQUITIES: Final = TradingCalendar(name="us_equities", opens=time(4, 0), opens_day_before=False,
                                     closes=time(20, 0), early_close=time(13, 0))
"""US equities and their listed options: pre-market from 04:00, RTH 09:30-16:00, post-market to
20:00 ET, no overnight session; 13:00 ET close on a half day."""
CALENDARS: Final = {c.name: c for c in (CME_GLOBEX, US_EQUITIES)}

_EQUITY_VENUES: Final = frozenset({
    "XNAS", "XBOS", "XPSX", "XNYS", "ARCX", "XASE", "XCHI", "XCIS", "BATS", "BATY", "EDGA", "EDGX",
    "IEXG", "MEMX", "EPRL", "LTSE", "DBEQ", "EQUS", "OPRA", "FINN", "FINY", "FINC", "XNDQ",
})
"""Databento dataset venue codes (the part before the dot: ``XNAS.ITCH``) and listing MICs that
follow the US equities calendar; every other code (``GLBX``, ``XCME``, a test's empty string)
follows CME Globex."""


def calendar_of(code: str, calendars: Mapping[str, TradingCalendar] = CALENDARS) -> TradingCalendar:
    """The calendar of a dataset (``"XNAS.ITCH"``) or venue code (``"XNAS"``)."""
    venue = code.split(".", 1)[0].strip().upper()
    return calendars["us_equities" if venue in _EQUITY_VENUES else "cme_globex"]

Window = tuple[time, time]


class SessionWindowsError(ConfigError, ValueError):
    """A ``SessionWindows`` value that cannot work (one sentence naming the value and the fix)."""


def trade_dates_by_feed(ts_ns: np.ndarray, datasets: list[str]) -> np.ndarray:
    """Trade dates (int32 days) of rows from several feeds, each on its own dataset's calendar."""
    out = np.empty(len(ts_ns), np.int32)
    codes = np.asarray(datasets, dtype=object)
    for code in set(datasets):
        mine = codes == code
        out[mine] = calendar_of(code).trade_date_days(np.asarray(ts_ns)[mine])
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionWindows:
    """Wall-clock windows (America/New_York, on the trade date) of one session; all half-open."""

    pm: Window = (time(4, 0), time(9, 30))
    """Pre-market window; its high/low are PMH/PML, known at its end."""
    rth: Window = (time(9, 30), time(16, 0))
    """Regular trading hours; its high/low become the next session's PDH/PDL."""
    opening_range: Window = (time(9, 30), time(9, 45))
    """Opening range; its high/low are ORH/ORL, known at its end. Must lie inside RTH."""
    setup: Window = (time(9, 30), time(13, 30))
    """Where setups are extracted (the first four RTH hours). Must lie inside RTH."""
    buckets: int = 5
    """Number of equal time buckets across the setup window (48 minutes each by default)."""

    def __post_init__(self) -> None:
        named = {"pm": self.pm, "rth": self.rth, "opening_range": self.opening_range, "setup": self.setup}
        for name, window in named.items():
            _check_window(name, window)
        if not (isinstance(self.buckets, int) and not isinstance(self.buckets, bool)) or self.buckets < 1:
            msg = f"SessionWindows.buckets must be an integer >= 1, got {self.buckets!r}"
            raise SessionWindowsError(msg)
        if self.pm[1] > self.rth[0]:
            msg = f"SessionWindows.pm must end by the RTH start {self.rth[0]}, got end {self.pm[1]}"
            raise SessionWindowsError(msg)
        for name in ("opening_range", "setup"):
            start, end = named[name]
            if start < self.rth[0] or end > self.rth[1]:
                msg = (
                    f"SessionWindows.{name} ({start}-{end}) must lie inside RTH "
                    f"({self.rth[0]}-{self.rth[1]}); move it inside or widen rth"
                )
                raise SessionWindowsError(msg)
        span = _seconds(self.setup[1]) - _seconds(self.setup[0])
        if span < self.buckets:
            msg = f"SessionWindows.buckets={self.buckets} splits the setup window into buckets under 1 s; use fewer"
            raise SessionWindowsError(msg)


def _check_window(name: str, window: object) -> None:
    if not (isinstance(window, tuple) and len(window) == 2 and all(isinstance(t, time) for t in window)):
        msg = f"SessionWindows.{name} must be a (start, end) tuple of datetime.time, got {window!r}"
        raise SessionWindowsError(msg)
    start, end = window
    if start.tzinfo is not None or end.tzinfo is not None:
        msg = f"SessionWindows.{name} times must be naive New York wall-clock times, got {window!r}"
        raise SessionWindowsError(msg)
    if not start < end:
        msg = f"SessionWindows.{name} must start before it ends, got {start}-{end}"
        raise SessionWindowsError(msg)
    if end > SESSION_CLOSE:
        msg = f"SessionWindows.{name} must end by the {SESSION_CLOSE} session close, got end {end}"
        raise SessionWindowsError(msg)


def _seconds(t: time) -> float:
    return t.hour * 3_600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _instant(d: date, t: time) -> int:
    """UTC ns of wall-clock ``t`` in New York on ``d`` (seconds added after the minute)."""
    return new_york_instant_ns(d, t.hour, t.minute) + t.second * NS_PER_SECOND + t.microsecond * 1_000


@dataclass(frozen=True, slots=True)
class SessionClock:
    """UTC nanosecond instants of one session's windows. Build it with ``session_clock``."""

    session_date: date
    windows: SessionWindows
    session_start: int
    """The calendar's open: 18:00 ET the day before ``session_date`` on CME Globex, 04:00 ET on it for US equities."""
    session_end: int
    """The calendar's close on ``session_date`` (17:00 ET on CME Globex, 20:00 ET for US equities)."""
    pm_start: int
    pm_end: int
    rth_start: int
    rth_end: int
    or_start: int
    or_end: int
    setup_start: int
    setup_end: int
    bucket_edges: np.ndarray = field(compare=False, repr=False)
    """int64[buckets + 1], read-only: bucket k is ``[edges[k], edges[k + 1])``."""

    @property
    def buckets(self) -> int:
        return self.windows.buckets

    def bucket_of(self, ts_ns: np.ndarray) -> np.ndarray:
        """Setup-window bucket (int8, 0..buckets-1) of each instant; -1 outside the setup window."""
        ts = np.asarray(ts_ns).astype(np.int64, copy=False)
        k = np.searchsorted(self.bucket_edges, ts, side="right") - 1
        inside = (ts >= self.setup_start) & (ts < self.setup_end)
        return np.where(inside, k, -1).astype(np.int8)

    def in_rth(self, ts_ns: np.ndarray) -> np.ndarray:
        return _between(ts_ns, self.rth_start, self.rth_end)

    def in_pm(self, ts_ns: np.ndarray) -> np.ndarray:
        return _between(ts_ns, self.pm_start, self.pm_end)

    def in_or(self, ts_ns: np.ndarray) -> np.ndarray:
        return _between(ts_ns, self.or_start, self.or_end)

    def in_setup(self, ts_ns: np.ndarray) -> np.ndarray:
        return _between(ts_ns, self.setup_start, self.setup_end)

    def in_session(self, ts_ns: np.ndarray) -> np.ndarray:
        return _between(ts_ns, self.session_start, self.session_end)


def _between(ts_ns: np.ndarray, start: int, end: int) -> np.ndarray:
    ts = np.asarray(ts_ns).astype(np.int64, copy=False)
    return (ts >= start) & (ts < end)


@lru_cache(maxsize=4_096)
def session_clock(session_date: date, windows: SessionWindows, calendar: TradingCalendar = CME_GLOBEX) -> SessionClock:
    """The clock of trade date ``session_date`` on ``calendar`` (cached: the arguments are immutable).

    On a half day every window ends by the early close (RTH, the opening range, the setup window,
    whose buckets split what is left of it)."""
    if isinstance(session_date, datetime) or not isinstance(session_date, date):
        msg = f"session_date must be a datetime.date (the trade date), got {session_date!r}"
        raise ValueError(msg)
    d = session_date
    early = _instant(d, calendar.early_close) if d in calendar.half_days else None

    def end(t: time) -> int:
        at = _instant(d, t)
        return min(at, early) if early is not None else at

    setup_start = _instant(d, windows.setup[0])
    setup_end = max(end(windows.setup[1]), setup_start)
    k = np.arange(windows.buckets + 1, dtype=np.int64)
    edges = setup_start + (k * (setup_end - setup_start)) // windows.buckets
    edges.setflags(write=False)
    return SessionClock(
        session_date=d,
        windows=windows,
        session_start=calendar.session_start_ns(d),
        session_end=calendar.session_end_ns(d),
        pm_start=_instant(d, windows.pm[0]),
        pm_end=_instant(d, windows.pm[1]),
        rth_start=_instant(d, windows.rth[0]),
        rth_end=end(windows.rth[1]),
        or_start=_instant(d, windows.opening_range[0]),
        or_end=max(end(windows.opening_range[1]), _instant(d, windows.opening_range[0])),
        setup_start=setup_start,
        setup_end=setup_end,
        bucket_edges=edges,
    )


__all__ = [
    "CALENDARS",
    "CME_GLOBEX",
    "SESSION_CLOSE",
    "SESSION_OPEN",
    "SessionClock",
    "SessionWindows",
    "SessionWindowsError",
    "TradingCalendar",
    "US_EQUITIES",
    "calendar_of",
    "session_clock",
    "trade_dates_by_feed",
]
