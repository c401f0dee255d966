"""Bad input never stops the flow and is never lost: dead letters and anomaly counts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zstandard

from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ, SILVER_BOOK_ANOMALIES
from flows.jobs.accounting import account_for_file
from flows.jobs.integrity import check_lake
from operators.records import F_LAST, UNDEF_PRICE
from operators.sessions import trade_date_of
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
    cut = data[: int(len(data) * 0.6)]
    target.write_bytes(cut)

    lake = replay([tmp_path / "in"], tmp_path / "lake")

    dlq = sorted(lake.read(BRONZE_MBO_DLQ).to_pylist(), key=lambda d: d["source_offset"])
    assert [(d["source"], d["reason"]) for d in dlq] == [(f"dbn:{target.name}", "truncated_file"),
                                                         (f"dbn:{target.name}", "truncated_compression")]
    partial, tail = dlq[0]["raw"], dlq[1]["raw"]
    assert cut.endswith(tail) and 0 < len(partial) < 56
    decoded = zstandard.ZstdDecompressor().decompressobj().decompress(cut[: len(cut) - len(tail)])
    header, records = split_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    whole = dlq[0]["source_offset"]
    assert decoded == header + records[:whole].tobytes() + partial  # every decoded byte is a row or the partial record
    kept = lake.read(BRONZE_MBO, ["source_offset"])["source_offset"].to_numpy()
    assert np.array_equal(np.sort(kept), np.arange(whole))
    manifest = {r["source"]: r for r in lake.read(BRONZE_MANIFEST).to_pylist()}[f"dbn:{target.name}"]
    assert (manifest["records"], manifest["faults"], manifest["status"]) == (whole, 2, "complete")
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


# --- issue 15: damage inside a file never stops the flow, and every byte is kept --------------


def _damaged_day(sample_dir: Path, tmp_path: Path, body: bytes) -> tuple[Path, bytes, np.ndarray]:
    """The first sample day with its MBO records replaced by ``body``: (file, header, records)."""
    target = _day(sample_dir, tmp_path / "in")
    header, records = split_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    write_mbo_file(target, header, body)
    return target, header, records


def _manifest(lake, target: Path) -> dict:
    return {r["source"]: r for r in lake.read(BRONZE_MANIFEST).to_pylist()}[f"dbn:{target.name}"]


@pytest.mark.parametrize("where", ["appended", "inserted"])
def test_garbage_inside_a_file_is_one_dead_letter_and_every_record_lands(
        sample_dir: Path, tmp_path: Path, replay, where: str) -> None:
    _, records = split_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    garbage = np.random.default_rng(15).bytes(1_000)
    at = len(records) if where == "appended" else len(records) // 2
    target, _, _ = _damaged_day(sample_dir, tmp_path, records[:at].tobytes() + garbage + records[at:].tobytes())

    lake = replay([tmp_path / "in"], tmp_path / "lake")  # used to end in OverflowError at manifest_rows

    dlq = [(d["source_offset"], d["reason"], d["raw"]) for d in lake.read(BRONZE_MBO_DLQ).to_pylist()]
    assert dlq == [(at, "garbage", garbage)]
    assert lake.read(BRONZE_MBO).num_rows == len(records)
    manifest = _manifest(lake, target)
    day = trade_date_of(int(records["ts_recv"][0]))
    assert (manifest["records"], manifest["faults"], manifest["session_dates"]) == (len(records), 1, [day])
    assert account_for_file(lake, target).problems == ()
    assert all(r.ok for r in check_lake(lake))


def test_damaged_timestamps_are_dead_letters_not_sessions(sample_dir: Path, tmp_path: Path, replay) -> None:
    _, records = split_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    trades = np.flatnonzero(records["action"] == b"T")  # trades do not touch the book
    far, beyond = int(trades[10]), int(trades[20])
    records[far]["ts_recv"] += np.uint64(400 * 86_400 * 10**9)  # a plausible time, but not this file's
    records[beyond]["ts_recv"] = np.uint64(2**63 + 5)  # a day centuries away
    target, _, _ = _damaged_day(sample_dir, tmp_path, records.tobytes())

    lake = replay([tmp_path / "in"], tmp_path / "lake")

    dlq = sorted((d["source_offset"], d["reason"]) for d in lake.read(BRONZE_MBO_DLQ).to_pylist())
    assert dlq == [(far, "bad_timestamp"), (beyond, "bad_timestamp")]
    assert _manifest(lake, target)["session_dates"] == [trade_date_of(int(records["ts_recv"][0]))]
    assert account_for_file(lake, target).problems == ()


def _recoverable_prefix(data: bytes) -> bytes:
    """What a streaming zstd decoder gives before it reports the damage (``zstd -dc``'s output)."""
    dobj, out = zstandard.ZstdDecompressor().decompressobj(), []
    try:
        for k in range(0, len(data), 1_024):
            out.append(dobj.decompress(data[k : k + 1_024]))
    except zstandard.ZstdError:
        return b"".join(out)
    raise AssertionError("the damage did not make zstd fail")


def test_damaged_zst_lands_every_record_before_the_damage(sample_dir: Path, tmp_path: Path, replay) -> None:
    target = _day(sample_dir, tmp_path / "in")
    data = bytearray(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0].read_bytes())
    for k in range(5):  # a few bytes in the middle of the first third of the compressed file
        data[int(len(data) * 0.2) + k] ^= 0x5A
    target.write_bytes(bytes(data))
    header, records = split_mbo_file(sorted(sample_dir.glob("*.mbo.dbn.zst"))[0])
    whole = (len(_recoverable_prefix(bytes(data))) - len(header)) // 56
    assert 0 < whole < len(records)

    lake = replay([tmp_path / "in"], tmp_path / "lake")  # used to land nothing: one bad_header at offset 0

    kept = np.sort(lake.read(BRONZE_MBO, ["source_offset"])["source_offset"].to_numpy())
    assert np.array_equal(kept, np.arange(whole))
    dlq = sorted(lake.read(BRONZE_MBO_DLQ).to_pylist(), key=lambda d: d["source_offset"])
    assert [(d["source_offset"], d["reason"]) for d in dlq][-1] == (len(dlq) - 1 + whole, "corrupt_compression")
    assert f"whole records before them: {whole:,}" in dlq[-1]["detail"]
    assert bytes(data).endswith(dlq[-1]["raw"])
    assert account_for_file(lake, target).problems == ()
