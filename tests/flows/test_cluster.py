"""Several Bytewax processes on loopback: same tables as one process, one plan, clear failures."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_DEFINITIONS, BRONZE_MANIFEST, BRONZE_MBO, BRONZE_MBO_DLQ, SILVER_BOOK_1S
from flows.cluster import (
    ClusterError,
    ClusterSpec,
    ProcessIdentity,
    child_env,
    plan_once,
    process_command,
    refuse_racing_overwrite,
    run_cluster,
    this_process,
)
from flows.config import load_config
from operators.errors import ConfigError
from tests.conftest import app_config, table_content
from tests.flows.conftest import fault_env, topic_env
from tests.flows.test_crash_safety import assert_same_tables
from tests.flows.test_recovery import ROOT

SPINE = (BRONZE_MBO, BRONZE_MBO_DLQ, BRONZE_DEFINITIONS, SILVER_BOOK_1S)
SPINE_DROP = ("ts_ingest",)


def _cluster_config(inputs: Path, lake: Path, tmp: Path, **extra: str):
    """The reference run's settings (``test_recovery._env``), loaded the way a child loads them."""
    env = {**fault_env(inputs, lake, tmp), **extra}
    return load_config(env), env


@pytest.mark.integration
@pytest.mark.slow
def test_two_processes_give_the_tables_of_one(dirty_inputs: Path, reference_lake: Lake, tmp_path: Path) -> None:
    cfg, env = _cluster_config(dirty_inputs, tmp_path / "lake", tmp_path)
    run = plan_once(cfg)

    run_cluster(run, ClusterSpec(processes=2, workers=1, recovery=tmp_path / "recovery"), env=env,
                logs=tmp_path / "logs")

    assert sorted(p.name for p in (tmp_path / "recovery").glob("part-*.sqlite3")) == ["part-0.sqlite3",
                                                                                     "part-1.sqlite3"]
    logs = [(tmp_path / "logs" / f"process-{k}.log").read_text() for k in (0, 1)]
    assert all("Traceback" not in text for text in logs)
    assert_same_tables(Lake(str(tmp_path / "lake")), reference_lake)


@pytest.mark.integration
@pytest.mark.slow
def test_two_processes_on_a_topic_give_the_tables_of_one(mbo_topic: str, topic_reference_lake: Lake,
                                                         tmp_path: Path) -> None:
    env = topic_env(mbo_topic, tmp_path / "lake", tmp_path)
    run = plan_once(load_config(env))

    run_cluster(run, ClusterSpec(processes=2, workers=1, recovery=tmp_path / "recovery"), env=env,
                logs=tmp_path / "logs")

    assert_same_tables(Lake(str(tmp_path / "lake")), topic_reference_lake)


@pytest.mark.integration
def test_overwrite_is_planned_once_for_all_processes(sample_dir: Path, tmp_path: Path) -> None:
    # one day, the spine only: enough to see generations and duplicates
    cfg, env = _cluster_config(sample_dir, tmp_path / "lake", tmp_path, SPYMASTER_ANALYTICS="0",
                               SPYMASTER_DATES="2025-11-03:2025-11-03")
    run_cluster(plan_once(cfg), ClusterSpec(processes=2), env=env)
    lake = Lake(str(tmp_path / "lake"))
    before = {s.name: table_content(lake, s, SPINE_DROP) for s in SPINE}

    again = plan_once(replace(cfg, run=replace(cfg.run, overwrite=True)))
    run_cluster(again, ClusterSpec(processes=2), env=env)

    assert {f.generation for f in again.plan.files} == {1}
    manifest = lake.read(BRONZE_MANIFEST).to_pylist()
    assert sorted((r["generation"], r["status"]) for r in manifest) == \
        [(0, "complete")] * 3 + [(1, "complete")] * 3 + [(1, "started")] * 3  # one new generation, not two
    for spec in SPINE:
        assert table_content(lake, spec, SPINE_DROP).equals(before[spec.name]), spec.name


def test_a_failing_process_stops_the_cluster_with_one_sentence(sample_dir: Path, tmp_path: Path) -> None:
    run = plan_once(app_config([sample_dir], tmp_path / "lake"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[source\n")

    with pytest.raises(ClusterError) as err:
        run_cluster(run, ClusterSpec(processes=2), env={"PATH": "", "SPYMASTER_CONFIG": str(bad)},
                    logs=tmp_path / "logs")

    message = str(err.value)
    assert message.startswith("process ") and "of 2 exited with code 1" in message
    assert f"config file {bad} is not valid TOML" in message


def test_process_identity_follows_bytewax_run(tmp_path: Path) -> None:
    hostfile = tmp_path / "hostfile.txt"
    hostfile.write_text("spymaster-0.spymaster:9999\nspymaster-1.spymaster:9999\nspymaster-2.spymaster:9999\n")
    pod = {"BYTEWAX_POD_NAME": "spymaster-2", "BYTEWAX_STATEFULSET_NAME": "spymaster",
           "BYTEWAX_HOSTFILE_PATH": str(hostfile)}

    assert this_process(["flows.main"], {}) == ProcessIdentity(0, 1)
    assert this_process(["flows.main", "-w", "2", "-i", "1", "-a", "h:1;h:2"], {}) == ProcessIdentity(1, 2)
    assert this_process(["flows.main"], {"BYTEWAX_PROCESS_ID": "0", "BYTEWAX_ADDRESSES": "a:1;b:2;c:3"}) == \
        ProcessIdentity(0, 3)
    assert this_process(["flows.main"], pod) == ProcessIdentity(2, 3)


def test_overwrite_is_refused_when_each_process_would_plan_it() -> None:
    cfg = load_config({"SPYMASTER_OVERWRITE": "1"})

    refuse_racing_overwrite(cfg, ProcessIdentity(0, 1))
    with pytest.raises(ConfigError, match="spymaster replay --overwrite --plan-only"):
        refuse_racing_overwrite(cfg, ProcessIdentity(1, 2))


def test_children_get_the_plain_bytewax_command_and_the_decided_config(tmp_path: Path) -> None:
    cfg = app_config(["a.dbn.zst", "b.dbn.zst"], tmp_path / "lake")
    cfg = replace(cfg, run=replace(cfg.run, overwrite=True, run_id="r1"))
    spec = ClusterSpec(processes=2, workers=3, recovery=tmp_path / "rec", snapshot_seconds=5)

    cmd = process_command(1, spec, ["127.0.0.1:1", "127.0.0.1:2"])
    (tmp_path / "x.toml").write_text("[lake]\nflush_rows = 5\n")
    env = child_env(cfg, {"SPYMASTER_CONFIG": str(tmp_path / "x.toml")})

    assert cmd[1:] == ["-m", "bytewax.run", "flows.main", "-w", "3", "-i", "1", "-a", "127.0.0.1:1;127.0.0.1:2",
                       "-r", str(tmp_path / "rec"), "-s", "5", "-b", "0"]
    assert env["SPYMASTER_INPUT"] == "a.dbn.zst,b.dbn.zst" and env["SPYMASTER_RUN_ID"] == "r1"
    assert env["SPYMASTER_OVERWRITE"] == "0"
    child = load_config(env)
    assert child.source.inputs == cfg.source.inputs and child.lake.flush_rows == 5 and not child.run.overwrite


def test_plain_entry_point_refuses_overwrite_across_processes(tmp_path: Path) -> None:
    env = {"PATH": "", "SPYMASTER_OVERWRITE": "1", "SPYMASTER_LAKE": str(tmp_path / "lake")}
    done = subprocess.run([sys.executable, "-m", "bytewax.run", "flows.main", "-i", "1", "-a",
                           "127.0.0.1:1;127.0.0.1:2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1
    assert "ConfigError: overwrite with 2 Bytewax processes" in done.stderr


@pytest.mark.integration
def test_the_entry_point_tells_its_sinks_whether_snapshots_are_kept(sample_dir: Path, tmp_path: Path) -> None:
    """A process started as ``bytewax.run flows.main`` (a cluster's child, a pod) without ``-r``
    keeps no snapshot: its Delta sinks must not hold each epoch's end for their commits."""
    probe = ("import sys; sys.argv = ['flows.main', *sys.argv[1:]]; import flows.main as m; "
             "from connectors.delta.sink import DeltaAppendSink; "
             "print(sorted({getattr(s, 'inner', s).snapshots_kept for s in m._run.sinks.by_table.values() "
             "if isinstance(getattr(s, 'inner', s), DeltaAppendSink)}))")
    env = {"PATH": "", "SPYMASTER_INPUT": str(sample_dir), "SPYMASTER_LAKE": str(tmp_path / "lake")}
    kept = {}
    for name, args in (("without -r", []), ("with -r", ["-r", str(tmp_path / "recovery")])):
        done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        kept[name] = done.stdout.strip().splitlines()[-1]
    assert kept == {"without -r": "[False]", "with -r": "[True]"}
