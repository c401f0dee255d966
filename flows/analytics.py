"""Level analytics as three keyed stateful steps, independent of arrival order and worker count.

1. ``session_series`` (key: contract-session) keeps the session's 1-second mid and trade
   high/low; when its book closes it emits the series and the session's summary.
2. ``prior_sessions`` (key: contract) pairs every session with the summary of the session before
   it, whatever order sessions finish in (``PriorSessionJoin``): it waits for a prior session that
   this run replays, takes one an earlier run wrote to the lake, or says there is none.
3. ``session_episodes`` (key: contract-session) waits for both, then derives the levels (each
   with the instant it becomes known), the approach episodes inside the setup window and their
   first-crossing labels. The detector and labeler stream over the series in time order, gated
   by each level's known time, so nothing uses a level before it exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from flows.config import AnalyticsConfig
from flows.items import BookRows, book_key
from operators.bars import BAR_DTYPE, ES_TICK, BarBuilder
from operators.approach import ApproachDetector, ApproachParams, episode_id
from operators.calendar import SessionWindows, session_clock
from operators.chunks import InstrumentInfo
from operators.labels import LabelParams, Labeler, from_approach
from operators.levels import Level, PriorSessionJoin, SessionSummary, levels_for, missing_levels, summarize_session
from operators.records import UNDEF_PRICE
from operators.sessions import day_to_date
from operators.vectors import setup_vectors


@dataclass(frozen=True, slots=True)
class SessionSeries:
    """A closed session's 1-second series and summary (the input of the episode step)."""

    key: str
    source_id: str
    info: InstrumentInfo
    session_day: int
    ts: np.ndarray  # i8, one row per second
    mid: np.ndarray  # f8 dollars, NaN when the book is one-sided or invalid
    summary: SessionSummary
    bars: np.ndarray  # operators.bars BAR_DTYPE, every bar of the session


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
class SessionAnalytics:
    """Everything the episode step found for one contract-session."""

    series: SessionSeries
    summary: SessionSummary
    levels: tuple[Level, ...]
    missing: tuple[str, ...]
    prior_date: date | None
    episodes: np.ndarray  # operators.approach EPISODE_DTYPE, inside the setup window
    episode_ids: tuple[str, ...]
    level_types: tuple[str, ...]  # per episode
    buckets: np.ndarray  # i1 per episode
    labels: np.ndarray  # operators.labels LABEL_DTYPE, key = episode index
    vectors: np.ndarray  # f4[n_episodes, VECTOR_SIZE]
    level_known_ts: np.ndarray  # i8 per episode


@dataclass(frozen=True, slots=True)
class _SeriesState:
    source_id: str
    info: InstrumentInfo
    session_day: int
    ts: np.ndarray
    mid: np.ndarray
    trade_high: np.ndarray
    trade_low: np.ndarray
    bars: np.ndarray
    bar_carry: object
    context: np.ndarray  # f8[3 + MA_MAX_BARS]: Σnotional, Σvolume, n closes, then the last closes


MA_SECONDS = (60, 300, 900)
_BAR_SECONDS = 5
_MA_MAX_BARS = max(MA_SECONDS) // _BAR_SECONDS


class SessionSeriesLogic(StatefulLogic[BookRows, SessionSeries | SessionBars, _SeriesState]):
    """Collects one contract-session's seconds and folds them into 5-second bars.

    Emits the bars as they close (with session VWAP and moving averages of the mid close as
    context), and, when the book closes, the whole series, bars and summary of the session.
    """

    def __init__(self, windows: SessionWindows, resume: _SeriesState | None) -> None:
        self._windows = windows
        self._parts: list[tuple[np.ndarray, ...]] = []
        self._bars: list[np.ndarray] = []
        self._meta: tuple[str, InstrumentInfo, int] | None = None
        self._builder: BarBuilder | None = None
        self._context = np.concatenate([np.zeros(3), np.full(_MA_MAX_BARS, np.nan)])
        if resume is not None:
            self._meta = (resume.source_id, resume.info, resume.session_day)
            self._parts.append((resume.ts, resume.mid, resume.trade_high, resume.trade_low))
            self._bars.append(resume.bars)
            self._builder = BarBuilder(_BAR_SECONDS, tick=resume.info.tick or ES_TICK, resume=resume.bar_carry)
            self._context = resume.context.copy()

    @override
    def on_item(self, value: BookRows) -> tuple[list[SessionSeries | SessionBars], bool]:
        if self._meta is None:
            self._meta = (value.source_id, value.info, value.session_day)
            self._builder = BarBuilder(_BAR_SECONDS, tick=value.info.tick or ES_TICK)
        assert self._builder is not None
        rows = value.rows
        out: list[SessionSeries | SessionBars] = []
        if len(rows):
            high, low = _trade_range(rows)
            self._parts.append((rows["ts_recv"].view(np.int64).copy(), rows["mid_px"].copy(), high, low))
        bars = self._builder.feed(rows) if len(rows) else np.empty(0, BAR_DTYPE)
        if value.final:
            bars = np.concatenate([bars, self._builder.close()])
        if len(bars) or value.final:
            self._bars.append(bars)
            out.append(SessionBars(value.key, value.source_id, value.info, value.session_day, bars,
                                   self._fold_context(bars), value.final))
        if not value.final:
            return out, StatefulLogic.RETAIN
        ts, mid, high, low = self._arrays()
        source_id, info, day = self._meta
        clock = session_clock(day_to_date(day), self._windows)
        summary = summarize_session(ts, high, low, mid, clock, contract_id=info.raw_symbol)
        out.append(SessionSeries(value.key, source_id, info, day, ts, mid, summary, self._all_bars()))
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

    def _all_bars(self) -> np.ndarray:
        if len(self._bars) != 1:
            self._bars = [np.concatenate(self._bars) if self._bars else np.empty(0, BAR_DTYPE)]
        return self._bars[0]

    def _arrays(self) -> tuple[np.ndarray, ...]:
        if not self._parts:
            return (np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))
        if len(self._parts) > 1:
            self._parts = [tuple(np.concatenate(cols) for cols in zip(*self._parts, strict=True))]
        return self._parts[0]

    @override
    def snapshot(self) -> _SeriesState:
        assert self._meta is not None and self._builder is not None
        ts, mid, high, low = self._arrays()
        return _SeriesState(*self._meta, ts.copy(), mid.copy(), high.copy(), low.copy(), self._all_bars().copy(),
                            self._builder.snapshot(), self._context.copy())


def _trade_range(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-second trade high and low (UNDEF when the second had no trade)."""
    names = rows.dtype.names or ()
    if "trade_high_px" in names:
        return rows["trade_high_px"].copy(), rows["trade_low_px"].copy()
    traded = rows["trade_count"] > 0  # book rows without a range: the last trade stands for it
    last = np.where(traded, rows["last_trade_px"], UNDEF_PRICE).astype(np.int64)
    return last, last.copy()


@dataclass(frozen=True, slots=True)
class _JoinState:
    summaries: tuple[SessionSummary, ...]
    instrument_id: int


class PriorSessionLogic(StatefulLogic[SessionSeries, PriorSession, _JoinState]):
    """Per contract: releases each session paired with its prior session's summary."""

    def __init__(self, expected: frozenset[date], stored: Mapping[int, Mapping[date, SessionSummary]],
                 resume: _JoinState | None) -> None:
        self._expected, self._stored = expected, stored
        self._join: PriorSessionJoin | None = None
        self._pushed: list[SessionSummary] = []
        self._instrument = -1
        if resume is not None:
            self._start(resume.instrument_id)
            for summary in resume.summaries:
                self._push(summary)  # re-releasing is harmless: the episode step keeps the first

    def _start(self, instrument_id: int) -> None:
        self._instrument = instrument_id
        self._join = PriorSessionJoin(self._expected, self._stored.get(instrument_id, {}))

    def _push(self, summary: SessionSummary) -> list[PriorSession]:
        assert self._join is not None
        self._pushed.append(summary)
        return self._released(self._join.push(summary))

    def _released(self, releases: tuple) -> list[PriorSession]:
        from operators.sessions import date_to_day

        return [PriorSession(book_key(self._instrument, date_to_day(d)), prior) for d, prior in releases]

    @override
    def on_item(self, value: SessionSeries) -> tuple[list[PriorSession], bool]:
        if self._join is None:
            self._start(value.info.instrument_id)
        return self._push(value.summary), StatefulLogic.RETAIN

    @override
    def on_eof(self) -> tuple[list[PriorSession], bool]:
        if self._join is None:
            return [], StatefulLogic.DISCARD
        return self._released(self._join.finish()), StatefulLogic.RETAIN

    @override
    def snapshot(self) -> _JoinState:
        return _JoinState(tuple(self._pushed), self._instrument)


@dataclass(frozen=True, slots=True)
class _EpisodeState:
    series: SessionSeries | None
    prior: PriorSession | None


class SessionEpisodesLogic(StatefulLogic[SessionSeries | PriorSession, SessionAnalytics, _EpisodeState]):
    """Once a session's series and its prior session are both known: levels, episodes, labels."""

    def __init__(self, cfg: AnalyticsConfig, resume: _EpisodeState | None) -> None:
        self._cfg = cfg
        self._series = resume.series if resume else None
        self._prior = resume.prior if resume else None

    @override
    def on_item(self, value: SessionSeries | PriorSession) -> tuple[list[SessionAnalytics], bool]:
        if isinstance(value, SessionSeries):
            self._series = value
        elif self._prior is None:
            self._prior = value
        if self._series is None or self._prior is None:
            return [], StatefulLogic.RETAIN
        return [analyze_session(self._series, self._prior.prior, self._cfg)], StatefulLogic.DISCARD

    @override
    def snapshot(self) -> _EpisodeState:
        return _EpisodeState(self._series, self._prior)


def analyze_session(series: SessionSeries, prior: SessionSummary | None, cfg: AnalyticsConfig) -> SessionAnalytics:
    """Levels, setup-window episodes and their labels for one closed session."""
    clock = session_clock(day_to_date(series.session_day), cfg.windows)
    summary = series.summary
    levels = levels_for(summary, prior, clock)
    tick = series.info.tick or cfg.approach.tick
    approach = ApproachParams(approach_ticks=cfg.approach.approach_ticks, reset_ticks=cfg.approach.reset_ticks, tick=tick)
    detector = ApproachDetector([(lv.level_type, lv.price, lv.known_ts) for lv in levels], approach)
    found = detector.feed(series.ts, series.mid)
    buckets = clock.bucket_of(found["start_ts"]) if len(found) else np.zeros(0, np.int8)
    episodes, buckets = found[buckets >= 0], buckets[buckets >= 0]
    level_types = tuple(levels[int(i)].level_type for i in episodes["level_index"])
    ids = tuple(
        episode_id(series.info.raw_symbol, clock.session_date, lt, int(ts))
        for lt, ts in zip(level_types, episodes["start_ts"], strict=True)
    )
    label_params = LabelParams(break_ticks=cfg.labels.break_ticks, reject_ticks=cfg.labels.reject_ticks,
                               horizon_seconds=cfg.labels.horizon_seconds, tick=tick)
    labeler = Labeler(label_params)
    labeler.add(from_approach(episodes, np.arange(len(episodes), dtype=np.int64)))
    labels = np.concatenate([labeler.feed(series.ts, series.mid), labeler.close()])
    known = np.array([levels[int(i)].known_ts for i in episodes["level_index"]], np.int64)
    vectors = setup_vectors(episodes, level_types, known, series.ts, series.mid, series.bars, clock.rth_start,
                            tick / 1e9)
    return SessionAnalytics(
        series=series,
        summary=summary,
        levels=levels,
        missing=missing_levels(summary, prior, clock),
        prior_date=prior.session_date if prior is not None else None,
        episodes=episodes,
        episode_ids=ids,
        level_types=level_types,
        buckets=buckets,
        labels=labels,
        vectors=vectors,
        level_known_ts=known,
    )
