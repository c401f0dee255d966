"""The option-chain step: per (underlier, session), the options' books and top rows, and the
chain's gamma exposure against the underlying's own 1-second mids.

Three kinds of item meet under the chain key (``operators.options.chain.chain_key``): the
options' records (``OptionSlice``), the end of the file that fed them (``SourceEnd``), and the
underlying's mids (``UnderlyingSeconds``, from its book rows). A second's GEX is computed once
every option row up to its close is in (the options' clock has passed it), so the rows do not
depend on how the two sources interleave. The step ends when both sides have ended; when the
run replays no book of the underlying for the session (``ChainFacts.books``), the options' end
alone ends it, with option tops and no GEX.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from connectors.dbn.chains import ChainFacts
from flows.items import BookRows, ChainProfiles, ChainRows, OptionSlice, UnderlyingSeconds, book_key
from operators.calendar import US_EQUITIES, calendar_of
from operators.chunks import SourceEnd
from operators.options.chain import (
    NS,
    OPTION_TOP_DTYPE,
    ChainGex,
    ChainGexConfig,
    ChainGexState,
    OptionTops,
    OptionTopsState,
    chain_key,
    chain_of,
    open_interest_before,
)
from operators.records import UNDEF_PRICE
from operators.sessions import day_to_date

ChainItem = OptionSlice | SourceEnd | UnderlyingSeconds
FOREVER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ChainLogicState:
    key: str
    source_id: str
    tops: OptionTopsState
    gex: ChainGexState | None
    closes: np.ndarray
    mids: np.ndarray
    options_clock: int
    options_ended: bool
    underlying_ended: bool
    through: int = -1


def underlying_seconds(underlyings: frozenset[int], rows: BookRows) -> tuple[str, UnderlyingSeconds] | None:
    """A book's rows as the mids its chains need, under their chain key; None for a book no
    option of the run is written on."""
    if rows.info.instrument_id not in underlyings:
        return None
    key = chain_key(rows.info.instrument_id, rows.session_day)
    r = rows.rows
    both = r["book_valid"].astype(bool) & (r["best_bid_px"] != UNDEF_PRICE) & (r["best_ask_px"] != UNDEF_PRICE)
    mid = np.where(both, (r["best_bid_px"].astype(np.float64) + r["best_ask_px"].astype(np.float64)) / 2e9, np.nan)
    return key, UnderlyingSeconds(key, rows.rows["ts_recv"].astype(np.int64), mid, rows.final)


def chained_sessions(facts: ChainFacts) -> frozenset[str]:
    """The underlier sessions (``book_key``) whose episodes read a chain: the run feeds both the
    chain and the underlying's book."""
    return facts.sessions & facts.books


def chain_profiles(chained: frozenset[str], rows: ChainRows) -> tuple[str, ChainProfiles] | None:
    """A chain step's output as its underlier's session step reads it (None for a session that
    reads no chain)."""
    key = book_key(*chain_of(rows.key))
    return (key, ChainProfiles(key, rows.profiles, rows.through_ns)) if key in chained else None


def session_open_interest(facts: ChainFacts, underlying_id: int, session_day: int) -> dict[int, int]:
    """Open interest for a session of the underlying's calendar (on CME Globex 18:00 ET the evening
    before to 17:00 ET): the prior close's."""
    d = day_to_date(session_day)
    calendar = calendar_of(facts.venues.get(underlying_id, ""))
    return open_interest_before(facts.open_interest, calendar.session_start_ns(d), calendar.session_end_ns(d))


class ChainLogic(StatefulLogic[ChainItem, ChainRows, ChainLogicState]):
    """One underlier's chain in one session (see the module docstring)."""

    def __init__(self, facts: ChainFacts, cfg: ChainGexConfig, resume: ChainLogicState | None) -> None:
        self._facts, self._cfg = facts, cfg
        self._key, self._source = "", ""
        self._tops = OptionTops(resume=resume.tops if resume is not None else None)
        self._gex: ChainGex | None = None
        self._closes, self._mids = np.zeros(0, np.int64), np.zeros(0)
        self._clock = -1
        """Option rows are in for every second closing before this (``OptionTops``)."""
        self._options_ended = self._underlying_ended = False
        self._through = -1
        """The last underlying close whose GEX is computed (``ChainRows.through_ns``)."""
        if resume is not None:
            self._key, self._source = resume.key, resume.source_id
            if resume.gex is not None:
                self._gex = ChainGex(resume.gex.underlier, self._open_interest(), self._model_cfg(), resume=resume.gex)
            self._closes, self._mids = resume.closes.copy(), resume.mids.copy()
            self._clock = resume.options_clock
            self._options_ended, self._underlying_ended = resume.options_ended, resume.underlying_ended
            self._through = resume.through

    def _open_interest(self) -> dict[int, int]:
        return session_open_interest(self._facts, *chain_of(self._key))

    def _model_cfg(self) -> ChainGexConfig:
        """Black-76 on the future for a futures chain; Black-Scholes-Merton on the spot for options on
        a stock (the underlying's venue keeps the US equities calendar)."""
        venue = self._facts.venues.get(chain_of(self._key)[0], "")
        return replace(self._cfg, model="bsm") if calendar_of(venue) is US_EQUITIES else self._cfg

    def _chain(self) -> ChainGex:
        if self._gex is None:
            uid = chain_of(self._key)[0]
            self._gex = ChainGex(self._facts.symbols.get(uid, f"#{uid}"), self._open_interest(), self._model_cfg())
        return self._gex

    @override
    def on_item(self, value: ChainItem) -> tuple[list[ChainRows], bool]:
        tops = np.zeros(0, OPTION_TOP_DTYPE)
        if isinstance(value, OptionSlice):
            self._key, self._source = value.key, self._source or value.source_id
            gex = self._chain()
            gex.add(value.instruments.values())
            tops = self._tops.apply(value.records, {i: o.tick for i, o in value.instruments.items()})
            if len(value.records):
                self._clock = (int(value.records["ts_recv"][-1]) // NS + 1) * NS
        elif isinstance(value, SourceEnd):
            tops = self._tops.close()
            self._options_ended = True
            self._source = self._source or value.source_id
        else:
            self._key = value.key
            self._chain()
            self._closes = np.concatenate([self._closes, value.closes])
            self._mids = np.concatenate([self._mids, value.mids])
            self._underlying_ended |= value.final
        return self._emit(tops)

    def _emit(self, tops: np.ndarray) -> tuple[list[ChainRows], bool]:
        gex = self._gex
        if gex is not None and len(tops):
            gex.quotes(tops)
        uid, day = chain_of(self._key)
        waits = book_key(uid, day) in self._facts.books
        done = self._options_ended and (self._underlying_ended or not waits)
        through = np.iinfo(np.int64).max if self._options_ended else self._clock
        ready = int(np.searchsorted(self._closes, through, side="left"))  # closes before the options' clock
        surfaces, summaries, profiles = (gex.seconds(self._closes[:ready], self._mids[:ready]) if gex is not None
                                         else ([], [], []))
        if ready:
            self._through = int(self._closes[ready - 1])
        self._closes, self._mids = self._closes[ready:], self._mids[ready:]
        if not self._source or not (len(tops) or ready or done):
            return [], StatefulLogic.RETAIN  # nothing to say yet (or only the underlying has spoken)
        assert gex is not None
        options = gex.options
        named = {int(i): options[int(i)] for i in np.unique(tops["instrument_id"])}  # what the tops rows need
        out = ChainRows(self._key, self._source, gex.underlier, day, tops, named, surfaces, summaries, done,
                        tuple(profiles), FOREVER if done else self._through)
        return [out], StatefulLogic.DISCARD if done else StatefulLogic.RETAIN

    @override
    def snapshot(self) -> ChainLogicState:
        return ChainLogicState(self._key, self._source, self._tops.snapshot(),
                               self._gex.snapshot() if self._gex is not None else None, self._closes.copy(),
                               self._mids.copy(), self._clock, self._options_ended, self._underlying_ended,
                               self._through)

