"""Read (session, contract) slices of ``bronze.mbo`` back as Databento MBO records, in order.

The slices of one table partition (session, underlier, instrument type) are read together, in one
scan: the partition's Parquet files mix every contract of the session, so a scan per contract
decodes all of them again, once per contract. The query reads
only the columns a record needs, prunes on the partition columns and filters on the slices'
instrument ids.

Rows come back in no useful order (commits are split into lanes, files are scanned in parallel),
so each row also brings its original position, and each slice's records are put back in the
order the original source gave them: source by source, the one whose first record is earliest
first (a day split over two files replays morning, then afternoon), by ``source_offset`` within
each. That is the record sequence the first replay's books saw, so they rebuild exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

from connectors.bronze.catalog import BronzeSlice, sql_text
from operators.errors import SourceError
from operators.mbo_columns import MBO_FIELDS, MBO_WORDS, pack_columns, records_in_order

_SELECTED = {name: f'"{name}"' for name in MBO_FIELDS} | {"action": 'ascii("action")', "side": 'ascii("side")'}
"""Columns as read: ``action`` and ``side`` (one-character strings) as their ASCII codes."""

_SESSION = {"datafusion.execution.batch_size": "65536"}
"""Batches of 64k rows instead of DataFusion's 8k: an eighth of the per-batch conversions and calls."""


def group_query(members: Sequence[BronzeSlice], sources: Sequence[str]) -> str:
    """The scan of ``members`` (slices of one table partition); ``source_rank`` indexes ``sources``
    when there are several."""
    columns = [f'{expr} as "{name}"' for name, expr in _SELECTED.items()] + ['"source_offset"']
    if len(sources) > 1:
        ranks = " ".join(f"when {sql_text(s)} then {k}" for k, s in enumerate(sources))
        columns.append(f'case "source" {ranks} end as "source_rank"')
    ids = ", ".join(str(i) for m in members for i in m.instrument_ids)
    return f"select {', '.join(columns)} from t where {_in_partition(members[0])} and \"instrument_id\" in ({ids})"


def _in_partition(part: BronzeSlice) -> str:
    return (f"\"session_date\" = {sql_text(part.session_date.isoformat())} and \"underlier\" = "
            f"{sql_text(part.underlier)} and \"instrument_type\" = {sql_text(part.instrument_type)}")


def read_group(table: DeltaTable, members: Sequence[BronzeSlice]) -> dict[str, np.ndarray]:
    """Each slice's records (``MBO_DTYPE``) in their original order, by partition id: views of
    one buffer, the slices one after another. ``members`` lie in one table partition."""
    sources = sorted({s for m in members for s in m.sources})
    scan = _scan(table, members, sources)
    records = records_in_order(scan.words, _group_order(scan, len(members)))
    bounds = np.concatenate([[0], np.cumsum(np.bincount(scan.members, minlength=len(members)))])
    return {m.source_id: records[bounds[k]:bounds[k + 1]] for k, m in enumerate(members)}


@dataclass(frozen=True, slots=True)
class _Scan:
    words: np.ndarray
    """The records as read, packed (``MBO_WORDS`` uint64 each)."""
    members: np.ndarray
    """Each row's slice (index into the members), int16."""
    offsets: np.ndarray
    ranks: np.ndarray | None
    """Each row's source (index into the sorted sources), when there are several."""


def _scan(table: DeltaTable, members: Sequence[BronzeSlice], sources: Sequence[str]) -> _Scan:
    """Every row of ``members``, packed in place into buffers sized by the partition's row count
    (pages beyond the rows read are never touched): fresh memory is most of the cost here."""
    capacity = _rows_in_partition(table, members[0])
    ids = np.array([i for m in members for i in m.instrument_ids], np.int64)
    owner = np.array([k for k, m in enumerate(members) for _ in m.instrument_ids], np.int16)
    by_id = np.argsort(ids)
    ids, owner = ids[by_id], owner[by_id]
    words = np.empty((capacity, MBO_WORDS), np.uint64)
    member, offsets = np.empty(capacity, np.int16), np.empty(capacity, np.int64)
    ranks = np.empty(capacity, np.int64) if len(sources) > 1 else None
    query = group_query(members, sources)
    at = 0
    for batch in pa.RecordBatchReader.from_stream(QueryBuilder(_SESSION).register("t", table).execute(query)):
        n = batch.num_rows
        if at + n > capacity:
            raise SourceError(f"bronze.mbo changed while {members[0].source_id} and its table partition were read; "
                              "plan the replay again.")
        columns = {name: batch.column(name).to_numpy() for name in MBO_FIELDS}
        pack_columns(words, at, columns)
        member[at:at + n] = owner[np.searchsorted(ids, columns["instrument_id"])]
        offsets[at:at + n] = batch.column("source_offset").to_numpy()
        if ranks is not None:
            ranks[at:at + n] = batch.column("source_rank").to_numpy()
        at += n
    return _Scan(words[:at], member[:at], offsets[:at], None if ranks is None else ranks[:at])


def _rows_in_partition(table: DeltaTable, part: BronzeSlice) -> int:
    """Rows of the slice's table partition, every contract's: from the Parquet footers, no data read."""
    sql = f"select count(*) as n from t where {_in_partition(part)}"
    return int(pa.table(QueryBuilder().register("t", table).execute(sql).read_all())["n"][0].as_py())


def _group_order(scan: _Scan, members: int) -> np.ndarray:
    """Rows by slice, and within a slice in the order the original sources gave them."""
    if scan.ranks is None:
        if len(scan.offsets) and int(scan.offsets.max()) < 1 << 47 and int(scan.offsets.min()) >= 0:
            key = (scan.members.astype(np.int64) << 47) | scan.offsets  # one stable sort on runs of rows
            return np.argsort(key, kind="stable")
        return np.lexsort((scan.offsets, scan.members))
    return np.lexsort((scan.offsets, _source_order(scan, members)))


def _source_order(scan: _Scan, members: int) -> np.ndarray:
    """Each row's (slice, source) pair, numbered by slice, then by the first ``ts_recv`` of the
    source in the slice, then by name: a day split over two files replays morning, then afternoon."""
    assert scan.ranks is not None
    sources = int(scan.ranks.max()) + 1
    pair = scan.members.astype(np.int64) * sources + scan.ranks
    first = np.full(members * sources, np.iinfo(np.int64).max)
    np.minimum.at(first, pair, scan.words[:, 5].view(np.int64))  # ts_recv: a record's sixth 64-bit word
    every = np.arange(members * sources)
    number = np.empty(len(every), np.int64)
    number[np.lexsort((every % sources, first, every // sources))] = every
    return number[pair]
