"""Hand-built ``gold.training_view`` rows written to a real Delta table (for snapshot tests)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from connectors.delta.lake import Lake
from connectors.delta.tables import GOLD_TRAINING_VIEW
from operators.features.registry import REGISTRY_VERSION
from operators.learning.classes import CLASSES
from operators.vectors.layout import LEVEL_TYPES, LOOKBACK_SPEC, VECTOR_SIZE

FIRST_SESSION = date(2025, 11, 3)


def view_rows(sessions: int, per_session: int, *, seed: int = 0, model_id: str = "ES_MODEL",
              registry_version: str = REGISTRY_VERSION) -> pa.Table:
    """``per_session`` labelled episodes per session; outcome of row i is ``CLASSES[i % 3]``."""
    rng = np.random.default_rng(seed)
    n = sessions * per_session
    day = [FIRST_SESSION + timedelta(days=i // per_session) for i in range(n)]
    vectors = rng.normal(size=(n, VECTOR_SIZE)).astype(np.float32)
    columns = {
        "episode_id": [f"{model_id}-{seed}-{i:05d}" for i in range(n)],
        "vector_time": [1_700_000_000_000_000_000 + i * 10**9 for i in range(n)],
        "model_id": [model_id] * n, "contract_id": ["ESZ5"] * n, "instrument_id": [42140864] * n,
        "underlier": ["ES"] * n, "session_date": day,
        "level_type": [LEVEL_TYPES[i % 6] for i in range(n)],
        "direction": ["UP" if i % 2 else "DOWN" for i in range(n)],
        "time_bucket": [i % 5 for i in range(n)], "lookback_spec": [LOOKBACK_SPEC] * n,
        "feature_vector": list(vectors), "feature_hash": [f"h{i}" for i in range(n)],
        "registry_version": [registry_version] * n, "data_version": ["dbn:test#g0"] * n,
        "outcome": [CLASSES[i % 3] for i in range(n)], "resolved_ts": [0] * n,
        "mfe_ticks": [1.0] * n, "mae_ticks": [1.0] * n, "truncated": [False] * n,
    }
    return pa.table(columns, schema=GOLD_TRAINING_VIEW.schema)


def write_view(lake: Lake, rows: pa.Table) -> None:
    """Append ``rows`` to the lake's ``gold.training_view`` (one Delta commit)."""
    lake.ensure(GOLD_TRAINING_VIEW)
    write_deltalake(lake.uri(GOLD_TRAINING_VIEW), rows, mode="append",
                    partition_by=list(GOLD_TRAINING_VIEW.partition_by))
