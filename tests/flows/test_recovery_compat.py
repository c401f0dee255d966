"""A recovery store written by an older build still resumes (Bytewax unpickles every step's
state by the module path its class had when it was written)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard

from connectors.delta.lake import Lake
from connectors.delta.tables import (
    ALL_TABLES,
    BRONZE_DEFINITIONS,
    BRONZE_MANIFEST,
    GOLD_INFERENCE_SCORES,
    GOLD_SETUP_VECTORS,
    GOLD_TRAINING_VIEW,
    SILVER_PHYSICS_BANDS_1S,
    SILVER_VACUUM_SURFACE_1S,
    SILVER_WALL_SURFACE_1S,
)
from operators.features.registry import REGISTRY_VERSION
from tests.conftest import WALL_CLOCK_COLUMNS, lake_differences

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "tests" / "data" / "recovery-203abcb.tar.zst"
NO_REGISTRY = "sqlite:////tmp/spymaster-tests-no-registry/mlflow.db"
"""The registry the store's run named (score rows quote it): never created."""


SURFACES = (SILVER_WALL_SURFACE_1S, SILVER_VACUUM_SURFACE_1S, SILVER_PHYSICS_BANDS_1S)
"""Computed from the whole book since surfaces.v2; the store's build saw the top 10 levels."""
KEY = ("contract_id", "ts_recv")
VERSIONED = (GOLD_SETUP_VECTORS, GOLD_TRAINING_VIEW, GOLD_INFERENCE_SCORES)
"""Rows that name their vector layout and registry (setup.v2 and 1.1.0 since the options block):
the store's build wrote setup.v1 and 1.0.0, with the same values (no options in its input)."""
VERSION_COLUMNS = ("lookback_spec", "registry_version", "feature_hash")
ADDED = "underlying_id"
"""A column of ``bronze.instrument_definitions`` added since the store's build: ``Lake.ensure``
adds it to the old table, whose rows read null there; today's build writes 0 for a future."""


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in KEY)


def _keys(table: Any) -> set[tuple[Any, ...]]:
    return {_key(r) for r in table.to_pylist()}


def _rows(table: Any) -> list[dict[str, Any]]:
    """Rows with NaN as None, so equal rows compare equal."""
    return [{k: _plain(v) for k, v in r.items()} for r in table.to_pylist()]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


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


@pytest.mark.integration
@pytest.mark.slow
def test_a_store_written_before_the_layout_change_resumes_to_the_uninterrupted_tables(tmp_path: Path) -> None:
    _unpack(tmp_path)
    written = {spec.name: _keys(Lake(str(tmp_path / "lake")).read(spec, list(KEY))) for spec in SURFACES}
    _run(tmp_path, tmp_path / "lake", "-r", str(tmp_path / "recovery"), "-s", "1", "-b", "0")
    _run(tmp_path, tmp_path / "whole")

    resumed, whole = Lake(str(tmp_path / "lake")), Lake(str(tmp_path / "whole"))
    compared = [s for s in ALL_TABLES
                if s not in (BRONZE_MANIFEST, BRONZE_DEFINITIONS) and s not in SURFACES and s not in VERSIONED]
    assert lake_differences(resumed, whole, compared) == []
    assert lake_differences(resumed, whole, [BRONZE_DEFINITIONS], drop=(*WALL_CLOCK_COLUMNS, ADDED)) == []
    old = resumed.read(BRONZE_DEFINITIONS, [ADDED])[ADDED].to_pylist()  # all written before the crash
    assert old and set(old) == {None} and set(whole.read(BRONZE_DEFINITIONS, [ADDED])[ADDED].to_pylist()) == {0}
    assert lake_differences(resumed, whole, VERSIONED, drop=(*WALL_CLOCK_COLUMNS, *VERSION_COLUMNS)) == []
    today = {r["episode_id"]: r for r in _rows(whole.read(GOLD_SETUP_VECTORS))}
    later = [r for r in _rows(resumed.read(GOLD_SETUP_VECTORS)) if r["registry_version"] == REGISTRY_VERSION]
    assert later and all({k: v for k, v in r.items() if k not in WALL_CLOCK_COLUMNS}
                         == {k: v for k, v in today[r["episode_id"]].items() if k not in WALL_CLOCK_COLUMNS}
                         for r in later)  # every vector written after the resume is today's, versions included
    for spec in SURFACES:  # the old build's rows are its own; every row written after the resume is today's
        got = Lake(str(tmp_path / "lake")).read(spec)
        want = Lake(str(tmp_path / "whole")).read(spec)
        assert got.num_rows == want.num_rows
        later = [r for r in _rows(got) if _key(r) not in written[spec.name]]
        wanted = {_key(r): r for r in _rows(want)}
        assert later and all(r == wanted[_key(r)] for r in later), spec.name
    manifest = Lake(str(tmp_path / "lake")).read(BRONZE_MANIFEST, ["source", "status"]).to_pylist()
    assert {r["source"] for r in manifest if r["status"] == "complete"} == {
        f"dbn:{p.name}" for p in (tmp_path / "in").glob("*.dbn.zst")}
