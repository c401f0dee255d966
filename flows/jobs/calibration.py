"""Band calibration over the lake: read a day of raw bands, store its quantiles."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

from connectors.delta.analytics_rows import calibration_row
from connectors.delta.lake import Lake
from connectors.delta.tables import GOLD_PHYSICS_CALIBRATION, SILVER_PHYSICS_BANDS_1S
from flows.config import DateRange
from operators.surfaces import RAW_NAMES, calibrate


def calibrate_lake(lake: Lake, dates: DateRange | None = None) -> list[tuple[str, date, int]]:
    """Calibrate every (contract, session) with bands; returns what was written."""
    bands = lake.read(SILVER_PHYSICS_BANDS_1S, ["contract_id", "session_date", *RAW_NAMES])
    if bands.num_rows == 0:
        return []
    lake.ensure(GOLD_PHYSICS_CALIBRATION)
    pairs = sorted({(r["contract_id"], r["session_date"]) for r in bands.select(["contract_id", "session_date"])
                    .group_by(["contract_id", "session_date"]).aggregate([]).to_pylist()})
    written, rows = [], []
    for contract, day in pairs:
        if dates is not None and day not in dates:
            continue
        mine = bands.filter(pc.and_(pc.equal(bands["contract_id"], contract), pc.equal(bands["session_date"], day)))
        raw = np.column_stack([mine[name].to_numpy(zero_copy_only=False).astype(np.float64) for name in RAW_NAMES])
        rows.append(calibration_row(contract, calibrate(raw, day), mine.num_rows))
        written.append((contract, day, mine.num_rows))
    table = lake.open(GOLD_PHYSICS_CALIBRATION)
    assert table is not None
    for contract, day, _ in written:
        table.delete(f"contract_id = '{contract}' AND session_date = '{day.isoformat()}'")
    if rows:
        write_deltalake(lake.uri(GOLD_PHYSICS_CALIBRATION), pa.concat_tables(rows), mode="append",
                        storage_options=lake.storage_options or None)
    return written
