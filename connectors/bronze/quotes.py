"""Read slices of ``bronze.cmbp_1`` back as Databento ``cmbp-1`` records, in order.

OPRA's consolidated quotes have no per-order book to rebuild: each record carries the top of book
after it, and a chain takes its options' tops from them (``operators.options.chain.OptionTops``).
A slice is one session of one original source (a day's ``cmbp-1`` file, a topic partition); the
slices of a session are read in one scan, pruned on ``session_date``, and each one's records put
back in its source's order (``source_offset``), so it replays exactly as its source did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

from connectors.bronze.catalog import BronzeSlice, sql_text
from connectors.dbn.reader import record_dtype
from operators.records import RTYPE_CMBP_1

CMBP_DTYPE: Final = record_dtype("cmbp-1", 3)
"""The layout a replayed quote takes: DBN v3's, as the file source upgrades every file to."""

_FIELDS: Final = {"ts_event": "ts_event", "ts_recv": "ts_recv", "instrument_id": "instrument_id",
                  "publisher_id": "publisher_id", "price": "price", "size": "size", "flags": "flags",
                  "ts_in_delta": "ts_in_delta", "bid_px_00": "bid_px", "ask_px_00": "ask_px", "bid_sz_00": "bid_sz",
                  "ask_sz_00": "ask_sz", "bid_pb_00": "bid_pb", "ask_pb_00": "ask_pb"}
"""A record's field → its ``bronze.cmbp_1`` column; ``action`` and ``side`` are read as ASCII codes."""


def quote_query(members: Sequence[BronzeSlice]) -> str:
    """The scan of ``members`` (slices of one session)."""
    columns = [f'"{column}"' for column in _FIELDS.values()]
    columns += ['ascii("action") as "action"', 'ascii("side") as "side"', '"source"', '"source_offset"']
    sources = ", ".join(sql_text(s) for m in members for s in m.sources)
    day = sql_text(members[0].session_date.isoformat())
    return f'select {", ".join(columns)} from t where "session_date" = {day} and "source" in ({sources})'


def read_quotes(table: DeltaTable, members: Sequence[BronzeSlice]) -> dict[str, np.ndarray]:
    """Each slice's records (``CMBP_DTYPE``) in its source's order, by partition id. ``members``
    lie in one session."""
    rows = pa.table(QueryBuilder().register("t", table).execute(quote_query(members)).read_all())
    source = rows["source"].to_numpy(zero_copy_only=False).astype(str)
    order = np.lexsort((rows["source_offset"].to_numpy(), source))
    columns = {field: rows[column].to_numpy()[order] for field, column in _FIELDS.items()}
    columns |= {field: rows[field].to_numpy().astype(np.uint8)[order].view("S1") for field in ("action", "side")}
    source = source[order]
    out = {}
    for part in members:
        (name,) = part.sources
        mine = np.flatnonzero(source == name)
        records = np.zeros(len(mine), CMBP_DTYPE)
        records["length"], records["rtype"] = CMBP_DTYPE.itemsize // 4, RTYPE_CMBP_1
        for field, values in columns.items():
            records[field] = values[mine]
        out[part.source_id] = records
    return out
