"""The option-chain step: per (underlier, session), the options' books and top rows, and the
chain's gamma exposure against the underlying's own 1-second mids.

Three kinds of item meet under the chain key (``operators.options.chain.chain_key``): the
options' records (``OptionSlice``), the end of a source that fed them (``ChainEnd``), and the
underlying's mids (``UnderlyingSeconds``, from its book rows). A chain's options may come from
several sources: one options file, or one Bronze slice per option (``ChainFacts.feeds`` names
them up front). Each source keeps its own option books, and the options' clock is the least of
the sources' clocks: a second's option tops go out, and its GEX is computed, once every source
has passed its close, so the rows do not depend on how the sources interleave. The chain's GEX
begins with the second of its earliest option record: once every source has passed a close, an
option record at or before it would have been heard, so the closes before it are dropped. The
step ends when every source and the underlying have ended; when the run replays no book of the
underlying for the session (``ChainFacts.books``), the options' end alone ends it, with option
tops and no GEX.

A topic run's chain has one source, the topic, through the option relay
(``flows.steps.option_relay``): its options' records in ``ts_recv`` order, a ``ChainTick`` for
the relay's clock (the seconds it passes are whole, though no record of theirs has come after
them to close them), a ``ChainNotice`` for open interest and the underlying's definition as they
are read, and a ``ChainEnd`` that says whether the run fed the underlying's book. Every book of
a topic run has a chain key (the run cannot tell which will have options): a chain that has had
no option writes nothing and only says how far its session is, for the session's vectors.

The chain's work (the option books; ``ChainGex``: the options' σ, Γ and GEX, the zero-gamma
search, the surface's columns; the Arrow rows of its tables) is done on a thread of the step's
own, in the order asked, while the worker goes on with the other steps: on the options bench day
it was a third of a one-worker flow's time on its one thread, and its kernels release the GIL.
Each item's call returns the rows done by then; a snapshot waits for the rest and keeps them in
the state until the next call, the chain's last item waits for all of its rows, and so does the
end of the input (``on_eof``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields, replace

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from connectors.dbn.chains import OI_DTYPE, ChainFacts
from connectors.delta.option_rows import gex_summary_rows, gex_surface_rows, options_top_rows
from flows.items import (
    BookRows,
    ChainEnd,
    ChainNotice,
    ChainProfiles,
    ChainRows,
    ChainTables,
    ChainTick,
    OptionSlice,
    UnderlyingSeconds,
    book_key,
)
from operators.calendar import US_EQUITIES, calendar_of
from operators.chunks import InstrumentInfo
from operators.options.chain import (
    NS,
    OPTION_TOP_DTYPE,
    ChainGex,
    ChainGexConfig,
    ChainGexState,
    OptionTops,
    OptionTopsState,
    by_second,
    chain_key,
    chain_of,
    open_interest_before,
)
from operators.records import UNDEF_PRICE
from operators.sessions import day_to_date

ChainItem = OptionSlice | ChainEnd | UnderlyingSeconds | ChainTick | ChainNotice
FOREVER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ChainLogicState:
    key: str
    source_id: str
    tops: OptionTopsState | dict[str, OptionTopsState]
    """Per source (a snapshot taken before chains had several sources: the one source's)."""
    gex: ChainGexState | None
    closes: np.ndarray
    mids: np.ndarray
    options_clock: int | dict[str, int]
    options_ended: bool
    underlying_ended: bool
    through: int = -1
    ended: frozenset[str] = frozenset()
    held: np.ndarray | None = None
    unsent: tuple[ChainRows, ...] = ()
    """Rows computed before the snapshot and not emitted yet (emitted first after a resume)."""
    open_interest: np.ndarray | None = None
    """A topic run's: the open interest the relay sent (``ChainNotice``)."""
    underlying: InstrumentInfo | None = None
    waits: bool = False
    """The chain waits for its underlying's last mids (it has had some, or the relay said so)."""
    first: int = -1
    """The earliest option record heard (``FOREVER``: none); -1 in a snapshot of a build whose
    chains began their GEX with the underlying's first second."""

    def __setstate__(self, state: list[object]) -> None:
        """A snapshot of an older build (fewer fields) loads with the defaults of the rest."""
        for i, f in enumerate(fields(self)):
            object.__setattr__(self, f.name, state[i] if i < len(state) else f.default)


def underlying_seconds(underlyings: frozenset[int] | None, rows: BookRows) -> tuple[str, UnderlyingSeconds] | None:
    """A book's rows as the mids its chains need, under their chain key; None for a book no
    option of the run is written on (``underlyings`` None: a topic run, which cannot tell, sends
    every book's)."""
    if underlyings is not None and rows.info.instrument_id not in underlyings:
        return None
    key = chain_key(rows.info.instrument_id, rows.session_day)
    r = rows.rows
    both = r["book_valid"].astype(bool) & (r["best_bid_px"] != UNDEF_PRICE) & (r["best_ask_px"] != UNDEF_PRICE)
    mid = np.where(both, (r["best_bid_px"].astype(np.float64) + r["best_ask_px"].astype(np.float64)) / 2e9, np.nan)
    return key, UnderlyingSeconds(key, rows.rows["ts_recv"].astype(np.int64), mid, rows.final)


def chained_sessions(facts: ChainFacts) -> frozenset[str] | None:
    """The underlier sessions (``book_key``) whose episodes wait for a chain: the run feeds both
    the chain and the underlying's book. None: every session (a bounded topic read, which learns
    its chains as it reads, so every book's session waits for its chain, with or without
    options); none in a tailed topic run, whose vectors read the chain as computed by then."""
    if facts.relayed:
        return None if facts.vectors_wait else frozenset()
    return facts.sessions & facts.books


def profiled_sessions(facts: ChainFacts) -> frozenset[str] | None:
    """The underlier sessions (``book_key``) that get their chain's profiles (None: every one)."""
    return None if facts.relayed else facts.sessions & facts.books


def chain_profiles(chained: frozenset[str] | None, rows: ChainRows) -> tuple[str, ChainProfiles] | None:
    """A chain step's output as its underlier's session step reads it (None for a session that
    reads no chain)."""
    key = book_key(*chain_of(rows.key))
    return (key, ChainProfiles(key, rows.profiles, rows.through_ns)) if chained is None or key in chained else None


def session_open_interest(facts: ChainFacts, underlying_id: int, session_day: int,
                          venue: str | None = None) -> dict[int, int]:
    """Open interest for a session of the underlying's calendar (on CME Globex 18:00 ET the evening
    before to 17:00 ET): the prior close's. ``venue``: the underlying's, when the facts lack it."""
    d = day_to_date(session_day)
    calendar = calendar_of(venue if venue is not None else facts.venues.get(underlying_id, ""))
    return open_interest_before(facts.open_interest, calendar.session_start_ns(d), calendar.session_end_ns(d))


class ChainLogic(StatefulLogic[ChainItem, ChainRows, ChainLogicState]):
    """One underlier's chain in one session (see the module docstring)."""

    def __init__(self, facts: ChainFacts, cfg: ChainGexConfig, resume: ChainLogicState | None) -> None:
        self._facts, self._cfg = facts, cfg
        self._key, self._source = "", ""
        self._tops: dict[str, OptionTops] = {}
        """Each source's option books."""
        self._clocks: dict[str, int] = {}
        """Each source's option rows are in for every second closing before its clock."""
        self._ended: set[str] = set()
        self._unheard: set[str] | None = None
        """Sources the plan names that have not spoken yet (None until the chain knows its key)."""
        self._held: list[np.ndarray] = []
        """Option rows of seconds some source has not passed yet."""
        self._released = -1
        """The options' clock the held rows were last released at."""
        self._gex: ChainGex | None = None
        self._closes, self._mids = np.zeros(0, np.int64), np.zeros(0)
        self._more: list[UnderlyingSeconds] = []
        """Mids not yet joined to ``_closes`` (a topic run's chain may hold a session of them)."""
        self._underlying_ended = False
        self._oi = np.zeros(0, OI_DTYPE)
        self._underlying: InstrumentInfo | None = None
        self._waits = False
        self._first = FOREVER
        """The earliest option record heard: the chain's GEX begins with the second it falls in."""
        self._through = -1
        """The last underlying close whose GEX is computed (``ChainRows.through_ns``)."""
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: deque[Future[ChainRows | None]] = deque()
        """The chain's computations asked for, oldest first (see the module docstring)."""
        self._ready: list[ChainRows] = []
        if resume is not None:
            self._resume(resume)

    def _resume(self, resume: ChainLogicState) -> None:
        self._key, self._source = resume.key, resume.source_id
        self._oi = resume.open_interest if resume.open_interest is not None else self._oi
        self._underlying, self._waits, self._first = resume.underlying, resume.waits, resume.first
        if isinstance(resume.tops, OptionTopsState):  # one source, as every chain had before ``feeds``
            tops, clocks = {resume.source_id: resume.tops}, {resume.source_id: int(resume.options_clock)}  # type: ignore[arg-type]
            ended = {resume.source_id} if resume.options_ended else set()
        else:
            tops, clocks, ended = resume.tops, dict(resume.options_clock), set(resume.ended)  # type: ignore[arg-type]
        self._tops = {s: OptionTops(resume=t) for s, t in tops.items()}
        self._clocks, self._ended = clocks, ended
        self._held = [resume.held.copy()] if resume.held is not None and len(resume.held) else []
        if resume.gex is not None:
            self._gex = ChainGex(resume.gex.underlier, self._open_interest(), self._model_cfg(), resume=resume.gex)
        self._closes, self._mids = resume.closes.copy(), resume.mids.copy()
        self._underlying_ended = resume.underlying_ended
        self._through = resume.through
        self._ready = list(resume.unsent)

    def _open_interest(self) -> dict[int, int]:
        facts = replace(self._facts, open_interest=np.concatenate([self._facts.open_interest, self._oi])) \
            if len(self._oi) else self._facts
        return session_open_interest(facts, *chain_of(self._key), venue=self._venue())

    def _venue(self) -> str:
        uid = chain_of(self._key)[0]
        return self._facts.venues.get(uid) or (self._underlying.venue if self._underlying is not None else "")

    def _model_cfg(self) -> ChainGexConfig:
        """Black-76 on the future for a futures chain; Black-Scholes-Merton on the spot for options on
        a stock (the underlying's venue keeps the US equities calendar)."""
        return replace(self._cfg, model="bsm") if calendar_of(self._venue()) is US_EQUITIES else self._cfg

    def _chain(self) -> ChainGex:
        if self._gex is None:
            uid = chain_of(self._key)[0]
            named = self._underlying.raw_symbol if self._underlying is not None else f"#{uid}"
            self._gex = ChainGex(self._facts.symbols.get(uid, named), self._open_interest(), self._model_cfg())
        return self._gex

    def _sources(self) -> list[str]:
        """The sources of the chain's options: those the plan names (``ChainFacts.feeds``), else
        those heard from so far (a run whose options come from one file)."""
        return sorted(self._facts.feeds.get(self._key, frozenset()) | self._clocks.keys() | self._ended)

    def _options_clock(self) -> int:
        """Every source's option rows are in for the seconds closing before this; FOREVER once
        every source has ended."""
        if self._unheard is None:
            self._unheard = set(self._facts.feeds.get(self._key, frozenset())) - self._clocks.keys() - self._ended
        if self._unheard or not (self._clocks or self._ended):
            return -1
        return min((c for s, c in self._clocks.items() if s not in self._ended), default=FOREVER)

    def _heard(self, source_id: str) -> None:
        if self._unheard is not None:
            self._unheard.discard(source_id)

    def _keyed(self, key: str, source_id: str) -> None:
        self._key = key
        if not self._source:  # the stream the chain's rows are written under: the same whatever comes first
            self._source = min(self._facts.feeds.get(key) or {source_id})

    @override
    def on_item(self, value: ChainItem) -> tuple[list[ChainRows], bool]:
        if isinstance(value, OptionSlice):
            self._keyed(value.key, value.source_id)
            gex = self._chain()
            self._submit(self._books_of(gex, value))
            if len(value.records):  # a source is heard once it has a clock
                self._first = min(self._first, int(value.records["ts_recv"].min()))
                self._clocks[value.source_id] = (int(value.records["ts_recv"][-1]) // NS + 1) * NS
                self._heard(value.source_id)
        elif isinstance(value, ChainEnd):
            self._keyed(value.key, value.source_id)
            self._waits |= value.underlying_book
            if self._gex is not None or not self._facts.relayed:  # a relayed chain without options: no work
                self._chain()
                self._submit(self._book_end(value.source_id))
            self._ended.add(value.source_id)
            self._heard(value.source_id)
        elif isinstance(value, ChainTick):
            self._keyed(value.key, value.source_id)
            if self._gex is not None:  # only a chain with options has books to close seconds of
                self._submit(self._books_through(value.source_id, value.clock_ns))
            self._clocks[value.source_id] = max(self._clocks.get(value.source_id, -1), value.clock_ns)
            self._heard(value.source_id)
        elif isinstance(value, ChainNotice):
            self._notice(value)
        else:  # the mids alone start no GEX: the chain waits for a source of its options to speak
            self._key = value.key
            self._more.append(value)
            self._waits = True
            self._underlying_ended |= value.final
        return self._emit()

    def _notice(self, value: ChainNotice) -> None:
        """A topic run's news of the chain: its underlying's definition, open interest read."""
        self._key = value.key
        if value.underlying is not None:
            self._underlying = value.underlying
        if len(value.open_interest):
            self._oi = np.concatenate([self._oi, value.open_interest])
            if self._gex is not None:
                gex, oi = self._gex, self._open_interest()
                self._submit(lambda: gex.set_open_interest(oi))

    def _joined_mids(self) -> None:
        if self._more:
            self._closes = np.concatenate([self._closes, *(m.closes for m in self._more)])
            self._mids = np.concatenate([self._mids, *(m.mids for m in self._more)])
            self._more = []

    def _books_of(self, gex: ChainGex, value: OptionSlice) -> Callable[[], None]:
        """The work of an options slice: its options join the chain, its records go to the source's
        books, and the rows of the seconds they close are held until every source passes them."""
        def work() -> None:
            gex.add(value.instruments.values())
            books = self._tops.setdefault(value.source_id, OptionTops())
            self._hold(books.apply(value.records, {i: o.tick for i, o in value.instruments.items()}))

        return work

    def _books_through(self, source_id: str, clock_ns: int) -> Callable[[], None]:
        """The work of a tick: the source's seconds closing by ``clock_ns`` are whole, though no
        record of theirs has come after them to close them."""
        def work() -> None:
            books = self._tops.get(source_id)
            if books is not None:
                self._hold(books.through(clock_ns))

        return work

    def _book_end(self, source_id: str) -> Callable[[], None]:
        """The work of a source's end: its books' last second is held, and the books dropped."""
        def work() -> None:
            ended = self._tops.pop(source_id) if source_id in self._tops else None
            self._hold(ended.close() if ended is not None else np.zeros(0, OPTION_TOP_DTYPE))

        return work

    def _hold(self, rows: np.ndarray) -> None:
        if len(rows):
            self._held.append(rows)

    def _release(self, clock: int, several: bool) -> np.ndarray:
        """The held rows of the seconds closing before ``clock``, in (second, option) order
        (``several``: more than one source has spoken, so their rows interleave)."""
        if clock <= self._released or not self._held:
            return np.zeros(0, OPTION_TOP_DTYPE)
        self._released = clock
        rows = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        self._held = []
        if clock != FOREVER:
            due = rows["ts_recv"].astype(np.int64) < clock
            if not due.all():
                self._held = [rows[~due]]
                rows = rows[due]
        if several and len(rows):  # one source's rows are in order already
            rows = by_second(rows)
        return rows

    def _submit(self, work: Callable[[], ChainRows | None]) -> None:
        """Run ``work`` on the chain's thread after everything asked before it: the thread alone
        touches the chain's books, held rows and ``ChainGex`` while any work is in flight."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="spymaster-chain")
        self._inflight.append(self._pool.submit(work))

    def _collect(self, *, wait: bool) -> list[ChainRows]:
        """The rows computed so far, in the order asked (all of them, waiting, with ``wait``)."""
        out, self._ready = self._ready, []
        while self._inflight and (wait or self._inflight[0].done()):
            rows = self._inflight.popleft().result()
            if rows is not None:
                out.append(rows)
        return out

    def _close(self) -> list[ChainRows]:
        out = self._collect(wait=True)
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        return out

    def _emit(self) -> tuple[list[ChainRows], bool]:
        gex = self._gex
        clock = self._options_clock()
        options_ended = clock == FOREVER
        uid, day = chain_of(self._key)
        waits = self._waits or book_key(uid, day) in self._facts.books
        done = options_ended and (self._underlying_ended or not waits)
        if clock >= 0:
            self._joined_mids()
        ready = int(np.searchsorted(self._closes, clock, side="left"))  # closes before the options' clock
        closes, mids = self._closes[:ready], self._mids[:ready]
        if ready:
            self._through = int(self._closes[ready - 1])
        self._closes, self._mids = self._closes[ready:], self._mids[ready:]
        if ready and (closes[0] <= self._first < FOREVER or self._first == FOREVER):
            # no GEX before the chain's first option record: every source has passed these
            # closes, so an option record at or before them would have been heard
            kept = closes > self._first if self._first < FOREVER else np.zeros(ready, np.bool_)
            closes, mids = closes[kept], mids[kept]
        if gex is not None:
            self._submit(self._rows_of(gex, clock, closes, mids, done))
        elif self._facts.relayed and (ready or done):  # no option yet: how far the session is, for its vectors
            self._ready.append(self._progress(day, done))
        if done and self._source:
            return self._close(), StatefulLogic.DISCARD
        return self._collect(wait=False), StatefulLogic.RETAIN

    def _progress(self, day: int, done: bool) -> ChainRows:
        """A topic run's chain that has had no option: no rows, only how far its seconds are (the
        session's vectors wait for every chain of a topic run: ``chain_profiles``)."""
        return ChainRows(self._key, self._source, "", day, np.zeros(0, OPTION_TOP_DTYPE), {}, [], [], done, None, (),
                         FOREVER if done else self._through)

    def _rows_of(self, gex: ChainGex, clock: int, closes: np.ndarray, mids: np.ndarray,
                 done: bool) -> Callable[[], ChainRows | None]:
        """The work of one call: the option tops of the seconds closing before the options' clock
        released and applied, the GEX of the underlying's closes before it, and the rows they make
        (None when the step has nothing to say yet: no source has spoken, or nothing changed)."""
        key, source, through = self._key, self._source, FOREVER if done else self._through
        sources = tuple(self._sources()) if done else ()
        several = len(self._clocks.keys() | self._ended) > 1

        def work() -> ChainRows | None:
            tops = self._release(clock, several)
            if len(tops):
                gex.quotes(tops)
            surfaces, summaries, profiles = gex.seconds(closes, mids)
            if not source or not (len(tops) or len(closes) or done):
                return None
            named = {int(i): gex.options[int(i)] for i in np.unique(tops["instrument_id"])}  # what the tops rows need
            uid, day = chain_of(key)
            when = day_to_date(day)
            tables = ChainTables(options_top_rows(tops, named, gex.underlier, uid, when),
                                 gex_surface_rows(surfaces, uid, when), gex_summary_rows(summaries, uid, when))
            return ChainRows(key, source, gex.underlier, day, tops, named, surfaces, summaries, done, tables,
                             tuple(profiles), through, sources)

        return work

    @override
    def on_eof(self) -> tuple[list[ChainRows], bool]:
        """The input has ended before the chain did: every row computed goes out."""
        return self._collect(wait=True), StatefulLogic.RETAIN

    @override
    def snapshot(self) -> ChainLogicState:
        self._ready = self._collect(wait=True)  # the chain's state is whole only once its thread is idle
        self._joined_mids()
        return ChainLogicState(self._key, self._source, {s: t.snapshot() for s, t in self._tops.items()},
                               self._gex.snapshot() if self._gex is not None else None, self._closes.copy(),
                               self._mids.copy(), dict(self._clocks), self._options_clock() == FOREVER,
                               self._underlying_ended, self._through, frozenset(self._ended),
                               np.concatenate(self._held) if self._held else None, tuple(self._ready),
                               self._oi if len(self._oi) else None, self._underlying, self._waits, self._first)
