"""An append to a Delta table on local disk: Parquet files written by pyarrow, one Delta commit.

delta-rs splits every write by its partition values before it encodes a byte: a sort of the
partition columns and a ``take`` of every column, a copy of the whole write, even when (as for
nearly every write of a flow) the write holds one partition. On the options bench day that split
was a third of the CPU of writing ``silver.gex_surface_1s``, and pyarrow's Parquet encoder took
about two thirds of delta-rs's time for the same columns and encodings. So a sink whose lake is a
local directory writes the files itself and commits them as add actions
(``DeltaTable.create_write_transaction``) in one commit with its app transactions, as
``write_deltalake`` does: the log references a file only once the commit lands, so a crash
before it leaves an unreferenced file (``VACUUM`` removes it), never a half-written table.

The writes are grouped by partition without touching their rows: each write of a flow is one
partition (one session of one instrument class), so a group is a concatenation of whole writes.
A write that spans partitions, a partition value a path cannot hold as it is, rows of another
schema, or statistics columns other than integers and dates, and the sink uses
``write_deltalake`` instead.
The files carry the same encodings as the delta-rs writer's (``sink.writer_properties``), and the
add actions the statistics delta-rs keeps for the table's statistics columns.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction

from connectors.delta.tables import TableSpec

_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9_.\-]+$")
"""Partition values written into a path as they are (others need escaping: delta-rs does it)."""


def local_root(root: str, storage_options: dict[str, str]) -> Path | None:
    """The lake's directory when it is local (a plain path or ``file://``), else None."""
    if storage_options:
        return None
    if root.startswith("file://"):
        return Path(root[len("file://"):])
    return None if "://" in root else Path(root)


def stats_ready(spec: TableSpec) -> bool:
    """Whether this writer can give the table's statistics columns (integers and dates) exactly."""
    if spec.statistics is None:
        return False
    types = {f.name: f.type for f in spec.schema}
    return all(pa.types.is_integer(types[c]) or pa.types.is_date32(types[c]) for c in spec.statistics)


def partition_of(rows: pa.Table, spec: TableSpec) -> tuple[str, ...] | None:
    """The write's partition values as the log writes them, or None when it spans several (or a
    value would need escaping in a path)."""
    values: list[str] = []
    for name in spec.partition_by:
        column = rows.column(name)
        if column.null_count:
            return None
        distinct = pc.unique(column)
        if len(distinct) != 1:
            return None
        if pa.types.is_dictionary(distinct.type):
            distinct = distinct.dictionary_decode()
        value = distinct[0].as_py()
        text = value.isoformat() if isinstance(value, date) else str(value)
        if not _PLAIN_VALUE.match(text):
            return None
        values.append(text)
    return tuple(values)


def append(table: DeltaTable, directory: Path, spec: TableSpec, writes: list[pa.Table],
           txns: list[Transaction]) -> bool:
    """Write ``writes`` as one commit of ``table`` (at ``directory``); False, with nothing
    written, when a write spans partitions (the caller then uses ``write_deltalake``)."""
    if not stats_ready(spec):
        return False
    groups: dict[tuple[str, ...], list[pa.Table]] = {}
    columns = set(spec.schema.names)
    for rows in writes:
        if rows.num_rows == 0:
            continue
        if set(rows.column_names) != columns:  # rows of another schema version: delta-rs checks them
            return False
        key = partition_of(rows, spec)
        if key is None:
            return False
        groups.setdefault(key, []).append(rows)
    actions: list[AddAction | RemoveAction] = [_write_file(directory, spec, key, pa.concat_tables(parts))
                                               for key, parts in sorted(groups.items())]
    try:
        table.create_write_transaction(actions, "append", table.schema(),
                                       partition_by=list(spec.partition_by) or None,
                                       commit_properties=CommitProperties(app_transactions=txns))
    except CommitFailedError:  # lost to a concurrent commit, so not in the log: the retry writes its own files

        for action in actions:
            (directory / action.path).unlink(missing_ok=True)
        raise
    table.update_incremental()  # a commit made this way leaves the open table at its old version
    return True


def _write_file(directory: Path, spec: TableSpec, key: tuple[str, ...], rows: pa.Table) -> AddAction:
    folder = "/".join(f"{name}={value}" for name, value in zip(spec.partition_by, key, strict=True))
    relative = f"{folder}/" if folder else ""
    relative += f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    data = rows.drop_columns(list(spec.partition_by)).select(
        [f.name for f in spec.schema if f.name not in spec.partition_by])
    plain = set(spec.delta_encoded) | set(spec.high_cardinality)
    target = directory / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        data, target, compression={c: "none" if c in spec.uncompressed else "snappy" for c in data.column_names},
        store_schema=False,
        use_dictionary=[c for c in data.column_names if c not in plain],
        column_encoding={c: "DELTA_BINARY_PACKED" for c in spec.delta_encoded if c in data.column_names},
        write_statistics=[c for c in (spec.statistics or ()) if c in data.column_names],
    )
    return AddAction(relative, target.stat().st_size, dict(zip(spec.partition_by, key, strict=True)),
                     int(time.time() * 1000), True, json.dumps(_stats(data, spec), separators=(",", ":")))


def _stats(data: pa.Table, spec: TableSpec) -> dict[str, object]:
    """``numRecords`` and, for the statistics columns, min, max and nulls (as delta-rs keeps them)."""
    low: dict[str, object] = {}
    high: dict[str, object] = {}
    nulls: dict[str, int] = {}
    for name in spec.statistics or ():
        if name not in data.column_names:
            continue
        column = data.column(name)
        nulls[name] = column.null_count
        if column.null_count == len(column):
            continue
        bounds = pc.min_max(column)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        low[name] = lo.isoformat() if isinstance(lo, date) else lo
        high[name] = hi.isoformat() if isinstance(hi, date) else hi
    return {"numRecords": data.num_rows, "minValues": low, "maxValues": high, "nullCount": nulls}
