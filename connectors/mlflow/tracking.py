"""The MLflow tracking/registry location and the champion lookup.

Default store: SQLite ``mlflow.db`` in the working directory (MLflow 3 refuses a bare ``./mlruns``
file store for the registry). ``MLFLOW_TRACKING_URI`` points it anywhere else (a server,
Azure ML's MLflow-compatible URI) with no code change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ModelVersionRef:
    """One registered model version: enough to load the model and find its run's artifacts.

    ``registry_version`` is the version's ``registry_version`` tag: the feature registry its
    training snapshot was built with (``None`` for a version registered by hand, without the tag)."""

    model_id: str
    version: str
    run_id: str
    source_uri: str
    registry_version: str | None = None


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else an absolute ``sqlite:///…/mlflow.db`` in the working directory."""
    configured = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if configured:
        return configured
    return f"sqlite:///{Path.cwd().resolve() / 'mlflow.db'}"


def local_store_missing(uri: str) -> bool:
    """A SQLite store whose file does not exist. Asking it anything would create an empty one, so
    a reader that only wants to know what is registered checks this first (and need not import MLflow)."""
    return uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists()


def configure(uri: str | None = None) -> str:
    """Point mlflow's tracking and registry at ``uri`` (default ``tracking_uri()``); returns it.

    Also turns off MLflow's artifact download bar unless the user set it: a retrieval memory is a
    file per partition, and a bar per file on every model load is noise in a flow's log."""
    import mlflow

    quiet_downloads()
    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def quiet_downloads() -> None:
    """MLflow's artifact download bar off unless the user set it (a bar per file on every load)."""
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    if not MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.is_set():
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.set(False)


def use_experiment(name: str, uri: str | None = None) -> str:
    """Make ``name`` the active experiment, creating it first if needed; returns its id.

    With a local SQLite store MLflow would put artifacts in ``./mlruns`` of whatever directory the
    process runs in; a new experiment instead keeps them beside the database, in
    ``<db dir>/mlartifacts/<name>``, so the store and its artifacts travel together. Remote stores
    (a tracking server, Azure ML) keep their own artifact location.
    """
    import mlflow

    uri = configure(uri)
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        mlflow.create_experiment(name, artifact_location=_local_artifacts(uri, name))
    return mlflow.set_experiment(name).experiment_id


def _local_artifacts(uri: str, name: str) -> str | None:
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    database = database if database.is_absolute() else Path.cwd() / database
    return (database.parent / "mlartifacts" / name).as_uri()


def champion_version(model_id: str, alias: str = "champion", uri: str | None = None) -> ModelVersionRef | None:
    """The version the alias names, or ``None`` when the model or alias does not exist.

    Never raises for "not registered"; other failures (store unreachable) propagate. With ``uri``
    the registry is read through a client of its own and MLflow's process-wide URIs are left
    alone (a scorer's follower thread reads its registry so, every second).
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    if uri is None:
        configure()
        client = MlflowClient()
    else:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        found = client.get_model_version_by_alias(model_id, alias)
    except MlflowException as err:
        if _is_missing(err):
            return None
        raise
    return ModelVersionRef(model_id=model_id, version=str(found.version), run_id=found.run_id or "",
                           source_uri=found.source or "", registry_version=(found.tags or {}).get("registry_version"))


def _is_missing(err: Exception) -> bool:
    code = getattr(err, "error_code", "")
    missing_codes = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")
    return code in missing_codes or "not found" in str(err).lower()
