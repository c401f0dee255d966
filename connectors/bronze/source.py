"""Replay ``bronze.mbo`` (and ``bronze.cmbp_1``) as a Bytewax source: a (session, contract) of
MBO is a partition, and so is a (session, source) of OPRA's consolidated quotes.

This is how a day captured live is recomputed after the topic's retention has passed, or after a
change to an operator: the Bronze rows go back through the same graph, and each book sees exactly
the record sequence the first replay gave it (``connectors.bronze.records``).

Items are the ones the DBN file source emits: ``RecordChunk``s of MBO records in Databento's layout
(``length`` 14, ``rtype`` 0xA0, every field from its column, ``order_id`` from the int64 holding
its bits), positioned by their index in the partition's ordered sequence and carrying the
partition's instruments (``catalog.instruments_for``); then one ``SourceEnd`` naming the books
the partition fed (an option's: its chain), so they close exactly as a file's end closes them. The end's ``schema`` is
the table read (``bronze.mbo``), whose manifest row is told apart from a file's. A quote slice
emits ``cmbp-1`` chunks (``quotes.read_quotes``) and ends as ``bronze.cmbp_1``; it feeds chains only.

Definitions ride on every chunk as instruments and are not emitted as records, and statistics are
not read here (the plan reads the open interest its chains need: ``flows.bronze_plan``); a Bronze
replay writes no Bronze rows.

Delivery guarantee: **at-least-once**, and **exactly-once** with the position-idempotent Delta
sinks. A partition's state is one integer, the index of its next record (bytewax's rule: resume
*after* the last emitted item), or ``ENDED`` once its end went out: a resume reads the slice again,
puts it in the same order (a total order of original positions) and goes on at that index. A past
session's rows do not change; records appended since to one of its sources would come after.

Memory and work: ``reads.SliceReads`` reads the slices of one table partition in one scan, and a
worker's partitions take turns holding their records (the others wait with a ``next_awake``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import numpy as np
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from typing_extensions import override

from connectors.bronze.catalog import QUOTES, BronzeSlice, BronzeTable
from connectors.bronze.quotes import read_quotes
from connectors.bronze.reads import SliceReads
from operators.chunks import InstrumentInfo, RecordChunk, SourceEnd
from operators.errors import SourceError

Item = RecordChunk | SourceEnd

ENDED: Final = -1
"""The state of a partition whose end went out."""

_WAIT = timedelta(milliseconds=20)
"""How long a partition waiting for its worker's turn sleeps before it asks again."""


class _Counter:
    """Records emitted by every partition of a source in this process (for progress)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


class _SlicePartition(StatefulSourcePartition[Item, int]):
    """One slice, taken whole on its worker's turn and emitted in chunks of ``batch_records``."""

    def __init__(self, table: BronzeTable, part: BronzeSlice, instruments: dict[int, InstrumentInfo], *,
                 batch_records: int, resume_at: int | None, reads: SliceReads, counter: _Counter) -> None:
        self._table, self._part, self._instruments = table, part, instruments
        self._sid = part.source_id  # asked at every poll, of every waiting partition
        self._batch, self._reads, self._counter = batch_records, reads, counter
        self._next = resume_at or 0
        self._records: np.ndarray | None = None
        self._awake: datetime | None = None
        if self._next != ENDED:
            reads.want(part.source_id)

    @override
    def next_batch(self) -> list[Item]:
        part = self._part
        if self._next == ENDED:
            raise StopIteration
        if not self._reads.turn(self._sid):
            self._awake = datetime.now(UTC) + _WAIT
            return []
        self._awake = None
        if self._records is None:
            self._records = self._reads.take(part)
        records = self._records
        if self._next >= len(records):
            return [self._end(records)]
        n = min(self._batch, len(records) - self._next)
        chunk = RecordChunk(part.source_id, self._next, part.schema, part.dataset, records[self._next:self._next + n],
                            self._instruments)
        self._next += n
        self._counter.add(n)
        return [chunk]

    def _end(self, records: np.ndarray) -> SourceEnd:
        part = self._part
        if self._next > len(records):
            raise SourceError(f"{self._table.spec.name} holds {len(records):,} rows of {part.source_id}, fewer than "
                              f"the {self._next:,} this partition had emitted; it changed since the run began.")
        self._next, self._records = ENDED, None
        self._reads.done(part.source_id)
        ts = records["ts_recv"]
        return SourceEnd(
            source_id=part.source_id,
            path=self._table.path,
            schema=self._table.spec.name,
            records=len(records),
            faults=0,
            first_ts_recv=int(ts.min()) if len(ts) else -1,
            last_ts_recv=int(ts.max()) if len(ts) else -1,
            book_keys=part.fed_keys(self._instruments),
            session_days=(part.session_day,),
            sha256="",
            size_bytes=len(records) * records.dtype.itemsize,
        )

    @override
    def next_awake(self) -> datetime | None:
        return self._awake

    @override
    def snapshot(self) -> int:
        return self._next

    @override
    def close(self) -> None:
        self._records = None
        self._reads.done(self._part.source_id)


class _DonePartition(StatefulSourcePartition[Item, int]):
    """A slice this run does not replay (finished, or computed from its original source): listed
    so that a run resumed from Bytewax recovery sees the partitions it had, but read no more."""

    @override
    def next_batch(self) -> list[Item]:
        raise StopIteration

    @override
    def snapshot(self) -> int:
        return 0


class BronzeReplaySource(FixedPartitionedSource[Item, int]):
    """Replay slices of ``bronze.mbo``; one (session, contract) per partition, keyed
    ``bronze:<session>/<contract>``, independent of the worker count; and with ``quotes``, the
    (session, source) slices of ``bronze.cmbp_1`` among ``slices`` (``bronze:<session>/cmbp-1/<source>``).

    ``done`` names partitions listed but not read. Delivery: at-least-once; exactly-once with a
    sink idempotent on ``(source_id, position)``. The ``SourceEnd``'s ``size_bytes`` is the size of
    the records replayed and its ``sha256`` is empty (a slice of a table is not a file).
    """

    def __init__(self, table: BronzeTable, slices: Sequence[BronzeSlice],
                 instruments: Mapping[str, dict[int, InstrumentInfo]], *, done: Sequence[str] = (),
                 batch_records: int = 65_536, quotes: BronzeTable | None = None) -> None:
        if batch_records < 1:
            raise SourceError(f"batch_records must be at least 1, not {batch_records}.")
        if quotes is None and any(s.schema == QUOTES for s in slices):
            raise SourceError("quote slices need the bronze.cmbp_1 table they were listed from (quotes=).")
        self._batch = batch_records
        self._slices = {s.source_id: s for s in slices}
        self._instruments = dict(instruments)
        self._done = frozenset(done) - set(self._slices)
        self._tables = {"mbo": table} | ({QUOTES: quotes} if quotes is not None else {})
        self._reads = {"mbo": SliceReads(table, [s for s in slices if s.schema != QUOTES])}
        if quotes is not None:
            self._reads[QUOTES] = SliceReads(quotes, [s for s in slices if s.schema == QUOTES], read_quotes)
        self._counter = _Counter()

    @property
    def records_read(self) -> int:
        """Records emitted so far by the partitions of this process."""
        return self._counter.value

    @override
    def list_parts(self) -> list[str]:
        return sorted(set(self._slices) | self._done)

    @override
    def build_part(self, step_id: str, for_part: str,
                   resume_state: int | None) -> _SlicePartition | _DonePartition:
        part = self._slices.get(for_part)
        if part is None:
            return _DonePartition()
        return _SlicePartition(self._tables[part.schema], part, self._instruments[for_part], batch_records=self._batch,
                               resume_at=resume_state, reads=self._reads[part.schema], counter=self._counter)
