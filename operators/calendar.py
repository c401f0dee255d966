"""The session clock of one CME trade date: its windows as UTC nanosecond instants.

All windows are wall-clock times in America/New_York on the trade date D (which runs from
18:00 ET on the calendar day before D to 17:00 ET on D; Monday's session starts Sunday 18:00).
``session_clock`` turns a ``SessionWindows`` configuration into a ``SessionClock`` of UTC
instants through ``zoneinfo`` (``operators.sessions.new_york_instant_ns``), so both DST
changeovers are exact. Every window is half-open, ``[start, end)``: an *instant* ``t`` is inside
when ``start <= t < end``. (Summaries of 1-second rows use the rows' intervals instead; see
``operators.levels``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import numpy as np

from operators.errors import ConfigError
from operators.sessions import NS_PER_SECOND, new_york_instant_ns

SESSION_OPEN = time(18, 0)
"""Wall-clock start of a session, on the calendar day before the trade date."""
SESSION_CLOSE = time(17, 0)
"""Wall-clock end of a session, on the trade date."""

Window = tuple[time, time]


class SessionWindowsError(ConfigError, ValueError):
    """A ``SessionWindows`` value that cannot work (one sentence naming the value and the fix)."""


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
    """18:00 ET on the calendar day before ``session_date``."""
    session_end: int
    """17:00 ET on ``session_date``."""
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
def session_clock(session_date: date, windows: SessionWindows) -> SessionClock:
    """The clock of trade date ``session_date`` (cached: both arguments are immutable)."""
    if isinstance(session_date, datetime) or not isinstance(session_date, date):
        msg = f"session_date must be a datetime.date (the CME trade date), got {session_date!r}"
        raise ValueError(msg)
    d = session_date
    setup_start, setup_end = _instant(d, windows.setup[0]), _instant(d, windows.setup[1])
    k = np.arange(windows.buckets + 1, dtype=np.int64)
    edges = setup_start + (k * (setup_end - setup_start)) // windows.buckets
    edges.setflags(write=False)
    return SessionClock(
        session_date=d,
        windows=windows,
        session_start=_instant(d - timedelta(days=1), SESSION_OPEN),
        session_end=_instant(d, SESSION_CLOSE),
        pm_start=_instant(d, windows.pm[0]),
        pm_end=_instant(d, windows.pm[1]),
        rth_start=_instant(d, windows.rth[0]),
        rth_end=_instant(d, windows.rth[1]),
        or_start=_instant(d, windows.opening_range[0]),
        or_end=_instant(d, windows.opening_range[1]),
        setup_start=setup_start,
        setup_end=setup_end,
        bucket_edges=edges,
    )


__all__ = [
    "SESSION_CLOSE",
    "SESSION_OPEN",
    "SessionClock",
    "SessionWindows",
    "SessionWindowsError",
    "session_clock",
]
