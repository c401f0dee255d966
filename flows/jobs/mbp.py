"""Top-of-book tables (Databento MBP-10 style) from MBO records, one book per instrument."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from operators.book import L3Book
from operators.chunks import InstrumentInfo
from operators.records import F_LAST


def top_levels(records: np.ndarray, ticks: dict[int, int], depth: int) -> tuple[np.ndarray, dict[int, dict[str, int]]]:
    """Top ``depth`` levels after every F_LAST record, in record order, and anomalies per instrument."""
    flast = np.flatnonzero(records["flags"] & F_LAST)
    parts, where, anomalies = [], [], {}
    for iid in np.unique(records["instrument_id"]):
        mine = np.flatnonzero(records["instrument_id"] == iid)
        book = L3Book(ticks.get(int(iid), 0), depth=depth)
        parts.append(book.apply_events(records[mine]))
        where.append(mine[(records["flags"][mine] & F_LAST) != 0])
        anomalies[int(iid)] = book.anomalies
    if not parts:
        return np.zeros(0), anomalies
    rows = np.concatenate(parts)
    order = np.argsort(np.concatenate(where), kind="stable")
    assert len(rows) == len(flast)
    return rows[order], anomalies


def top_levels_table(records: np.ndarray, instruments: dict[int, InstrumentInfo], depth: int) -> tuple[pa.Table, dict]:
    rows, anomalies = top_levels(records, {i: info.tick for i, info in instruments.items()}, depth)
    columns: dict[str, pa.Array] = {
        "ts_recv": pa.array(rows["ts_recv"].view(np.int64)) if len(rows) else pa.array([], pa.int64()),
        "instrument_id": pa.array(rows["instrument_id"].astype(np.int64)) if len(rows) else pa.array([], pa.int64()),
    }
    for side in ("bid", "ask"):
        for kind in ("px", "sz", "ct"):
            block = rows[f"{side}_{kind}"].astype(np.int64) if len(rows) else np.zeros((0, depth), np.int64)
            for level in range(depth):
                columns[f"{side}_{kind}_{level:02d}"] = pa.array(block[:, level])
    return pa.table(columns), anomalies
