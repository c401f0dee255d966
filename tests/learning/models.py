"""A tiny registered model for tests of scoring: right shape, random data, registered like ``train`` does."""

from __future__ import annotations

from datetime import date

import numpy as np

from operators.vectors.layout import LEVEL_TYPES, VECTOR_SIZE

TINY_ROWS = 240


def tiny_training_set(seed: int, rows: int = TINY_ROWS):
    """Random vectors and labels over every level type × direction × one of two time buckets."""
    from operators.learning.dataset import TrainingSet

    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(rows, VECTOR_SIZE)).astype(np.float32)
    outcomes = np.arange(rows, dtype=np.int8) % 3  # every class present
    vectors[:, 0] += outcomes - 1.0  # a little signal so the probabilities differ per row
    return TrainingSet(
        vectors=vectors, outcomes=outcomes, episode_ids=tuple(f"tiny-{seed}-{i:05d}" for i in range(rows)),
        session_dates=np.full(rows, np.datetime64(date(2025, 11, 3), "D")),
        level_type=tuple(LEVEL_TYPES[i % len(LEVEL_TYPES)] for i in range(rows)),
        direction=tuple("UP" if (i // 6) % 2 == 0 else "DOWN" for i in range(rows)),
        time_bucket=(np.arange(rows) // 12 % 2).astype(np.int32),
    )


def register_tiny_model(tracking_uri: str, model_id: str = "ES_MODEL", seed: int = 0, *,
                        alias: str | None = "champion") -> str:
    """Fit a logistic-regression pipeline on random rows and register it (with a retrieval memory)
    exactly as ``spymaster train`` does; the alias moves to it. Returns the version string."""
    import mlflow

    from connectors.mlflow.registry import register_pipeline
    from connectors.mlflow.tracking import use_experiment
    from operators.features.registry import REGISTRY_VERSION
    from operators.learning.dataset import memory_from
    from operators.learning.frame import vectors_matrix
    from operators.learning.models import make_pipeline

    use_experiment(f"{model_id}-tests", tracking_uri)
    rows = tiny_training_set(seed)
    pipeline = make_pipeline({"family": "logreg", "C": 1.0}, seed).fit(vectors_matrix(rows.vectors), rows.outcomes)
    with mlflow.start_run(run_name=f"tiny-{seed}"):
        ref = register_pipeline(pipeline, model_id=model_id, snapshot_id=f"tiny-{seed}",
                                registry_version=REGISTRY_VERSION, input_example=vectors_matrix(rows.vectors[:2]),
                                memory=memory_from(rows), alias=alias)
    return ref.version

