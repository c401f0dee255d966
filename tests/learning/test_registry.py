"""The registration contract every scorer relies on, through ``register_tiny_model`` (same code as train)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from operators.learning.classes import N_CLASSES
from operators.learning.frame import vectors_frame
from tests.learning.models import TINY_ROWS, register_tiny_model, tiny_training_set

pytestmark = pytest.mark.slow


@pytest.fixture(name="store")
def fixture_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_registration_moves_champion_and_keeps_the_contract(store: str) -> None:
    import mlflow
    from mlflow import MlflowClient

    from connectors.mlflow.tracking import champion_version, tracking_uri
    from connectors.models.memory_store import load_memory_for

    assert tracking_uri() == store
    assert champion_version("ES_MODEL") is None  # nothing registered: None, not an error
    first = register_tiny_model(store, "ES_MODEL", seed=1)
    second = register_tiny_model(store, "ES_MODEL", seed=2)
    champion = champion_version("ES_MODEL")
    rows = tiny_training_set(2)
    model = mlflow.pyfunc.load_model("models:/ES_MODEL@champion")
    proba = np.asarray(model.predict(vectors_frame(rows.vectors[:7])))
    proba32 = np.asarray(model.predict(vectors_frame(rows.vectors[:7]).astype(np.float32)))

    assert (first, second) == ("1", "2")
    assert champion is not None and champion.version == "2"
    assert champion_version("ES_MODEL", alias="challenger") is None
    assert champion_version("NQ_MODEL") is None
    tags = MlflowClient().get_model_version("ES_MODEL", "2").tags
    assert tags["snapshot_id"] == "tiny-2" and tags["model_id"] == "ES_MODEL" and tags["registry_version"] == "1.0.0"
    assert proba.shape == (7, N_CLASSES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba, proba32)  # float32 vectors are upcast to the double signature
    assert proba[rows.outcomes[:7] == 0, 0].mean() > proba[rows.outcomes[:7] == 2, 0].mean()
    assert load_memory_for("ES_MODEL", "2").rows == TINY_ROWS
    # artifacts live beside the SQLite store, not in ./mlruns of the working directory
    store_dir = Path(store.removeprefix("sqlite:///")).parent
    assert not (Path.cwd() / "mlruns").exists()
    assert any((store_dir / "mlartifacts" / "ES_MODEL-tests").rglob("model.skops"))
    assert any((store_dir / "mlartifacts" / "ES_MODEL-tests").rglob("retrieval/manifest.json"))
