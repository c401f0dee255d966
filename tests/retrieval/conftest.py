"""One SQLite MLflow registry for the retrieval tests (creating a store costs seconds)."""

from __future__ import annotations

import pytest

from tests.retrieval.registry import Registry


@pytest.fixture(name="registry", scope="session")
def fixture_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("retrieval-mlflow")
    return Registry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")


@pytest.fixture(name="tracking_env")
def fixture_tracking_env(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """``MLFLOW_TRACKING_URI`` names the retrieval tests' registry for one test."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.uri)
    return registry
