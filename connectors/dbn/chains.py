"""What a run needs to know up front about its option chains: which underlyings have options,
which underlying books it replays, and the open interest published so far.

Open interest must be known before a session's first GEX row (it is the prior session's), and
it arrives in statistics files that a parallel run reads at any time: so the plan reads it from
the run's statistics files and from ``bronze.statistics`` (files ingested by earlier runs) before
the flow starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from connectors.dbn.instruments import instruments_for, symbology_of
from connectors.dbn.reader import BadHeader, DbnFileReader, upgrade_to_v3
from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_STATISTICS
from operators.chunks import InstrumentInfo
from operators.options.chain import OPEN_INTEREST, chain_key
from operators.sessions import date_to_day

OI_DTYPE = np.dtype([("instrument_id", "<u4"), ("ts_ref", "<u8"), ("ts_recv", "<u8"), ("quantity", "<i8"),
                     ("stat_type", "<u2")])
_BATCH = 65_536


@dataclass(frozen=True, slots=True)
class ChainFacts:
    underlyings: frozenset[int] = frozenset()
    """Instrument ids that options in the run are written on."""
    books: frozenset[str] = frozenset()
    """``iid:day`` books the run's MBO files may feed (their symbology over their sessions)."""
    symbols: dict[int, str] = field(default_factory=dict)
    """Raw symbols of the instruments that are not options (a chain is named by its underlying's)."""
    open_interest: np.ndarray = field(default_factory=lambda: np.zeros(0, OI_DTYPE))
    sessions: frozenset[str] = frozenset()
    """``iid:day`` sessions of underlyings whose chain the run's option files may feed: their
    episodes' vectors wait for the chain's profiles (``flows.steps.session_episodes``)."""
    venues: dict[int, str] = field(default_factory=dict)
    """The venue of each instrument that is not an option: whose calendar its chain's sessions keep."""
    feeds: dict[str, frozenset[str]] = field(default_factory=dict)
    """Per chain key, the sources of its options when the run knows them all up front (a Bronze
    replay: one slice per option); a chain waits for every one of them. A chain not named here
    takes the sources it hears from (one options file)."""
    partitions: tuple[str, ...] = ()
    """A topic run's partitions (their source ids): its chains are not known up front, and every
    chain hears from all of them through the option relay (``flows.steps.option_relay``)."""
    vectors_wait: bool = True
    """A topic run's setup vectors wait for their session's chain (a bounded read, whose tables
    equal the files'); a tailed run's read the chain as computed by then (no delay to a score)."""

    @property
    def any(self) -> bool:
        return bool(self.underlyings or self.partitions)

    @property
    def relayed(self) -> bool:
        """The chains are learnt as the run reads (a topic run)."""
        return bool(self.partitions)


def chain_facts(lake: Lake, files: Iterable[tuple[Path, str, tuple[date, ...]]]) -> ChainFacts:
    """``files``: the run's (path, schema, session dates)."""
    sources: list[ChainSource] = []
    statistics = []
    for path, schema, sessions in files:
        if schema == "statistics":
            statistics.append(path)
            continue
        if schema not in ("mbo", "cmbp-1"):
            continue
        try:
            reader = DbnFileReader(path)
        except (BadHeader, OSError):
            continue
        try:
            metadata = reader.header.metadata
        finally:
            reader.close()
        named = symbology_of(metadata)  # what the file holds (its definitions may name more)
        sources.append(ChainSource("", instruments_for(path, schema, metadata), tuple(map(date_to_day, sessions)),
                                   frozenset(named)))
    return facts_of(sources, lambda: np.concatenate([stored_open_interest(lake),
                                                     *(_open_interest_in(p) for p in statistics)]))


@dataclass(frozen=True, slots=True)
class ChainSource:
    """What one source of a run says about chains: the instruments it knows, the sessions it
    covers (days since the epoch), the instrument ids it holds records of, and its id when the
    run names each chain's sources up front (``ChainFacts.feeds``; empty: it does not)."""

    source_id: str
    instruments: Mapping[int, InstrumentInfo]
    session_days: tuple[int, ...]
    holds: frozenset[int]


def facts_of(sources: Iterable[ChainSource], open_interest: Callable[[], np.ndarray],
             names: Iterable[Mapping[int, InstrumentInfo]] = ()) -> ChainFacts:
    """The run's chains from its sources (files, Bronze slices); ``open_interest`` is read only
    when there is a chain. ``names``: more instruments whose symbols and venues a chain may need
    (an underlying no source of the run holds)."""
    underlyings: set[int] = set()
    books: set[str] = set()
    chained: set[str] = set()
    feeds: dict[str, set[str]] = {}
    others: dict[int, InstrumentInfo] = {}
    for source in sources:
        written_on = {i.underlying_id for i in source.instruments.values()
                      if i.instrument_type == "OPT" and i.underlying_id}
        underlyings |= written_on
        for uid, day in ((u, d) for u in written_on for d in source.session_days):
            chained.add(f"{uid}:{day}")
            if source.source_id:
                feeds.setdefault(chain_key(uid, day), set()).add(source.source_id)
        mine = {iid: info for iid, info in source.instruments.items() if info.instrument_type != "OPT"}
        others |= mine
        books |= {f"{iid}:{day}" for iid in mine if iid in source.holds for day in source.session_days}
    if not underlyings:
        return ChainFacts()  # a run without options reads no open interest
    for more in names:
        others |= {iid: info for iid, info in more.items() if info.instrument_type != "OPT" and iid not in others}
    return ChainFacts(frozenset(underlyings), frozenset(books), {iid: i.raw_symbol for iid, i in others.items()},
                      open_interest(), frozenset(chained), {iid: i.venue for iid, i in others.items()},
                      {key: frozenset(ids) for key, ids in feeds.items()})


def _open_interest_in(path: Path) -> np.ndarray:
    try:
        reader = DbnFileReader(path)
    except (BadHeader, OSError):
        return np.zeros(0, OI_DTYPE)
    parts = []
    try:
        h = reader.header
        while len(rows := reader.read(_BATCH)):
            rows = upgrade_to_v3(rows, "statistics", h.version, h.ts_out)
            parts.append(open_interest_rows(rows))
    finally:
        reader.close()
    return np.concatenate(parts) if parts else np.zeros(0, OI_DTYPE)


def open_interest_rows(statistics: np.ndarray) -> np.ndarray:
    """The open-interest records among ``statistics`` (DBN v3) as ``OI_DTYPE`` rows."""
    rows = statistics[statistics["stat_type"] == OPEN_INTEREST]
    out = np.zeros(len(rows), OI_DTYPE)
    for name in OI_DTYPE.names or ():
        out[name] = rows[name]
    return out


def stored_open_interest(lake: Lake) -> np.ndarray:
    table = lake.read(BRONZE_STATISTICS, ["instrument_id", "ts_ref", "ts_recv", "quantity", "stat_type"],
                      f'"stat_type" = {OPEN_INTEREST}')
    if table is None or table.num_rows == 0:
        return np.zeros(0, OI_DTYPE)
    out = np.zeros(table.num_rows, OI_DTYPE)
    for name in OI_DTYPE.names or ():
        out[name] = table[name].to_numpy()
    return out
