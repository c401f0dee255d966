"""Arrow rows of the option-chain tables: option tops, the GEX surface and its summary."""

from __future__ import annotations

from datetime import date
from operator import attrgetter

import numpy as np
import pyarrow as pa

from connectors.delta.tables import SILVER_GEX_SUMMARY_1S, SILVER_GEX_SURFACE_1S, SILVER_OPTIONS_TOP_1S
from operators.chunks import InstrumentInfo
from operators.options.chain import option_mid
from operators.options.surface import Columns, GexSummary, Repeated
from operators.records import UNDEF_PRICE


def _chain(underlier: str, underlying_id: int, day: date, ts: np.ndarray) -> dict[str, object]:
    """The columns every chain table starts with; the repeated ones as Arrow repeats (a Python
    object per row of a surface's millions was most of building its table)."""
    n = len(ts)
    return {"underlier": pa.repeat(pa.scalar(underlier, pa.string()), n),
            "underlying_id": np.full(n, underlying_id, np.int64),
            "session_date": pa.repeat(pa.scalar(day, pa.date32()), n), "ts_recv": np.asarray(ts, np.int64)}


def _price(px: np.ndarray) -> pa.Array:
    return pa.array(px, pa.int64(), mask=px == UNDEF_PRICE)


def options_top_rows(tops: np.ndarray, instruments: dict[int, InstrumentInfo], underlier: str, underlying_id: int,
                     day: date) -> pa.Table:
    """Each option's own columns are looked up once per option and taken per row (a day has a few
    hundred options and hundreds of thousands of rows)."""
    listed, row_of = np.unique(tops["instrument_id"], return_inverse=True)
    infos = [instruments[int(i)] for i in listed]
    at = pa.array(row_of.ravel().astype(np.int64))
    columns = {
        **_chain(underlier, underlying_id, day, tops["ts_recv"]),
        "contract_id": pa.array([i.raw_symbol for i in infos], pa.string()).take(at),
        "instrument_id": tops["instrument_id"].astype(np.int64),
        "option_right": pa.array([i.option_right for i in infos], pa.string()).take(at),
        "strike_price": np.array([i.strike_price for i in infos], np.int64)[row_of.ravel()],
        "expiration": np.array([i.expiration_ns for i in infos], np.int64)[row_of.ravel()],
        "bid_px": _price(tops["bid_px"]), "bid_sz": tops["bid_sz"].astype(np.int64),
        "ask_px": _price(tops["ask_px"]), "ask_sz": tops["ask_sz"].astype(np.int64),
        "mid": option_mid(tops["bid_px"], tops["ask_px"]),
        "last_trade_px": _price(tops["last_trade_px"]), "volume": tops["volume"],
    }
    return pa.Table.from_pydict(columns, schema=SILVER_OPTIONS_TOP_1S.schema)


def gex_surface_rows(surfaces: list[Columns], underlying_id: int, day: date) -> tuple[pa.Table, np.ndarray]:
    """The surfaces' rows, and each row's position (its second). Each column set becomes its own
    chunk: the surfaces are not copied into one array per column first."""
    if not surfaces:
        return SILVER_GEX_SURFACE_1S.schema.empty_table(), np.zeros(0, np.int64)
    table = pa.concat_tables([_surface_table(s, underlying_id, day) for s in surfaces])
    return table, np.concatenate([np.asarray(s["ts_second"], np.int64) for s in surfaces])


_SURFACE_OWN = [f for f in SILVER_GEX_SURFACE_1S.schema if f.name not in ("underlying_id", "session_date", "ts_recv")]


def _surface_table(surface: Columns, underlying_id: int, day: date) -> pa.Table:
    columns = _chain("", underlying_id, day, np.asarray(surface["ts_second"], np.int64))
    for field in _SURFACE_OWN:
        values = surface[field.name]
        columns[field.name] = (pa.repeat(pa.scalar(values.value, field.type), values.n) if isinstance(values, Repeated)
                               else values)
    return pa.Table.from_pydict(columns, schema=SILVER_GEX_SURFACE_1S.schema)


def gex_summary_rows(summaries: list[GexSummary], underlying_id: int, day: date) -> tuple[pa.Table, np.ndarray]:
    """One row per summary; its fields read in one call per summary, not one per field."""
    names = [f.name for f in SILVER_GEX_SUMMARY_1S.schema if f.name not in ("underlying_id", "session_date", "ts_recv")]
    values = list(zip(*map(attrgetter("ts_second", *names), summaries), strict=True)) if summaries else []
    ts = np.array(values[0] if values else [], np.int64)
    columns: dict[str, object] = _chain("", underlying_id, day, ts)
    for n, name in enumerate(names, start=1):
        columns[name] = list(values[n]) if values else []
    zero = np.array(columns["zero_gamma"], np.float64)
    columns["zero_gamma"] = pa.array(zero, pa.float64(), mask=np.isnan(zero))
    return pa.Table.from_pydict(columns, schema=SILVER_GEX_SUMMARY_1S.schema), ts
