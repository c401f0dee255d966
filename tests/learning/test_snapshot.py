"""Training snapshots: deterministic ids and bytes, right manifest counts, checked on load."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from connectors.delta.lake import Lake
from connectors.delta.snapshots import (
    DATA_FILE,
    MANIFEST,
    latest_snapshot_id,
    load_snapshot,
    take_snapshot,
    training_set,
)
from connectors.delta.tables import GOLD_TRAINING_VIEW
from operators.errors import ConfigError, SourceError
from tests.learning.view_rows import view_rows, write_view
from tests.typed import present


def _lake(tmp_path: Path, *tables: pa.Table) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    for rows in tables:
        write_view(lake, rows)
    return lake


def test_same_lake_gives_same_snapshot_id_and_bytes(tmp_path: Path) -> None:
    lake = _lake(tmp_path, view_rows(4, 9, seed=1))
    first = take_snapshot(lake, "ES_MODEL")
    data, manifest = (first.path / DATA_FILE).read_bytes(), (first.path / MANIFEST).read_bytes()
    again = take_snapshot(lake, "ES_MODEL")
    copy = Lake(str(tmp_path / "copy"))
    shutil.copytree(tmp_path / "lake", tmp_path / "copy", ignore=shutil.ignore_patterns("ml"))
    elsewhere = take_snapshot(copy, "ES_MODEL")

    assert first.created and not again.created and elsewhere.created
    assert first.snapshot_id == again.snapshot_id == elsewhere.snapshot_id
    assert (elsewhere.path / DATA_FILE).read_bytes() == data
    assert (elsewhere.path / MANIFEST).read_bytes() == manifest
    assert sorted(p.name for p in first.path.parent.iterdir()) == sorted(["LATEST", first.snapshot_id])


def test_row_order_in_the_table_does_not_change_the_snapshot(tmp_path: Path) -> None:
    rows = view_rows(3, 6, seed=2)
    one = take_snapshot(_lake(tmp_path / "a", rows), "ES_MODEL")
    reversed_commits = take_snapshot(_lake(tmp_path / "b", rows.slice(9), rows.slice(0, 9)), "ES_MODEL")

    assert one.snapshot_id == reversed_commits.snapshot_id


def test_manifest_counts_lineage_and_hash(tmp_path: Path) -> None:
    lake = _lake(tmp_path, view_rows(3, 7, seed=3), view_rows(2, 4, seed=4, model_id="NQ_MODEL"))
    ref = take_snapshot(lake, "ES_MODEL")
    manifest = json.loads((ref.path / MANIFEST).read_text())

    # 21 rows, outcome of row i = CLASSES[i % 3]: 7 of each; per session rows 0-6, 7-13, 14-20
    assert manifest["rows"] == ref.rows == 21
    assert manifest["labels"] == {"BREAK": 7, "REJECT": 7, "CHOP": 7}
    assert manifest["sessions"] == {
        "2025-11-03": {"rows": 7, "BREAK": 3, "REJECT": 2, "CHOP": 2},
        "2025-11-04": {"rows": 7, "BREAK": 2, "REJECT": 3, "CHOP": 2},
        "2025-11-05": {"rows": 7, "BREAK": 2, "REJECT": 2, "CHOP": 3},
    }
    view_version = present(lake.open(GOLD_TRAINING_VIEW)).version()
    assert manifest["source"] == {"gold.training_view": {"path": GOLD_TRAINING_VIEW.relative_path,
                                                         "delta_version": view_version}}
    assert manifest["registry_version"] == ref.registry_version == "1.1.0"
    assert manifest["content_sha256"].startswith(ref.snapshot_id)
    assert manifest["duplicates_dropped"] == 0 and manifest["truncated"] == 0


def test_new_data_gives_a_new_snapshot_and_moves_latest(tmp_path: Path) -> None:
    lake = _lake(tmp_path, view_rows(3, 5, seed=5))
    old = take_snapshot(lake, "ES_MODEL")
    later = view_rows(1, 5, seed=6)
    write_view(lake, later.set_column(6, "session_date", pa.array([date(2025, 11, 20)] * 5, pa.date32())))
    new = take_snapshot(lake, "ES_MODEL")

    assert new.snapshot_id != old.snapshot_id and new.rows == 20
    assert latest_snapshot_id(lake, "ES_MODEL") == new.snapshot_id
    assert load_snapshot(lake, "ES_MODEL", old.snapshot_id)[1].num_rows == 15
    assert latest_snapshot_id(lake, "NQ_MODEL") is None


def test_load_returns_rows_in_time_order_and_refuses_corruption(tmp_path: Path) -> None:
    lake = _lake(tmp_path, view_rows(3, 5, seed=7))
    ref = take_snapshot(lake, "ES_MODEL")
    _, table = load_snapshot(lake, "ES_MODEL")
    rows = training_set(table)

    assert len(rows) == 15 and rows.vectors.shape == (15, 144) and rows.vectors.dtype == np.float32
    assert (np.diff(rows.session_dates.astype(np.int64)) >= 0).all()
    assert rows.outcomes.tolist() == [i % 3 for i in range(15)]
    data = ref.path / DATA_FILE
    data.write_bytes(data.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(SourceError, match="corrupt"):
        load_snapshot(lake, "ES_MODEL")


def test_missing_table_rows_or_snapshot_are_one_sentence_errors(tmp_path: Path) -> None:
    empty = Lake(str(tmp_path / "empty"))
    with pytest.raises(SourceError, match="spymaster replay"):
        take_snapshot(empty, "ES_MODEL")
    lake = _lake(tmp_path, view_rows(2, 3, seed=8))
    with pytest.raises(SourceError, match="no labelled rows for model NQ_MODEL"):
        take_snapshot(lake, "NQ_MODEL")
    with pytest.raises(ConfigError, match="spymaster snapshot --model-id ES_MODEL"):
        load_snapshot(lake, "ES_MODEL")


def test_mixed_registry_versions_are_refused(tmp_path: Path) -> None:
    lake = _lake(tmp_path, view_rows(2, 3, seed=9), view_rows(1, 3, seed=10, registry_version="0.9.0"))
    with pytest.raises(SourceError, match="mix feature registry versions 0.9.0, 1.1.0"):
        take_snapshot(lake, "ES_MODEL")
