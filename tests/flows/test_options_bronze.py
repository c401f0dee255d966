"""An options chain beside the futures: its records and definitions land in Bronze, typed, and the
futures' Silver and Gold tables are exactly what the futures alone give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from connectors.delta.tables import ALL_TABLES, BRONZE_DEFINITIONS, BRONZE_MANIFEST, BRONZE_MBO, BRONZE_STATISTICS
from replay.synth import write_sample
from tests.conftest import table_content


@pytest.mark.integration
def test_options_reach_bronze_and_leave_the_futures_tables_as_they_were(tmp_path: Path, replay) -> None:
    plain = write_sample(tmp_path / "plain", days=1, seed=5, events_per_day=30_000, truth=False)
    chain = write_sample(tmp_path / "chain", days=1, seed=5, events_per_day=30_000, truth=False, options=True)
    futures_only = replay([plain.out_dir], tmp_path / "a")
    both = replay([chain.out_dir], tmp_path / "b")
    options = chain.days[0].options
    assert options is not None

    bronze = both.read(BRONZE_MBO, ["instrument_type", "instrument_id"])
    kinds = np.asarray(bronze["instrument_type"].to_pylist())
    assert (kinds == "OPT").sum() == options.mbo_records
    assert (kinds == "FUT").sum() == plain.days[0].mbo_records
    defs = both.read(BRONZE_DEFINITIONS).to_pylist()
    assert sum(1 for d in defs if d["instrument_class"] in ("C", "P")) == options.instruments
    stats = both.read(BRONZE_STATISTICS, ["stat_type"])["stat_type"].to_pylist()
    assert stats.count(9) == options.statistics_records + 2  # and one for each future

    skip = {BRONZE_MBO, BRONZE_DEFINITIONS, BRONZE_STATISTICS, BRONZE_MANIFEST}
    compared = 0
    for spec in ALL_TABLES:
        if spec in skip or futures_only.open(spec) is None:
            continue
        want = table_content(futures_only, spec, drop=("ts_ingest", "scored_at", "latency_ms", "source",
                                                       "stream", "data_version"))
        got = table_content(both, spec, drop=("ts_ingest", "scored_at", "latency_ms", "source",
                                              "stream", "data_version"))
        assert got.equals(want), spec.name
        compared += want.num_rows > 0
    assert compared >= 10
