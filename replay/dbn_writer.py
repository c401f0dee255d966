"""Turn the engine's record tables into DBN v3 bytes and write deterministic ``.dbn.zst`` files.

The MBO and MBP-10 bytes are numpy structured arrays laid out exactly as Databento's records
(``operators.records``), so a chunk of millions of records is packed with a few vectorised column
copies instead of one Python object per record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import BinaryIO, Protocol

import databento_dbn as dbn
import numpy as np
import zstandard

from operators.records import MBO_DTYPE, MBP10_DTYPE, RTYPE_MBO, RTYPE_MBP_10, UNDEF_PRICE
from replay.contracts import PUBLISHER_ID, TICK_NANO
from replay.engine import (
    C_ACTION,
    C_DELTA,
    C_FLAGS,
    C_INSTR,
    C_OID,
    C_PRICE,
    C_SEQ,
    C_SIDE,
    C_SIZE,
    C_TS_EVENT,
    C_TS_RECV,
)

ZSTD_LEVEL = 3
"""Fixed level, single-threaded, no checksum or content size: the same input gives the same bytes."""
DATASET = "GLBX.MDP3"


class Listed(Protocol):
    """An instrument a file's symbology maps: a future or an option."""

    @property
    def raw_symbol(self) -> str: ...

    @property
    def instrument_id(self) -> int: ...


def metadata(schema: dbn.Schema, contracts: Sequence[Listed], day: date, start_ns: int, end_ns: int,
             dataset: str = DATASET) -> bytes:
    """A DBN v3 metadata header mapping each raw symbol to its instrument id for ``day``."""
    mappings = [
        SimpleNamespace(
            raw_symbol=c.raw_symbol,
            intervals=[SimpleNamespace(start_date=day, end_date=day + timedelta(days=1), symbol=str(c.instrument_id))],
        )
        for c in contracts
    ]
    meta = dbn.Metadata(
        dataset=dataset, start=start_ns, end=end_ns, schema=schema,
        # databento_dbn's stub declares SType's members as `str` attributes, not members
        stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID,  # type: ignore[arg-type]
        symbols=[c.raw_symbol for c in contracts], partial=[], not_found=[], mappings=mappings,
        version=3,
    )
    return meta.encode()


def _prices(ticks: np.ndarray, tick: int = TICK_NANO) -> np.ndarray:
    return np.where(ticks < 0, UNDEF_PRICE, ticks * tick)


def pack_mbo(rec: np.ndarray, instrument_ids: np.ndarray, *, tick: int = TICK_NANO,
             publisher_id: int = PUBLISHER_ID) -> np.ndarray:
    """Engine records (rows of ``C_*`` columns, prices in ticks of ``tick``) as an ``MBO_DTYPE`` array."""
    out = np.zeros(len(rec), dtype=MBO_DTYPE)
    out["length"] = MBO_DTYPE.itemsize // 4
    out["rtype"] = RTYPE_MBO
    out["publisher_id"] = publisher_id
    out["instrument_id"] = instrument_ids[rec[:, C_INSTR]]
    out["ts_event"] = rec[:, C_TS_EVENT]
    out["order_id"] = rec[:, C_OID]
    out["price"] = _prices(rec[:, C_PRICE], tick)
    out["size"] = rec[:, C_SIZE]
    out["flags"] = rec[:, C_FLAGS]
    out["action"] = rec[:, C_ACTION].astype(np.uint8).view("S1")
    out["side"] = rec[:, C_SIDE].astype(np.uint8).view("S1")
    out["ts_recv"] = rec[:, C_TS_RECV]
    out["ts_in_delta"] = rec[:, C_DELTA]
    out["sequence"] = rec[:, C_SEQ]
    return out


def mbp10_headers(last: np.ndarray) -> np.ndarray:
    """MBP-10 rows (levels empty) whose header is that of each event's last MBO record."""
    out = np.zeros(len(last), dtype=MBP10_DTYPE)
    out["length"] = MBP10_DTYPE.itemsize // 4
    out["rtype"] = RTYPE_MBP_10
    for name in ("publisher_id", "instrument_id", "ts_event", "price", "size", "action", "side",
                 "flags", "ts_recv", "ts_in_delta", "sequence"):
        out[name] = last[name]
    return out


def pack_mbp10(mbo: np.ndarray, tru_idx: np.ndarray, tru_lv: np.ndarray, *, tick: int = TICK_NANO) -> np.ndarray:
    """The true book after each event as ``MBP10_DTYPE``: header from the event's last MBO record."""
    out = mbp10_headers(mbo[tru_idx])
    for k in range(10):
        out[f"bid_px_{k:02d}"] = _prices(tru_lv[:, 0, k], tick)
        out[f"ask_px_{k:02d}"] = _prices(tru_lv[:, 1, k], tick)
        out[f"bid_sz_{k:02d}"] = tru_lv[:, 2, k]
        out[f"ask_sz_{k:02d}"] = tru_lv[:, 3, k]
        out[f"bid_ct_{k:02d}"] = tru_lv[:, 4, k]
        out[f"ask_ct_{k:02d}"] = tru_lv[:, 5, k]
    return out


@dataclass
class ZstWriter:
    """A ``.dbn.zst`` file being written: header first, then record bytes, counted."""

    path: Path
    _raw: BinaryIO
    _z: zstandard.ZstdCompressionWriter
    records: int = 0

    @classmethod
    def open(cls, path: Path, header: bytes) -> ZstWriter:
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = path.open("wb")
        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=False, write_content_size=False, threads=0)
        z = cctx.stream_writer(raw, closefd=False)
        z.write(header)
        return cls(path, raw, z)

    def write(self, records: np.ndarray | bytes, count: int) -> None:
        self._z.write(records.tobytes() if isinstance(records, np.ndarray) else records)
        self.records += count

    def close(self) -> None:
        self._z.flush(zstandard.FLUSH_FRAME)
        self._z.close()
        self._raw.close()
