"""One registered tiny model and both real model servers, shared by this test package.

``scoring_env`` registers ``ES_MODEL`` version 1 (champion) in a session SQLite store, downloads
that version's files once, and serves them with ``mlflow models serve`` and ``azmlinfsrv`` side by side
(start-up is seconds each, so every test shares them). Tests that kill or pause a server bring it
back before they end. ``tagged`` registers two more versions, of ``TAGGED_ID``, for the feature
registry check: one trained on an older registry (champion), one registered without the tag.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from connectors.scoring.base import ScoreRequest
from operators.vectors import VECTOR_SIZE, feature_hash
from tests.services.model_process import ModelProcess

MODEL_ID = "ES_MODEL"
TAGGED_ID = "ES_TAGGED"
OLD_REGISTRY = "1.0.0"


@dataclass(frozen=True)
class ScoringEnv:
    tracking_uri: str
    version: str
    model_dir: Path
    mlflow: ModelProcess
    azureml: ModelProcess


@pytest.fixture(name="tracking_uri", scope="package")
def fixture_tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(name="scoring_env", scope="package")
def fixture_scoring_env(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoringEnv]:
    import mlflow

    from tests.learning.models import register_tiny_model
    from tests.services.azureml_server import azureml_server
    from tests.services.mlflow_server import mlflow_server

    out = tmp_path_factory.mktemp("served")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    version = register_tiny_model(tracking_uri, MODEL_ID, seed=0)
    model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{MODEL_ID}/{version}",
                                                         dst_path=str(out / "azureml")))
    servers = (mlflow_server(str(model_dir), out / "mlflow.log"),          # the registered version's files
               azureml_server(model_dir, out / "azureml.log"))
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield ScoringEnv(tracking_uri, version, model_dir, *servers)
    finally:
        for server in servers:
            server.stop()


@dataclass(frozen=True)
class TaggedVersions:
    """Versions of ``TAGGED_ID``: ``stale`` is tagged ``registry_version`` ``OLD_REGISTRY`` and is the
    champion; ``by_hand`` has no ``registry_version`` tag (a version registered by hand), alias ``by_hand``."""

    stale: str
    by_hand: str


@pytest.fixture(name="tagged", scope="package")
def fixture_tagged(scoring_env: ScoringEnv) -> TaggedVersions:
    from mlflow import MlflowClient

    from tests.learning.models import register_tiny_model

    client = MlflowClient(tracking_uri=scoring_env.tracking_uri, registry_uri=scoring_env.tracking_uri)
    stale = register_tiny_model(scoring_env.tracking_uri, TAGGED_ID, seed=21, alias=None)
    client.set_model_version_tag(TAGGED_ID, stale, "registry_version", OLD_REGISTRY)    # as `train` tagged it then
    by_hand = register_tiny_model(scoring_env.tracking_uri, TAGGED_ID, seed=22, alias=None)
    client.delete_model_version_tag(TAGGED_ID, by_hand, "registry_version")
    client.set_registered_model_alias(TAGGED_ID, "champion", stale)
    client.set_registered_model_alias(TAGGED_ID, "by_hand", by_hand)
    return TaggedVersions(stale, by_hand)


def stale_detail(model_id: str, version: str) -> str:
    """The ``detail`` a ``stale_model`` result of an ``OLD_REGISTRY`` version must carry, word for word."""
    from operators.features.registry import REGISTRY_VERSION

    return (f"{model_id} version {version} was trained on feature registry {OLD_REGISTRY}, this code builds "
            f"{REGISTRY_VERSION}: train on a snapshot built by this code: spymaster snapshot --model-id {model_id} "
            f"&& spymaster train --model-id {model_id}")


@pytest.fixture(autouse=True)
def _tracking_env(monkeypatch: pytest.MonkeyPatch, tracking_uri: str) -> None:
    """Point ``connectors.mlflow.tracking`` at the session store for each test of this package."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)


def requests(n: int, *, seed: int = 7, model_id: str = MODEL_ID, prefix: str = "ep") -> list[ScoreRequest]:
    """``n`` requests with random float32 vectors (a fixed seed: the same vectors every run)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, VECTOR_SIZE)).astype(np.float32)
    return [ScoreRequest(f"{prefix}-{i}", model_id, feature_hash(v), v) for i, v in enumerate(vectors)]
