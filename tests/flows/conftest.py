"""Fixtures for the fault-tolerance tests: inputs with dead letters, and a reference lake."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import BRONZE_MBO_DLQ
from tests.flows.dbn_edit import split_mbo_file, write_mbo_file

NO_REGISTRY = Path(tempfile.gettempdir()) / "spymaster-tests-no-registry" / "mlflow.db"
"""Never created: one path for every run, since score rows quote it in ``detail``."""
DIRTY_RECORDS = 240
"""Corrupt records spread over the first day, so dead letters are written all along a run."""


@pytest.fixture(name="dirty_inputs", scope="session")
def fixture_dirty_inputs(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-day sample with the first day's MBO file carrying 240 bad records (four kinds)."""
    out = tmp_path_factory.mktemp("dirty")
    for f in sample_dir.glob("*.dbn.zst"):
        shutil.copy(f, out / f.name)
    first = sorted(out.glob("*.mbo.dbn.zst"))[0]
    header, records = split_mbo_file(first)
    trades = np.flatnonzero(records["action"] == b"T")  # trades do not touch the book
    picked = trades[np.linspace(0, len(trades) - 1, DIRTY_RECORDS).astype(int)]
    for n, i in enumerate(picked):
        kind = n % 3
        if kind == 0:
            records[i]["rtype"] = 0x77
        elif kind == 1:
            records[i]["length"] = 3
        else:
            records[i]["instrument_id"] = 999
    write_mbo_file(first, header, records)
    return out


def fault_env(inputs: Path, lake: Path, tmp: Path) -> dict[str, str]:
    """``test_recovery``'s settings, with an MLflow registry of this test's own (none: rows say
    ``no_model``), so a model registered in the working directory cannot change the scores."""
    from tests.flows.test_recovery import _env

    return {**_env(inputs, lake, tmp), "MLFLOW_TRACKING_URI": f"sqlite:///{NO_REGISTRY}"}


@pytest.fixture(name="reference_lake", scope="session")
def fixture_reference_lake(dirty_inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """One uninterrupted single-process run of ``dirty_inputs`` (the plain entry point)."""
    from tests.flows.test_recovery import _run_to_end

    tmp = tmp_path_factory.mktemp("reference")
    _run_to_end(fault_env(dirty_inputs, tmp / "lake", tmp), None)
    lake = Lake(str(tmp / "lake"))
    assert lake.count(BRONZE_MBO_DLQ) == DIRTY_RECORDS
    return lake


@pytest.fixture(name="mbo_topic", scope="session")
def fixture_mbo_topic(dirty_inputs: Path, kafka_broker) -> str:
    """The first (dirty) day of ``dirty_inputs`` published once, as fast as possible, on a 4-partition
    topic: its kafka:// URL. One day keeps the topic tests short."""
    from replay.publish import publish_files

    day = str(dirty_inputs / "*20251103*.dbn.zst")
    report = publish_files([day], kafka_broker.bootstrap, "mbo_raw_faults", None, partitions=4)
    assert report.failed == 0 and report.records > 0
    return f"kafka://{kafka_broker.bootstrap}/mbo_raw_faults"


def topic_env(topic_url: str, lake: Path, tmp: Path) -> dict[str, str]:
    """``fault_env`` reading the topic in bounded mode (stop at the end offsets seen at start)."""
    return {**fault_env(Path("unused"), lake, tmp), "SPYMASTER_INPUT": topic_url, "SPYMASTER_KAFKA_STOP_AT_END": "1"}


@pytest.fixture(name="topic_reference_lake", scope="session")
def fixture_topic_reference_lake(mbo_topic: str, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """One uninterrupted single-process run of the topic."""
    from tests.flows.test_recovery import _run_to_end

    tmp = tmp_path_factory.mktemp("topic-reference")
    _run_to_end(topic_env(mbo_topic, tmp / "lake", tmp), None)
    lake = Lake(str(tmp / "lake"))
    # every damaged record of the file is one dead letter on the topic path too, and no good one is
    dlq = lake.read(BRONZE_MBO_DLQ, ["reason"]).to_pylist()
    assert len(dlq) == DIRTY_RECORDS, sorted({r["reason"] for r in dlq})
    return lake
