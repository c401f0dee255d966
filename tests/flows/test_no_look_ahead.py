"""No look-ahead: what happens after an episode starts cannot change its vector or feature hash."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from connectors.delta.tables import GOLD_SETUP_VECTORS, SILVER_LEVEL_APPROACH
from operators.records import F_LAST
from tests.flows.dbn_edit import split_mbo_file, write_mbo_file


def _copy_sample(sample_dir: Path, out: Path) -> list[Path]:
    out.mkdir(parents=True)
    for path in sorted(sample_dir.glob("*.dbn.zst")):
        shutil.copy(path, out / path.name)
    return sorted(out.glob("*.mbo.dbn.zst"))


def _vectors(lake) -> dict[str, tuple[list[float], str, int]]:
    return {r["episode_id"]: (r["feature_vector"], r["feature_hash"], r["vector_time"])
            for r in lake.read(GOLD_SETUP_VECTORS).to_pylist()}


@pytest.mark.parametrize("tamper", ["delete", "change"])
def test_records_after_an_episode_start_do_not_touch_its_vector(sample_dir: Path, tmp_path: Path, replay,
                                                                  tamper: str) -> None:
    original = replay([sample_dir], tmp_path / "original")
    episodes = sorted(original.read(SILVER_LEVEL_APPROACH).to_pylist(), key=lambda e: e["start_ts"])
    last_day = max(e["session_date"] for e in episodes)
    on_last_day = [e for e in episodes if e["session_date"] == last_day]
    assert len(on_last_day) >= 2
    cut = on_last_day[len(on_last_day) // 2]["start_ts"]  # the state at `cut` is the last thing it may see

    mbo = _copy_sample(sample_dir, tmp_path / "tampered")[-1]
    header, records = split_mbo_file(mbo)
    # everything received at or after `cut` is after the episode's state (which is "before cut")
    later = records["ts_recv"].astype(np.int64) >= cut
    first_later = int(np.argmax(later))
    assert later.any() and records["flags"][first_later - 1] & F_LAST
    if tamper == "delete":
        records = records[:first_later]
    else:
        records = records.copy()
        records["size"][first_later:] = records["size"][first_later:] * 3 + 1
        records["price"][first_later:] += 40 * 250_000_000 * (records["side"][first_later:] == b"A")
    write_mbo_file(mbo, header, records)
    tampered = replay([tmp_path / "tampered"], tmp_path / "tampered-lake")

    before, after = _vectors(original), _vectors(tampered)
    kept = [e["episode_id"] for e in episodes if e["start_ts"] <= cut]
    assert kept and all(e in after for e in kept)
    for episode in kept:
        assert after[episode][1] == before[episode][1]
        assert np.array_equal(np.asarray(after[episode][0], np.float32), np.asarray(before[episode][0], np.float32))
