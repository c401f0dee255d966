"""A recovery store written by an older build still resumes (Bytewax unpickles every step's
state by the module path its class had when it was written)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from connectors.delta.lake import Lake
from connectors.delta.tables import ALL_TABLES, BRONZE_MANIFEST
from tests.conftest import lake_differences

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "tests" / "data" / "recovery-203abcb.tar.zst"
NO_REGISTRY = "sqlite:////tmp/spymaster-tests-no-registry/mlflow.db"
"""The registry the store's run named (score rows quote it): never created."""


def _unpack(into: Path) -> None:
    with zstandard.ZstdDecompressor().stream_reader(STORE.read_bytes()) as raw:
        with tarfile.open(fileobj=io.BytesIO(raw.read())) as tar:
            tar.extractall(into, filter="data")


def _run(into: Path, lake: Path, *recovery: str) -> None:
    env = {**os.environ, "SPYMASTER_INPUT": str(into / "in"), "SPYMASTER_LAKE": str(lake),
           "SPYMASTER_CONFIG": str(into / "spymaster.toml"), "SPYMASTER_RUN_ID": "recovery-fixture",
           "MLFLOW_TRACKING_URI": NO_REGISTRY}
    done = subprocess.run([sys.executable, "-m", "bytewax.run", "flows.main", *recovery], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.integration
def test_a_store_written_before_the_layout_change_resumes_to_the_uninterrupted_tables(tmp_path: Path) -> None:
    _unpack(tmp_path)
    _run(tmp_path, tmp_path / "lake", "-r", str(tmp_path / "recovery"), "-s", "1", "-b", "0")
    _run(tmp_path, tmp_path / "whole")

    compared = [s for s in ALL_TABLES if s is not BRONZE_MANIFEST]
    assert lake_differences(Lake(str(tmp_path / "lake")), Lake(str(tmp_path / "whole")), compared) == []
    manifest = Lake(str(tmp_path / "lake")).read(BRONZE_MANIFEST, ["source", "status"]).to_pylist()
    assert {r["source"] for r in manifest if r["status"] == "complete"} == {
        f"dbn:{p.name}" for p in (tmp_path / "in").glob("*.dbn.zst")}
