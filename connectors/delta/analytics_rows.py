"""Arrow rows of the level-analytics tables (session summary and levels, episodes, labels)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from connectors.delta.tables import GOLD_LABELS, SILVER_LEVEL_APPROACH, SILVER_SESSION_LEVELS, SILVER_SESSION_SUMMARY
from operators.chunks import InstrumentInfo
from operators.labels import OUTCOMES, LabelParams
from operators.levels import LEVEL_TYPES, Level, SessionSummary


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
                 levels: tuple[Level, ...], info: InstrumentInfo, day: date) -> pa.Table:
    known = [levels[int(i)].known_ts for i in episodes["level_index"]]
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
    """``labels.key`` is the episode's index into ``ids``/``level_types``; rows come out by episode."""
    labels = labels[np.argsort(labels["key"], kind="stable")]
    idx = labels["key"].astype(np.int64)
    n = len(labels)
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
