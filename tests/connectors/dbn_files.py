"""Build small DBN files for tests: real DBN v3 metadata from ``databento_dbn`` + raw records.

The records are numpy arrays in Databento's own layout, so a file written here is decoded by
``databento.DBNStore`` exactly as one downloaded from Databento.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import databento_dbn as dbn
import numpy as np
import zstandard

from operators.records import ACTION_ADD, F_LAST, MBO_DTYPE, RTYPE_MBO, SIDE_BID

START_NS = 1_700_000_000_000_000_000
"""2023-11-14T22:13:20Z: ts_recv of the first generated record."""


def mbo_records(n: int, *, instrument_id: int = 42, start_ns: int = START_NS, step_ns: int = 1_000) -> np.ndarray:
    """``n`` MBO add records with distinct order ids; ``ts_recv`` advances by ``step_ns``."""
    rec = np.zeros(n, dtype=MBO_DTYPE)
    rec["length"] = MBO_DTYPE.itemsize // 4
    rec["rtype"] = RTYPE_MBO
    rec["publisher_id"] = 1
    rec["instrument_id"] = instrument_id
    ts = start_ns + np.arange(n, dtype=np.uint64) * np.uint64(step_ns)
    rec["ts_event"] = ts
    rec["ts_recv"] = ts
    rec["order_id"] = np.arange(1, n + 1, dtype=np.uint64)
    rec["price"] = 4_500_000_000_000 + (np.arange(n, dtype=np.int64) % 100) * 250_000_000
    rec["size"] = 1
    rec["flags"] = F_LAST
    rec["action"] = bytes([ACTION_ADD])
    rec["side"] = bytes([SIDE_BID])
    rec["sequence"] = np.arange(n, dtype=np.uint32)
    return rec


def metadata_bytes(
    *,
    schema: dbn.Schema = dbn.Schema.MBO,  # type: ignore[assignment]  # databento_dbn's stub types enum members as `str`
    dataset: str = "GLBX.MDP3",
    start_ns: int = START_NS,
    end_ns: int | None = None,
    symbols: dict[str, int] | None = None,
) -> bytes:
    """Encoded DBN v3 metadata (``DBN`` magic, version, length, body) with raw_symbol mappings."""
    symbols = symbols or {}
    mappings = [
        _SymbolMapping(sym, [_Interval(_date(start_ns), _date(start_ns, days=1), str(iid))])
        for sym, iid in symbols.items()
    ]
    meta = dbn.Metadata(
        dataset=dataset,
        start=start_ns,
        end=end_ns if end_ns is not None else start_ns + 86_400_000_000_000,
        stype_in=dbn.SType.RAW_SYMBOL,  # type: ignore[arg-type]  # (as above)
        stype_out=dbn.SType.INSTRUMENT_ID,  # type: ignore[arg-type]
        schema=schema,
        symbols=list(symbols),
        mappings=mappings,  # type: ignore[arg-type]  # the stub wants its own class; any such shape is read
    )
    return bytes(meta)


def write_dbn(
    path: Path,
    records: np.ndarray | bytes,
    *,
    schema: dbn.Schema = dbn.Schema.MBO,  # type: ignore[assignment]  # databento_dbn's stub types enum members as `str`
    symbols: dict[str, int] | None = None,
    start_ns: int = START_NS,
    end_ns: int | None = None,
    tail: bytes = b"",
    dataset: str = "GLBX.MDP3",
) -> Path:
    """Write metadata + records (+ ``tail`` bytes) to ``path``; zstd when the name ends ``.zst``."""
    body = records.tobytes() if isinstance(records, np.ndarray) else records
    head = metadata_bytes(schema=schema, symbols=symbols, start_ns=start_ns, end_ns=end_ns, dataset=dataset)
    data = head + body + tail
    if path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor(level=3).compress(data)
    path.write_bytes(data)
    return path


@dataclass(frozen=True, slots=True)
class _Interval:
    """``databento_dbn.MappingInterval`` is a Protocol: any object with these attributes."""

    start_date: dt.date
    end_date: dt.date
    symbol: str


@dataclass(frozen=True, slots=True)
class _SymbolMapping:
    raw_symbol: str
    intervals: list[_Interval]


def _date(ns: int, days: int = 0) -> dt.date:
    return (dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC) + dt.timedelta(days=days)).date()


def definition_records(rows: list[dict[str, object]]) -> np.ndarray:
    """InstrumentDefMsg records in the current (v3) layout; unset numeric fields are Databento's
    "undefined" sentinels where the tests read them."""
    from connectors.dbn.reader import record_dtype
    from operators.records import RTYPE_DEFINITION, UNDEF_PRICE

    dtype = record_dtype("definition", dbn.DBN_VERSION)
    rec = np.zeros(len(rows), dtype=dtype)
    rec["length"] = dtype.itemsize // 4
    rec["rtype"] = RTYPE_DEFINITION
    rec["publisher_id"] = 1
    for field in ("min_price_increment", "unit_of_measure_qty", "strike_price"):
        rec[field] = UNDEF_PRICE
    rec["contract_multiplier"] = np.iinfo(np.int32).max
    rec["expiration"] = np.iinfo(np.uint64).max
    for i, row in enumerate(rows):
        for key, value in row.items():
            rec[key][i] = value
    return rec
