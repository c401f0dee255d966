"""The registration contract every scorer relies on, through ``register_tiny_model`` (same code as train)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from operators.learning.classes import N_CLASSES
from operators.learning.frame import FEATURE_COLUMN, vectors_matrix
from operators.vectors import VECTOR_NAMES, VECTOR_SIZE, VECTOR_VERSION
from tests.learning.models import TINY_ROWS, register_tiny_model, tiny_training_set


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
    x = vectors_matrix(rows.vectors[:7])
    proba = np.asarray(model.predict(x))
    # the frame `mlflow models serve` builds from the wire: one column, the whole vector per cell
    cells = [[float(value) for value in vector] for vector in rows.vectors[:7]]
    one_column = np.asarray(model.predict(pd.DataFrame({FEATURE_COLUMN: cells})))
    direct = model.get_raw_model().predict_proba(rows.vectors[:7].astype(np.float64))

    assert (first, second) == ("1", "2")
    assert champion is not None and champion.version == "2"
    assert champion_version("ES_MODEL", alias="challenger") is None
    assert champion_version("NQ_MODEL") is None
    tags = MlflowClient().get_model_version("ES_MODEL", "2").tags
    assert tags["snapshot_id"] == "tiny-2" and tags["model_id"] == "ES_MODEL" and tags["registry_version"] == "1.1.0"
    assert proba.shape == (7, N_CLASSES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(proba, one_column)
    np.testing.assert_array_equal(proba, direct)   # float32 vectors upcast exactly to the float64 tensor
    schema = model.metadata.get_input_schema()
    assert schema.is_tensor_spec() and [(s.type, s.shape) for s in schema.inputs] == [(np.dtype("float64"),
                                                                                       (-1, VECTOR_SIZE))]
    assert getattr(model.get_raw_model(), "feature_names_in_", None) is None
    assert model.metadata.metadata["feature_vector"]["names"] == list(VECTOR_NAMES)
    names = mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/feature_names.json")
    assert names["column"] == FEATURE_COLUMN and names["names"] == list(VECTOR_NAMES)
    assert names["layout_version"] == VECTOR_VERSION
    assert proba[rows.outcomes[:7] == 0, 0].mean() > proba[rows.outcomes[:7] == 2, 0].mean()
    assert load_memory_for("ES_MODEL", "2").rows == TINY_ROWS
    # artifacts live beside the SQLite store, not in ./mlruns of the working directory
    store_dir = Path(store.removeprefix("sqlite:///")).parent
    assert not (Path.cwd() / "mlruns").exists()
    assert any((store_dir / "mlartifacts" / "ES_MODEL-tests").rglob("model.skops"))
    assert any((store_dir / "mlartifacts" / "ES_MODEL-tests").rglob("retrieval/manifest.json"))


def test_a_pipeline_fitted_on_named_columns_is_refused(store: str) -> None:
    """Fitted on a named frame, sklearn would keep feature names the tensor signature cannot carry."""
    import mlflow

    from connectors.mlflow.registry import register_pipeline
    from operators.learning.models import make_pipeline

    rows = tiny_training_set(4)
    frame = pd.DataFrame(rows.vectors.astype(np.float64), columns=list(VECTOR_NAMES))
    pipeline = make_pipeline({"family": "logreg", "C": 1.0}, 0).fit(frame, rows.outcomes)
    with mlflow.start_run(), pytest.raises(ValueError, match="fit it on vectors_matrix"):
        register_pipeline(pipeline, model_id="ES_MODEL", snapshot_id="named", registry_version="1.1.0",
                          input_example=rows.vectors[:2], memory=None)
