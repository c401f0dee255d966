"""Finite partitions that say when they are done: a ``SourceEnd`` after the last item.

Downstream uses the end to close the books a file fed and to write the file's manifest row, so
completion is an item in the stream, ordered after every record of the file, rather than
Bytewax's global EOF (which would make results depend on what else a worker is reading).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from connectors.dbn.source import DbnReplaySource
from connectors.files import file_sha256
from operators.calendar import calendar_of
from operators.chunks import RecordChunk, SourceEnd, SourceFault
from operators.grouping import among, group_codes
from operators.instruments import option_ids, underlying_ids
from operators.normalize import valid_mask
from operators.options.chain import chain_key

Item = RecordChunk | SourceFault | SourceEnd


@dataclass(frozen=True, slots=True)
class _Tally:
    """What a partition has read so far; part of its resume state."""

    records: int = 0
    faults: int = 0
    first_ts_recv: int = -1
    last_ts_recv: int = -1
    book_keys: frozenset[str] = frozenset()
    session_days: frozenset[int] = frozenset()
    ended: bool = False


def _tally_chunk(tally: _Tally, chunk: RecordChunk) -> _Tally:
    """Count a chunk; for MBO, only the records validation keeps name times, books and sessions
    (a damaged timestamp must not invent a session, nor a book for the end to close)."""
    r = chunk.records
    if len(r) == 0:
        return tally
    counted = replace(tally, records=tally.records + len(r))
    if chunk.schema == "mbo":
        valid = valid_mask(chunk)
        if not valid.all():  # most chunks are whole: no copy of them
            r = r[valid]
        if len(r) == 0:
            return counted
    ts = r["ts_recv"]
    first = int(ts[0]) if tally.first_ts_recv < 0 else tally.first_ts_recv
    if chunk.schema == "cmbp-1":  # consolidated option quotes: they end their chains' sessions
        return replace(counted, first_ts_recv=first, last_ts_recv=int(ts[-1]), book_keys=tally.book_keys | {
            chain_key(u, d) for u, d in _chains(r, calendar_of(chunk.dataset).trade_date_days(ts), chunk) if u})
    if chunk.schema != "mbo":
        return replace(counted, first_ts_recv=first, last_ts_recv=int(ts[-1]))
    calendar = calendar_of(chunk.dataset)
    ends = calendar.trade_date_days(np.array([ts.min(), ts.max()]))  # the trade date only grows with time
    days = np.full(len(r), ends[0], np.int32) if ends[0] == ends[1] else calendar.trade_date_days(ts)
    options = among(r["instrument_id"], option_ids(chunk.instruments))  # their chain's, not a book (flows.route)
    some, every = bool(options.any()), bool(options.all())
    keys: set[str] = set()
    if not every:
        books = ~options if some else slice(None)  # a slice: no copy of a futures chunk
        pairs, _ = group_codes((r["instrument_id"][books].astype(np.int64) << 32) | days[books].astype(np.int64))
        keys |= {f"{int(p >> 32)}:{int(p & 0xFFFFFFFF)}" for p in pairs}
    if some:
        chains = slice(None) if every else options
        keys |= {chain_key(u, d) for u, d in _chains(r[chains], days[chains], chunk) if u}
    return replace(
        counted,
        first_ts_recv=first,
        last_ts_recv=int(ts[-1]),
        book_keys=tally.book_keys | keys,
        session_days=tally.session_days | {int(d) for d in (ends[:1] if ends[0] == ends[1] else np.unique(days))},
    )


def _chains(records: np.ndarray, days: np.ndarray, chunk: RecordChunk) -> list[tuple[int, int]]:
    """The (underlying, session) pairs option records feed (underlying 0: an option without one)."""
    under = underlying_ids(records["instrument_id"], chunk.instruments)
    pairs, _ = group_codes((under << 32) | days.astype(np.int64))
    return [(int(p >> 32), int(p & 0xFFFFFFFF)) for p in pairs]


class _EndedPartition(StatefulSourcePartition[Item, tuple[int | None, _Tally]]):
    def __init__(self, inner: StatefulSourcePartition, source_id: str, path: Path, schema: str,
                 inner_state: int | None, tally: _Tally) -> None:
        self._inner, self._id, self._path, self._schema = inner, source_id, path, schema
        self._tally = tally

    @override
    def next_batch(self) -> list[Item]:
        if self._tally.ended:
            raise StopIteration
        try:
            items = list(self._inner.next_batch())  # iterated here, then handed on
        except StopIteration:
            self._tally = replace(self._tally, ended=True)
            return [self._end()]
        for item in items:
            if isinstance(item, RecordChunk):
                self._tally = _tally_chunk(self._tally, item)
            elif isinstance(item, SourceFault):
                self._tally = replace(self._tally, faults=self._tally.faults + 1)
        return items

    def _end(self) -> SourceEnd:
        t = self._tally
        return SourceEnd(
            source_id=self._id,
            path=str(self._path),
            schema=self._schema,
            records=t.records,
            faults=t.faults,
            first_ts_recv=t.first_ts_recv,
            last_ts_recv=t.last_ts_recv,
            book_keys=tuple(sorted(t.book_keys)),
            session_days=tuple(sorted(t.session_days)),
            sha256=file_sha256(self._path),
            size_bytes=self._path.stat().st_size,
        )

    @override
    def next_awake(self) -> datetime | None:
        return self._inner.next_awake()

    @override
    def snapshot(self) -> tuple[int | None, _Tally]:
        return self._inner.snapshot(), self._tally

    @override
    def close(self) -> None:
        self._inner.close()


class _FinishedPartition(StatefulSourcePartition[Item, tuple[int | None, _Tally]]):
    """A file an earlier run finished: listed (so recovery state keeps its keys) but read no more."""

    @override
    def next_batch(self) -> list[Item]:
        raise StopIteration

    @override
    def snapshot(self) -> tuple[int | None, _Tally]:
        return None, _Tally(ended=True)


class EndedDbnSource(FixedPartitionedSource[Item, tuple[int | None, _Tally]]):
    """``DbnReplaySource`` whose partitions end with a ``SourceEnd`` (same delivery guarantee).

    ``finished`` partitions (files skipped because an earlier run ingested them whole) stay in
    the partition list, so a run resumed from Bytewax recovery sees the same partitions it had.
    """

    def __init__(self, inner: DbnReplaySource, schemas: dict[str, str], finished: tuple[str, ...] = ()) -> None:
        self._inner, self._schemas, self._finished = inner, schemas, frozenset(finished)

    @override
    def list_parts(self) -> list[str]:
        return sorted(set(self._inner.list_parts()) | self._finished)

    @override
    def build_part(self, step_id: str, for_part: str,
                   resume_state: tuple[int | None, _Tally] | None) -> _EndedPartition | _FinishedPartition:
        if for_part in self._finished and for_part not in self._schemas:
            return _FinishedPartition()
        inner_state, tally = resume_state if resume_state is not None else (None, _Tally())
        inner = self._inner.build_part(step_id, for_part, inner_state)
        return _EndedPartition(
            inner, for_part, self._inner.path_of(for_part), self._schemas[for_part], inner_state, tally
        )
