"""A run killed midway and resumed gives exactly the tables of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import ALL_TABLES, BRONZE_MANIFEST, BRONZE_MBO, SILVER_SESSION_SUMMARY
from flows.jobs.integrity import check_lake
from flows.runner import recovery_config
from tests.conftest import lake_differences

ROOT = Path(__file__).resolve().parents[2]
COMPARED = [s for s in ALL_TABLES if s is not BRONZE_MANIFEST]


def _env(sample_dir: Path, lake: Path, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "spymaster.toml"
    config.write_text("[source]\nbatch_records = 4096\n[lake]\nflush_rows = 20000\n")
    return {**os.environ, "SPYMASTER_INPUT": str(sample_dir), "SPYMASTER_LAKE": str(lake),
            "SPYMASTER_CONFIG": str(config), "SPYMASTER_RUN_ID": "recovery-test"}


def _flow_cmd(recovery: Path | None, snapshot_s: int = 1) -> list[str]:
    cmd = [sys.executable, "-m", "bytewax.run", "flows.main"]
    return cmd + (["-r", str(recovery), "-s", str(snapshot_s), "-b", "0"] if recovery else [])


def _commits(lake: Path, table: str = "bronze/mbo") -> int:
    log = lake / table / "_delta_log"
    return len(list(log.glob("*.json"))) if log.exists() else 0


def _run_and_kill(env: dict[str, str], recovery: Path | None, lake: Path, after_commits: int,
                  table: str = "bronze/mbo") -> None:
    proc = subprocess.Popen(_flow_cmd(recovery), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _commits(lake, table) < after_commits and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the flow finished before it could be killed; lower flush_rows"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)


def _run_to_end(env: dict[str, str], recovery: Path | None) -> None:
    done = subprocess.run(_flow_cmd(recovery), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(name="uninterrupted", scope="module")
def fixture_uninterrupted(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    tmp = tmp_path_factory.mktemp("whole")
    _run_to_end(_env(sample_dir, tmp / "lake", tmp), None)
    return Lake(str(tmp / "lake"))


@pytest.mark.integration
@pytest.mark.parametrize("with_recovery", [True, False], ids=["bytewax-recovery", "lake-only"])
@pytest.mark.slow
def test_killed_run_resumes_to_identical_tables(sample_dir: Path, tmp_path: Path, uninterrupted: Lake,
                                                with_recovery: bool) -> None:
    lake_dir = tmp_path / "lake"
    env = _env(sample_dir, lake_dir, tmp_path)
    recovery = tmp_path / "recovery" if with_recovery else None
    if recovery is not None:
        recovery_config(recovery)
    _run_and_kill(env, recovery, lake_dir, after_commits=4)
    killed_at = Lake(str(lake_dir)).read(BRONZE_MBO, ["source"]).num_rows

    # the second kill comes after a file was finished, so the resumed run skips it (and its
    # recovery state must still line up with the partitions)
    _run_and_kill(env, recovery, lake_dir, after_commits=_commits(lake_dir, "bronze/raw_manifest") + 1,
                  table="bronze/raw_manifest")
    _run_to_end(env, recovery)

    resumed = Lake(str(lake_dir))
    assert 0 < killed_at < resumed.read(BRONZE_MBO, ["source"]).num_rows
    differences = lake_differences(resumed, uninterrupted, COMPARED)
    assert not differences, "\n".join(differences)
    assert all(r.ok for r in check_lake(resumed)), check_lake(resumed)


def _manifest_names(lake: Path) -> str:
    log = lake / "bronze/raw_manifest/_delta_log"
    return "".join(f.read_text() for f in log.glob("*.json")) if log.exists() else ""


def _kill_when(env: dict[str, str], recovery: Path, *moments: Callable[[], bool], snapshot_s: int = 1) -> None:
    """Run the flow and SIGKILL it as soon as each of ``moments`` has come true, in turn (polled
    every millisecond or so; a targeted kill finds a narrow window where random ones rarely do)."""
    proc = subprocess.Popen(_flow_cmd(recovery, snapshot_s=snapshot_s), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        for moment in moments:
            while not moment() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
        assert proc.poll() is None, "the flow finished before the moment to kill it came"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)


@pytest.mark.integration
@pytest.mark.slow
def test_a_kill_right_after_the_prior_sessions_file_finished_loses_no_session(sample_dir: Path, tmp_path: Path,
                                                                              uninterrupted: Lake) -> None:
    """At the last snapshot the second day's sessions were open and waiting for the first day's
    summaries; the first day's file then finished and the process was killed before the next
    snapshot. The resumed plan skips that file, so the resumed prior-session join must release
    the waiting sessions itself from the stored summaries. It used to drop those releases, and the
    run ended without those contract-sessions' levels, episodes, labels, vectors and scores.
    A 2 s snapshot interval makes the window wide enough: the previous build failed 4 of 5 runs."""
    lake_dir = tmp_path / "lake"
    env = _env(sample_dir, lake_dir, tmp_path)
    recovery = tmp_path / "recovery"
    recovery_config(recovery)
    first_day = sorted(sample_dir.glob("*.mbo.dbn.zst"))[0].name
    _kill_when(env, recovery, lambda: first_day in _manifest_names(lake_dir), snapshot_s=2)
    _run_to_end(env, recovery)

    differences = lake_differences(Lake(str(lake_dir)), uninterrupted, COMPARED)
    assert not differences, "\n".join(differences)


@pytest.fixture(name="two_day_topic", scope="module")
def fixture_two_day_topic(sample_dir: Path, kafka_broker) -> str:
    """Both sample days published once on a 4-partition topic: a session boundary passes on every
    contract's partition, which the one-day topics of the other tests never show."""
    from replay.publish import publish_files

    report = publish_files([str(sample_dir / "*.dbn.zst")], kafka_broker.bootstrap, "mbo_two_days", None,
                           partitions=4)
    assert report.failed == 0 and report.records > 0
    return f"kafka://{kafka_broker.bootstrap}/mbo_two_days"


@pytest.mark.integration
@pytest.mark.slow
def test_a_kill_right_after_a_session_boundary_on_the_topic_loses_no_session(two_day_topic: str,
                                                                              tmp_path: Path) -> None:
    """The topic source's form of the test above: no file is ever finished, so what the resumed
    prior-session join must get right is a first day that closed (its summary durable in the
    lake, read as a stored summary at the restart) after the snapshot the run resumes from, whose
    records then come again from the topic. Killed as soon as the first summary is durable."""
    def env_of(lake: Path, tmp: Path) -> dict[str, str]:
        return {**_env(Path("unused"), lake, tmp), "SPYMASTER_INPUT": two_day_topic, "SPYMASTER_KAFKA_STOP_AT_END": "1"}

    whole = tmp_path / "whole"
    whole.mkdir()
    _run_to_end(env_of(whole / "lake", whole), None)
    want = Lake(str(whole / "lake"))
    assert want.count(SILVER_SESSION_SUMMARY) == 4  # two contracts, two sessions: the boundary passed

    lake_dir, recovery = tmp_path / "lake", tmp_path / "recovery"
    env = env_of(lake_dir, tmp_path)
    recovery_config(recovery)
    _kill_when(env, recovery, lambda: _commits(lake_dir, "silver/session_summary") >= 1, snapshot_s=2)
    assert Lake(str(lake_dir)).count(SILVER_SESSION_SUMMARY) < 4
    _run_to_end(env, recovery)

    differences = lake_differences(Lake(str(lake_dir)), want, ALL_TABLES)
    assert not differences, "\n".join(differences)


def _store_stamp(recovery: Path) -> float:
    return max((f.stat().st_mtime_ns for f in recovery.glob("*")), default=0)


@pytest.mark.integration
@pytest.mark.slow
def test_a_kill_right_after_a_snapshot_loses_no_teed_row_from_table_or_topic(sample_dir: Path, tmp_path: Path,
                                                                           uninterrupted: Lake, kafka_broker) -> None:
    """``gold.feature_series`` teed to a topic, killed as soon as a snapshot is written, then
    resumed: the lake equals an uninterrupted run and the topic holds every row at least once.
    The whole tee path across a crash: the carry it passes through, the carried rows published
    before they are committed, the commits gated on delivery. (The dropped carry this guards
    against is reproduced by ``tests/connectors/test_topic_tee.py``; here the sample's small
    commits usually land before the kill, and the previous build passed 3 runs of 3.)"""
    import json

    from connectors.delta.tables import GOLD_FEATURE_SERIES
    from tests.connectors.test_kafka_outputs import _canonical, _consume_all, _jsonable

    kafka_broker.create_topic("features_gold_kill", 4)
    lake_dir, recovery = tmp_path / "lake", tmp_path / "recovery"
    env = {**_env(sample_dir, lake_dir, tmp_path), "SPYMASTER_OUTPUT_BOOTSTRAP": kafka_broker.bootstrap,
           "SPYMASTER_OUTPUT_TOPICS": f"{GOLD_FEATURE_SERIES.name}=features_gold_kill"}
    recovery_config(recovery)
    seen: list[float] = []

    def teed_rows_committed() -> bool:
        if _commits(lake_dir, "gold/feature_series") < 2:
            return False
        seen.append(_store_stamp(recovery))
        return True

    _kill_when(env, recovery, teed_rows_committed, lambda: _store_stamp(recovery) != seen[0])
    _run_to_end(env, recovery)

    resumed = Lake(str(lake_dir))
    differences = lake_differences(resumed, uninterrupted, COMPARED)
    assert not differences, "\n".join(differences)
    rows = [json.loads(m.value()) for m in _consume_all(kafka_broker.bootstrap, "features_gold_kill", 4)]
    delta = json.loads(json.dumps([_jsonable(r) for r in resumed.read(GOLD_FEATURE_SERIES).to_pylist()]))
    assert set(_canonical(rows, ("ts_ingest",))) == set(_canonical(delta, ("ts_ingest",)))  # each at least once


@pytest.mark.integration
@pytest.mark.slow
def test_a_killed_run_with_option_chains_resumes_to_identical_tables(tmp_path: Path) -> None:
    """The chain step (option books, tops, GEX state, pending quotes) and the episodes that wait
    for it (their chain profiles and watermark) come back from a snapshot as they were: a run
    killed twice and resumed writes exactly the uninterrupted run's tables, vectors included."""
    from replay.synth import write_sample

    sample = write_sample(tmp_path / "in", days=2, seed=5, events_per_day=30_000, truth=False, options=True).out_dir
    whole = tmp_path / "whole"
    whole.mkdir()
    _run_to_end(_env(sample, whole / "lake", whole), None)
    lake_dir = tmp_path / "lake"
    env = _env(sample, lake_dir, tmp_path)
    recovery = tmp_path / "recovery"
    recovery_config(recovery)
    _run_and_kill(env, recovery, lake_dir, after_commits=3, table="silver/gex_surface_1s")
    _run_and_kill(env, recovery, lake_dir, after_commits=_commits(lake_dir, "bronze/raw_manifest") + 1,
                  table="bronze/raw_manifest")
    _run_to_end(env, recovery)

    resumed, uninterrupted = Lake(str(lake_dir)), Lake(str(whole / "lake"))
    assert uninterrupted.read(BRONZE_MBO, ["source"]).num_rows > 100_000
    differences = lake_differences(resumed, uninterrupted, COMPARED)
    assert not differences, "\n".join(differences)
