"""Turn decoded records into the Arrow rows of the Bronze tables (SPEC §3).

Per-row work is done by Arrow's C++ kernels or numpy over whole chunks; strings that repeat
(contract, underlier, source) are built once per chunk and expanded with ``take``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
from databento.common.publishers import Publisher

from connectors.delta.arrays import signed
from connectors.delta.tables import (
    BRONZE_CMBP_1,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    BRONZE_MBO,
    BRONZE_MBO_DLQ,
    BRONZE_STATISTICS,
    SILVER_BOOK_1S,
    SILVER_BOOK_ANOMALIES,
)
from operators.calendar import calendar_of
from operators.chunks import InstrumentInfo, RecordChunk, SourceEnd
from operators.grouping import group_codes
from operators.instruments import instrument_from_definition
from operators.normalize import DeadLetter, ValidChunk, dedupe_keys
from operators.sessions import day_to_date


@lru_cache(maxsize=256)
def venue_of(publisher_id: int) -> str:
    try:
        return str(Publisher.from_int(publisher_id).venue)
    except (ValueError, KeyError):
        return "UNKNOWN"


def _repeat(values: list[str], index: np.ndarray) -> pa.Array:
    """Plain strings, one per row, from a few distinct values (partition columns must be plain)."""
    if len(values) == 1:
        return pa.repeat(pa.scalar(values[0], pa.string()), len(index))
    return pa.array(values, pa.string()).take(pa.array(index, pa.int32()))


def _categorical(values: list[str], index: np.ndarray) -> pa.Array:
    """Dictionary-encoded strings: the Parquet writer stores them as such without hashing rows."""
    return pa.DictionaryArray.from_arrays(pa.array(index, pa.int32()), pa.array(values, pa.string()))


_ASCII = pa.array([chr(i) for i in range(256)], pa.string())


def _ascii(column: np.ndarray) -> pa.Array:
    """An ``S1`` numpy column as dictionary-encoded one-character strings, without a Python loop."""
    return pa.DictionaryArray.from_arrays(pa.array(column.view(np.uint8).astype(np.int16)), _ASCII)


def _write_schema(schema: pa.Schema, categorical: dict[str, pa.DataType]) -> pa.Schema:
    """The schema rows are built with: ``categorical`` string columns are dictionary-encoded.

    Delta stores them as plain strings; only the in-memory batches differ.
    """
    for name, index_type in categorical.items():
        i = schema.get_field_index(name)
        schema = schema.set(i, pa.field(name, pa.dictionary(index_type, pa.string())))
    return schema


_MBO_WRITE_SCHEMA = _write_schema(
    BRONZE_MBO.schema,
    {"dataset": pa.int32(), "venue": pa.int32(), "contract_id": pa.int32(), "action": pa.int16(),
     "side": pa.int16(), "source": pa.int32()},
)


def _placeholder_ingest(n: int) -> pa.Array:
    # Stamped with the wall clock by the sink at commit time.
    return pa.nulls(n, pa.timestamp("us", tz="UTC"))


def mbo_rows(valid: ValidChunk, session_days: np.ndarray) -> pa.Table:
    """The ``bronze.mbo`` rows of a validated MBO chunk."""
    r = valid.records
    n = len(r)
    ids, inverse = group_codes(r["instrument_id"])
    infos: list[InstrumentInfo] = [valid.chunk.instruments[int(i)] for i in ids]
    pubs, pub_inverse = group_codes(r["publisher_id"])
    columns = {
        "ts_event": pa.array(r["ts_event"].view(np.int64)),
        "ts_recv": pa.array(r["ts_recv"].view(np.int64)),
        "ts_ingest": _placeholder_ingest(n),
        "dataset": _categorical([valid.chunk.dataset], np.zeros(n, np.int32)),
        "venue": _categorical([venue_of(int(p)) for p in pubs], pub_inverse),
        "publisher_id": pa.array(r["publisher_id"].astype(np.int32)),
        "instrument_id": pa.array(r["instrument_id"].astype(np.int64)),
        "contract_id": _categorical([i.raw_symbol for i in infos], inverse),
        "underlier": _repeat([i.underlier for i in infos], inverse),
        "instrument_type": _repeat([i.instrument_type for i in infos], inverse),
        "action": _ascii(r["action"]),
        "side": _ascii(r["side"]),
        "price": pa.array(r["price"]),
        "size": pa.array(r["size"].astype(np.int64)),
        "order_id": pa.array(r["order_id"].view(np.int64)),
        "flags": pa.array(r["flags"].astype(np.int32)),
        "sequence": pa.array(r["sequence"].astype(np.int64)),
        "channel_id": pa.array(r["channel_id"].astype(np.int32)),
        "ts_in_delta": pa.array(r["ts_in_delta"]),
        "session_date": pa.array(session_days, pa.int32()).cast(pa.date32()),
        "source": _categorical([valid.chunk.source_id], np.zeros(n, np.int32)),
        "source_offset": pa.array(valid.offsets),
        "dedupe_key": pa.array(dedupe_keys(r)),
    }
    return pa.Table.from_pydict(columns, schema=_MBO_WRITE_SCHEMA)


def dead_letter_rows(letters: list[DeadLetter]) -> pa.Table:
    """The ``bronze.mbo_dlq`` rows of dead letters from one source."""
    return pa.Table.from_pydict(
        {
            "source": [d.source_id for d in letters],
            "source_offset": [d.record_offset for d in letters],
            "reason": [d.reason for d in letters],
            "detail": [d.detail for d in letters],
            "raw": [d.raw for d in letters],
            "instrument_id": [d.instrument_id for d in letters],
            "ts_recv": [d.ts_recv for d in letters],
            "ts_ingest": _placeholder_ingest(len(letters)),
        },
        schema=BRONZE_MBO_DLQ.schema,
    )


def definition_rows(chunk: RecordChunk) -> pa.Table:
    """The ``bronze.instrument_definitions`` rows of a definition chunk."""
    r = chunk.records
    infos = [instrument_from_definition(row) for row in r]
    return pa.Table.from_pydict(
        {
            "instrument_id": [i.instrument_id for i in infos],
            "raw_symbol": [i.raw_symbol for i in infos],
            "underlier": [i.underlier for i in infos],
            "instrument_class": [bytes(c).decode(errors="replace") for c in r["instrument_class"]],
            "instrument_type": [i.instrument_type for i in infos],
            "strike_price": [i.strike_price for i in infos],
            "expiration": [i.expiration_ns for i in infos],
            "tick_size": [i.tick for i in infos],
            "multiplier": [i.multiplier for i in infos],
            "ts_recv": r["ts_recv"].view(np.int64),
            "dataset": [chunk.dataset] * len(r),
            "source": [chunk.source_id] * len(r),
            "source_offset": chunk.record_positions(),
            "ts_ingest": _placeholder_ingest(len(r)),
            "underlying_id": [i.underlying_id for i in infos],
        },
        schema=BRONZE_DEFINITIONS.schema,
    )


def statistics_rows(chunk: RecordChunk) -> pa.Table:
    """The ``bronze.statistics`` rows of a statistics chunk."""
    r = chunk.records
    return pa.Table.from_pydict(
        {
            "ts_event": r["ts_event"].view(np.int64),
            "ts_recv": r["ts_recv"].view(np.int64),
            "ts_ref": r["ts_ref"].view(np.int64),
            "instrument_id": r["instrument_id"].astype(np.int64),
            "stat_type": r["stat_type"].astype(np.int32),
            "price": r["price"],
            "quantity": r["quantity"].astype(np.int64),
            "sequence": r["sequence"].astype(np.int64),
            "update_action": r["update_action"].astype(np.int32),
            "stat_flags": r["stat_flags"].astype(np.int32),
            "channel_id": r["channel_id"].astype(np.int32),
            **_provenance(chunk),
        },
        schema=BRONZE_STATISTICS.schema,
    )


def cmbp_rows(chunk: RecordChunk) -> pa.Table:
    """The ``bronze.cmbp_1`` rows of a consolidated top-of-book chunk."""
    r = chunk.records
    return pa.Table.from_pydict(
        {
            "ts_event": r["ts_event"].view(np.int64),
            "ts_recv": r["ts_recv"].view(np.int64),
            "instrument_id": r["instrument_id"].astype(np.int64),
            "publisher_id": r["publisher_id"].astype(np.int32),
            "action": _chars(r["action"]),
            "side": _chars(r["side"]),
            "price": r["price"],
            "size": r["size"].astype(np.int64),
            "flags": r["flags"].astype(np.int32),
            "ts_in_delta": r["ts_in_delta"].astype(np.int32),
            "bid_px": r["bid_px_00"],
            "ask_px": r["ask_px_00"],
            "bid_sz": r["bid_sz_00"].astype(np.int64),
            "ask_sz": r["ask_sz_00"].astype(np.int64),
            "bid_pb": r["bid_pb_00"].astype(np.int32),
            "ask_pb": r["ask_pb_00"].astype(np.int32),
            **_provenance(chunk),
        },
        schema=BRONZE_CMBP_1.schema,
    )


def _provenance(chunk: RecordChunk) -> dict[str, object]:
    """Where a reference or quote row came from and its trade date on the feed's calendar."""
    r, n = chunk.records, len(chunk.records)
    days = calendar_of(chunk.dataset).trade_date_days(r["ts_recv"])
    return {
        "dataset": [chunk.dataset] * n,
        "session_date": pa.array(days, pa.int32()).cast(pa.date32()),
        "source": [chunk.source_id] * n,
        "source_offset": chunk.record_positions(),
        "ts_ingest": _placeholder_ingest(n),
    }


def _chars(column: np.ndarray) -> list[str]:
    return [bytes(c).decode("ascii", "replace") for c in column]


def book_second_rows(rows: np.ndarray, info: InstrumentInfo, session_day: int) -> pa.Table:
    """The ``silver.book_snapshot_1s`` rows of one book (``SECOND_DTYPE`` rows, flattened)."""
    n = len(rows)
    columns: dict[str, object] = {
        "contract_id": _repeat([info.raw_symbol], np.zeros(n, np.int32)),
        "instrument_id": pa.array(rows["instrument_id"].astype(np.int64)),
        "underlier": _repeat([info.underlier], np.zeros(n, np.int32)),
        "session_date": pa.array(np.full(n, session_day, np.int32)).cast(pa.date32()),
        "ts_recv": pa.array(rows["ts_recv"].view(np.int64)),
        "book_valid": pa.array(rows["book_valid"]),
    }
    for side in ("bid", "ask"):
        for kind in ("px", "sz", "ct"):
            block = rows[f"{side}_{kind}"].astype(np.int64)
            for level in range(block.shape[1]):
                columns[f"{side}_{kind}_{level:02d}"] = pa.array(block[:, level])
    for name in ("best_bid_px", "best_ask_px", "mid_px", "microprice", "last_trade_px"):
        columns[name] = pa.array(rows[name])
    columns["spread_ticks"] = pa.array(rows["spread_ticks"])
    for name in ("last_trade_sz", "volume", "buy_volume", "sell_volume", "trade_count", "add_count",
                 "cancel_count", "modify_count", "event_count", "trade_open_px", "trade_high_px", "trade_low_px",
                 "trade_close_px", "add_bid_size", "add_ask_size", "cancel_bid_size", "cancel_ask_size",
                 "near_pulled_bid_size", "near_pulled_ask_size"):
        columns[name] = pa.array(signed(rows[name]).astype(np.int64))
    for name in ("notional", "mid_open", "mid_high", "mid_low", "ofi"):
        columns[name] = pa.array(rows[name])
    return pa.Table.from_pydict(columns, schema=SILVER_BOOK_1S.schema)


def anomaly_rows(anomalies: dict[str, int], info: InstrumentInfo, session_day: int) -> pa.Table:
    """The ``silver.book_anomalies`` rows of one closed book: one per anomaly that occurred."""
    found = sorted((name, count) for name, count in anomalies.items() if count)
    day = pa.array([session_day] * len(found), pa.int32()).cast(pa.date32())
    return pa.Table.from_pydict(
        {
            "contract_id": [info.raw_symbol] * len(found),
            "instrument_id": [info.instrument_id] * len(found),
            "underlier": [info.underlier] * len(found),
            "session_date": day,
            "anomaly": [name for name, _ in found],
            "count": [count for _, count in found],
        },
        schema=SILVER_BOOK_ANOMALIES.schema,
    )


def manifest_row(end: SourceEnd, generation: int, run_id: str) -> pa.Table:
    """The ``bronze.raw_manifest`` row of a file read to its end."""
    row = {
        "source": end.source_id,
        "path": end.path,
        "sha256": end.sha256,
        "size_bytes": end.size_bytes,
        "schema": end.schema,
        "records": end.records,
        "faults": end.faults,
        "first_ts_recv": end.first_ts_recv,
        "last_ts_recv": end.last_ts_recv,
        "session_dates": [day_to_date(d) for d in end.session_days],
        "book_keys": list(end.book_keys),
        "generation": generation,
        "status": "complete",
        "run_id": run_id,
        "ts_ingest": None,
    }
    return pa.Table.from_pylist([row], schema=BRONZE_MANIFEST.schema)
