"""Arrow rows of ``gold.inference_scores``: one per scored episode (see ``flows.steps.inference_scores``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pyarrow as pa

from connectors.delta.tables import GOLD_INFERENCE_SCORES
from operators.chunks import InstrumentInfo


@dataclass(frozen=True, slots=True)
class ScoreRow:
    """Everything one row says, as plain values (``None`` for null)."""

    episode_id: str
    model_version: str | None
    feature_hash: str
    level_type: str
    direction: str
    time_bucket: int
    vector_time: int
    probabilities: tuple[float, float, float] | None
    distribution: np.ndarray | None
    """float64[3] neighbour outcome shares (BREAK, REJECT, CHOP), or None when there are none."""
    weighted: np.ndarray | None
    neighbour_ids: tuple[str, ...]
    status: str
    detail: str
    attempts: int
    latency_ns: int


def score_rows(rows: Sequence[ScoreRow], *, model_id: str, backend: str, batch_close_ts: int, info: InstrumentInfo,
               day: date, scored_at: datetime) -> pa.Table:
    n = len(rows)
    if n == 0:
        return GOLD_INFERENCE_SCORES.schema.empty_table()

    def share(r: ScoreRow, which: str, i: int) -> float | None:
        values = r.distribution if which == "plain" else r.weighted
        return None if values is None else float(values[i])

    columns: dict[str, list] = {
        "episode_id": [r.episode_id for r in rows],
        "model_id": [model_id] * n,
        "model_version": [r.model_version for r in rows],
        "backend": [backend] * n,
        "feature_hash": [r.feature_hash for r in rows],
        "contract_id": [info.raw_symbol] * n,
        "instrument_id": [info.instrument_id] * n,
        "underlier": [info.underlier] * n,
        "session_date": [day] * n,
        "level_type": [r.level_type for r in rows],
        "direction": [r.direction for r in rows],
        "time_bucket": [r.time_bucket for r in rows],
        "vector_time": [r.vector_time for r in rows],
    }
    for i, name in enumerate(("break", "reject", "chop")):
        columns[f"p_{name}"] = [None if r.probabilities is None else float(r.probabilities[i]) for r in rows]
        columns[f"nn_{name}"] = [share(r, "plain", i) for r in rows]
        columns[f"nn_weighted_{name}"] = [share(r, "weighted", i) for r in rows]
    columns |= {
        "nn_count": [len(r.neighbour_ids) for r in rows],
        "nn_episode_ids": [list(r.neighbour_ids) for r in rows],
        "status": [r.status for r in rows],
        "detail": [r.detail for r in rows],
        "attempts": [r.attempts for r in rows],
        "batch_close_ts": [batch_close_ts] * n,
        "scored_at": [scored_at] * n,
        "latency_ms": [r.latency_ns / 1e6 for r in rows],
    }
    return pa.Table.from_pydict({f.name: columns[f.name] for f in GOLD_INFERENCE_SCORES.schema},
                                schema=GOLD_INFERENCE_SCORES.schema)
