"""Level analytics on the simulated sample, checked against independent recomputations."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.delta.tables import GOLD_LABELS, SILVER_LEVEL_APPROACH, SILVER_SESSION_LEVELS
from flows.jobs.integrity import reference_labels


@pytest.fixture(name="lake", scope="module")
def fixture_lake(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from flows.app import prepare
    from flows.runner import run_flow
    from tests.conftest import app_config

    prepared = prepare(app_config([sample_dir], tmp_path_factory.mktemp("lake")))
    run_flow(prepared, workers=1)
    return prepared.lake


def test_labels_agree_with_a_brute_force_reference_for_every_episode(lake) -> None:
    expected = reference_labels(lake)  # operators.labels.label_reference: plain loops, no shared code
    labels = {r["episode_id"]: r for r in lake.read(GOLD_LABELS).to_pylist()}
    episodes = {e["episode_id"] for e in lake.read(SILVER_LEVEL_APPROACH).to_pylist()}
    assert len(episodes) >= 5 and set(labels) == episodes == set(expected)
    for episode, ref in expected.items():
        got = labels[episode]
        assert (got["outcome"], got["resolved_ts"], got["truncated"]) == (ref["outcome"], ref["resolved_ts"],
                                                                           ref["truncated"])
        assert got["mfe_ticks"] == pytest.approx(ref["mfe_ticks"])
        assert got["mae_ticks"] == pytest.approx(ref["mae_ticks"])


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


def test_check_catches_a_wrong_or_missing_label(lake, tmp_path) -> None:
    import shutil

    from connectors.delta.lake import Lake
    from flows.jobs.integrity import labels_consistent_with_prices

    assert labels_consistent_with_prices(lake).ok
    copy = Lake(str(shutil.copytree(lake.root, tmp_path / "lake")))
    victim = copy.read(GOLD_LABELS, ["episode_id"])["episode_id"][0].as_py()
    table = copy.open(GOLD_LABELS)
    assert table is not None
    table.update({"outcome": "'BREAK'", "resolved_ts": "resolved_ts + 1"}, predicate=f"episode_id = '{victim}'")
    result = labels_consistent_with_prices(copy)
    assert not result.ok and "1 labels inconsistent" in result.detail
