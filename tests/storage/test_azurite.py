"""The raw files and the lake on Azure storage, through Azurite (Microsoft's emulator) on 127.0.0.1:
a replay from DBN files in a container into a lake in another gives the tables a replay from
local disk gives, reruns download nothing and commit nothing, and a replay killed mid-way resumes
there without a lost or duplicated row."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.delta.lake import Lake
from connectors.delta.tables import ALL_TABLES, BRONZE_MBO
from flows.app import prepare
from flows.runner import recovery_config, run_flow
from tests.conftest import WALL_CLOCK_COLUMNS, app_config, lake_differences, table_versions
from tests.flows.test_recovery import ROOT, _flow_cmd, _run_to_end
from tests.services.azurite import STORAGE_OPTIONS, Azurite, running_azurite

DROPPED = (*WALL_CLOCK_COLUMNS, "run_id", "path")
"""The manifest's ``path`` is where the replay read the file (the cache, or the local directory)."""


@pytest.fixture(name="azurite", scope="module")
def fixture_azurite(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Iterator[Azurite]:
    with running_azurite(tmp_path_factory.mktemp("azurite") / "data") as azurite, pytest.MonkeyPatch.context() as mp:
        mp.setenv("AZURITE_BLOB_STORAGE_URL", azurite.url)
        azurite.upload("raw-dbn", {f"glbx/{p.name}": p for p in sorted(sample_dir.glob("*.dbn.zst"))})
        azurite.create_container("lake")
        yield azurite


def _replay(inputs: list[str], lake: str, cache: Path, **lake_overrides: object) -> Lake:
    cfg = app_config(inputs, Path("unused"), **lake_overrides)
    cfg = replace(cfg, source=replace(cfg.source, raw_cache=cache), lake=replace(cfg.lake, root=lake))
    prepared = prepare(cfg)
    run_flow(prepared, workers=1)
    return prepared.lake


@pytest.mark.integration
@pytest.mark.slow
def test_a_replay_from_azure_storage_into_a_lake_there_equals_the_local_disk_replay(
        azurite: Azurite, sample_dir: Path, tmp_path: Path) -> None:
    local = _replay([str(sample_dir)], str(tmp_path / "local"), tmp_path / "unused-cache")
    cache = tmp_path / "cache"
    remote = _replay(["az://raw-dbn/glbx/"], "az://lake/first", cache, storage_options=STORAGE_OPTIONS)

    differences = lake_differences(remote, local, ALL_TABLES, DROPPED)
    assert not differences, "\n".join(differences)
    assert remote.read(BRONZE_MBO, ["source"]).num_rows > 10_000
    copies = sorted(p.name for p in (cache / "devstoreaccount1" / "raw-dbn" / "glbx").iterdir()
                    if p.name.endswith(".dbn.zst"))
    assert copies == sorted(p.name for p in sample_dir.glob("*.dbn.zst"))

    stamps = {p: p.stat().st_mtime_ns for p in cache.rglob("*.dbn.zst")}
    versions = table_versions(remote)
    again = _replay(["az://raw-dbn/glbx/*.mbo.dbn.zst", "az://raw-dbn/glbx/*definition*"], "az://lake/first", cache,
                    storage_options=STORAGE_OPTIONS)
    assert table_versions(again) == versions  # finished files are skipped: nothing committed
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # same ETags: nothing downloaded


def _commits(azurite: Azurite, prefix: str) -> int:
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(azurite.connection_string(), "lake")
    return sum(1 for b in client.list_blobs(name_starts_with=prefix) if b.name.endswith(".json"))


@pytest.mark.integration
@pytest.mark.slow
def test_a_replay_into_azure_storage_killed_mid_way_resumes_without_loss_or_duplicates(
        azurite: Azurite, sample_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "spymaster.toml"
    options = "\n".join(f'{k} = "{v}"' for k, v in STORAGE_OPTIONS.items())
    config.write_text(f"[source]\nbatch_records = 4096\n[lake]\nflush_rows = 20000\n"
                      f"[lake.storage_options]\n{options}\n")
    env = {**os.environ, "SPYMASTER_INPUT": "az://raw-dbn/glbx/", "SPYMASTER_LAKE": "az://lake/crash",
           "SPYMASTER_CONFIG": str(config), "SPYMASTER_RUN_ID": "azurite-crash",
           "SPYMASTER_RAW_CACHE": str(tmp_path / "cache"), "AZURITE_BLOB_STORAGE_URL": azurite.url}
    recovery = tmp_path / "recovery"
    recovery_config(recovery)
    proc = subprocess.Popen(_flow_cmd(recovery), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while _commits(azurite, "crash/bronze/mbo/_delta_log/") < 3 and proc.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail("the flow made no Bronze commits in Azurite within 180 s")
            time.sleep(0.05)
        assert proc.poll() is None, "the flow finished before it could be killed; lower flush_rows"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    _run_to_end(env, recovery)

    local_env = {**env, "SPYMASTER_INPUT": str(sample_dir), "SPYMASTER_LAKE": str(tmp_path / "local"),
                 "SPYMASTER_CONFIG": str(tmp_path / "local.toml")}
    (tmp_path / "local.toml").write_text("[source]\nbatch_records = 4096\n[lake]\nflush_rows = 20000\n")
    _run_to_end(local_env, None)
    got = Lake("az://lake/crash", dict(STORAGE_OPTIONS))
    keys = got.read(BRONZE_MBO, ["source", "source_offset"])
    assert keys.group_by(["source", "source_offset"]).aggregate([]).num_rows == keys.num_rows  # no duplicate
    differences = lake_differences(got, Lake(str(tmp_path / "local")), ALL_TABLES, DROPPED)
    assert not differences, "\n".join(differences)
