"""Arrow rows of the level-analytics tables (session summary and levels, episodes, labels)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from connectors.delta.arrays import struct_columns
from connectors.delta.tables import (
    GOLD_FEATURE_SERIES,
    GOLD_LABELS,
    GOLD_PHYSICS_CALIBRATION,
    GOLD_SETUP_VECTORS,
    GOLD_TRAINING_VIEW,
    SILVER_BAR_5S,
    SILVER_LEVEL_APPROACH,
    SILVER_PHYSICS_BANDS_1S,
    SILVER_SESSION_LEVELS,
    SILVER_SESSION_SUMMARY,
    SILVER_VACUUM_SURFACE_1S,
    SILVER_WALL_SURFACE_1S,
)
from operators.chunks import InstrumentInfo
from operators.labels import OUTCOMES, LabelParams
from operators.levels import LEVEL_TYPES, Level, SessionSummary
from operators.records import structured_fields
from operators.surfaces import RAW_NAMES, BandCalibration


def _contract(info: InstrumentInfo, day: date, n: int) -> dict[str, list]:
    return {"contract_id": [info.raw_symbol] * n, "instrument_id": [info.instrument_id] * n,
            "underlier": [info.underlier] * n, "session_date": [day] * n}


def summary_rows(summary: SessionSummary, info: InstrumentInfo) -> pa.Table:
    row = {**_contract(info, summary.session_date, 1)}
    for name in ("rth_high", "rth_low", "pm_high", "pm_low", "or_high", "or_low", "complete"):
        row[name] = [getattr(summary, name)]
    return pa.Table.from_pydict(row, schema=SILVER_SESSION_SUMMARY.schema)


def summary_from_row(row: dict) -> SessionSummary:
    return SessionSummary(
        contract_id=row["contract_id"], session_date=row["session_date"], rth_high=row["rth_high"],
        rth_low=row["rth_low"], pm_high=row["pm_high"], pm_low=row["pm_low"], or_high=row["or_high"],
        or_low=row["or_low"], complete=row["complete"],
    )


def level_rows(levels: tuple[Level, ...], missing: tuple[str, ...], prior_date: date | None,
               info: InstrumentInfo, day: date) -> pa.Table:
    """One row per level type, in the fixed order: known levels with their price, the rest missing."""
    found = {lv.level_type: lv for lv in levels}
    reasons = {m.split(":", 1)[0]: m.split(":", 1)[1].strip() for m in missing}
    types = list(LEVEL_TYPES)
    return pa.Table.from_pydict(
        {
            **_contract(info, day, len(types)),
            "level_type": types,
            "price": [found[t].price if t in found else None for t in types],
            "known_ts": [found[t].known_ts if t in found else None for t in types],
            "status": ["ok" if t in found else "missing" for t in types],
            "detail": ["" if t in found else reasons.get(t, "not available") for t in types],
            "prior_session_date": [prior_date] * len(types),
        },
        schema=SILVER_SESSION_LEVELS.schema,
    )


def _direction(d: np.ndarray) -> list[str]:
    return ["UP" if int(x) > 0 else "DOWN" for x in d]


def episode_rows(episodes: np.ndarray, ids: tuple[str, ...], level_types: tuple[str, ...], buckets: np.ndarray,
                 known: list[int], info: InstrumentInfo, day: date) -> pa.Table:
    if len(ids) == 0:
        return SILVER_LEVEL_APPROACH.schema.empty_table()
    return pa.Table.from_pydict(
        {
            "episode_id": list(ids),
            **_contract(info, day, len(ids)),
            "level_type": list(level_types),
            "level_price": episodes["level_price"],
            "level_known_ts": known,
            "direction": _direction(episodes["direction"]),
            "start_ts": episodes["start_ts"],
            "time_bucket": buckets.astype(np.int32),
            "distance_ticks": episodes["distance_ticks"],
            "approach_seconds": episodes["approach_seconds"].astype(np.int32),
            "velocity_tps": episodes["velocity_tps"],
            "max_distance_ticks": episodes["max_distance_ticks"],
            "start_mid": episodes["start_mid"],
        },
        schema=SILVER_LEVEL_APPROACH.schema,
    )


def label_rows(labels: np.ndarray, ids: tuple[str, ...], level_types: tuple[str, ...], params: LabelParams,
               info: InstrumentInfo, day: date) -> pa.Table:
    """Row ``i`` labels episode ``ids[i]`` (of type ``level_types[i]``)."""
    idx = np.arange(len(labels))
    n = len(labels)
    if n == 0:
        return GOLD_LABELS.schema.empty_table()
    return pa.Table.from_pydict(
        {
            "episode_id": [ids[i] for i in idx],
            **_contract(info, day, n),
            "level_type": [level_types[i] for i in idx],
            "direction": _direction(labels["direction"]),
            "start_ts": labels["start_ts"],
            "level_price": labels["level_price"],
            "outcome": [OUTCOMES[int(o)] for o in labels["outcome"]],
            "resolved_ts": labels["resolved_ts"],
            "time_to_resolution_ns": labels["time_to_resolution_ns"],
            "mfe_ticks": labels["mfe_ticks"],
            "mae_ticks": labels["mae_ticks"],
            "truncated": labels["truncated"],
            "break_ticks": [params.break_ticks] * n,
            "reject_ticks": [params.reject_ticks] * n,
            "horizon_seconds": [params.horizon_seconds] * n,
        },
        schema=GOLD_LABELS.schema,
    )


def _contract_columns(info: InstrumentInfo, day: date, n: int) -> dict[str, pa.Array]:
    return {
        "contract_id": pa.repeat(pa.scalar(info.raw_symbol), n),
        "instrument_id": pa.repeat(pa.scalar(info.instrument_id, pa.int64()), n),
        "underlier": pa.repeat(pa.scalar(info.underlier), n),
        "session_date": pa.repeat(pa.scalar(day, pa.date32()), n),
    }


def _lists(matrix: np.ndarray) -> pa.Array:
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1))
    offsets = pa.array(np.arange(0, matrix.size + 1, max(matrix.shape[1], 1), dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat)


def wall_rows(wall: np.ndarray, info: InstrumentInfo, day: date) -> pa.Table:
    return pa.Table.from_pydict(
        {**_contract_columns(info, day, len(wall)), "ts_recv": wall["ts"], "spot_px": wall["spot_px"],
         "depth": _lists(wall["depth"]), "change": _lists(wall["change"])},
        schema=SILVER_WALL_SURFACE_1S.schema,
    )


def vacuum_rows(vacuum: np.ndarray, info: InstrumentInfo, day: date) -> pa.Table:
    return pa.Table.from_pydict(
        {**_contract_columns(info, day, len(vacuum)), "ts_recv": vacuum["ts"], "spot_px": vacuum["spot_px"],
         "depletion": _lists(vacuum["depletion"])},
        schema=SILVER_VACUUM_SURFACE_1S.schema,
    )


def band_rows(bands: np.ndarray, info: InstrumentInfo, day: date) -> pa.Table:
    columns = {**_contract_columns(info, day, len(bands)), "ts_recv": bands["ts"]}
    columns |= {name: bands[name] for name in SILVER_PHYSICS_BANDS_1S.schema.names
                if name in structured_fields(bands.dtype) and name != "ts"}
    return pa.Table.from_pydict(columns, schema=SILVER_PHYSICS_BANDS_1S.schema)


def calibration_row(contract_id: str, calibration: BandCalibration, rows: int) -> pa.Table:
    return pa.Table.from_pylist(
        [{"contract_id": contract_id, "session_date": calibration.session_date,
          "registry_version": calibration.registry_version, "band": list(RAW_NAMES),
          "lo": [float(x) for x in calibration.lo], "hi": [float(x) for x in calibration.hi], "rows": rows}],
        schema=GOLD_PHYSICS_CALIBRATION.schema,
    )


def calibration_from_row(row: dict) -> BandCalibration:
    return BandCalibration(row["session_date"], np.array(row["lo"]), np.array(row["hi"]), row["registry_version"])


def bar_rows(bars: np.ndarray, context: np.ndarray, info: InstrumentInfo, day: date) -> pa.Table:
    """``silver.bar_5s`` rows: the bar fields, every registry feature, and the context columns."""
    n = len(bars)
    columns: dict[str, object] = {**_contract_columns(info, day, n)}
    columns |= struct_columns(bars, skip=("instrument_id",))
    for j, name in enumerate(("session_vwap", "ma_60s", "ma_300s", "ma_900s")):
        columns[name] = pa.array(context[:, j] if n else np.zeros(0))
    return pa.Table.from_pydict(columns, schema=SILVER_BAR_5S.schema)


def feature_series_rows(bars_table: pa.Table) -> pa.Table:
    """``gold.feature_series``: the dashboard projection of ``silver.bar_5s`` rows."""
    return bars_table.select(GOLD_FEATURE_SERIES.schema.names).cast(
        GOLD_FEATURE_SERIES.schema)


def vector_rows(found_ids: tuple[str, ...], episodes: np.ndarray, level_types: tuple[str, ...], buckets: np.ndarray,
                vectors: np.ndarray, hashes: list[str], model_id: str, data_version: str, info: InstrumentInfo,
                day: date, registry_version: str, lookback_spec: str) -> pa.Table:
    n = len(found_ids)
    if n == 0:
        return GOLD_SETUP_VECTORS.schema.empty_table()
    return pa.Table.from_pydict(
        {
            "episode_id": list(found_ids),
            "vector_time": episodes["start_ts"],
            "model_id": [model_id] * n,
            **_contract(info, day, n),
            "level_type": list(level_types),
            "direction": _direction(episodes["direction"]),
            "time_bucket": buckets.astype(np.int32),
            "lookback_spec": [lookback_spec] * n,
            "feature_vector": _lists(vectors) if n else pa.array([], pa.list_(pa.float32())),
            "feature_hash": hashes,
            "registry_version": [registry_version] * n,
            "data_version": [data_version] * n,
        },
        schema=GOLD_SETUP_VECTORS.schema,
    )


def training_rows(vectors: pa.Table, labels: pa.Table) -> pa.Table:
    if vectors.num_rows == 0:
        return GOLD_TRAINING_VIEW.schema.empty_table()
    """``gold.training_view``: vectors ⋈ labels on ``episode_id`` (every episode has both)."""
    by_id = {r["episode_id"]: r for r in labels.select(["episode_id", "outcome", "resolved_ts", "mfe_ticks",
                                                          "mae_ticks", "truncated"]).to_pylist()}
    extra = {name: [by_id[e][name] for e in vectors["episode_id"].to_pylist()]
             for name in ("outcome", "resolved_ts", "mfe_ticks", "mae_ticks", "truncated")}
    columns = {name: vectors[name] for name in vectors.column_names} | extra
    return pa.Table.from_pydict(columns, schema=GOLD_TRAINING_VIEW.schema)
