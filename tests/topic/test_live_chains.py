"""Option chains from a topic: an ES day with its options published to a topic of several
partitions, read in bounded mode, gives the same option tops, GEX surface and GEX summary as the
replay of its files, whatever partition each option landed on (``flows.steps.option_relay``) and
at one worker or two, and the same setup vectors, options block included. Tailed (no end), the
flow writes the same chain rows while it runs."""

from __future__ import annotations

import subprocess
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import CHAIN_TABLES, GOLD_SETUP_VECTORS, SILVER_GEX_SUMMARY_1S, SILVER_OPTIONS_TOP_1S
from operators.vectors.layout import OPTIONS_BLOCK
from replay.synth import SampleManifest, write_sample
from tests.conftest import app_config, table_content

VARYING = ("ts_ingest", "source", "stream", "data_version")


def _run(cfg, workers: int = 1) -> Lake:  # noqa: ANN001 - an AppConfig
    from flows.app import prepare
    from flows.runner import run_flow

    prepared = prepare(cfg)
    run_flow(prepared, workers=workers)
    return prepared.lake


def _published(sample: SampleManifest) -> list[Path]:
    return sorted(p for p in sample.out_dir.glob("*.dbn.zst") if ".truth." not in p.name and "approach" not in p.name)


@pytest.fixture(name="es_day", scope="module")
def fixture_es_day(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return write_sample(tmp_path_factory.mktemp("es-chain"), days=1, seed=3, events_per_day=10_000, truth=False,
                        options=True)


@pytest.fixture(name="es_file_lake", scope="module")
def fixture_es_file_lake(es_day: SampleManifest, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return _run(app_config(_published(es_day), tmp_path_factory.mktemp("es-files")))


@pytest.mark.integration
@pytest.mark.parametrize("workers", [1, 2])
def test_a_bounded_topic_read_builds_the_chains_of_the_files(es_day: SampleManifest, es_file_lake: Lake,
                                                             kafka_broker, tmp_path: Path, workers: int) -> None:
    from replay.publish import publish_files

    topic = f"chain_{uuid.uuid4().hex[:8]}"
    report = publish_files([str(p) for p in _published(es_day)], kafka_broker.bootstrap, topic, None, partitions=3)
    cfg = app_config([f"kafka://{kafka_broker.bootstrap}/{topic}"], tmp_path / "lake")
    lake = _run(replace(cfg, source=replace(cfg.source, kafka_stop_at_end=True)), workers)

    assert report.failed == 0
    assert es_file_lake.count(SILVER_OPTIONS_TOP_1S) > 5_000 and es_file_lake.count(SILVER_GEX_SUMMARY_1S) > 100
    for spec in (*CHAIN_TABLES, GOLD_SETUP_VECTORS):
        want = table_content(es_file_lake, spec, VARYING)
        assert table_content(lake, spec, VARYING).equals(want), spec.name
    vectors = np.array(lake.read(GOLD_SETUP_VECTORS, ["feature_vector"])["feature_vector"].to_pylist())
    assert len(vectors) >= 5 and vectors[:, -OPTIONS_BLOCK:].any(axis=1).all()  # every episode reads the chain


@pytest.mark.integration
def test_a_tailing_flow_writes_the_chains_while_it_runs(es_day: SampleManifest, es_file_lake: Lake,
                                                        kafka_broker, tmp_path: Path) -> None:
    """No end of input: the chain's seconds go out as every partition's event time passes them
    (the data's last records, then the idle partitions' ticks). Up to the files' last row the
    tailed run writes the files' rows; after it the idle topic moves the futures on with the wall
    clock (``SourceTick``), so the chain prices carried seconds a replay never has."""
    import pyarrow.compute as pc

    from replay.publish import publish_files
    from tests.flows.conftest import topic_env
    from tests.flows.test_recovery import ROOT, _flow_cmd

    topic = f"chain_tail_{uuid.uuid4().hex[:8]}"
    publish_files([str(p) for p in _published(es_day)], kafka_broker.bootstrap, topic, None, partitions=3)
    env = {**topic_env(f"kafka://{kafka_broker.bootstrap}/{topic}", tmp_path / "lake", tmp_path),
           "SPYMASTER_KAFKA_STOP_AT_END": "0", "SPYMASTER_ANALYTICS": "0"}
    want = {spec.name: table_content(es_file_lake, spec, VARYING) for spec in CHAIN_TABLES}
    last = {name: pc.max(table["ts_recv"]).as_py() for name, table in want.items()}
    lake = Lake(str(tmp_path / "lake"))
    got: dict[str, object] = {}
    proc = subprocess.Popen(_flow_cmd(None), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline and len(got) < len(want):
            time.sleep(2.0)
            for spec in CHAIN_TABLES:
                if spec.name in got or lake.open(spec) is None:
                    continue
                table = table_content(lake, spec, VARYING)
                table = table.filter(pc.less_equal(table["ts_recv"], last[spec.name]))
                if table.num_rows >= want[spec.name].num_rows:
                    got[spec.name] = table
        running = proc.poll() is None
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert running, err.decode()[-2_000:]
    assert set(got) == set(want), {name: lake.count(spec) for spec in CHAIN_TABLES for name in [spec.name]}
    for name, table in want.items():
        assert got[name].equals(table), name  # type: ignore[attr-defined]
