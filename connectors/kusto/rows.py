"""Lake rows → Eventhouse rows (``connectors.kusto.tables``), and rows → the MULTIJSON body of a request.

The flow and ``spymaster eventhouse sync`` both come through here, from the same Arrow tables
the Delta tables hold, so a row's values and its identity (``stream``, ``position``) are the
same whichever path shipped it.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.kafka.outputs import json_value
from connectors.kusto.tables import FEATURES, GEX, LEVELS, OUTCOMES, RADAR, SCORES, EventhouseTable
from operators.levels import LEVEL_TYPES
from operators.records import PRICE_SCALE

_NS = pa.timestamp("ns", tz="UTC")


def _time(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """int64 ns since the epoch (or a date, or a timestamp) → a UTC timestamp."""
    if pa.types.is_date(col.type):
        return pc.cast(pc.cast(col, pa.timestamp("ns")), _NS)
    if pa.types.is_timestamp(col.type):
        return pc.cast(pc.cast(col, pa.timestamp("ns", tz=col.type.tz)), _NS)
    return pc.cast(pc.cast(col, pa.int64()), _NS)


def _price(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """1e-9 fixed point → points."""
    return pc.divide(pc.cast(col, pa.float64()), float(PRICE_SCALE))


def _identity(stream: Any, position: Any) -> dict[str, Any]:
    """The row identity columns; ``position`` an int64-castable Arrow column or a numpy array."""
    if isinstance(position, np.ndarray):
        position = pa.array(position, pa.int64())
    return {"stream": stream, "position": pc.cast(position, pa.int64())}


def _contract_stream(t: pa.Table) -> list[str]:
    return [f"{c}|{d.isoformat()}" for c, d in zip(t["contract_id"].to_pylist(), t["session_date"].to_pylist(),
                                                   strict=True)]


def _contract(t: pa.Table) -> dict[str, Any]:
    return {"contract_id": t["contract_id"], "instrument_id": t["instrument_id"], "underlier": t["underlier"],
            "session_date": _time(t["session_date"])}


def _table(spec: EventhouseTable, columns: dict[str, Any]) -> pa.Table:
    out = pa.table({name: columns[name] for name in spec.column_names})
    assert out.column_names == list(spec.column_names)
    return out


def features_rows(series: pa.Table) -> pa.Table:
    """``Features`` from ``gold.feature_series`` rows."""
    same = {n: series[n] for n in FEATURES.column_names if n in series.column_names and n not in ("session_date", "ts")}
    return _table(FEATURES, {**same, **_contract(series), "ts": _time(series["ts"]),
                             **_identity(_contract_stream(series), series["ts"])})


def scores_rows(scores: pa.Table) -> pa.Table:
    """``Scores`` from ``gold.inference_scores`` rows."""
    times = ("vector_time", "batch_close_ts", "scored_at")
    same = {n: scores[n] for n in SCORES.column_names if n in scores.column_names and n not in (*times, "session_date")}
    streams = [f"{e}|{m}" for e, m in zip(scores["episode_id"].to_pylist(), scores["model_id"].to_pylist(),
                                          strict=True)]
    return _table(SCORES, {**same, **_contract(scores), **{n: _time(scores[n]) for n in times},
                           **_identity(streams, scores["vector_time"])})


def levels_rows(levels: pa.Table) -> pa.Table:
    """``Levels`` from ``silver.session_levels`` rows."""
    order = {t: i for i, t in enumerate(LEVEL_TYPES)}
    positions = np.array([order.get(t, len(order)) for t in levels["level_type"].to_pylist()], np.int64)
    return _table(LEVELS, {**_contract(levels), "level_type": levels["level_type"], "price": _price(levels["price"]),
                           "known_ts": _time(levels["known_ts"]), "status": levels["status"],
                           "detail": levels["detail"], "prior_session_date": _time(levels["prior_session_date"]),
                           **_identity(_contract_stream(levels), positions)})


def outcomes_rows(approach: pa.Table, labels: pa.Table) -> pa.Table:
    """``Outcomes``: the episodes of ``labels`` (``gold.labels``) with their approach
    (``silver.level_approach``); a label whose approach is not in ``approach`` is left out."""
    if labels.num_rows == 0:
        return _empty(OUTCOMES)
    keep = ("episode_id", "time_bucket", "distance_ticks", "approach_seconds", "velocity_tps")
    joined = labels.join(approach.select(list(keep)), "episode_id", join_type="inner")
    joined = joined.sort_by([("start_ts", "ascending"), ("episode_id", "ascending")])
    seconds = pc.divide(pc.cast(joined["time_to_resolution_ns"], pa.float64()), 1e9)
    return _table(OUTCOMES, {**{n: joined[n] for n in ("episode_id", "level_type", "direction", "time_bucket",
                                                      "distance_ticks", "approach_seconds", "velocity_tps",
                                                      "outcome", "mfe_ticks", "mae_ticks", "truncated")},
                             **_contract(joined), "level_price": _price(joined["level_price"]),
                             "start_ts": _time(joined["start_ts"]), "resolved_ts": _time(joined["resolved_ts"]),
                             "time_to_resolution_s": seconds,
                             **_identity(joined["episode_id"], joined["start_ts"])})


RADAR_TOP = {"best_bid_px": "best_bid_px", "best_ask_px": "best_ask_px", "mid_px": "mid_px",
             "bid_sz_00": "bid_sz", "ask_sz_00": "ask_sz"}
"""The ``silver.book_snapshot_1s`` columns the Radar takes (top of book), and their names in ``top``."""


def radar_rows(bands: pa.Table, top: pa.Table, spot_px: pa.Array | np.ndarray) -> pa.Table:
    """``Radar`` from ``silver.physics_bands_1s`` rows, the same seconds' top of book (columns
    ``best_bid_px``, ``best_ask_px``, ``mid_px``, ``bid_sz``, ``ask_sz``, row for row) and spot
    (the surfaces' ``spot_px``); prices in 1e-9 fixed point."""
    from operators.surfaces import NORM_NAMES, RAW_NAMES

    mid = pc.divide(pc.cast(top["mid_px"], pa.float64()), float(PRICE_SCALE))
    return _table(RADAR, {**_contract(bands), "ts": _time(bands["ts_recv"]), "spot": _price(pa.array(spot_px)),
                          "best_bid": _price(top["best_bid_px"]), "best_ask": _price(top["best_ask_px"]),
                          "bid_size": top["bid_sz"], "ask_size": top["ask_sz"], "mid": mid,
                          **{n: pc.cast(bands[n], pa.float64()) for n in (*RAW_NAMES, *NORM_NAMES)},
                          **_identity(_contract_stream(bands), bands["ts_recv"])})


def gex_rows(summary: pa.Table) -> pa.Table:
    """``Gex`` from ``silver.gex_summary_1s`` rows."""
    from operators.instruments import underlier_of

    if summary.num_rows == 0:
        return _empty(GEX)
    contracts = summary["underlier"].to_pylist()
    streams = [f"{c}|{d.isoformat()}" for c, d in zip(contracts, summary["session_date"].to_pylist(), strict=True)]
    same = ("underlying_id", "underlying_px", "model", "sign_convention", "net_gex", "call_gex", "put_gex",
            "zero_gamma", "call_wall", "put_wall", "options_priced")
    return _table(GEX, {**{n: summary[n] for n in same}, "contract_id": summary["underlier"],
                        "underlier": pa.array([underlier_of(c) for c in contracts], pa.string()),
                        "session_date": _time(summary["session_date"]), "ts": _time(summary["ts_recv"]),
                        **_identity(streams, summary["ts_recv"])})


def _empty(spec: EventhouseTable) -> pa.Table:
    types = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "real": pa.float64(), "bool": pa.bool_(),
             "datetime": _NS, "dynamic": pa.list_(pa.string())}
    return pa.schema([(c, types[t]) for c, t in spec.columns]).empty_table()


def multijson(rows: pa.Table) -> bytes:
    """One JSON object per line (Kusto's MULTIJSON): datetimes ISO-8601 with 'Z', NaN as null."""
    names = rows.column_names
    lines = []
    columns = [_json_column(rows[n]) for n in names]
    for values in zip(*columns, strict=True):
        lines.append(json.dumps(dict(zip(names, values, strict=True)), separators=(",", ":"), allow_nan=False))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _json_column(col: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_timestamp(col.type):
        ns = pc.cast(col, pa.int64()).to_pylist()
        return [None if v is None else _iso_ns(v) for v in ns]
    return [json_value(v) for v in col.to_pylist()]


def _iso_ns(ns: int) -> str:
    """Nanoseconds since the epoch as ISO-8601 UTC with 7 fractional digits (Kusto's 100 ns ticks)."""
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{np.datetime_as_string(np.datetime64(seconds, 's'), unit='s')}.{rest // 100:07d}Z"
