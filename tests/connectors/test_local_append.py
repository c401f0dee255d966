"""Appends to a local lake written by pyarrow and committed as add actions read back exactly as
delta-rs's own writes do: the same rows, partition folders, statistics that prune, app
transactions; a write spanning partitions is left to delta-rs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable, Transaction, write_deltalake

from connectors.delta.lake import Lake
from connectors.delta.local_append import append, local_root
from connectors.delta.sink import writer_properties
from connectors.delta.tables import SILVER_GEX_SUMMARY_1S

SPEC = SILVER_GEX_SUMMARY_1S


def _rows(day: date, underlying_id: int, ts: np.ndarray) -> pa.Table:
    n = len(ts)
    columns: dict[str, object] = {
        "underlier": ["ESZ5"] * n, "underlying_id": np.full(n, underlying_id, np.int64), "session_date": [day] * n,
        "ts_recv": ts.astype(np.int64), "underlying_px": np.linspace(6000, 6001, n), "model": ["black76"] * n,
        "sign_convention": ["dealer_short"] * n, "zero_gamma": pa.array([6000.5, None] * (n // 2), pa.float64()),
    }
    for field in SPEC.schema:
        if field.name not in columns:
            columns[field.name] = pa.array(np.arange(n) % 7, pa.int64()).cast(field.type)
    return pa.Table.from_pydict(columns, schema=SPEC.schema)


def _sorted(table: pa.Table) -> pa.Table:
    return table.select(SPEC.schema.names).sort_by([("session_date", "ascending"), ("ts_recv", "ascending")])


def test_local_files_read_back_as_delta_rs_writes_them_with_stats_that_prune(tmp_path: Path) -> None:
    first = _rows(date(2025, 11, 3), 7, np.arange(1_000, 1_100))
    second = _rows(date(2025, 11, 4), 9, np.arange(5_000, 5_040))
    lake = Lake(str(tmp_path / "local"))
    lake.ensure(SPEC)
    table = lake.open(SPEC)
    assert table is not None
    assert append(table, tmp_path / "local" / SPEC.relative_path, SPEC, [first, second],
                  [Transaction(app_id="stream-a", version=41)])
    assert table.version() == 1 and table.transaction_version("stream-a") == 41  # the open table moved on

    theirs = tmp_path / "delta-rs"
    write_deltalake(str(theirs), pa.concat_tables([first, second]), partition_by=["session_date"],
                    writer_properties=writer_properties(SPEC))
    mine = DeltaTable(lake.uri(SPEC))
    assert _sorted(mine.to_pyarrow_table()).equals(_sorted(DeltaTable(str(theirs)).to_pyarrow_table()))
    assert lake.count(SPEC) == 140

    folders = sorted(p.parent.name for p in (tmp_path / "local" / SPEC.relative_path).rglob("*.parquet"))
    assert folders == ["session_date=2025-11-03", "session_date=2025-11-04"]
    log = [json.loads(line) for p in sorted((tmp_path / "local" / SPEC.relative_path / "_delta_log").glob("*.json"))
           for line in p.read_text().splitlines()]
    stats = sorted((json.loads(e["add"]["stats"]) for e in log if "add" in e), key=lambda s: s["numRecords"])
    assert stats[0] == {"numRecords": 40, "minValues": {"ts_recv": 5_000, "underlying_id": 9},
                        "maxValues": {"ts_recv": 5_039, "underlying_id": 9},
                        "nullCount": {"ts_recv": 0, "underlying_id": 0}}
    assert stats[1]["numRecords"] == 100 and stats[1]["maxValues"]["ts_recv"] == 1_099
    pruned = mine.file_uris(file_pruning_predicate="underlying_id = 9")  # the statistics skip the other file
    assert len(pruned) == 1 and "2025-11-04" in pruned[0]
    assert mine.to_pyarrow_table(filters=[("underlying_id", "=", 9)]).num_rows == 40


def test_a_write_spanning_partitions_is_left_to_delta_rs(tmp_path: Path) -> None:
    both = pa.concat_tables([_rows(date(2025, 11, 3), 7, np.arange(10)), _rows(date(2025, 11, 4), 7, np.arange(10))])
    lake = Lake(str(tmp_path))
    lake.ensure(SPEC)
    table = lake.open(SPEC)
    assert table is not None
    assert not append(table, tmp_path / SPEC.relative_path, SPEC, [both], [Transaction(app_id="s", version=1)])
    assert table.version() == 0 and not list((tmp_path / SPEC.relative_path).rglob("*.parquet"))


@pytest.mark.parametrize(("root", "options", "want"), [
    ("/data/lake", {}, Path("/data/lake")),
    ("file:///data/lake", {}, Path("/data/lake")),
    ("abfss://lake@account.dfs.core.windows.net/x", {}, None),
    ("/data/lake", {"AZURE_STORAGE_ACCOUNT_NAME": "a"}, None),
])
def test_only_a_local_lake_is_written_by_hand(root: str, options: dict[str, str], want: Path | None) -> None:
    assert local_root(root, options) == want
