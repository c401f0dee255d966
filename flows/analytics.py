"""Level analytics as three keyed stateful steps, independent of arrival order and worker count.

1. ``session_series`` (key: contract-session) folds the 1-second rows into 5-second bars and
   passes the series on piece by piece; it says when the session opens, and at its close emits
   the session's summary.
2. ``prior_sessions`` (key: contract) pairs every session with the summary of the session before
   it as soon as that is known, whatever order sessions run in (``PriorSessionJoin``): it waits
   for a prior session that this run replays, takes one an earlier run wrote to the lake, or
   says there is none.
3. ``session_episodes`` (key: contract-session, ``flows.episodes``) streams levels, episodes,
   vectors and labels once the prior is known.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from flows.items import BookRows, book_key
from operators.bars import BAR_DTYPE, ES_TICK, BarBuilder
from operators.calendar import SessionWindows, session_clock
from operators.chunks import InstrumentInfo
from flows.episodes import BAR_NS, SERIES_STEP_NS, SeriesPiece
from operators.levels import PriorSessionJoin, SessionExtremes, SessionSummary
from operators.sessions import day_to_date

log = logging.getLogger("spymaster.analytics")


@dataclass(frozen=True, slots=True)
class SessionOpened:
    """A session's first data arrived: its prior session can be looked for now."""

    key: str
    info: InstrumentInfo
    session_day: int


@dataclass(frozen=True, slots=True)
class SessionSeries:
    """A closed session's summary (what later sessions need of it)."""

    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    summary: SessionSummary


@dataclass(frozen=True, slots=True)
class SessionBars:
    """Bars closed by one batch of seconds, with running context (session VWAP, moving averages)."""

    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    bars: np.ndarray
    context: np.ndarray  # f8[n, 4]: session_vwap, ma_60s, ma_300s, ma_900s
    final: bool


@dataclass(frozen=True, slots=True)
class PriorSession:
    """The summary of the session before ``key``'s session, or None when there is none."""

    key: str
    prior: SessionSummary | None


@dataclass(frozen=True, slots=True)
class _SeriesState:
    source_id: str
    info: InstrumentInfo
    session_day: int
    extremes: SessionExtremes
    bar_carry: object
    context: np.ndarray  # f8[3 + MA_MAX_BARS]: Σnotional, Σvolume, n closes, then the last closes


MA_SECONDS = (60, 300, 900)
_BAR_SECONDS = BAR_NS // SERIES_STEP_NS
_MA_MAX_BARS = max(MA_SECONDS) // _BAR_SECONDS


class SessionSeriesLogic(StatefulLogic[BookRows, object, _SeriesState]):
    """Collects one contract-session's seconds and folds them into 5-second bars.

    Emits the bars as they close (with session VWAP and moving averages of the mid close as
    context), and, when the book closes, the whole series, bars and summary of the session.
    """

    def __init__(self, windows: SessionWindows, resume: _SeriesState | None) -> None:
        self._windows = windows
        self._extremes: SessionExtremes | None = None
        self._meta: tuple[str, InstrumentInfo, int] | None = None
        self._builder: BarBuilder | None = None
        self._context = np.concatenate([np.zeros(3), np.full(_MA_MAX_BARS, np.nan)])
        if resume is not None:
            self._meta = (resume.source_id, resume.info, resume.session_day)
            self._extremes = resume.extremes.copy()
            self._builder = BarBuilder(_BAR_SECONDS, tick=resume.info.tick or ES_TICK, resume=resume.bar_carry)
            self._context = resume.context.copy()

    @override
    def on_item(self, value: BookRows) -> tuple[list[object], bool]:
        out: list[object] = []
        if self._meta is None:
            self._meta = (value.source_id, value.info, value.session_day)
            self._builder = BarBuilder(_BAR_SECONDS, tick=value.info.tick or ES_TICK)
            clock = session_clock(day_to_date(value.session_day), self._windows)
            self._extremes = SessionExtremes(clock, contract_id=value.info.raw_symbol)
            out.append(SessionOpened(value.key, value.info, value.session_day))
        assert self._builder is not None and self._extremes is not None
        rows = value.rows
        piece = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
        if len(rows):
            high, low = _trade_range(rows)
            piece = (rows["ts_recv"].view(np.int64).copy(), rows["mid_px"].copy(), high, low)
            self._extremes.feed(piece[0], piece[2], piece[3], piece[1])
        bars = self._builder.feed(rows) if len(rows) else np.empty(0, BAR_DTYPE)
        if value.final:
            bars = np.concatenate([bars, self._builder.close()])
        if len(bars) or value.final:
            out.append(SessionBars(value.key, value.source_id, value.info, value.session_day, bars,
                                   self._fold_context(bars), value.final))
        out.append(SeriesPiece(value.key, value.source_id, value.info, value.session_day, *piece, bars, value.final))
        if not value.final:
            return out, StatefulLogic.RETAIN
        source_id, info, day = self._meta
        out.append(SessionSeries(value.key, source_id, info, day, self._extremes.summary()))
        return out, StatefulLogic.DISCARD

    def _fold_context(self, bars: np.ndarray) -> np.ndarray:
        """Session VWAP and trailing means of the mid close, bar by bar (state in ``_context``).

        Sums run strictly left to right from the carried state and each mean is over exactly its
        window, so the result does not depend on how bars are batched.
        """
        n = len(bars)
        out = np.full((n, 1 + len(MA_SECONDS)), np.nan)
        if n == 0:
            return out
        c = self._context
        volume = bars["volume"].astype(np.float64)
        traded = (volume > 0) & np.isfinite(bars["vwap"])
        notional = np.cumsum(np.concatenate([[c[0]], np.where(traded, bars["vwap"] * volume, 0.0)]))[1:]
        volumes = np.cumsum(np.concatenate([[c[1]], np.where(traded, volume, 0.0)]))[1:]
        out[:, 0] = np.divide(notional, volumes, out=np.full(n, np.nan), where=volumes > 0)
        closes = np.concatenate([c[3:], bars["mid_close"].astype(np.float64)])
        seen = np.minimum(c[2] + np.arange(1, n + 1), _MA_MAX_BARS)
        for j, seconds in enumerate(MA_SECONDS):
            k = seconds // _BAR_SECONDS
            windows = np.lib.stride_tricks.sliding_window_view(closes, k)[-n:]
            finite = np.isfinite(windows)
            count = finite.sum(axis=1)
            total = np.where(finite, windows, 0.0).sum(axis=1)
            out[:, 1 + j] = np.where((seen >= k) & (count > 0), total / np.maximum(count, 1), np.nan)
        c[0], c[1], c[2] = notional[-1], volumes[-1], seen[-1]
        c[3:] = closes[-_MA_MAX_BARS:]
        return out

    @override
    def snapshot(self) -> _SeriesState:
        """A few numbers per contract, not the session's rows: the summary is folded as they come."""
        assert self._meta is not None and self._builder is not None and self._extremes is not None
        return _SeriesState(*self._meta, self._extremes.copy(), self._builder.snapshot(), self._context.copy())


def _trade_range(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-second trade high and low (UNDEF when the second had no trade)."""
    return rows["trade_high_px"].astype(np.int64), rows["trade_low_px"].astype(np.int64)


@dataclass(frozen=True, slots=True)
class _JoinState:
    opened: tuple[date, ...]
    summaries: tuple[SessionSummary, ...]
    instrument_id: int
    released: tuple[date, ...] = ()
    """Sessions already released downstream (a resume owes the others it can now release)."""


class PriorSessionLogic(StatefulLogic[object, PriorSession, _JoinState]):
    """Per contract: releases each session, as soon as it opens, with its prior session's summary.

    ``grow=True`` is for a topic source, whose sessions are not known up front: a session that
    opens becomes expected then, so the prior of D is the latest session of the contract opened
    earlier in this run (awaited until it closes; a partition closes D-1 before D's first
    record), else the latest one stored in the lake.
    """

    def __init__(self, expected: frozenset[date], stored: Mapping[int, Mapping[date, SessionSummary]],
                 resume: _JoinState | None, grow: bool = False) -> None:
        self._expected, self._stored, self._grow = expected, stored, grow
        self._join: PriorSessionJoin | None = None
        self._opened: list[date] = []
        self._pushed: list[SessionSummary] = []
        self._instrument = -1
        self._released: set[date] = set()
        self._owed: list[tuple[date, PriorSession]] = []
        if resume is not None:
            self._resume(resume)

    def _resume(self, resume: _JoinState) -> None:
        """Rebuild the join from the state, and owe the releases it now makes that were not made
        before the snapshot.

        A session this run's plan no longer expects had its file finished whole before the crash
        (the plan skips it now): its summary is stored in the lake and none of it comes again.
        So a session that opened before the snapshot and waited for that summary is released
        here, from the lake, and nothing that comes later would release it: the owed releases
        leave at once (``notify_at``; Bytewax asks a resumed logic when to wake it, items or not).
        """
        if self._grow:
            self._expected = self._expected | frozenset(resume.opened)
        self._start(resume.instrument_id)
        self._released = set(resume.released)
        for d in resume.opened:
            if d in self._expected:
                self._open(d)
        for summary in resume.summaries:
            if summary.session_date in self._expected:
                self._push(summary)
        if self._owed:
            log.info("instrument %d resumed owing the prior of %s (their prior's file was finished before the crash)",
                     self._instrument, ", ".join(str(d) for d, _ in self._owed))

    def _start(self, instrument_id: int) -> None:
        self._instrument = instrument_id
        self._join = PriorSessionJoin(self._expected, self._stored.get(instrument_id, {}))

    def _open(self, d: date) -> None:
        assert self._join is not None
        self._opened.append(d)
        self._owe(self._join.open(d))

    def _push(self, summary: SessionSummary) -> None:
        assert self._join is not None
        self._pushed.append(summary)
        self._owe(self._join.push(summary))

    def _owe(self, releases: tuple) -> None:
        from operators.sessions import date_to_day

        self._owed += [(d, PriorSession(book_key(self._instrument, date_to_day(d)), prior))
                       for d, prior in releases if d not in self._released]

    def _send(self) -> list[PriorSession]:
        """The releases made and not sent yet, each session once in the logic's whole life (a
        rebuilt join, after a resume or a new date, makes again releases already sent)."""
        out = []
        for d, release in self._owed:
            if d not in self._released:
                self._released.add(d)
                out.append(release)
        self._owed = []
        return out

    @override
    def on_item(self, value: object) -> tuple[list[PriorSession], bool]:
        assert isinstance(value, SessionOpened | SessionSeries)
        if self._join is None:
            self._start(value.info.instrument_id)
        if isinstance(value, SessionOpened):
            d = day_to_date(value.session_day)
            if self._grow and d not in self._expected:
                self._expect(d)
            self._open(d)
        else:
            if self._grow and value.summary.session_date not in self._expected:
                self._expect(value.summary.session_date)
            self._push(value.summary)
        return self._send(), StatefulLogic.RETAIN

    def _expect(self, d: date) -> None:
        """Declare ``d`` and rebuild the join from its history; releases it already sent are not
        sent again (a later date cannot change an earlier date's prior)."""
        self._expected = self._expected | {d}
        opened, pushed = self._opened, self._pushed
        self._opened, self._pushed = [], []
        self._start(self._instrument)
        for o in opened:
            self._open(o)
        for summary in pushed:
            self._push(summary)

    @override
    def on_eof(self) -> tuple[list[PriorSession], bool]:
        if self._join is None:
            return [], StatefulLogic.DISCARD
        self._owe(self._join.finish())
        return self._send(), StatefulLogic.RETAIN

    @override
    def notify_at(self) -> datetime | None:
        return datetime.min.replace(tzinfo=UTC) if self._owed else None

    @override
    def on_notify(self) -> tuple[list[PriorSession], bool]:
        return self._send(), StatefulLogic.RETAIN

    @override
    def snapshot(self) -> _JoinState:
        """Only releases sent count as made (a snapshot may come before the owed ones leave)."""
        return _JoinState(tuple(self._opened), tuple(self._pushed), self._instrument, tuple(sorted(self._released)))
