"""The heads-up display's tests share one lake: the two-day sample replayed with a registered model,
so its second session has key levels, episodes, scores with neighbours, and labels."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from connectors.delta.lake import Lake
from connectors.hud.lake import sessions


@pytest.fixture(name="hud_registry", scope="session")
def fixture_hud_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An MLflow registry with the tiny model as ES_MODEL's champion."""
    from tests.learning.models import register_tiny_model

    uri = f"sqlite:///{tmp_path_factory.mktemp('hud-registry') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        assert register_tiny_model(uri, seed=0) == "1"
    return uri


@pytest.fixture(name="hud_lake", scope="session")
def fixture_hud_lake(sample_dir: Path, hud_registry: str, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", hud_registry)
        prepared = prepare(app_config([sample_dir], tmp_path_factory.mktemp("hud") / "lake"))
        run_flow(prepared)
    return prepared.lake


@pytest.fixture(name="hud_session", scope="session")
def fixture_hud_session(hud_lake: Lake) -> date:
    """The sample's second session: its levels come from the first."""
    days = sessions(hud_lake)
    assert len(days) == 2, days
    return days[-1]


def same_frames(got: pa.Table, want: pa.Table) -> list[str]:
    """The columns in which two frame tables differ (NaN equals NaN); empty when they are equal."""
    if got.column_names != want.column_names:
        return [f"columns {got.column_names[:5]}... != {want.column_names[:5]}..."]
    if got.num_rows != want.num_rows:
        return [f"{got.num_rows} rows != {want.num_rows}"]
    bad = []
    for name in want.column_names:
        a, b = got[name], want[name]
        if pa.types.is_floating(b.type):
            x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
            if not np.array_equal(x, y, equal_nan=True):
                bad.append(name)
        elif a.to_pylist() != b.to_pylist():
            bad.append(name)
    return bad
