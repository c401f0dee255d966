"""Log a fitted pipeline as *the* model of a ``model_id``: one function, used by training and by tests.

What a registered version carries (the contract every scorer relies on):

- flavor ``mlflow.sklearn`` (skops serialisation), ``pyfunc_predict_fn="predict_proba"``, so pyfunc
  ``predict`` returns an (n, 3) array of probabilities in ``CLASSES`` order;
- a signature of one tensor ``float64 (-1, 144)`` (output ``float64 (-1, 3)``) and an (n, 144)
  float64 input example: the pipeline is fitted on arrays, so it has no feature names and the
  servers validate one array instead of 144 columns (``operators/learning/frame.py``);
- the vector layout's element names, so users can still see which element is which: in the MLmodel
  file (``metadata["feature_vector"]``: column, layout version, names) and as the run artifact
  ``feature_names.json``;
- version tags ``model_id``, ``snapshot_id``, ``registry_version`` (+ any extra tags);
- the retrieval memory (``connectors.models.memory_store.save_memory`` output) under the run's
  artifact path ``retrieval/``, so a model version and its memory always travel together;
- the alias (default ``champion``) moved to the new version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from connectors.mlflow.tracking import ModelVersionRef
from operators.learning.classes import N_CLASSES
from operators.learning.frame import FEATURE_COLUMN, vectors_matrix
from operators.vectors import VECTOR_NAMES, VECTOR_SIZE, VECTOR_VERSION

if TYPE_CHECKING:
    from mlflow.models import ModelSignature
    from sklearn.pipeline import Pipeline

    from operators.retrieval import Memory

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
MEMORY_ARTIFACT = "retrieval"
FEATURE_NAMES_ARTIFACT = "feature_names.json"
_REQUIREMENTS = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model, given explicitly: inferring them loads the model in
    a subprocess, which costs seconds per registration."""
    return [f"{name}=={_dist_version(name)}" for name in _REQUIREMENTS]


def model_signature() -> ModelSignature:
    """``float64 (-1, 144)`` in, ``float64 (-1, 3)`` out: one tensor, validated as a whole."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float64), (-1, VECTOR_SIZE))]),
                          outputs=Schema([TensorSpec(np.dtype(np.float64), (-1, N_CLASSES))]))


def feature_names() -> dict[str, object]:
    """What each element of the input vector is (logged with the model; the signature has no names)."""
    return {"column": FEATURE_COLUMN, "layout_version": VECTOR_VERSION, "names": list(VECTOR_NAMES)}


def register_pipeline(
    pipeline: Pipeline,
    *,
    model_id: str,
    snapshot_id: str,
    registry_version: str,
    input_example: np.ndarray,
    memory: Memory | None,
    alias: str | None = "champion",
    tags: Mapping[str, str] | None = None,
) -> ModelVersionRef:
    """Log ``pipeline`` in the active MLflow run, register it under ``model_id``, tag it, move ``alias``.

    Must be called inside ``mlflow.start_run()``; the memory directory (if any) is logged into the
    same run under ``retrieval/`` (``save_memory``'s layout). ``pipeline`` must be fitted on
    ``vectors_matrix`` arrays (no feature names); ``input_example`` is a few setup vectors.
    Returns the new version.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    run = mlflow.active_run()
    if run is None:
        msg = "register_pipeline needs an active MLflow run; call it inside mlflow.start_run()"
        raise RuntimeError(msg)
    if getattr(pipeline, "feature_names_in_", None) is not None:
        msg = ("the pipeline was fitted on a frame with column names; fit it on vectors_matrix(vectors) "
               "so it matches the (-1, 144) tensor signature")
        raise ValueError(msg)
    example = vectors_matrix(input_example)
    proba = np.asarray(pipeline.predict_proba(example), dtype=np.float64)
    if proba.shape[1] != N_CLASSES:
        msg = f"the pipeline predicts {proba.shape[1]} classes, the contract needs {N_CLASSES} (BREAK, REJECT, CHOP)"
        raise ValueError(msg)
    if memory is not None:
        _log_memory(memory)
    names = feature_names()
    mlflow.log_dict(names, FEATURE_NAMES_ARTIFACT)
    info = mlflow.sklearn.log_model(
        pipeline,
        name=MODEL_ARTIFACT,
        signature=model_signature(),
        input_example=example,
        metadata={"feature_vector": names},
        pyfunc_predict_fn="predict_proba",
        registered_model_name=model_id,
        serialization_format="skops",
        skops_trusted_types=trusted_types(pipeline),
        pip_requirements=pip_requirements(),
    )
    version = str(info.registered_model_version)
    client = MlflowClient()
    all_tags = {"model_id": model_id, "snapshot_id": snapshot_id, "registry_version": registry_version, **(tags or {})}
    for key, value in all_tags.items():
        client.set_model_version_tag(model_id, version, key, str(value))
    if alias:
        client.set_registered_model_alias(model_id, alias, version)
    log.info("registered %s version %s (run %s), alias %s", model_id, version, run.info.run_id, alias)
    return ModelVersionRef(model_id=model_id, version=version, run_id=run.info.run_id, source_uri=info.model_uri,
                           registry_version=registry_version)


def _log_memory(memory: Memory) -> None:
    import tempfile

    import mlflow

    from connectors.models.memory_store import save_memory

    with tempfile.TemporaryDirectory(prefix="spymaster-memory-") as tmp:
        mlflow.log_artifacts(str(save_memory(memory, Path(tmp) / MEMORY_ARTIFACT)), artifact_path=MEMORY_ARTIFACT)


def trusted_types(pipeline: Pipeline) -> list[str]:
    """The non-default types skops must trust to load this pipeline (it refuses unknown types)."""
    import tempfile

    import skops.io

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.skops"
        skops.io.dump(pipeline, path)
        return sorted(skops.io.get_untrusted_types(file=path))
