"""The book rebuilt from the simulator's MBO equals the simulator's own true book, everywhere."""

from __future__ import annotations

from pathlib import Path

import databento as db
import numpy as np
import pytest

from connectors.dbn.files import read_mbo_file
from connectors.delta.tables import SILVER_BOOK_1S
from flows.jobs.mbp import top_levels
from operators.records import BOOK_DEPTH


def _truth(sample_dir: Path, mbo: Path) -> np.ndarray:
    return db.DBNStore.from_file(sample_dir / "truth" / mbo.name.replace(".mbo.", ".mbp-10.")).to_ndarray()


def _truth_levels(truth: np.ndarray, side: str, kind: str) -> np.ndarray:
    return np.stack([truth[f"{side}_{kind}_{i:02d}"].astype(np.int64) for i in range(BOOK_DEPTH)], axis=1)


@pytest.mark.parametrize("day", [0, 1])
def test_top10_after_every_f_last_matches_truth(sample_dir: Path, day: int) -> None:
    mbo = sorted(sample_dir.glob("*.mbo.dbn.zst"))[day]
    records, instruments, fault = read_mbo_file(mbo)
    truth = _truth(sample_dir, mbo)

    rows, anomalies = top_levels(records, {i: info.tick for i, info in instruments.items()}, BOOK_DEPTH)

    assert fault is None
    assert len(rows) == len(truth) > 10_000
    assert np.array_equal(rows["ts_recv"], truth["ts_recv"])
    assert np.array_equal(rows["instrument_id"], truth["instrument_id"])
    for side in ("bid", "ask"):
        for kind in ("px", "sz", "ct"):
            got = rows[f"{side}_{kind}"].astype(np.int64)
            assert np.array_equal(got, _truth_levels(truth, side, kind)), (side, kind)
    assert rows["book_valid"].all()
    assert all(not any(counts.values()) for counts in anomalies.values())


def test_silver_seconds_match_truth_at_every_second(sample_dir: Path, tmp_path: Path, replay) -> None:
    mbo = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0]
    defs = mbo.with_name(mbo.name.replace(".mbo.", ".definition."))
    lake = replay([mbo, defs], tmp_path / "lake")
    book = lake.read(SILVER_BOOK_1S).to_pydict()
    truth = _truth(sample_dir, mbo)
    checked = 0
    for iid in np.unique(truth["instrument_id"]):
        mine = truth[truth["instrument_id"] == iid]
        sel = np.flatnonzero(np.asarray(book["instrument_id"]) == iid)
        ts = np.asarray(book["ts_recv"])[sel]
        # the state at second close T is the truth after the last event with ts_recv < T
        at = np.searchsorted(mine["ts_recv"].astype(np.int64), ts, side="left") - 1
        assert (at >= 0).all()
        for side in ("bid", "ask"):
            for kind in ("px", "sz", "ct"):
                expected = _truth_levels(mine, side, kind)[at]
                got = np.stack([np.asarray(book[f"{side}_{kind}_{i:02d}"])[sel] for i in range(BOOK_DEPTH)], axis=1)
                assert np.array_equal(got, expected), (iid, side, kind)
        checked += len(sel)
    assert checked == len(book["ts_recv"]) > 10_000
