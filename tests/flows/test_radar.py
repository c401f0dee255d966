"""Radar surfaces and their calibration, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from connectors.delta.tables import GOLD_PHYSICS_CALIBRATION, SILVER_PHYSICS_BANDS_1S, SILVER_WALL_SURFACE_1S
from flows.jobs.calibration import calibrate_lake
from operators.surfaces import DEFAULT_CALIBRATION, RAW_NAMES


def _norm(raw: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip((raw - lo) / (hi - lo), 0.0, 1.0)


def test_bands_use_the_latest_calibration_before_their_session(sample_dir: Path, tmp_path: Path, replay) -> None:
    lake = replay([sample_dir], tmp_path / "lake")
    assert lake.read(SILVER_WALL_SURFACE_1S).num_rows == lake.read(SILVER_PHYSICS_BANDS_1S).num_rows > 0

    written = calibrate_lake(lake)
    assert {(c, d) for c, d, _ in written} == {
        (r["contract_id"], r["session_date"]) for r in lake.read(GOLD_PHYSICS_CALIBRATION).to_pylist()}
    replay([sample_dir], tmp_path / "lake", overwrite=True)

    calibrations = {(r["contract_id"], r["session_date"]): r for r in lake.read(GOLD_PHYSICS_CALIBRATION).to_pylist()}
    bands = lake.read(SILVER_PHYSICS_BANDS_1S)
    days = sorted({d for _, d in calibrations})
    for contract in ("ESZ5", "ESH6"):
        for i, day in enumerate(days):
            mine = bands.filter(pc.and_(pc.equal(bands["contract_id"], contract), pc.equal(bands["session_date"], day)))
            for c, name in enumerate(RAW_NAMES[:4]):
                if i == 0:
                    lo, hi = DEFAULT_CALIBRATION.lo[c], DEFAULT_CALIBRATION.hi[c]
                else:
                    prior = calibrations[(contract, days[i - 1])]
                    lo, hi = prior["lo"][c], prior["hi"][c]
                raw = mine[name].to_numpy(zero_copy_only=False).astype(np.float64)
                got = mine[f"{name}_norm"].to_numpy(zero_copy_only=False).astype(np.float64)
                ok = np.isfinite(raw)
                assert np.allclose(got[ok], _norm(raw[ok], lo, hi), atol=1e-6), (contract, day, name)
