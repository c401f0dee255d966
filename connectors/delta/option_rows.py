"""Arrow rows of the option-chain tables: option tops, the GEX surface and its summary."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from connectors.delta.tables import SILVER_GEX_SUMMARY_1S, SILVER_GEX_SURFACE_1S, SILVER_OPTIONS_TOP_1S
from operators.chunks import InstrumentInfo
from operators.options.chain import option_mid
from operators.options.surface import Columns, GexSummary, Repeated
from operators.records import UNDEF_PRICE


def _chain(underlier: str, underlying_id: int, day: date, ts: np.ndarray) -> dict[str, object]:
    n = len(ts)
    return {"underlier": [underlier] * n, "underlying_id": np.full(n, underlying_id, np.int64),
            "session_date": [day] * n, "ts_recv": np.asarray(ts, np.int64)}


def _price(px: np.ndarray) -> pa.Array:
    return pa.array(px, pa.int64(), mask=px == UNDEF_PRICE)


def options_top_rows(tops: np.ndarray, instruments: dict[int, InstrumentInfo], underlier: str, underlying_id: int,
                     day: date) -> pa.Table:
    infos = [instruments[int(i)] for i in tops["instrument_id"]]
    columns = {
        **_chain(underlier, underlying_id, day, tops["ts_recv"]),
        "contract_id": [i.raw_symbol for i in infos],
        "instrument_id": tops["instrument_id"].astype(np.int64),
        "option_right": [i.option_right for i in infos],
        "strike_price": np.array([i.strike_price for i in infos], np.int64),
        "expiration": np.array([i.expiration_ns for i in infos], np.int64),
        "bid_px": _price(tops["bid_px"]), "bid_sz": tops["bid_sz"].astype(np.int64),
        "ask_px": _price(tops["ask_px"]), "ask_sz": tops["ask_sz"].astype(np.int64),
        "mid": option_mid(tops["bid_px"], tops["ask_px"]),
        "last_trade_px": _price(tops["last_trade_px"]), "volume": tops["volume"],
    }
    return pa.Table.from_pydict(columns, schema=SILVER_OPTIONS_TOP_1S.schema)


def gex_surface_rows(surfaces: list[Columns], underlying_id: int, day: date) -> tuple[pa.Table, np.ndarray]:
    """The surfaces' rows, and each row's position (its second)."""
    names = [f.name for f in SILVER_GEX_SURFACE_1S.schema if f.name not in ("underlying_id", "session_date", "ts_recv")]
    if not surfaces:
        return SILVER_GEX_SURFACE_1S.schema.empty_table(), np.zeros(0, np.int64)
    ts = np.concatenate([np.asarray(s["ts_second"], np.int64) for s in surfaces])
    columns: dict[str, object] = _chain("", underlying_id, day, ts)
    for name in names:
        parts = [s[name] for s in surfaces]
        columns[name] = (_strings(parts) if isinstance(parts[0], Repeated)  # type: ignore[arg-type]
                         else np.concatenate([np.asarray(p) for p in parts]))
    return pa.Table.from_pydict(columns, schema=SILVER_GEX_SURFACE_1S.schema), ts


def _strings(parts: list[Repeated]) -> pa.Array:
    """A text column: one value repeated (an underlier, a model, a convention) without a Python
    string per row; runs of different values (a convention changed between column sets) in turn."""
    if len({p.value for p in parts}) == 1:
        return pa.repeat(pa.scalar(parts[0].value, pa.string()), sum(p.n for p in parts))
    return pa.concat_arrays([pa.repeat(pa.scalar(p.value, pa.string()), p.n) for p in parts])


def gex_summary_rows(summaries: list[GexSummary], underlying_id: int, day: date) -> tuple[pa.Table, np.ndarray]:
    ts = np.array([s.ts_second for s in summaries], np.int64)
    columns: dict[str, object] = _chain("", underlying_id, day, ts)
    for name in (f.name for f in SILVER_GEX_SUMMARY_1S.schema if f.name not in columns):
        columns[name] = [getattr(s, name) for s in summaries]
    columns["underlier"] = [s.underlier for s in summaries]
    zero = np.array([s.zero_gamma for s in summaries], np.float64)
    columns["zero_gamma"] = pa.array(zero, pa.float64(), mask=np.isnan(zero))
    return pa.Table.from_pydict(columns, schema=SILVER_GEX_SUMMARY_1S.schema), ts
