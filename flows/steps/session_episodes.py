"""The episode step, streaming: levels as they become known, episodes, vectors and labels as they happen.

Per contract-session, after the prior session is known (at once live, or when a replayed prior
session closes): the 1-second series is fed in time order. The detector runs over the levels
known so far; when new levels become known (PM at the PM window's end, OR at the opening range's
end) they join it with a fresh state, which is where re-feeding the series so far would leave
them since no level is used before its known time (``ApproachDetector.with_levels``). An
episode's vector reads only bars that closed at or before its start, so it is computed as soon as
all of those are in, which is at once: the bar that closes on the start's own second comes out
with that second's row (``operators.bars``). Its label is emitted by the streaming
labeler when it resolves. So the same step serves replay and live, and its output does not
depend on how the series is batched.

Where the run replays the contract's option chain (``ChainFacts.sessions``), the chain's profiles
arrive under the same key and an episode's vector also waits until the chain has computed the
second it started on: its options block reads the chain's last profile at or before the start,
whatever order the two streams arrive in. The session ends when both its series and its chain
have (or at the end of the input, if the chain never comes).

Each update also says how far its session's episodes are complete (``through_ns``): the series
is the 1-second book, whose rows sit on whole seconds, so once the row at T is fed no episode can
start before T + 1 s except one still waiting for its vector (none, now that bars close with
their last second; the check stays because the watermark must never pass one). The scorer
closes a micro-batch on that instead of waiting out its wall-clock deadline.
"""

from __future__ import annotations

import copy
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from flows.config import AnalyticsConfig
from flows.items import (
    BAR_NS,
    SERIES_STEP_NS,
    ChainProfiles,
    Episode,
    EpisodeUpdate,
    PriorSession,
    SeriesPiece,
    book_key,
)
from operators.approach import ApproachDetector, ApproachParams, episode_id
from operators.calendar import SessionClock, session_clock
from operators.chunks import InstrumentInfo
from operators.labels import Labeler, LabelParams, from_approach
from operators.levels import Level, SessionExtremes, SessionSummary, levels_for, missing_levels
from operators.options.profile import GexProfile
from operators.sessions import day_to_date
from operators.vectors import VECTOR_BAR_DTYPE, setup_vectors, vector_bars, vector_history
from operators.vectors.options import options_block

FOREVER = 2**63 - 1


@dataclass(slots=True)
class _Session:
    """Mutable state of one contract-session once its prior is known.

    It holds no whole-session arrays: the summary is folded as rows arrive, levels join the
    detector as they become known, and only the rows and bars a future vector can read are kept
    (``operators.vectors.vector_history``). A live flow snapshots this every epoch, so its size
    is what the input pauses for (``docs/live.md``).
    """

    source_id: str
    info: InstrumentInfo
    day: int
    clock: SessionClock
    prior: SessionSummary | None
    extremes: SessionExtremes
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    mid: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    bars: np.ndarray = field(default_factory=lambda: np.empty(0, VECTOR_BAR_DTYPE))  # only what vectors read
    last_ts: int = -1
    levels: tuple[Level, ...] = ()
    detector: ApproachDetector | None = None
    labeler: Labeler | None = None
    open: dict[int, Episode] = field(default_factory=dict)
    """Episodes still waiting for their vector or label, by index (the rest are written out)."""
    found: int = 0
    seen: set[tuple[str, int]] = field(default_factory=set)
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    rows: int = 0
    checked_to: int = -1


@dataclass(slots=True)
class _Chain:
    """The session's option chain as its vectors read it."""

    waits: bool | None = None
    """Whether the run feeds this session a chain (None until the first item names the key)."""
    profiles: list[GexProfile] = field(default_factory=list)
    through: int = -1
    """``ChainProfiles.through_ns``: every profile up to this instant is in."""
    series_ended: bool = False

    def ready(self, start: int) -> bool:
        return not self.waits or self.through >= start

    @property
    def ended(self) -> bool:
        return not self.waits or self.through == FOREVER

    def at(self, start: int) -> GexProfile | None:
        """The last profile at or before ``start`` (profiles are in time order)."""
        at = bisect_right(self.profiles, start, key=_second)
        return self.profiles[at - 1] if at else None

    def keep_from(self, cutoff: int) -> None:
        """Drop what no episode starting at or after ``cutoff`` can read."""
        first = bisect_right(self.profiles, cutoff, key=_second) - 1
        if first > 0:
            del self.profiles[:first]


def _second(profile: GexProfile) -> int:
    return profile.ts_second


EpisodesState = tuple[list[SeriesPiece], bool, SessionSummary | None, "_Session | None", _Chain]
"""The pieces waiting for the prior session, whether it is known, the prior, the session's state,
its chain (a state saved before chains has the first four)."""
EpisodeInput = SeriesPiece | PriorSession | ChainProfiles


class SessionEpisodesLogic(StatefulLogic[EpisodeInput, EpisodeUpdate, EpisodesState]):
    """Keyed by contract-session: waits for the prior session, then streams (see module docstring)."""

    def __init__(self, cfg: AnalyticsConfig, resume: EpisodesState | None,
                 chained: frozenset[str] | None = frozenset()) -> None:
        self._cfg = cfg
        self._chained = chained
        self._waiting: list[SeriesPiece] = []
        self._prior_known = False
        self._prior: SessionSummary | None = None
        self._s: _Session | None = None
        self._chain = _Chain()
        if resume is not None:
            state = copy.deepcopy(resume)
            self._waiting, self._prior_known, self._prior, self._s = state[:4]
            self._chain = state[4] if len(state) > 4 else _Chain(waits=False)

    @override
    def on_item(self, value: EpisodeInput) -> tuple[list[EpisodeUpdate], bool]:
        out: list[EpisodeUpdate] = []
        if self._chain.waits is None:
            self._chain.waits = self._chained is None or value.key in self._chained
        if isinstance(value, ChainProfiles):
            if (value.through_ns == FOREVER and not self._chain.waits and self._s is None and not self._waiting
                    and not self._prior_known):
                return [], StatefulLogic.DISCARD  # a tailed run's chain, ended after its session's episodes
            self._chain.profiles += value.profiles
            self._chain.through = max(self._chain.through, value.through_ns)
            if self._s is not None:
                out += self._on_chain(self._s)
        elif isinstance(value, PriorSession):
            if self._prior_known:
                return [], StatefulLogic.RETAIN
            self._prior_known, self._prior = True, value.prior
            pieces, self._waiting = self._waiting, []
            for piece in pieces:
                out += self._feed(piece)
        elif isinstance(value, SeriesPiece):
            if not self._prior_known:
                self._waiting.append(value)
            else:
                out += self._feed(value)
        done = bool(out) and out[-1].final
        return out, StatefulLogic.DISCARD if done else StatefulLogic.RETAIN

    @override
    def on_eof(self) -> tuple[list[EpisodeUpdate], bool]:
        """A chain the run was expected to feed never ended (its file held no record of the
        session): the vectors still waiting take what the chain gave."""
        if self._s is None or self._chain.ended or not self._chain.series_ended:
            return [], StatefulLogic.RETAIN
        self._chain.through = FOREVER
        out = self._on_chain(self._s)
        return out, StatefulLogic.DISCARD if out and out[-1].final else StatefulLogic.RETAIN

    @override
    def snapshot(self) -> EpisodesState:
        # A deep copy: the session's detector, labeler and lists keep changing after this returns.
        return copy.deepcopy((list(self._waiting), self._prior_known, self._prior, self._s, self._chain))

    def _on_chain(self, s: _Session) -> list[EpisodeUpdate]:
        """The chain moved on: vectors that waited for it, and the session's end if both are done."""
        started = self._vectors(s, final=self._chain.series_ended)
        final = self._chain.series_ended and self._chain.ended
        if not (started or final):
            return []
        update = self._update(s, started, [], final)
        self._forget(s)
        return [update]

    def _forget(self, s: _Session) -> None:
        s.open = {i: e for i, e in s.open.items() if e.vector is None or e.label is None}
        self._chain.keep_from(min([*self._waiting_starts(s), s.last_ts]))

    @staticmethod
    def _waiting_starts(s: _Session) -> list[int]:
        return [int(e.row["start_ts"]) for e in s.open.values() if e.vector is None]

    # ------------------------------------------------------------------ streaming

    def _session(self, piece: SeriesPiece) -> _Session:
        if self._s is None:
            clock = session_clock(day_to_date(piece.session_day), self._cfg.windows,
                                  self._cfg.calendar(piece.info.venue))
            self._s = _Session(piece.source_id, piece.info, piece.session_day, clock, self._prior,
                               SessionExtremes(clock, contract_id=piece.info.raw_symbol))
            self._s.labeler = Labeler(self._label_params(piece.info))
        return self._s

    @staticmethod
    def _tick(info: InstrumentInfo) -> int:
        """The instrument's tick, fixed by its book step (``flows.steps.book_1s``)."""
        return info.tick or 1

    def _label_params(self, info: InstrumentInfo) -> LabelParams:
        p = self._cfg.labels
        return LabelParams(break_ticks=p.break_ticks, reject_ticks=p.reject_ticks,
                           horizon_seconds=p.horizon_seconds, tick=self._tick(info))

    def _feed(self, piece: SeriesPiece) -> list[EpisodeUpdate]:
        s = self._session(piece)
        started: list[Episode] = []
        resolved: list[Episode] = []
        s.ts, s.mid = np.concatenate([s.ts, piece.ts]), np.concatenate([s.mid, piece.mid])
        s.bars = np.concatenate([s.bars, vector_bars(piece.bars)])
        for lo, hi in self._parts(s, piece.ts):
            ts, mid = piece.ts[lo:hi], piece.mid[lo:hi]
            s.extremes.feed(ts, piece.trade_high[lo:hi], piece.trade_low[lo:hi], mid)
            s.rows += len(ts)
            s.last_ts = int(ts[-1])
            self._learn_levels(s)
            self._detect(s, ts, mid)
            resolved += self._label(s, s.labeler.feed(ts, mid))  # type: ignore[union-attr]
        if piece.final:
            resolved += self._label(s, s.labeler.close())  # type: ignore[union-attr]
            self._chain.series_ended = True
        started += self._vectors(s, final=piece.final)
        update = self._update(s, started, resolved, piece.final and self._chain.ended)
        self._forget(s)
        if len(s.ts):  # an episode still waiting for the chain reads back from its own start
            s.ts, s.mid, s.bars = vector_history(s.ts, s.mid, s.bars, min([*self._waiting_starts(s), s.last_ts]))
        return [update]

    @staticmethod
    def _through(s: _Session, final: bool) -> int:
        """See ``EpisodeUpdate.through_ns``: the next row is a second after the last one fed, so
        only an episode still waiting for its vector can start before then."""
        if final:
            return FOREVER
        waiting = SessionEpisodesLogic._waiting_starts(s)
        if waiting:
            return min(waiting)
        return s.last_ts + SERIES_STEP_NS if s.rows else 0

    @staticmethod
    def _news(s: _Session) -> tuple[int, int, int]:
        """The instants at which levels become known (``operators.levels``: the prior session's
        at the session start, pre-market's at its end, the opening range's at its end)."""
        return s.clock.session_start, s.clock.pm_end, s.clock.or_end

    def _parts(self, s: _Session, ts: np.ndarray) -> list[tuple[int, int]]:
        """Split a piece right after the instants when new levels become known."""
        cuts = sorted({int(np.searchsorted(ts, t, side="right")) for t in self._news(s)})
        edges = [0, *[c for c in cuts if 0 < c < len(ts)], len(ts)]
        return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]

    def _learn_levels(self, s: _Session) -> None:
        """Levels known at the series' last instant, from the summary folded so far; on news they
        join the detector. Pieces are cut right after each news instant, so a level joins before
        any row after its known time is fed, and the detector carries on exactly as one built over
        all the levels from the start would (``ApproachDetector.with_levels``)."""
        now = s.last_ts
        if s.detector is not None and not any(s.checked_to < b <= now for b in self._news(s)):
            s.checked_to = now
            return
        s.checked_to = now
        known = tuple(lv for lv in levels_for(s.extremes.summary(), s.prior, s.clock) if lv.known_ts <= now)
        if known == s.levels and s.detector is not None:
            return
        s.levels = known
        levels = [(lv.level_type, lv.price, lv.known_ts) for lv in known]
        if s.detector is None:
            params = ApproachParams(approach_ticks=self._cfg.approach.approach_ticks,
                                    reset_ticks=self._cfg.approach.reset_ticks, tick=self._tick(s.info))
            s.detector = ApproachDetector(levels, params)
        else:
            s.detector = s.detector.with_levels(levels)

    def _detect(self, s: _Session, ts: np.ndarray, mid: np.ndarray) -> None:
        assert s.detector is not None
        self._found(s, s.detector.feed(ts, mid))

    def _found(self, s: _Session, rows: np.ndarray) -> None:
        if len(rows) == 0:
            return
        buckets = s.clock.bucket_of(rows["start_ts"])
        fresh = []
        for row, bucket in zip(rows, buckets, strict=True):
            level = s.levels[int(row["level_index"])]
            key = (level.level_type, int(row["start_ts"]))
            if bucket < 0 or key in s.seen:
                continue
            s.seen.add(key)
            ep = Episode(s.found, episode_id(s.info.raw_symbol, s.clock.session_date, level.level_type,
                                                    int(row["start_ts"])), level.level_type, level.known_ts,
                         int(bucket), row.copy())
            s.open[ep.index] = ep
            s.found += 1
            fresh.append(ep)
        if fresh:
            rows_ = np.array([e.row for e in fresh])
            s.labeler.add(from_approach(rows_, np.array([e.index for e in fresh], np.int64)))  # type: ignore[union-attr]

    def _label(self, s: _Session, labels: np.ndarray) -> list[Episode]:
        out = []
        for lab in labels:
            i = int(lab["key"])
            s.open[i] = ep = _with(s.open[i], label=lab.copy())
            out.append(ep)
        return out

    def _vectors(self, s: _Session, *, final: bool) -> list[Episode]:
        """Vectors of episodes whose bars closing at or before the start are all in (or the session ended).

        A bar closing at C holds the seconds in (C - 5 s, C] and is emitted with the row at C (or
        the first row after C), so every bar up to the start's last close ``floor(start / 5 s) * 5 s``
        is in once a row at or after that close has been fed, which the start's own row is: a vector
        is ready with the update that found its episode, on the bar grid or off it.
        """
        if not s.rows:
            return []
        fed_to = s.last_ts
        ready = [e for e in s.open.values()
                 if e.vector is None and (final or int(e.row["start_ts"]) // BAR_NS * BAR_NS <= fed_to)
                 and self._chain.ready(int(e.row["start_ts"]))]
        if not ready:
            return []
        rows = np.array([e.row for e in ready])
        tick = self._tick(s.info) / 1e9
        options = np.array([options_block(self._chain.at(int(e.row["start_ts"])), int(e.row["level_price"]) / 1e9,
                                          int(e.row["direction"]), tick) for e in ready]) if self._chain.waits else None
        vectors = setup_vectors(rows, tuple(e.level_type for e in ready),
                                np.array([e.level_known_ts for e in ready], np.int64), s.ts, s.mid, s.bars,
                                s.clock.rth_start, tick, options)
        out = []
        for e, v in zip(ready, vectors, strict=True):
            s.open[e.index] = done = _with(e, vector=v)
            out.append(done)
        return out

    def _update(self, s: _Session, started: list[Episode], resolved: list[Episode], final: bool) -> EpisodeUpdate:
        started = sorted(started, key=lambda e: e.index)
        now_complete = {e.index for e in started if e.label is not None} | {
            e.index for e in resolved if s.open[e.index].vector is not None}
        complete = tuple(s.open[i] for i in sorted(now_complete))
        resolved_now = tuple(s.open[e.index] for e in resolved)
        positions = (s.counts[0], s.counts[1], s.counts[2])
        s.counts[0] += len(started)
        s.counts[1] += len(resolved_now)
        s.counts[2] += len(complete)
        update = EpisodeUpdate(self._key(s), s.source_id, s.info, s.day, tuple(started), resolved_now,
                               complete, positions, final, through_ns=self._through(s, final))
        if not final:
            return update
        summary = s.extremes.summary()
        return _with_final(update, levels_for(summary, s.prior, s.clock), missing_levels(summary, s.prior, s.clock),
                           s.prior.session_date if s.prior is not None else None)

    @staticmethod
    def _key(s: _Session) -> str:
        return book_key(s.info.instrument_id, s.day)


def _with(e: Episode, **changes: Any) -> Episode:
    return replace(e, **changes)


def _with_final(
    u: EpisodeUpdate, levels: tuple[Level, ...], missing: tuple[str, ...], prior: date | None
) -> EpisodeUpdate:
    return replace(u, levels=levels, missing=missing, prior_date=prior)
