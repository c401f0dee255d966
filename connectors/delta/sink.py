"""An exactly-once Delta append sink driven by per-stream positions.

Every item names a *stream* (a source partition, or a contract-session book) and gives each of
its rows a position that only grows within that stream (a record offset, or an event time).
The sink commits ``Transaction(app_id=stream, version=highest position)`` in the same Delta
commit as the rows. On a rerun or a resume after a crash, rows at or below the committed
position are dropped before writing, so a row is never duplicated; because upstream replays
everything after the last recovery snapshot, none is lost either.

Bytewax sinks have no flush hook, so each partition buffers and commits when it holds
``flush_rows`` rows, when an item asks for it (a completion mark), at every epoch snapshot and at
close: the table is never behind the recovery store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing_extensions import override

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition
from deltalake import CommitProperties, Transaction, write_deltalake

from connectors.delta.lake import Lake
from connectors.delta.tables import TableSpec

_COMMIT_RETRIES = 8


@dataclass(frozen=True, slots=True)
class TableWrite:
    """Rows for one table from one stream, with each row's position in that stream.

    ``marks`` are completion marks (app ids) committed with version 1 alongside the rows, e.g.
    "this source file is fully written"; an item with marks is committed at once.
    """

    stream_id: str
    rows: pa.Table
    positions: np.ndarray
    marks: tuple[str, ...] = ()

    @staticmethod
    def mark(stream_id: str, spec: TableSpec, marks: tuple[str, ...]) -> TableWrite:
        return TableWrite(stream_id, spec.schema.empty_table(), np.zeros(0, np.int64), marks)


@dataclass(slots=True)
class SinkStats:
    rows: int = 0
    commits: int = 0
    dropped_duplicates: int = 0
    seconds: float = 0.0
    by_table: dict[str, int] = field(default_factory=dict)


class _DeltaAppendPartition(StatefulSinkPartition[TableWrite, None]):
    def __init__(self, lake: Lake, spec: TableSpec, flush_rows: int, stats: SinkStats) -> None:
        self._lake, self._spec, self._flush_rows, self._stats = lake, spec, flush_rows, stats
        self._committed: dict[str, int] | None = None
        self._pending: list[TableWrite] = []
        self._pending_rows = 0

    @override
    def write_batch(self, values: list[TableWrite]) -> None:
        urgent = False
        for item in values:
            self._pending.append(item)
            self._pending_rows += item.rows.num_rows
            urgent = urgent or bool(item.marks)
        if urgent or self._pending_rows >= self._flush_rows:
            self._flush()

    @override
    def snapshot(self) -> None:
        self._flush()
        return None

    @override
    def close(self) -> None:
        self._flush()

    def _committed_position(self, stream_id: str) -> int:
        if self._committed is None:
            self._committed = {}
        if stream_id not in self._committed:
            table = self._lake.open(self._spec)
            version = None if table is None else table.transaction_version(stream_id)
            self._committed[stream_id] = -1 if version is None else version
        return self._committed[stream_id]

    def _flush(self) -> None:
        if not self._pending:
            return
        started = time.perf_counter()
        fresh: list[pa.Table] = []
        high: dict[str, int] = {}
        marks: list[str] = []
        for item in self._pending:
            committed = max(self._committed_position(item.stream_id), high.get(item.stream_id, -1))
            keep = item.positions > committed
            if not keep.all():
                self._stats.dropped_duplicates += int((~keep).sum())
            if keep.any():
                rows = item.rows if keep.all() else item.rows.filter(pa.array(keep))
                fresh.append(rows)
                high[item.stream_id] = int(item.positions[keep].max())
            marks.extend(item.marks)
        self._pending, self._pending_rows = [], 0
        if not fresh and not marks:
            return
        data = pa.concat_tables(fresh) if fresh else self._spec.schema.empty_table()
        data = _stamp_ingest(data)
        txns = [Transaction(app_id=s, version=v) for s, v in sorted(high.items())]
        txns += [Transaction(app_id=m, version=1) for m in sorted(set(marks))]
        self._commit(data, txns)
        assert self._committed is not None
        self._committed.update(high)
        self._stats.rows += data.num_rows
        self._stats.commits += 1
        self._stats.seconds += time.perf_counter() - started

    def _commit(self, data: pa.Table, txns: list[Transaction]) -> None:
        for attempt in range(_COMMIT_RETRIES):
            try:
                write_deltalake(
                    self._lake.uri(self._spec),
                    data,
                    mode="append",
                    partition_by=list(self._spec.partition_by) or None,
                    storage_options=self._lake.storage_options or None,
                    commit_properties=CommitProperties(app_transactions=txns),
                )
                return
            except Exception as err:  # concurrent commit from another process: retry
                if "conflict" not in str(err).lower() or attempt == _COMMIT_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))


def _stamp_ingest(data: pa.Table) -> pa.Table:
    if "ts_ingest" not in data.column_names:
        return data
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    index = data.column_names.index("ts_ingest")
    return data.set_column(index, "ts_ingest", pa.array(np.full(data.num_rows, now.value), pa.int64()).cast(now.type))


class DeltaAppendSink(FixedPartitionedSink[TableWrite, None]):
    """Append ``(stream_id, TableWrite)`` items to one Delta table, exactly once.

    Items are routed by ``stream_id`` so each stream has exactly one writing partition, which
    keeps its app-transaction version monotonic. Guarantee: exactly-once for every row that has
    a strictly increasing position within its stream; at-least-once otherwise.
    """

    def __init__(self, lake: Lake, spec: TableSpec, *, partitions: int = 4, flush_rows: int = 1_000_000) -> None:
        self._lake, self._spec = lake, spec
        self._partitions, self._flush_rows = partitions, flush_rows
        self.stats = SinkStats()

    @override
    def list_parts(self) -> list[str]:
        return [f"{self._spec.name}#{i}" for i in range(self._partitions)]

    @override
    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _DeltaAppendPartition:
        return _DeltaAppendPartition(self._lake, self._spec, self._flush_rows, self.stats)
