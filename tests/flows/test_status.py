"""``spymaster status`` on a real lake and a real MLflow registry (both in tmp), exact values.

The lake: the first sample day replayed with scoring off, three bad records planted in its MBO
(two adds of size zero, one add without a price); the second day replayed with scoring on, then
a second generation of its MBO begun and never finished (what an ``--overwrite`` that crashed
leaves). So the first day is finished but not scored, the second neither. The registry: two
versions of ES_MODEL, the champion alias on the second.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import ALL_TABLES, BRONZE_MANIFEST
from flows.jobs.status import ModelState, lake_status, registry_state
from flows.plan import record_start
from operators.records import UNDEF_PRICE
from tests.flows.dbn_edit import split_mbo_file, write_mbo_file
from tests.learning.models import register_tiny_model

ROOT = Path(__file__).resolve().parents[2]
DAYS = (date(2025, 11, 3), date(2025, 11, 4))
CONTRACTS = ("ESH6", "ESZ5")


@dataclass(frozen=True, slots=True)
class Built:
    lake: Lake
    registry: str
    unfinished: str
    """The source whose second generation was begun and never finished."""
    manifest_version: int
    """``bronze.raw_manifest``'s version before that generation began."""


@pytest.fixture(name="built", scope="module")
def fixture_built(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    from dataclasses import replace

    from flows.app import prepare
    from flows.config import DateRange
    from flows.runner import run_flow
    from tests.conftest import app_config

    root = tmp_path_factory.mktemp("status")
    inputs = root / "in"
    inputs.mkdir()
    for path in sample_dir.glob("*.dbn.zst"):
        shutil.copy(path, inputs / path.name)
    first = sorted(inputs.glob("*.mbo.dbn.zst"))[0]
    header, records = split_mbo_file(first)
    adds = np.flatnonzero((records["action"] == b"A") & ((records["flags"] & 32) == 0))
    records["size"][adds[[10, 20]]] = 0
    records["price"][adds[30]] = UNDEF_PRICE
    write_mbo_file(first, header, records)

    registry = f"sqlite:///{root / 'registry' / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", registry)  # not the working directory's registry, ever
    try:
        cfg = app_config([inputs], root / "lake")
        for day, backend in zip(DAYS, ("off", "local"), strict=True):
            prepared = prepare(replace(cfg, source=replace(cfg.source, dates=DateRange(first=day, last=day)),
                                       scoring=replace(cfg.scoring, backend=backend)))
            run_flow(prepared)
        lake = Lake(str(root / "lake"))  # what both days' runs wrote
        second = sorted(inputs.glob("*.mbo.dbn.zst"))[1]
        table = lake.open(BRONZE_MANIFEST)
        assert table is not None
        before = table.version()
        record_start(lake, f"dbn:{second.name}", second, "mbo", 1, "crashed-overwrite")
        (root / "registry").mkdir()
        register_tiny_model(registry, seed=0)
        register_tiny_model(registry, seed=1)
    finally:
        mp.undo()
    return Built(lake, registry, f"dbn:{second.name}", before)


def test_status_says_what_the_lake_holds(built: Built) -> None:
    report = lake_status(built.lake, built.registry)

    rows = {t.name: t.rows for t in report.tables}
    assert list(rows) == [s.name for s in ALL_TABLES]
    assert rows == {s.name: built.lake.read(s).num_rows for s in ALL_TABLES}  # the log's counts match the data
    assert rows["bronze.raw_manifest"] == 7 and rows["bronze.mbo_dlq"] == 3
    manifest = next(t for t in report.tables if t.name == "bronze.raw_manifest")
    assert manifest.version == built.manifest_version + 1 and manifest.last_commit is not None

    assert report.dead_letters == {"undef_price": 1, "zero_size": 2}
    sessions = {s.session_date: (s.finished, {c.contract_id: (c.finished, c.scored) for c in s.contracts})
                for s in report.sessions}
    assert sessions == {DAYS[0]: (True, dict.fromkeys(CONTRACTS, (True, False))),
                        DAYS[1]: (False, dict.fromkeys(CONTRACTS, (False, False)))}
    sources = {s.source: (s.generation, s.status, s.finished, s.scored) for s in report.sources}
    assert len(sources) == 6 and sources.pop(built.unfinished) == (1, "started", False, False)
    assert sources.pop(built.unfinished.replace("20251104", "20251103")) == (0, "complete", True, False)
    assert set(sources.values()) == {(0, "complete", True, True)}  # definitions and statistics: no books to score

    assert report.registry.error is None
    assert report.registry.models == (ModelState("ES_MODEL", ("1", "2"), {"champion": "2"}),)
    assert report.registry.holder(report.registry.models[0]) == "2"
    assert report.live is None


def test_json_has_the_documented_keys_and_the_cli_prints_it(built: Built, tmp_path: Path) -> None:
    import os

    env = {**os.environ, "MLFLOW_TRACKING_URI": built.registry}
    env.pop("SPYMASTER_INPUT", None)
    done = subprocess.run([sys.executable, "-m", "flows.cli", "status", "--lake", built.lake.root, "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)

    assert got == lake_status(built.lake, built.registry).to_json()
    assert list(got) == ["lake", "tables", "sessions", "sources", "dead_letters", "registry", "live", "instruments"]
    assert got["tables"]["bronze.mbo_dlq"]["rows"] == 3
    assert got["instruments"] == {"future": len(CONTRACTS)}
    assert got["sessions"] == {
        "2025-11-03": {"finished": True, "contracts": {c: {"finished": True, "scored": False} for c in CONTRACTS}},
        "2025-11-04": {"finished": False, "contracts": {c: {"finished": False, "scored": False} for c in CONTRACTS}},
    }
    assert got["dead_letters"] == {"undef_price": 1, "zero_size": 2}
    assert got["registry"]["models"] == {"ES_MODEL": {"versions": ["1", "2"], "aliases": {"champion": "2"},
                                                      "champion": "2"}}
    assert got["live"] is None

    human = subprocess.run([sys.executable, "-m", "flows.cli", "status", "--lake", built.lake.root],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert human.returncode == 0, human.stderr
    assert "zero_size" in human.stdout and f"not finished: {built.unfinished}" in human.stdout
    assert "ES_MODEL" in human.stdout and "champion → 2" in human.stdout


def test_a_missing_registry_is_said_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "mlflow.db"

    state = registry_state(f"sqlite:///{path}")

    assert state.models == () and state.error == (f"no MLflow registry: {path} does not exist "
                                                   "(spymaster train, or make sample, creates it)")
    assert not path.parent.exists()


def test_an_unreachable_registry_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.services.kafka_broker import free_port

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    uri = f"http://127.0.0.1:{free_port()}"

    state = registry_state(uri)

    assert state.models == () and state.error is not None
    assert state.error.startswith(f"the MLflow registry at {uri} did not answer: ") and "\n" not in state.error


def test_the_registry_is_asked_with_one_retry_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own policy (7 retries with backoff) keeps a status of a dead server waiting for minutes."""
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT

    from flows.jobs.status import _impatient_http

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "33")
    with _impatient_http():
        assert (MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(), MLFLOW_HTTP_REQUEST_TIMEOUT.get()) == (1, 33)
    assert (MLFLOW_HTTP_REQUEST_MAX_RETRIES.get(), MLFLOW_HTTP_REQUEST_TIMEOUT.get()) == (7, 33)
