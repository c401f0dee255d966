"""The option relay of a topic run: every partition's options, clocks and reference data in, each
chain's items out, in an order that makes the chain's rows a function of the records alone.

A file names its chains up front (``ChainFacts``), and a chain's options come from the files that
hold them, each a source with its own clock. A topic does not: an option is keyed to whichever
partition its instrument id hashes to, so a chain's options are spread over every partition, a
chain cannot name them, and it would have to hear how far *every* partition has read, including
those that never carried one of its options. Bytewax has no broadcast to every key, so the
partitions meet here instead, under one key (``flows.route.RELAY_KEY``), and each sends its news
(``flows.route.partition_news``): its options' records by chain, its watermark, the books it fed,
its definitions and open interest.

The relay's clock is the least watermark of the topic's partitions (all of them, from the plan:
one that has not spoken holds it at -1; one whose bounded read ended no longer counts). A tailed
partition that has heard nothing for its idle timeout says so in its ticks, and is not waited for
until it speaks again (a quiet partition would otherwise hold every chain back by as much as its
event time trails the others'; Flink's idle sources are the same idea); when every partition is
idle, nothing is in flight and the clock is the greatest of their watermarks. A bounded read never
ticks, so its clock is a function of the records alone. When it
moves on, each chain gets, in this order and on this one path, so the chain sees them in order:

- its options' records from before the clock, every partition's merged into one ``ts_recv``
  order (an instrument is on one partition, so each keeps its own sequence) as one
  ``OptionSlice`` of the topic's source (``kafka:<topic>``: the stream the chain's rows are
  written under);
- a ``ChainTick``: its options are in for every second closing before the clock (a chain without
  options yet gets it too: its session's vectors wait for how far it is);
- a ``ChainEnd`` once the clock has passed the end of its session (or every partition has ended),
  saying whether the run fed the underlying's book, so the chain knows whether to wait for its
  last mids. A chain's key is dropped then; a record of its options that comes later is late (it
  is in Bronze, counted and logged here).

A chain first heard of gets a ``ChainNotice`` before its first records: the open interest read
so far (``bronze.statistics`` of earlier runs, then the topic's) and its underlying's definition
(symbol and venue: Black-76 or Black-Scholes-Merton). Open interest read later is sent on as it
comes. Books of instruments that are not options make a chain key too (the relay cannot tell
which have options still to come), so the chain that collects such a book's mids is told when
its session is over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields

import numpy as np
from bytewax.operators import StatefulLogic
from typing_extensions import override

from connectors.dbn.chains import OI_DTYPE, ChainFacts
from flows.items import ChainEnd, ChainNotice, ChainTick, OptionSlice, PartitionNews
from operators.calendar import calendar_of
from operators.chunks import InstrumentInfo
from operators.options.chain import NS, chain_key, chain_of
from operators.sessions import day_to_date

log = logging.getLogger("spymaster.options")

FOREVER = 2**63 - 1
Relayed = tuple[str, OptionSlice | ChainTick | ChainEnd | ChainNotice]


def topic_source_id(partitions: tuple[str, ...]) -> str:
    """The source a topic's chains are written under: ``kafka:<topic>`` of ``kafka:<topic>/<n>``."""
    return partitions[0].rsplit("/", 1)[0] if partitions else "topic"


@dataclass(frozen=True, slots=True)
class RelayState:
    marks: dict[str, int]
    ended: frozenset[str]
    clock: int
    held: dict[str, tuple[OptionSlice, ...]]
    ends: dict[str, int]
    """Open chain keys → the end of their session (ns)."""
    optioned: frozenset[str]
    """Open chains that have had options (they get the open interest read)."""
    books: frozenset[str]
    """Open chains whose underlying's book the run fed."""
    closed: frozenset[str]
    open_interest: np.ndarray
    underlyings: dict[int, InstrumentInfo]
    late: int = 0
    idle: frozenset[str] = frozenset()

    def __setstate__(self, state: list[object]) -> None:
        for i, f in enumerate(fields(self)):
            object.__setattr__(self, f.name, state[i] if i < len(state) else f.default)


@dataclass(slots=True)
class _Relay:
    marks: dict[str, int] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    clock: int = -1
    held: dict[str, list[OptionSlice]] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)
    optioned: set[str] = field(default_factory=set)
    books: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    open_interest: np.ndarray = field(default_factory=lambda: np.zeros(0, OI_DTYPE))
    underlyings: dict[int, InstrumentInfo] = field(default_factory=dict)
    late: int = 0
    idle: set[str] = field(default_factory=set)


class OptionRelayLogic(StatefulLogic[PartitionNews, Relayed, RelayState]):
    """The one relay of a topic run (see the module docstring)."""

    def __init__(self, facts: ChainFacts, resume: RelayState | None) -> None:
        self._partitions = facts.partitions
        self._source = topic_source_id(facts.partitions)
        if resume is None:
            self._r = _Relay(open_interest=facts.open_interest)
        else:
            self._r = _Relay(dict(resume.marks), set(resume.ended), resume.clock,
                             {k: list(v) for k, v in resume.held.items()}, dict(resume.ends), set(resume.optioned),
                             set(resume.books), set(resume.closed), resume.open_interest, dict(resume.underlyings),
                             resume.late, set(resume.idle))

    @override
    def on_item(self, value: PartitionNews) -> tuple[list[Relayed], bool]:
        r, out = self._r, list[Relayed]()
        if value.instruments:
            out += self._defined(value.instruments)
        if value.open_interest is not None and len(value.open_interest):
            r.open_interest = np.concatenate([r.open_interest, value.open_interest])
            out += [(k, ChainNotice(k, value.open_interest)) for k in sorted(r.optioned)]
        for book in value.books:
            key = chain_key(*map(int, book.split(":")))
            if self._open(key, value.dataset):
                r.books.add(key)
        for part in value.options:
            out += self._hold(part, value.dataset)
        if value.watermark_ns > r.marks.get(value.source_id, -1):
            r.marks[value.source_id] = value.watermark_ns
        if value.ended:
            r.ended.add(value.source_id)
        if value.idle:
            r.idle.add(value.source_id)
        else:
            r.idle.discard(value.source_id)
        out += self._advance()
        return out, StatefulLogic.RETAIN

    def _defined(self, infos: tuple[InstrumentInfo, ...]) -> list[Relayed]:
        """Underlyings defined: the open chains written on them learn their symbol and venue."""
        r, out = self._r, list[Relayed]()
        for info in infos:
            r.underlyings[info.instrument_id] = info
            for key in sorted(k for k in r.optioned if chain_of(k)[0] == info.instrument_id):
                out.append((key, ChainNotice(key, np.zeros(0, OI_DTYPE), info)))
        return out

    def _open(self, key: str, dataset: str) -> bool:
        """Whether ``key`` is an open chain, opening it if it was never closed."""
        r = self._r
        if key in r.ends:
            return True
        if key in r.closed:
            return False
        r.ends[key] = calendar_of(dataset).session_end_ns(day_to_date(chain_of(key)[1]))
        return True

    def _hold(self, part: OptionSlice, dataset: str) -> list[Relayed]:
        r = self._r
        if not self._open(part.key, dataset):
            if not r.late:
                log.warning("option records arrived for the chain %s after its session was over: they are in "
                            "Bronze, not in the chain (a Bronze replay of the day recomputes it)", part.key)
            r.late += len(part.records)
            return []
        r.held.setdefault(part.key, []).append(part)
        if part.key in r.optioned:
            return []
        r.optioned.add(part.key)
        return [(part.key, ChainNotice(part.key, r.open_interest, r.underlyings.get(chain_of(part.key)[0])))]

    def _clock(self) -> int:
        r = self._r
        known = set(self._partitions) | r.marks.keys() | r.ended
        if not known:
            return -1
        live = known - r.ended
        if not live:
            return FOREVER
        active = live - r.idle
        if active:
            return min(r.marks.get(p, -1) for p in active)
        return max((r.marks[p] for p in live if p in r.marks), default=-1)  # all idle: nothing in flight

    def _advance(self) -> list[Relayed]:
        """What the chains get when the relay's clock moves on (see the module docstring)."""
        r = self._r
        clock = self._clock()
        if clock <= r.clock:
            return []
        ticks = (clock - 1) // NS > (r.clock - 1) // NS  # the last close before the clock moved on
        r.clock = clock
        out: list[Relayed] = []
        for key in sorted(r.held):
            out += self._release(key, clock)
        for key in sorted(r.ends):
            ending = r.ends[key] <= clock
            if ticks and not ending:
                out.append((key, ChainTick(key, self._source, clock)))
            if ending:  # its end is its last clock
                out.append((key, ChainEnd(key, self._source, underlying_book=key in r.books)))
                del r.ends[key]
                r.optioned.discard(key)
                r.books.discard(key)
                r.held.pop(key, None)
                r.closed.add(key)
        return out

    def _release(self, key: str, clock: int) -> list[Relayed]:
        """The chain's held records from before ``clock``, every partition's merged by ``ts_recv``."""
        r = self._r
        parts = r.held[key]
        records = parts[0].records if len(parts) == 1 else np.concatenate([p.records for p in parts])
        order = np.argsort(records["ts_recv"], kind="stable")
        ts = records["ts_recv"][order].astype(np.int64)
        due = len(ts) if clock == FOREVER else int(np.searchsorted(ts, clock, side="left"))
        if due == 0:
            return []
        instruments = {i: info for p in parts for i, info in p.instruments.items()}
        now, later = records[order[:due]], records[order[due:]]
        if len(later):
            ids = np.unique(later["instrument_id"]).tolist()
            r.held[key] = [OptionSlice(key, parts[0].source_id, later, {i: instruments[i] for i in ids},
                                       parts[0].session_day)]
        else:
            del r.held[key]
        ids = np.unique(now["instrument_id"]).tolist()
        return [(key, OptionSlice(key, self._source, now, {i: instruments[i] for i in ids}, parts[0].session_day))]

    @override
    def snapshot(self) -> RelayState:
        r = self._r
        return RelayState(dict(r.marks), frozenset(r.ended), r.clock, {k: tuple(v) for k, v in r.held.items()},
                          dict(r.ends), frozenset(r.optioned), frozenset(r.books), frozenset(r.closed),
                          r.open_interest, dict(r.underlyings), r.late, frozenset(r.idle))
