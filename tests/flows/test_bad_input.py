"""Bad input never stops the flow and is never lost: dead letters and anomaly counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ, SILVER_BOOK_ANOMALIES
from flows.integrity import check_lake
from operators.records import F_LAST, UNDEF_PRICE
from tests.flows.dbn_edit import split_mbo_file, write_mbo_file


def _day(sample_dir: Path, out: Path) -> Path:
    """Copy the first sample day's definitions into ``out``; return where its MBO file goes."""
    out.mkdir(parents=True, exist_ok=True)
    mbo = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    defs = mbo.with_name(mbo.name.replace(".mbo.", ".definition."))
    shutil.copy(defs, out / defs.name)
    return out / mbo.name


def test_truncated_zst_keeps_everything_before_the_cut(sample_dir: Path, tmp_path: Path, replay) -> None:
    target = _day(sample_dir, tmp_path / "in")
    data = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0].read_bytes()
    target.write_bytes(data[: int(len(data) * 0.6)])

    lake = replay([tmp_path / "in"], tmp_path / "lake")

    dlq = lake.read(BRONZE_MBO_DLQ).to_pylist()
    assert [(d["source"], d["reason"]) for d in dlq] == [(f"dbn:{target.name}", "truncated_file")]
    kept = lake.read(BRONZE_MBO, ["source_offset"])["source_offset"].to_numpy()
    assert np.array_equal(np.sort(kept), np.arange(dlq[0]["source_offset"]))
    manifest = {r["source"]: r for r in lake.read(BRONZE_MANIFEST).to_pylist()}[f"dbn:{target.name}"]
    assert (manifest["records"], manifest["faults"], manifest["status"]) == (dlq[0]["source_offset"], 1, "complete")
    assert all(r.ok for r in check_lake(lake))


def test_corrupt_records_become_dead_letters_and_the_rest_is_kept(sample_dir: Path, tmp_path: Path, replay) -> None:
    target = _day(sample_dir, tmp_path / "in")
    header, records = split_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    adds = np.flatnonzero((records["action"] == b"A") & ((records["flags"] & 32) == 0))
    broken = {int(adds[10]): "unknown_rtype", int(adds[20]): "bad_length", int(adds[30]): "undef_price",
              int(adds[40]): "zero_size", int(adds[50]): "unknown_instrument"}
    i = iter(broken)
    records[next(i)]["rtype"] = 0x77
    records[next(i)]["length"] = 3
    records[next(i)]["price"] = UNDEF_PRICE
    records[next(i)]["size"] = 0
    records[next(i)]["instrument_id"] = 999
    write_mbo_file(target, header, records)

    lake = replay([tmp_path / "in"], tmp_path / "lake")

    dlq = sorted((d["source_offset"], d["reason"]) for d in lake.read(BRONZE_MBO_DLQ).to_pylist())
    assert dlq == sorted(broken.items())
    assert lake.read(BRONZE_MBO).num_rows == len(records) - len(broken)
    raw = {d["source_offset"]: d["raw"] for d in lake.read(BRONZE_MBO_DLQ).to_pylist()}
    assert all(raw[i] == records[i : i + 1].tobytes() for i in broken)


def test_cancel_of_unknown_order_is_counted_not_fatal(sample_dir: Path, tmp_path: Path, replay) -> None:
    target = _day(sample_dir, tmp_path / "in")
    header, records = split_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    at = int(np.flatnonzero((records["action"] == b"C") & ((records["flags"] & 32) == 0))[100])
    ghost = records[at : at + 1].copy()
    ghost["order_id"] = 123_456_789_000
    ghost["flags"] = F_LAST
    write_mbo_file(target, header, np.concatenate([records[:at], ghost, records[at:]]))

    lake = replay([tmp_path / "in"], tmp_path / "lake")

    anomalies = {(r["contract_id"], r["anomaly"]): r["count"] for r in lake.read(SILVER_BOOK_ANOMALIES).to_pylist()}
    contract = "ESZ5" if int(ghost["instrument_id"][0]) == 42140864 else "ESH6"
    assert anomalies == {(contract, "cancel_unknown"): 1}
    assert lake.read(BRONZE_MBO).num_rows == len(records) + 1
    assert all(r.ok for r in check_lake(lake))


def test_missing_input_is_one_clear_sentence(tmp_path: Path, replay) -> None:
    from operators.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        replay([tmp_path / "nope.dbn.zst"], tmp_path / "lake")
