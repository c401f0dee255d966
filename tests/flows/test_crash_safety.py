"""SIGKILL at random points, resume with recovery: the tables equal an uninterrupted run.

``test_recovery`` kills at two fixed points; here a seeded RNG picks the points (a number of
commits into a random table, plus a random delay so the kill can land mid-commit, or a plain
delay after start), over inputs that also produce dead letters, and every table is compared,
the DLQ and the manifest included. Equality of the sorted contents means no row is missing and
none is duplicated; the Bronze key check says which, if one ever is.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import ALL_TABLES, BRONZE_MBO
from flows.jobs.integrity import check_lake
from flows.runner import recovery_config
from tests.conftest import lake_differences
from tests.flows.conftest import fault_env, topic_env
from tests.flows.test_recovery import ROOT, _commits, _flow_cmd, _run_to_end

KILL_TABLES = ("bronze/mbo", "bronze/mbo_dlq", "silver/book_snapshot_1s", "silver/bar_5s", "gold/feature_series")
WALL_CLOCK = ("ts_ingest", "run_id", "scored_at", "latency_ms")


@dataclass(frozen=True, slots=True)
class KillPoint:
    table: str | None
    """Kill once this table has ``commits`` more commits than at start; None: after ``delay`` only."""
    commits: int
    delay: float


def kill_points(seed: int, n: int) -> list[KillPoint]:
    rng = random.Random(seed)
    points = [KillPoint(rng.choice(KILL_TABLES), rng.randint(1, 2), rng.uniform(0.0, 0.4)) for _ in range(n - 1)]
    points.insert(rng.randrange(n), KillPoint(None, 0, rng.uniform(3.0, 6.0)))
    return points


def run_until_killed(env: dict[str, str], recovery: Path, lake: Path, point: KillPoint) -> bool:
    """Start the flow, SIGKILL it at ``point``; False if it finished before the point came."""
    proc = subprocess.Popen(_flow_cmd(recovery), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if point.table is not None:
            target = _commits(lake, point.table) + point.commits
            deadline = time.monotonic() + 120
            while _commits(lake, point.table) < target and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        end = time.monotonic() + point.delay
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.005)
        if proc.poll() is not None:
            assert proc.returncode == 0, f"the flow failed on its own with {proc.returncode}"
            return False
        os.kill(proc.pid, signal.SIGKILL)
        return True
    finally:
        proc.wait(timeout=30)


def assert_same_tables(got: Lake, want: Lake) -> None:
    keys = got.read(BRONZE_MBO, ["source", "source_offset"])
    unique = keys.group_by(["source", "source_offset"]).aggregate([]).num_rows
    assert unique == keys.num_rows, f"{keys.num_rows - unique} duplicated Bronze rows"
    differences = lake_differences(got, want, ALL_TABLES, WALL_CLOCK)
    assert not differences, "\n".join(differences)


@pytest.mark.integration
@pytest.mark.parametrize("seed", [20261122])
@pytest.mark.slow
def test_random_sigkills_then_resume_give_identical_tables(dirty_inputs: Path, reference_lake: Lake,
                                                           tmp_path: Path, seed: int) -> None:
    lake_dir, recovery = tmp_path / "lake", tmp_path / "recovery"
    env = fault_env(dirty_inputs, lake_dir, tmp_path)
    recovery_config(recovery)
    points = kill_points(seed, 4)

    killed = [run_until_killed(env, recovery, lake_dir, p) for p in points]
    partial = Lake(str(lake_dir)).count(BRONZE_MBO)
    _run_to_end(env, recovery)

    resumed = Lake(str(lake_dir))
    assert sum(killed) >= 3, (points, killed)
    assert partial > 0
    assert_same_tables(resumed, reference_lake)
    assert all(r.ok for r in check_lake(resumed)), check_lake(resumed)


@pytest.mark.integration
@pytest.mark.parametrize("seed", [7])
@pytest.mark.slow
def test_random_sigkills_on_the_topic_source_then_resume_give_identical_tables(
        mbo_topic: str, topic_reference_lake: Lake, tmp_path: Path, seed: int) -> None:
    lake_dir, recovery = tmp_path / "lake", tmp_path / "recovery"
    env = topic_env(mbo_topic, lake_dir, tmp_path)
    recovery_config(recovery)
    points = kill_points(seed, 3)

    killed = [run_until_killed(env, recovery, lake_dir, p) for p in points]
    _run_to_end(env, recovery)

    assert sum(killed) >= 2, (points, killed)
    assert_same_tables(Lake(str(lake_dir)), topic_reference_lake)
