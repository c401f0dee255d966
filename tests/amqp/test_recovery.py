"""A bounded run over an event hub, killed midway and resumed with Bytewax recovery, writes every
record exactly once: the partitions resume at their snapshot's next sequence number with their
end kept, and the Delta sink drops what the killed run had already committed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_MANIFEST, BRONZE_MBO
from flows.runner import recovery_config
from replay.publish import publish_files_amqp
from tests.amqp.conftest import amqp_url
from tests.services.eventhubs_amqp import StandIn

ROOT = Path(__file__).resolve().parents[2]


def _commits(lake: Path) -> int:
    log = lake / "bronze" / "mbo" / "_delta_log"
    return len(list(log.glob("*.json"))) if log.exists() else 0


@pytest.mark.integration
@pytest.mark.slow
def test_killed_bounded_run_resumes_without_duplicates(sample_dir: Path, eventhubs: StandIn, tmp_path: Path) -> None:
    day = sorted(p for p in sample_dir.glob("*.dbn.zst") if "20251103" in p.name)
    report = publish_files_amqp(day, eventhubs.connection_string(), "crash", None, window_ms=1_000.0)
    config = tmp_path / "spymaster.toml"
    config.write_text("[source]\nbatch_records = 2048\n[lake]\nflush_rows = 4000\n")
    lake = tmp_path / "lake"
    env = {**os.environ, "SPYMASTER_INPUT": amqp_url(eventhubs, "crash"), "SPYMASTER_KAFKA_STOP_AT_END": "1",
           "EVENTHUBS_CONNECTION_STRING": eventhubs.connection_string(), "SPYMASTER_LAKE": str(lake),
           "SPYMASTER_CONFIG": str(config), "SPYMASTER_RUN_ID": "amqp-recovery", "SPYMASTER_ANALYTICS": "0"}
    recovery = tmp_path / "recovery"
    recovery_config(recovery)
    cmd = [sys.executable, "-m", "bytewax.run", "flows.main", "-r", str(recovery), "-s", "1", "-b", "0"]

    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while _commits(lake) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the flow finished before it could be killed; lower flush_rows"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    killed_at = Lake(str(lake)).read(BRONZE_MBO, ["source"]).num_rows

    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    bronze = Lake(str(lake)).read(BRONZE_MBO, ["source", "source_offset"])
    assert 0 < killed_at < bronze.num_rows == report.by_schema["mbo"]
    keys = pc.binary_join_element_wise(bronze["source"], pc.cast(bronze["source_offset"], "string"), "@")
    assert len(pc.unique(keys)) == bronze.num_rows  # no record written twice
    manifest = Lake(str(lake)).read(BRONZE_MANIFEST).to_pylist()
    assert sorted((m["source"], m["status"]) for m in manifest) == [
        (f"eventhubs:crash/{p}", "complete") for p in range(4)]  # every partition reached its end once
