"""Which sessions a live partition has open, and what its records say about them.

A file names its sessions in its metadata; a topic partition learns them as records arrive, and
closes session D's books (``SourceEnd(final=False)``) once it has moved on to a later session.
Two kinds of record must not decide that on their own:

- **A damaged timestamp.** One record whose ``ts_recv`` jumps to a later session between records
  of the current one would close the current session hours early, and every record after it
  would arrive for a closed session. A later session is taken as begun only when two records in
  a row say so (or the message ends on it); a lone record that jumps ahead and is followed by
  the current session again is a ``bad_timestamp`` dead letter.
- **A late record.** A record of a session the partition has already closed (by a later session
  or by the idle clock) still lands in Bronze, the system of record, but goes to no book: its
  session's rows are final. A Bronze replay (``bronze://``) recomputes that session with it.

Records that validation will refuse (``operators.normalize``: unknown instrument, timestamp
outside 2000–2100, …) say nothing about sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.calendar import CME_GLOBEX, TradingCalendar
from operators.normalize import reason_codes
from operators.sessions import day_to_date


@dataclass(frozen=True, slots=True)
class Stretch:
    """Records ``start:stop`` of a message, in order; those of sessions before ``closed_before``
    (days since the epoch) are late: Bronze only."""

    start: int
    stop: int
    closed_before: int


@dataclass(frozen=True, slots=True)
class Close:
    """Before the next stretch: the books ``keys`` of sessions the partition has left are closed."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Jump:
    """Record ``index`` of a message jumps to a later session and back: a damaged timestamp."""

    index: int
    detail: str


Step = Stretch | Close | Jump


@dataclass(frozen=True, slots=True)
class FeedSessionsState:
    day: int = -1
    """The partition's session (days since the epoch; -1 before its first record)."""
    closed_before: int = -1
    """Every session before this day is closed."""
    open_keys: tuple[str, ...] = ()
    """(contract, session) books fed and not closed: ``iid:day``."""
    days: tuple[int, ...] = ()
    event_ns: int = -1
    """Latest ``ts_recv`` of a record that counts (its event time)."""
    late: int = 0
    """Records that arrived for a closed session."""


class FeedSessions:
    """The sessions of one partition; ``read`` one message's MBO records at a time."""

    def __init__(self, state: FeedSessionsState) -> None:
        self.day, self.closed_before = state.day, state.closed_before
        self.open: set[str] = set(state.open_keys)
        self.days: set[int] = set(state.days)
        self.event_ns, self.late = state.event_ns, state.late

    def state(self) -> FeedSessionsState:
        return FeedSessionsState(self.day, self.closed_before, tuple(sorted(self.open)), tuple(sorted(self.days)),
                                 self.event_ns, self.late)

    def read(self, records: np.ndarray, known: np.ndarray, calendar: TradingCalendar = CME_GLOBEX) -> list[Step]:
        """The message's records as stretches, with the closes and jumps between them, in order;
        dated on ``calendar`` (the message's dataset's: a partition carries one feed)."""
        good = np.flatnonzero(reason_codes(records, known) == 0)
        if good.size == 0:
            return [Stretch(0, len(records), self.closed_before)]
        ts = records["ts_recv"][good].astype(np.int64)
        ends = calendar.trade_date_days(np.array([ts.min(), ts.max()]))  # the trade date only grows with time
        days = np.full(good.size, ends[0], np.int32) if ends[0] == ends[1] else calendar.trade_date_days(ts)
        if ends[0] == ends[1] and int(ends[0]) == self.day:  # the usual message: the current session
            self._count(records, good, days, ts)
            return [Stretch(0, len(records), self.closed_before)]
        return self._steps(records, good, days, ts)

    def close_before(self, day: int) -> tuple[str, ...]:
        """Close every open book of a session before ``day``; their keys."""
        self.closed_before = max(self.closed_before, day)
        closing = tuple(sorted(k for k in self.open if int(k.split(":")[1]) < day))
        self.open.difference_update(closing)
        return closing

    def _steps(self, records: np.ndarray, good: np.ndarray, days: np.ndarray, ts: np.ndarray) -> list[Step]:
        runs = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
        stops = np.r_[runs[1:], good.size]
        steps: list[Step] = []
        start = 0
        for a, b in zip(runs, stops, strict=True):
            day, first = int(days[a]), int(good[a])
            if self._jumps(day, b - a, int(days[b]) if b < good.size else None):
                steps += [Stretch(start, first, self.closed_before), Jump(first, self._jump_detail(day))]
                start = first + 1
                continue
            if day > self.day:
                before = self.closed_before
                keys = self.close_before(day) if self.day >= 0 else ()
                self.day = day
                if self.closed_before != before:  # what came before goes to its books, then they close
                    steps.append(Stretch(start, first, before))
                    start = first
                if keys:
                    steps.append(Close(keys))
            self._count(records, good[a:b], days[a:b], ts[a:b])
        steps.append(Stretch(start, len(records), self.closed_before))
        return [s for s in steps if not isinstance(s, Stretch) or s.stop > s.start]

    def _jumps(self, day: int, run: int, next_day: int | None) -> bool:
        """A lone record of a later session between records of the current one (or earlier)."""
        return self.day >= 0 and day > self.day and run == 1 and next_day is not None and next_day <= self.day

    def _count(self, records: np.ndarray, good: np.ndarray, days: np.ndarray, ts: np.ndarray) -> None:
        """Note the books and sessions of records that count (late ones only add to ``late``)."""
        on_time = days >= self.closed_before
        self.late += int(on_time.size - np.count_nonzero(on_time))
        if not on_time.any():
            return
        ids = records["instrument_id"][good[on_time]].astype(np.int64)
        pairs = np.unique((ids << 32) | days[on_time].astype(np.int64))
        self.open.update(f"{int(p >> 32)}:{int(p & 0xFFFFFFFF)}" for p in pairs)
        self.days.update(int(p & 0xFFFFFFFF) for p in pairs)
        self.event_ns = max(self.event_ns, int(ts[on_time].max()))

    def _jump_detail(self, day: int) -> str:
        return (f"ts_recv jumps to session {day_to_date(day)} between records of session {day_to_date(self.day)}: "
                "a damaged timestamp")
