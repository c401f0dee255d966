"""Level analytics on the simulated sample, checked against independent recomputations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from connectors.delta.tables import GOLD_LABELS, SILVER_BOOK_1S, SILVER_LEVEL_APPROACH, SILVER_SESSION_LEVELS
from operators.labels import OUTCOMES, LABEL_EPISODE_DTYPE, LabelParams, label_reference


@pytest.fixture(name="lake", scope="module")
def fixture_lake(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    prepared = prepare(app_config([sample_dir], tmp_path_factory.mktemp("lake")))
    run_flow(prepared, workers=1)
    return prepared.lake


def test_labels_agree_with_a_brute_force_reference_for_every_episode(lake) -> None:
    book = lake.read(SILVER_BOOK_1S, ["instrument_id", "session_date", "ts_recv", "mid_px"])
    episodes = lake.read(SILVER_LEVEL_APPROACH).to_pylist()
    labels = {r["episode_id"]: r for r in lake.read(GOLD_LABELS).to_pylist()}
    assert len(episodes) >= 5 and set(labels) == {e["episode_id"] for e in episodes}
    checked = 0
    for (iid, day) in sorted({(e["instrument_id"], e["session_date"]) for e in episodes}):
        mine = [e for e in episodes if (e["instrument_id"], e["session_date"]) == (iid, day)]
        mine.sort(key=lambda e: (e["start_ts"], e["episode_id"]))
        rows = book.filter(pc.and_(pc.equal(book["instrument_id"], iid), pc.equal(book["session_date"], day)))
        rows = rows.sort_by("ts_recv")
        eps = np.zeros(len(mine), LABEL_EPISODE_DTYPE)
        eps["key"] = np.arange(len(mine))
        eps["start_ts"] = [e["start_ts"] for e in mine]
        eps["level_price"] = [e["level_price"] for e in mine]
        eps["direction"] = [1 if e["direction"] == "UP" else -1 for e in mine]
        eps["start_mid"] = [e["start_mid"] for e in mine]
        expected = label_reference(rows["ts_recv"].to_numpy(), rows["mid_px"].to_numpy(), eps, LabelParams())
        for ref in expected:
            got = labels[mine[int(ref["key"])]["episode_id"]]
            assert got["outcome"] == OUTCOMES[int(ref["outcome"])]
            assert got["resolved_ts"] == int(ref["resolved_ts"])
            assert got["mfe_ticks"] == pytest.approx(float(ref["mfe_ticks"]))
            assert got["mae_ticks"] == pytest.approx(float(ref["mae_ticks"]))
            assert got["truncated"] == bool(ref["truncated"])
            checked += 1
    assert checked == len(episodes)


def test_no_episode_starts_before_its_level_is_known_or_outside_the_setup_window(lake) -> None:
    episodes = lake.read(SILVER_LEVEL_APPROACH).to_pylist()
    assert all(e["start_ts"] >= e["level_known_ts"] for e in episodes)
    assert {e["time_bucket"] for e in episodes} <= {0, 1, 2, 3, 4}


def test_levels_say_what_is_missing(lake) -> None:
    levels = lake.read(SILVER_SESSION_LEVELS).to_pylist()
    first_day = min(r["session_date"] for r in levels)
    for r in levels:
        if r["session_date"] == first_day and r["level_type"] in ("PDH", "PDL"):
            assert (r["status"], r["detail"], r["price"]) == ("missing", "no prior session", None)
        elif r["session_date"] > first_day:
            assert r["status"] == "ok" and r["price"] > 0 and r["prior_session_date"] < r["session_date"]
