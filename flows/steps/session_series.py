"""The ``session_series`` step (key: contract-session): folds the 1-second rows into 5-second bars
and passes the series on piece by piece; it says when the session opens (``SessionOpened``, for
``prior_sessions``), and at its close emits the session's summary (``SessionSeries``).

With ``prior_sessions`` and ``session_episodes`` it makes the level analytics: three keyed steps,
independent of arrival order and worker count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from flows.items import (
    BAR_NS,
    SERIES_STEP_NS,
    BookRows,
    SeriesPiece,
    SessionBars,
    SessionOpened,
    SessionSeries,
)
from operators.bars import BAR_DTYPE, BarBuilder, BarCarry
from operators.calendar import SessionWindows, TradingCalendar, calendar_of, session_clock
from operators.chunks import InstrumentInfo
from operators.instruments import book_tick
from operators.levels import SessionExtremes
from operators.sessions import day_to_date

log = logging.getLogger("spymaster.analytics")


@dataclass(frozen=True, slots=True)
class _SeriesState:
    source_id: str
    info: InstrumentInfo
    session_day: int
    extremes: SessionExtremes
    bar_carry: BarCarry | None
    context: np.ndarray  # f8[3 + MA_MAX_BARS]: Σnotional, Σvolume, n closes, then the last closes


MA_SECONDS = (60, 300, 900)
_BAR_SECONDS = BAR_NS // SERIES_STEP_NS
_MA_MAX_BARS = max(MA_SECONDS) // _BAR_SECONDS


class SessionSeriesLogic(StatefulLogic[BookRows, object, _SeriesState]):
    """Collects one contract-session's seconds and folds them into 5-second bars.

    Emits the bars as they close (with session VWAP and moving averages of the mid close as
    context), and, when the book closes, the whole series, bars and summary of the session.
    """

    def __init__(self, windows: SessionWindows, resume: _SeriesState | None, *,
                 calendar: Callable[[str], TradingCalendar] = calendar_of) -> None:
        """``calendar``: an instrument's venue → the trading calendar its sessions follow."""
        self._windows, self._calendar = windows, calendar
        self._extremes: SessionExtremes | None = None
        self._meta: tuple[str, InstrumentInfo, int] | None = None
        self._builder: BarBuilder | None = None
        self._context = np.concatenate([np.zeros(3), np.full(_MA_MAX_BARS, np.nan)])
        if resume is not None:
            self._meta = (resume.source_id, resume.info, resume.session_day)
            self._extremes = resume.extremes.copy()
            self._builder = BarBuilder(_BAR_SECONDS, tick=resume.info.tick or 1, resume=resume.bar_carry)
            self._context = resume.context.copy()

    @override
    def on_item(self, value: BookRows) -> tuple[list[object], bool]:
        out: list[object] = []
        if self._meta is None:
            self._meta = (value.source_id, value.info, value.session_day)
            self._builder = BarBuilder(_BAR_SECONDS, tick=book_tick(value.info, value.rows[:1]))
            clock = session_clock(day_to_date(value.session_day), self._windows, self._calendar(value.info.venue))
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


