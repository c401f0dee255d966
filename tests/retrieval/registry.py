"""Register a retrieval memory in a real (SQLite) MLflow registry, the way a trained model carries it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from connectors.models.memory_store import ARTIFACT_PATH, save_memory
from operators.retrieval import Memory


@dataclass(frozen=True)
class Registry:
    """A test registry: its tracking URI and where its runs' artifacts go."""

    uri: str
    artifacts: Path


def register_memory(tracking_uri: str, artifacts: Path, model_id: str, memory: Memory | None,
                    alias: str | None = "champion") -> str:
    """A new version of ``model_id`` whose run holds ``memory`` under ``retrieval/`` (none if None).

    Only the memory is logged (no model flavour): ``load_memory_for`` needs the version's run and
    that run's artifacts, nothing else. Returns the version string.
    """
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    name = f"{model_id}-retrieval-tests"
    found = mlflow.get_experiment_by_name(name)
    experiment = found.experiment_id if found else mlflow.create_experiment(name, artifact_location=artifacts.as_uri())
    client = MlflowClient()
    with mlflow.start_run(experiment_id=experiment) as run:
        if memory is not None:
            with tempfile.TemporaryDirectory() as tmp:
                mlflow.log_artifacts(str(save_memory(memory, Path(tmp) / ARTIFACT_PATH)), artifact_path=ARTIFACT_PATH)
    if not client.search_registered_models(filter_string=f"name = '{model_id}'"):
        client.create_registered_model(model_id)
    version = client.create_model_version(model_id, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    if alias:
        client.set_registered_model_alias(model_id, alias, version.version)
    return str(version.version)
