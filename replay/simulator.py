"""The simulator's state carried across chunks and trading days, around the numba engine.

Prices continue from one day to the next (the fair price gets a small overnight gap, the book
rests overnight), so each day's snapshot holds the previous day's levels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from replay import engine as en
from replay import signal as sgl
from replay.book import T_BEST_ASK, T_BEST_BID, SimBook
from replay.market import MarketParams, activity_integral
from replay.modulation import N_OBS
from replay.rng import new_state, normal
from replay.sessions import Session

START_PRICE_TICKS = 6850.0 * 4
FIRST_ORDER_ID = 6_400_000_000_000
MAX_ORDERS = 1 << 18


@dataclass(frozen=True)
class Chunk:
    """Records of whole events, and the true book after each event (views into reused buffers)."""

    rec: np.ndarray
    tru_idx: np.ndarray
    tru_lv: np.ndarray


@dataclass(frozen=True)
class DayStats:
    """Trade statistics of one instrument for one day, in ticks and lots."""

    open: int
    high: int
    low: int
    last: int
    volume: int
    trades: int


class Simulator:
    """Mutable simulation state (book, random generator, price process) for ``n`` contracts."""

    def __init__(self, seed: int, params: MarketParams, chunk_records: int = 1 << 17) -> None:
        self.params = params
        self.p = params.as_array()
        self.rng = new_state(seed)
        sb = SimBook.empty(2, MAX_ORDERS)
        self.book = (sb.lv, sb.ords, sb.live, sb.free, sb.top, sb.nfree)
        self.mi = np.zeros(en.N_MI, dtype=np.int64)
        self.mi[en.M_NEXT_OID] = FIRST_ORDER_ID
        self.mi[en.M_LAST_SLOT:en.M_LAST_SLOT + 2] = -1
        self.fs = np.zeros(en.N_FS, dtype=np.float64)
        self.fs[en.F_ANCHOR] = START_PRICE_TICKS + 0.5
        self.stats = np.zeros((2, 6), dtype=np.int64)
        self.sched = np.zeros(3, dtype=np.int64)
        self.rec = np.zeros((chunk_records, en.N_COLS), dtype=np.int64)
        self.tru_idx = np.zeros(chunk_records, dtype=np.int64)
        self.tru_lv = np.zeros((chunk_records, 6, 10), dtype=np.int64)
        self.scratch = np.zeros((4, en.MAX_FILLS), dtype=np.int64)
        self.obs = np.zeros(N_OBS, dtype=np.float64)
        self.sg = sgl.new_state()
        self.ap = np.zeros((sgl.MAX_APPROACHES, sgl.N_AP), dtype=np.float64)
        self.ap_ts = np.zeros(sgl.MAX_APPROACHES, dtype=np.int64)
        self._seeded = False

    def begin_day(self, sess: Session, events_per_day: int) -> None:
        """Reset the clock, sequence and trade statistics; set the event rate for the day."""
        if self._seeded:
            self.fs[en.F_ANCHOR] += normal(self.rng) * self.params.overnight_gap
        else:
            for i in range(2):
                en.seed_book(self.book, self.rng, self.p, self.mi, self.fs, i)
            self._seeded = True
        self.sched[:] = (sess.start_ns, sess.rth_ns, sess.end_ns)
        self.mi[en.M_T] = sess.start_ns
        self.mi[en.M_SEQ] = 0
        self.mi[en.M_DONE] = 0
        self.stats[:] = 0
        sgl.begin_day(self.sg, (sess.or_end_ns - sess.start_ns) * 1e-9)
        top = self.book[4]
        self.fs[en.F_DAY_OPEN] = 0.5 * (top[0, T_BEST_BID] + top[0, T_BEST_ASK])
        rth_s = (sess.rth_ns - sess.start_ns) * 1e-9
        end_s = (sess.end_ns - sess.start_ns) * 1e-9
        events = events_per_day / self.params.records_per_event
        self.fs[en.F_SCALE] = events / activity_integral(rth_s, end_s)

    def snapshot(self) -> Chunk:
        """Snapshot records of every instrument at the session start."""
        live = int(self.book[4][:, 2].sum())
        rec = np.zeros((live + 4, en.N_COLS), dtype=np.int64)
        tru_idx = np.zeros(2, dtype=np.int64)
        tru_lv = np.zeros((2, 6, 10), dtype=np.int64)
        n, nt = 0, 0
        for i in range(2):
            n, nt = en.emit_snapshot(self.book, self.mi, i, rec, n, tru_idx, tru_lv, nt)
        return Chunk(rec[:n], tru_idx[:nt], tru_lv[:nt])

    def events(self) -> Iterator[Chunk]:
        """Incremental events until the session ends, chunk by chunk (buffers are reused)."""
        while not self.mi[en.M_DONE]:
            n, nt = en.run_chunk(
                self.book, self.rng, self.p, self.mi, self.fs, self.stats, self.sched,
                self.rec, self.tru_idx, self.tru_lv, self.scratch, self.obs,
                self.sg, self.ap, self.ap_ts,
            )
            if n:
                yield Chunk(self.rec[:n], self.tru_idx[:nt], self.tru_lv[:nt])

    def approaches(self) -> dict[str, np.ndarray]:
        """Today's level approaches on the front contract (``replay/signal.py``), column by column.

        ``ts_recv`` is the event time that started the approach; an episode still running at the
        end of the session keeps ``realised == -1``.
        """
        n = int(self.sg[sgl.G_NAP])
        self.sg[sgl.G_ACT] = 0.0  # an episode cut by the session end stays unresolved (-1)
        cols: dict[str, np.ndarray] = {"ts_recv": self.ap_ts[:n].copy()}
        for j, name in enumerate(sgl.AP_COLUMNS):
            cols[name] = self.ap[:n, j].copy()
        return cols

    def day_stats(self, i: int) -> DayStats:
        """Trades of instrument ``i`` today; without trades, everything sits at the current mid."""
        s = self.stats[i]
        if s[en.ST_TRADES] == 0:
            top = self.book[4]
            mid = int((top[i, T_BEST_BID] + top[i, T_BEST_ASK]) // 2)
            return DayStats(mid, mid, mid, mid, 0, 0)
        fields = [en.ST_OPEN, en.ST_HIGH, en.ST_LOW, en.ST_LAST, en.ST_VOLUME, en.ST_TRADES]
        return DayStats(*(int(x) for x in s[fields]))
